import Foundation
import NIOCore
import StrataCore

/// An event about to be appended: what happened (`type`, `data`) and the context around it (`metadata`).
///
/// `data` and `metadata` are JSON objects as text; the log stores `data` as written (`json`) and
/// `metadata` as `jsonb`.
public struct NewEvent: Sendable, Equatable {
    public var eventID: UUID
    public var type: String
    public var schemaVersion: Int
    public var data: String
    public var metadata: String
    public var occurredAt: Date

    public init(
        eventID: UUID,
        type: String,
        schemaVersion: Int = 1,
        data: String,
        metadata: String = "{}",
        occurredAt: Date
    ) {
        self.eventID = eventID
        self.type = type
        self.schemaVersion = schemaVersion
        self.data = data
        self.metadata = metadata
        self.occurredAt = occurredAt
    }
}

/// An event as the log holds it, with its place in its stream and in the whole log.
public struct RecordedEvent: Sendable, Equatable {
    public var position: Int64
    public var streamID: UUID
    public var streamVersion: Int64
    public var eventID: UUID
    public var type: String
    public var schemaVersion: Int
    public var data: String
    public var metadata: String
    public var occurredAt: Date
    public var recordedAt: Date

    public init(
        position: Int64, streamID: UUID, streamVersion: Int64, eventID: UUID, type: String, schemaVersion: Int,
        data: String, metadata: String, occurredAt: Date, recordedAt: Date
    ) {
        self.position = position
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.eventID = eventID
        self.type = type
        self.schemaVersion = schemaVersion
        self.data = data
        self.metadata = metadata
        self.occurredAt = occurredAt
        self.recordedAt = recordedAt
    }
}

/// What a writer believes the stream's version is; an append whose belief is wrong appends nothing.
public enum ExpectedVersion: Sendable, Equatable, CustomStringConvertible {
    /// Append whatever the stream holds.
    case any
    /// The stream must not exist yet.
    case noStream
    /// The stream's last event must have exactly this version.
    case exactly(Int64)

    func admits(_ actual: Int64) -> Bool {
        switch self {
        case .any: return true
        case .noStream: return actual == 0
        case .exactly(let version): return actual == version
        }
    }

    public var description: String {
        switch self {
        case .any: return "any"
        case .noStream: return "no stream"
        case .exactly(let version): return "\(version)"
        }
    }
}

/// The outcome of an append: the stream's version after it and the log position of each event.
public struct AppendResult: Sendable, Equatable {
    public var streamVersion: Int64
    public var positions: [Int64]
    /// True when every event had been appended before: the append was a retry and changed nothing.
    public var wasAlreadyAppended: Bool

    public var lastPosition: Int64? { positions.last }
}

/// Why an append appended nothing.
public enum AppendError: Error, Equatable, CustomStringConvertible {
    /// The stream is not at the version the writer expected.
    case versionConflict(stream: UUID, expected: ExpectedVersion, actual: Int64)
    /// Some, not all, of the event ids are in the log already, or they are in another stream: the
    /// append is neither new nor a faithful retry.
    case eventIDsAlreadyUsed(stream: UUID, eventIDs: [UUID])
    case noEvents

    public var description: String {
        switch self {
        case .versionConflict(let stream, let expected, let actual):
            return "stream \(stream) is at version \(actual), not \(expected)"
        case .eventIDsAlreadyUsed(let stream, let ids):
            return
                "event ids \(ids.map(\.uuidString).joined(separator: ", ")) were already used, differently, than in this append to \(stream)"
        case .noEvents:
            return "an append needs at least one event"
        }
    }
}

/// The field names of an event on the wire: the API's `/v1/events` and `/history`, and `strata export`.
enum EventWireKey: String, CodingKey {
    case position, type, data, metadata
    case streamID = "stream_id"
    case streamVersion = "stream_version"
    case eventID = "event_id"
    case schemaVersion = "schema_version"
    case occurredAt = "occurred_at"
    case recordedAt = "recorded_at"
}

extension DatasetEvent {
    /// The event whose payload PostgreSQL sent in `json`, decoded from the received bytes, with no copy
    /// between.
    static func decode(type: String, json: ByteBuffer) throws -> DatasetEvent {
        try json.withUnsafeReadableBytes { try DatasetEvent.decode(type: type, json: $0) }
    }
}
