import Foundation
import StrataCore

/// The context stored with every event: who, which request, and why.
public struct EventMetadata: Sendable, Equatable, Codable {
    /// The authenticated token's name (or `cli:<user>` for the command line).
    public var actor: String
    /// Whom the actor says it acts for (`Strata-Actor`): recorded, never trusted for anything.
    public var onBehalfOf: String?
    public var requestID: String?
    public var reason: String?
    /// For events ingested from OpenLineage: the producer that sent it, and the run.
    public var producer: String?
    public var runID: String?

    public init(
        actor: String, onBehalfOf: String? = nil, requestID: String? = nil, reason: String? = nil,
        producer: String? = nil, runID: String? = nil
    ) {
        self.actor = actor
        self.onBehalfOf = onBehalfOf
        self.requestID = requestID
        self.reason = reason
        self.producer = producer
        self.runID = runID
    }

    enum CodingKeys: String, CodingKey {
        case actor, reason, producer
        case onBehalfOf = "on_behalf_of"
        case requestID = "request_id"
        case runID = "run_id"
    }

    /// As its `Encodable` form encodes it (absent members left out), written by hand: the append
    /// pipeline encodes one per event, in its serial section.
    public func encoded() -> String {
        var writer = CanonicalJSONWriter(capacity: 128)
        writer.beginObject()
        writer.key("actor")
        writer.value(actor)
        for (key, value): (StaticString, String?) in [
            ("on_behalf_of", onBehalfOf), ("producer", producer), ("reason", reason), ("request_id", requestID),
            ("run_id", runID),
        ] {
            guard let value else { continue }
            writer.key(key)
            writer.value(value)
        }
        writer.endObject()
        return writer.string
    }
}

extension RecordedEvent {
    /// The domain event and its context, as the decider folds them.
    public func datasetEvent() throws -> (DatasetEvent, EventContext) {
        // Only the actor matters to the fold; the writer reads whole streams through here.
        let actor = try JSONReader.read(metadata) { reader throws(JSONReadError) in
            var actor: String?
            try reader.readObject { key, reader throws(JSONReadError) in
                if key == "actor", actor == nil { actor = try reader.string() } else { try reader.skipValue() }
            }
            return try reader.required(actor, "actor")
        }
        return (try DatasetEvent.decode(type: type, data: data), EventContext(actor: actor, occurredAt: occurredAt))
    }
}
