import PostgresNIO

/// A query that must answer a row answered none: the schema is not what this build expects.
public enum StoreError: Error, CustomStringConvertible {
    case noResult(String)

    public var description: String {
        switch self {
        case .noResult(let query): return "\(query) returned no row; is the database migrated?"
        }
    }
}

extension PostgresClient {
    /// Runs `body` with this client running beside it, for commands that are not long-lived services
    /// (`migrate`, `export`, tests); the server runs the client in its service group instead.
    @discardableResult
    public func whileRunning<Result: Sendable>(
        _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
            group.addTask { await self.run() }
            // Give run() its turn first: a lease before it starts works, but PostgresNIO warns about it.
            await Task.yield()
            defer { group.cancelAll() }
            return try await body(self)
        }
    }
}

extension PostgresClient {
    /// Runs `body` with `count` connections leased from the pool at once, for work spread over them.
    func withConnections<Result>(
        _ count: Int,
        leased: [PostgresConnection] = [],
        isolation: isolated (any Actor)? = #isolation,
        _ body: ([PostgresConnection]) async throws -> sending Result
    ) async throws -> sending Result {
        guard leased.count < count else { return try await body(leased) }
        return try await withConnection { connection in
            try await withConnections(count, leased: leased + [connection], body)
        }
    }
}

extension PostgresConnection {
    /// Sends `queries` in order without waiting for each answer before sending the next, and answers
    /// each one's rows, in order; throws the first failure (inside a transaction, the ones after it
    /// fail too). The connection's event loop sends each query as the one before completes, where
    /// awaiting each would first hop back to the task that asked: on a busy server that hop, not
    /// PostgreSQL, was most of a short statement's time. Never for a COMMIT, whose answer after a
    /// failed statement is a quiet ROLLBACK.
    func pipelined(_ queries: [PostgresQuery], logger: Logger) async throws -> [[PostgresRow]] {
        try await pipelined(queries, then: NoPreparedStatement?.none, logger: logger)
    }

    /// ``pipelined(_:logger:)``, followed by a prepared statement, `last`, whose rows come last.
    ///
    /// `execute` writes its statement before it first waits, so it goes out behind the queries, in
    /// the same round trip. Prepared, a statement is parsed once per connection, and planned once too
    /// where `plan_cache_mode` lets it.
    func pipelined<Last: PostgresPreparedStatement>(_ queries: [PostgresQuery], then last: Last?, logger: Logger)
        async throws -> [[PostgresRow]] where Last.Row == PostgresRow
    {
        try await ensureUsable(logger: logger)
        let answers: [EventLoopFuture<PostgresQueryResult>] = queries.map { query($0, logger: logger) }
        var lastRows: [PostgresRow]?
        var lastFailure: (any Error)?
        if let last {
            do { lastRows = try await rows(of: last, logger: logger) } catch { lastFailure = error }
        }
        var rows: [[PostgresRow]] = []
        rows.reserveCapacity(answers.count + 1)
        // The first failure is the one to throw: in a transaction, every statement after it fails too.
        for answer in answers { rows.append(try await answer.get().rows) }
        if let lastFailure { throw lastFailure }
        if let lastRows { rows.append(lastRows) }
        return rows
    }

    /// Runs a statement whose rows, if any, do not matter, and waits until the server has finished it.
    public func perform(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line)
        async throws
    {
        try await ensureUsable(logger: logger)
        _ = try await self.query(query, logger: logger, file: file, line: line).collect()
    }

    /// Runs `query` and answers all its rows, gathered on the connection's event loop as they arrive.
    ///
    /// Not PostgresNIO's `async` `query`, whose rows stream to the task that reads them and which asks
    /// PostgreSQL for more only once that task has taken them. Gathered on the event loop, more is asked
    /// for as soon as rows arrive. Every result that can be held whole is read here. (A stream cut off
    /// while it waited for its reader used to end the process; see ``UnaskedReadCompleteFilter``.)
    public func rows(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line)
        async throws -> [PostgresRow]
    {
        try await ensureUsable(logger: logger)
        return try await self.query(query, logger: logger, file: file, line: line).get().rows
    }

    /// ``throwIfClosed()``, and on a connection's first use, adds its ``UnaskedReadCompleteFilter``: every
    /// query Strata runs begins here.
    func ensureUsable(logger: Logger) async throws {
        try throwIfClosed()
        do {
            try await addUnaskedReadCompleteFilter(logger: logger)
        } catch {
            // The channel closed before the filter could be added.
            throw DatabaseUnavailable(.connectionLost)
        }
    }

    /// Fails with ``DatabaseUnavailable/Reason/connectionLost`` if this connection has closed. PostgresNIO
    /// never answers a query written to a closed connection: work that goes on after its connection died
    /// (a ROLLBACK in a `catch`, the next step of an abandoned rebuild) would wait forever, holding all it
    /// had, where it should fail. (A connection that closes while a query is being written is the
    /// pool's and the watch's to notice; see ``BoundedPool`` and ``ConnectionWatch``.)
    func throwIfClosed() throws {
        if isClosed { throw DatabaseUnavailable(.connectionLost) }
    }
}

extension PostgresClient {
    /// Runs a statement whose rows, if any, do not matter, and waits until the server has finished it.
    public func perform(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line)
        async throws
    {
        _ = try await rows(query, logger: logger, file: file, line: line)
    }

    /// ``PostgresNIO/PostgresConnection/rows(_:logger:file:line:)`` on a pooled connection.
    public func rows(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line)
        async throws -> [PostgresRow]
    {
        try await withConnection { try await $0.rows(query, logger: logger, file: file, line: line) }
    }
}

extension PostgresClient {
    /// BEGIN, `body`, COMMIT on a pooled connection; ROLLBACK if `body` throws, and its error comes out as
    /// itself.
    ///
    /// Not PostgresNIO's `withTransaction`, which sends its ROLLBACK even on a connection that has closed:
    /// PostgresNIO never answers a query written to a closed connection, so a transaction whose connection
    /// died under it (a PostgreSQL restart in the middle of `strata import`) waited forever.
    public func transaction<Result>(
        logger: Logger,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withConnection(isolation: isolation) { connection in
            try await connection.perform("BEGIN", logger: logger)
            let result: Result
            do {
                result = try await body(connection)
            } catch {
                try? await connection.perform("ROLLBACK", logger: logger)
                throw error
            }
            try connection.throwIfClosed()
            let ended = try await connection.query("COMMIT", logger: logger).get().metadata.command
            // A transaction in which a statement failed ends in a ROLLBACK whatever it is asked to do.
            guard ended == "COMMIT" else { throw TransactionRolledBack() }
            return result
        }
    }
}

/// A transaction asked to commit rolled back instead: one of its statements had failed, and its body
/// went on as if not.
public struct TransactionRolledBack: Error, CustomStringConvertible {
    public var description: String { "the transaction rolled back: one of its statements failed" }
}

/// The prepared statement that follows the queries of ``PostgresConnection/pipelined(_:logger:)``:
/// none.
enum NoPreparedStatement: PostgresPreparedStatement {
    static let sql = ""
    typealias Row = PostgresRow
    func makeBindings() throws -> PostgresBindings { switch self {} }
    func decodeRow(_ row: PostgresRow) throws -> Row { switch self {} }
}
