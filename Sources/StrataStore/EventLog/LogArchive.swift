import Foundation
import PostgresNIO
import StrataCore

/// Backup and restore of the event log as NDJSON: one event per line, with its position, ids, stream
/// version, payload, metadata and both timestamps at full (microsecond) precision.
public struct LogArchive: Sendable {
    public let client: PostgresClient
    public let logger: Logger
    public var batchSize = 5_000

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Writes every event after `position`, in log order, a page at a time (memory stays constant).
    /// The lines are rendered by PostgreSQL itself, so nothing is rounded on the way out.
    public func export(after position: Int64 = 0, write: (String) throws -> Void) async throws -> Int {
        var after = position
        var count = 0
        while true {
            // Gathered, a page at a time (see `PostgresConnection.rows(_:logger:)`).
            let rows = try await client.rows(
                """
                SELECT global_position, json_build_object(
                    'position', global_position, 'stream_id', stream_id, 'stream_version', stream_version,
                    'event_id', event_id, 'type', event_type, 'schema_version', schema_version,
                    'data', data, 'metadata', metadata,
                    'occurred_at', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    'recorded_at', to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                )::text
                FROM events WHERE global_position > \(after) ORDER BY global_position LIMIT \(batchSize)
                """,
                logger: logger
            )
            var page = 0
            for row in rows {
                let (eventPosition, line) = try row.decode((Int64, String).self)
                try write(line)
                after = eventPosition
                page += 1
            }
            count += page
            if page < batchSize { return count }
        }
    }

    /// One line of an export, as read back.
    struct Line: Decodable {
        init(
            position: Int64, streamID: UUID, streamVersion: Int64, eventID: UUID, type: String, data: JSONValue,
            metadata: JSONValue, occurredAt: String, recordedAt: String
        ) {
            self.position = position
            self.streamID = streamID
            self.streamVersion = streamVersion
            self.eventID = eventID
            self.type = type
            self.schemaVersion = DatasetEvent.schemaVersion
            self.data = data
            self.metadata = metadata
            self.occurredAt = occurredAt
            self.recordedAt = recordedAt
        }

        var position: Int64
        var streamID: UUID
        var streamVersion: Int64
        var eventID: UUID
        var type: String
        var schemaVersion: Int
        var data: JSONValue
        var metadata: JSONValue
        var occurredAt: String
        var recordedAt: String

        typealias CodingKeys = EventWireKey
    }

    /// What is wrong with a line, for the person who must fix it: the member and the trouble, not the
    /// decoder's debug description.
    static func reason(_ error: DecodingError) -> String {
        func member(_ path: [any CodingKey]) -> String {
            path.isEmpty
                ? "the line"
                : "'" + path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") + "'"
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(member(context.codingPath + [key])) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(member(context.codingPath)) has the wrong type"
        case .dataCorrupted(let context) where context.codingPath.isEmpty: return "it is not JSON"
        case .dataCorrupted(let context): return "\(member(context.codingPath)) is not valid"
        @unknown default: return "\(error)"
        }
    }

    /// Loads an export into a catalog whose log is empty, keeping positions, ids, stream versions and
    /// timestamps, all in one transaction: a malformed or inconsistent line imports nothing. Answers the
    /// number of events imported; the caller then builds the projections from them.
    public func importLog(_ lines: some Sequence<String>) async throws -> Int {
        try await client.transaction(logger: logger) { connection in
            _ = try await EventLogWriter.begin(on: connection, logger: logger)
            let existing =
                try await connection.rows("SELECT count(*) FROM events", logger: logger).first?.decode(Int64.self) ?? 0
            guard existing == 0 else { throw ImportError.catalogNotEmpty(events: existing) }

            var batch: [Line] = []
            var lastPosition: Int64 = 0
            var lifecycles: [UUID: DatasetLifecycle] = [:]
            var tokens: [UUID: TokenState] = [:]
            var versions: [UUID: Int64] = [:]
            var total = 0
            for (index, text) in lines.enumerated() where !text.trimmingCharacters(in: .whitespaces).isEmpty {
                let number = index + 1
                let line: Line
                do {
                    line = try JSONDecoder().decode(Line.self, from: Data(text.utf8))
                } catch let error as DecodingError {
                    throw ImportError.malformed(line: number, reason: "not an exported event: \(Self.reason(error))")
                }
                guard line.position > lastPosition else {
                    throw ImportError.malformed(
                        line: number, reason: "position \(line.position) is not after \(lastPosition)")
                }
                let event: LogEvent
                do {
                    event = try LogEvent.decode(type: line.type, data: CanonicalJSON.string(line.data))
                } catch {
                    throw ImportError.malformed(line: number, reason: "\(line.type) payload is not valid: \(error)")
                }
                guard line.metadata["actor"]?.stringValue != nil else {
                    throw ImportError.malformed(line: number, reason: "metadata has no actor")
                }
                // Folded as a replay will fold it, so that nothing is imported that cannot be projected.
                guard line.streamVersion == (versions[line.streamID] ?? 0) + 1 else {
                    throw ImportError.malformed(
                        line: number,
                        reason: "stream \(line.streamID.lowercased) jumps to version \(line.streamVersion)")
                }
                versions[line.streamID] = line.streamVersion
                switch event {
                case .dataset(let event):
                    try { (lifecycle: inout DatasetLifecycle) in
                        if let reason = lifecycle.inconsistency(of: event) {
                            throw ImportError.malformed(line: number, reason: reason)
                        }
                        lifecycle.apply(event, at: line.position)
                    }(&lifecycles[line.streamID, default: DatasetLifecycle(id: line.streamID)])
                case .token(let event):
                    try { (token: inout TokenState) in
                        if let reason = token.inconsistency(of: event) {
                            throw ImportError.malformed(line: number, reason: reason)
                        }
                        token.apply(event)
                    }(&tokens[line.streamID, default: TokenState(id: line.streamID)])
                }
                lastPosition = line.position
                batch.append(line)
                if batch.count == batchSize {
                    try await insert(batch, on: connection, lineOffset: number - batch.count)
                    total += batch.count
                    batch = []
                }
            }
            try await insert(batch, on: connection, lineOffset: 0)
            total += batch.count
            try await connection.perform(
                "SELECT setval(pg_get_serial_sequence('events', 'global_position'), \(max(lastPosition, 1)), \(lastPosition > 0))",
                logger: logger
            )
            return total
        }
    }

    func insert(_ lines: [Line], on connection: PostgresConnection, lineOffset: Int) async throws {
        guard !lines.isEmpty else { return }
        func text(_ value: JSONValue) -> String { CanonicalJSON.string(value) }
        do {
            try await connection.perform(
                """
                INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type, schema_version,
                                    data, metadata, occurred_at, recorded_at)
                OVERRIDING SYSTEM VALUE
                SELECT position, stream_id, version, id, type, schema_version, data::json, metadata::jsonb,
                       occurred_at::timestamptz, recorded_at::timestamptz
                FROM unnest(\(lines.map(\.position)), \(lines.map(\.streamID)), \(lines.map(\.streamVersion)),
                            \(lines.map(\.eventID)), \(lines.map(\.type)), \(lines.map(\.schemaVersion)),
                            \(lines.map { text($0.data) }), \(lines.map { text($0.metadata) }),
                            \(lines.map(\.occurredAt)), \(lines.map(\.recordedAt)))
                     AS e(position, stream_id, version, id, type, schema_version, data, metadata, occurred_at, recorded_at)
                ORDER BY position
                """,
                logger: logger
            )
        } catch let error as PSQLError {
            throw ImportError.rejected(reason: error.serverInfo?[.message] ?? "\(error)")
        }
    }
}

/// Why an import imported nothing.
public enum ImportError: Error, CustomStringConvertible, Equatable {
    case catalogNotEmpty(events: Int64)
    case malformed(line: Int, reason: String)
    case rejected(reason: String)

    public var description: String {
        switch self {
        case .catalogNotEmpty(let events):
            return "the catalog already holds \(events) events; import only into an empty one"
        case .malformed(let line, let reason):
            return "line \(line): \(reason); nothing was imported"
        case .rejected(let reason):
            return "the database refused the import (\(reason)); nothing was imported"
        }
    }
}
