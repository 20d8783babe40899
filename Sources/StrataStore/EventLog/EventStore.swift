import Foundation
import PostgresNIO

/// The event log in PostgreSQL: append with an expected version, read one stream, read everything
/// after a position.
///
/// Appends run through an ``EventLogWriter``, which holds the log's append lock until its transaction
/// commits; that is what makes log positions follow commit order (see `Migrations/0002_begin_append.sql`).
public struct EventStore: Sendable {
    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Appends `events` to `stream` in a transaction of its own.
    ///
    /// If every event id was appended before (to this stream), the append is a retry: nothing is
    /// appended and the first append's result comes back. Some but not all ids known is an error.
    @discardableResult
    public func append(
        _ events: [NewEvent],
        to stream: UUID,
        expectedVersion: ExpectedVersion
    ) async throws -> AppendResult {
        try await client.transaction(logger: logger) { connection in
            let writer = try await EventLogWriter.begin(on: connection, logger: logger)
            return try await writer.append(events, to: stream, expectedVersion: expectedVersion)
        }
    }

    /// The events of one stream, oldest first, starting at `version`.
    public func readStream(_ stream: UUID, from version: Int64 = 1) async throws -> [RecordedEvent] {
        try await Self.collect(
            client.rows(
                """
                SELECT \(unescaped: Self.columns) FROM events
                WHERE stream_id = \(stream) AND stream_version >= \(version)
                ORDER BY stream_version
                """,
                logger: logger
            )
        )
    }

    /// Up to `limit` events of the whole log with a position greater than `position`, in log order.
    ///
    /// Because positions follow commit order, a caller that remembers the last position it saw and
    /// asks again never misses an event.
    public func readAll(after position: Int64, limit: Int) async throws -> [RecordedEvent] {
        try await Self.collect(
            client.rows(
                """
                SELECT \(unescaped: Self.columns) FROM events
                WHERE global_position > \(position)
                ORDER BY global_position
                LIMIT \(limit)
                """,
                logger: logger
            )
        )
    }

    /// The position of the newest event, 0 for an empty log.
    public func lastPosition() async throws -> Int64 {
        try await client.rows("SELECT coalesce(max(global_position), 0) FROM events", logger: logger)
            .first?.decode(Int64.self) ?? 0
    }

    static let columns = """
        global_position, stream_id, stream_version, event_id, event_type, schema_version, data, metadata, \
        occurred_at, recorded_at
        """

    static func collect(_ rows: [PostgresRow]) throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        events.reserveCapacity(rows.count)
        for row in rows {
            let (position, stream, version, id, type, schemaVersion, data, metadata, occurred, recorded) =
                try row.decode((Int64, UUID, Int64, UUID, String, Int, String, String, Date, Date).self)
            events.append(
                RecordedEvent(
                    position: position, streamID: stream, streamVersion: version, eventID: id, type: type,
                    schemaVersion: schemaVersion, data: data, metadata: metadata, occurredAt: occurred,
                    recordedAt: recorded
                )
            )
        }
        return events
    }
}

/// Appends to the log inside a transaction the caller owns, so one transaction can append to many
/// streams (the append pipeline's group commit) and update projections before it commits.
///
/// Creating a writer takes the log's append lock for the rest of the transaction.
public struct EventLogWriter: Sendable {
    public let connection: PostgresConnection
    public let logger: Logger
    /// When the events appended in this transaction are recorded.
    public let recordedAt: Date

    public static func begin(on connection: PostgresConnection, logger: Logger) async throws -> EventLogWriter {
        let rows = try await connection.rows(appendLock, logger: logger)
        return try EventLogWriter(connection: connection, logger: logger, lockAnswer: rows)
    }

    /// Begins a transaction, takes the append lock in it and reads the position the log's next event
    /// will take (`strata_begin_batch()`), sending with them `settings`, `alongside` and `last`, in the
    /// same round trip: `settings` (`SET LOCAL …`) before the lock, so that they run while it is awaited
    /// and not after it is granted, where each would cost the holder a round trip; `alongside` and
    /// `last` after it, for the statements that need it held. Answers the writer, that position, and
    /// the rows of each statement of `alongside`, then of `last`'s.
    static func beginTransaction<Last: PostgresPreparedStatement>(
        on connection: PostgresConnection, logger: Logger, settings: [PostgresQuery] = [],
        alongside statements: [PostgresQuery], then last: Last?
    ) async throws -> (writer: EventLogWriter, nextPosition: Int64, answers: [[PostgresRow]])
    where Last.Row == PostgresRow {
        // Read committed whatever the database's default: every statement after the lock must see what
        // the batch before committed, though the transaction began before that batch ended.
        let answers = try await connection.pipelined(
            ["BEGIN ISOLATION LEVEL READ COMMITTED"] + settings
                + ["SELECT recorded_at, next_position FROM strata_begin_batch()"] + statements,
            then: last, logger: logger)
        let lockAnswer = 1 + settings.count
        guard let (recordedAt, next) = try answers[lockAnswer].first?.decode((Date, Int64).self) else {
            throw StoreError.noResult("strata_begin_batch()")
        }
        let writer = EventLogWriter(connection: connection, logger: logger, recordedAt: recordedAt)
        return (writer, next, Array(answers.dropFirst(lockAnswer + 1)))
    }

    private static let appendLock: PostgresQuery = "SELECT strata_begin_append()"

    /// The SELECT that moves the log's sequence to `position` (a placeholder), for an append that gave
    /// its events' positions itself: the identity then goes on after them. A position of 0 (no event
    /// appended) leaves the sequence where it is.
    static func advanceSequence(to position: String) -> String {
        "SELECT setval('events_global_position_seq', \(position)) WHERE \(position) > 0"
    }

    private init(connection: PostgresConnection, logger: Logger, lockAnswer rows: [PostgresRow]) throws {
        guard let recordedAt = try rows.first?.decode(Date.self) else {
            throw StoreError.noResult("strata_begin_append()")
        }
        self.init(connection: connection, logger: logger, recordedAt: recordedAt)
    }

    private init(connection: PostgresConnection, logger: Logger, recordedAt: Date) {
        self.connection = connection
        self.logger = logger
        self.recordedAt = recordedAt
    }

    @discardableResult
    public func append(
        _ events: [NewEvent],
        to stream: UUID,
        expectedVersion: ExpectedVersion
    ) async throws -> AppendResult {
        guard !events.isEmpty else { throw AppendError.noEvents }
        if let retried = try await previousAppend(of: events, to: stream) { return retried }

        let actual = try await currentVersion(of: stream)
        guard expectedVersion.admits(actual) else {
            throw AppendError.versionConflict(stream: stream, expected: expectedVersion, actual: actual)
        }
        let versions = events.indices.map { actual + 1 + Int64($0) }
        let rows = try await connection.rows(
            """
            INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata,
                                occurred_at, recorded_at)
            SELECT \(stream), version, id, type, schema_version, data::json, metadata::jsonb, occurred_at,
                   \(recordedAt)
            FROM unnest(\(versions), \(events.map(\.eventID)), \(events.map(\.type)), \(events.map(\.schemaVersion)),
                        \(events.map(\.data)), \(events.map(\.metadata)), \(events.map(\.occurredAt)))
                 AS e(version, id, type, schema_version, data, metadata, occurred_at)
            ORDER BY version
            RETURNING global_position
            """,
            logger: logger
        )
        let positions = try rows.map { try $0.decode(Int64.self) }
        return AppendResult(streamVersion: versions.last!, positions: positions.sorted(), wasAlreadyAppended: false)
    }

    /// Whether a batch landed, once every append that may still be committing has ended: the answer for a
    /// batch whose connection died while its COMMIT was under way. Taking the append lock waits out the
    /// batch's own transaction if PostgreSQL has not noticed the lost client yet.
    static func landed(_ probe: LandingProbe, pool: BoundedPool, logger: Logger) async throws -> Bool {
        try await pool.reading { connection in
            try await connection.perform("BEGIN", logger: logger)
            _ = try await EventLogWriter.begin(on: connection, logger: logger)
            let found =
                switch probe {
                case .event(let eventID):
                    try await connection.rows("SELECT 1 FROM events WHERE event_id = \(eventID)", logger: logger)
                case .answer(let scope, let key):
                    try await connection.rows(
                        "SELECT 1 FROM idempotency_keys WHERE scope = \(scope) AND key = \(key)", logger: logger)
                }
            try await connection.perform("ROLLBACK", logger: logger)
            return !found.isEmpty
        }
    }

    /// What tells whether a batch landed: an event it appended, or, for a batch that appended none, an
    /// answer it kept under an `Idempotency-Key` (a refusal, say, whose retry must be refused alike).
    enum LandingProbe: Sendable, CustomStringConvertible {
        case event(UUID)
        case answer(scope: String, key: String)

        var description: String {
            switch self {
            case .event(let id): "event \(id)"
            case .answer(let scope, let key): "answer to \(scope)'s key \(key)"
            }
        }
    }

    /// The events of one stream, oldest first, as this transaction sees them.
    public func readStream(_ stream: UUID) async throws -> [RecordedEvent] {
        try await EventStore.collect(
            connection.rows(
                """
                SELECT \(unescaped: EventStore.columns) FROM events WHERE stream_id = \(stream) ORDER BY stream_version
                """,
                logger: logger
            )
        )
    }

    /// The stream's version: that of its last event, 0 if it has none.
    public func currentVersion(of stream: UUID) async throws -> Int64 {
        try await connection.rows(
            "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = \(stream)", logger: logger
        ).first?.decode(Int64.self) ?? 0
    }

    private func previousAppend(of events: [NewEvent], to stream: UUID) async throws -> AppendResult? {
        let rows = try await connection.rows(
            """
            SELECT event_id, stream_id, stream_version, global_position FROM events
            WHERE event_id = ANY(\(events.map(\.eventID)))
            ORDER BY global_position
            """,
            logger: logger
        )
        let found: [(id: UUID, stream: UUID, version: Int64, position: Int64)] = try rows.map {
            try $0.decode((UUID, UUID, Int64, Int64).self)
        }
        if found.isEmpty { return nil }
        guard found.count == Set(events.map(\.eventID)).count, found.allSatisfy({ $0.stream == stream }) else {
            throw AppendError.eventIDsAlreadyUsed(stream: stream, eventIDs: found.map(\.id))
        }
        return AppendResult(
            streamVersion: found.map(\.version).max()!, positions: found.map(\.position), wasAlreadyAppended: true
        )
    }
}
