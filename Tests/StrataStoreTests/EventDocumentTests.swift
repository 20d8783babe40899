import Foundation
import StrataCore
import StrataStore
import StrataTestSupport
import Testing

/// The feed and the audit trail write each event by hand, for speed; the bytes must stay those the
/// encoder gave (sorted keys), which clients and `as_of` replays of earlier answers have seen.
@Suite("Rendering events")
struct EventDocumentTests {
    @Test func metadataIsWrittenAsTheEncoderWroteIt() {
        var random = SplitMix(seed: 17)
        for _ in 0..<500 {
            let metadata = EventMetadata(
                actor: random.string(), onBehalfOf: random.optionalString(), requestID: random.optionalString(),
                reason: random.optionalString(), producer: random.optionalString(), runID: random.optionalString())
            #expect(metadata.encoded() == CanonicalJSON.string(metadata))
        }
    }

    @Test func everyEventIsWrittenAsTheEncoderWroteIt() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 2).run(commands: 200)
            let events = try await EventStore(client: database.client, logger: database.logger)
                .readAll(after: 0, limit: 10_000)
            #expect(events.count > 100)
            #expect(events.contains { $0.type == "TokenCreated" })
            for event in events {
                #expect(try event.document() == CanonicalJSON.string(EncodedEvent(event)))
                #expect(try !event.document().contains("secret_sha256"), "a token's digest is never shown")
            }
        }
    }
}

/// An event as API.md spells it, through `JSONEncoder`: the oracle. A token's grant shows everything
/// but the digest of its secret.
private struct EncodedEvent: Encodable {
    let event: RecordedEvent

    init(_ event: RecordedEvent) { self.event = event }

    enum CodingKeys: String, CodingKey {
        case position, type, data, metadata
        case streamID = "stream_id"
        case streamVersion = "stream_version"
        case eventID = "event_id"
        case schemaVersion = "schema_version"
        case occurredAt = "occurred_at"
        case recordedAt = "recorded_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(event.position, forKey: .position)
        try container.encode(event.streamID.lowercased, forKey: .streamID)
        try container.encode(event.streamVersion, forKey: .streamVersion)
        try container.encode(event.eventID.lowercased, forKey: .eventID)
        try container.encode(event.type, forKey: .type)
        try container.encode(event.schemaVersion, forKey: .schemaVersion)
        var data = try JSONDecoder().decode(JSONValue.self, from: Data(event.data.utf8))
        if event.type == "TokenCreated", case .object(var fields) = data {
            fields["secret_sha256"] = nil
            data = .object(fields)
        }
        try container.encode(data, forKey: .data)
        try container.encode(
            try JSONDecoder().decode(JSONValue.self, from: Data(event.metadata.utf8)), forKey: .metadata)
        try container.encode(Timestamp.string(from: event.occurredAt), forKey: .occurredAt)
        try container.encode(Timestamp.string(from: event.recordedAt), forKey: .recordedAt)
    }
}
