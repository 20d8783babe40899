import Foundation
import PostgresNIO
import StrataTestSupport
import Testing

@testable import StrataStore

@Suite("A result cut off when PostgreSQL goes away")
struct CutOffResultTests {
    /// PostgreSQL stops (immediate mode, as a crash or a failover would) while long answers are being read
    /// through ``PostgresConnection/rows(_:logger:file:line:)``: the query fails with a lost connection,
    /// whole answers only are taken, and the process goes on.
    @Test func aLongAnswerCutOffFailsItsQueryAndNotTheProcess() async throws {
        let privateCluster = try await PrivateCluster.start()
        defer { privateCluster.remove() }
        let logger = TestPostgres.logger
        let connection = try await PostgresConnection.connect(
            configuration: try DatabaseEndpoint(url: privateCluster.databaseURL).connectionConfiguration(), id: 1,
            logger: logger)
        let stopped = Task {
            try await Task.sleep(for: .milliseconds(300))
            try privateCluster.cluster.stopServer(mode: .immediate)
        }
        var answered = 0
        var failure: (any Error)?
        do {
            // Answers of 20 MB each, arriving in many pieces, until PostgreSQL is gone. A query sent on a
            // connection that has just closed is never answered (PostgresNIO), hence the deadline.
            for _ in 0..<1000 where !connection.isClosed {
                answered += try await withDeadline(.seconds(30)) {
                    try await connection.rows(
                        "SELECT repeat('x', 1000) FROM generate_series(1, 20000)", logger: logger
                    ).count
                }
            }
        } catch {
            failure = error
        }
        try await stopped.value
        // Stopped between two answers, the connection just closes; stopped during one, its query fails.
        #expect(failure.map { DatabaseUnavailable($0) != nil } ?? connection.isClosed, "\(String(describing: failure))")
        try? await connection.close()
        #expect(answered % 20000 == 0, "whole answers only")
    }

    /// An answer PostgresNIO streams (its `async` `query`, its prepared statements) whose connection ends
    /// while the stream waits for its reader to ask for more. Blocked writing to a reader that has not
    /// asked, the backend dies without a word; NIO reads what was left and the end of input with a
    /// read-complete that no read asked for, on which PostgresNIO 1.33 traps (`RowStreamStateMachine`,
    /// "How can we receive a body part…"): without ``UnaskedReadCompleteFilter``, which every connection
    /// gets on its first query, this ends the test process. With it, the stream fails and nothing else.
    @Test func aStreamedAnswerWhoseConnectionEndsWhileItWaitsFailsAndNotTheProcess() async throws {
        try await withTestDatabase { database in
            let logger = database.logger
            let (connection, pid) = try await Self.connectionOfItsOwn(to: database)
            // 20 MB: far more than the socket holds, so the backend is left blocked in the middle of it.
            let rows = try await connection.query(
                "SELECT repeat('x', 1000) FROM generate_series(1, 20000)", logger: logger)
            var iterator = rows.makeAsyncIterator()
            #expect(try await iterator.next() != nil)
            try await database.client.perform("SELECT pg_terminate_backend(\(pid))", logger: logger)
            try await connection.closeFuture.get()
            var read = 1
            let error = await #expect(throws: (any Error).self) {
                while try await iterator.next() != nil { read += 1 }
            }
            #expect(error.flatMap(DatabaseUnavailable.init) != nil, "\(String(describing: error))")
            #expect(read < 20000)
            try? await connection.close()
        }
    }

    /// PostgresNIO never answers a query written to a connection that has closed, so work that went on
    /// after its connection died (a ROLLBACK in a `catch`, the next step of a rebuild whose session was
    /// ended) waited forever and held all it had: each rebuild cut off under a PostgreSQL restart left
    /// the server 40–140 MB larger. Such a query now fails at once.
    @Test func aQueryOnAConnectionThatHasClosedFailsAtOnce() async throws {
        try await withTestDatabase { database in
            let logger = database.logger
            let (connection, pid) = try await Self.connectionOfItsOwn(to: database)
            try await database.client.perform("SELECT pg_terminate_backend(\(pid))", logger: logger)
            try await connection.closeFuture.get()

            let attempts: [(String, @Sendable () async throws -> Void)] = [
                ("perform", { try await connection.perform("ROLLBACK", logger: logger) }),
                ("rows", { _ = try await connection.rows("SELECT 1", logger: logger) }),
                ("pipelined", { _ = try await connection.pipelined(["SELECT 1", "SELECT 2"], logger: logger) }),
            ]
            for (name, attempt) in attempts {
                // Bounded, so that a query left unanswered fails the test rather than hangs it.
                let error = await #expect(throws: DatabaseUnavailable.self, "\(name)") {
                    try await withDeadline(.seconds(5), attempt)
                }
                #expect(error?.reason == .connectionLost, "\(name): \(String(describing: error))")
            }
        }
    }

    /// PostgresNIO's `withTransaction` sent its ROLLBACK on the connection that had just died, which it
    /// never answers: a transaction whose connection died under it waited forever.
    @Test func aTransactionWhoseConnectionDiesFailsAtOnce() async throws {
        try await withTestDatabase { database in
            let (client, logger) = (database.client, database.logger)
            let error = await #expect(throws: (any Error).self) {
                // Bounded, so that a transaction left waiting fails the test rather than hangs it; generous,
                // since leasing the second connection can wait on a test cluster busy with other suites.
                try await withDeadline(.seconds(60)) {
                    try await client.transaction(logger: logger) { connection in
                        let pid = try await connection.rows("SELECT pg_backend_pid()", logger: logger).first?
                            .decode(Int32.self)
                        try await client.perform("SELECT pg_terminate_backend(\(pid))", logger: logger)
                        try await connection.closeFuture.get()
                        try await connection.perform("SELECT 1", logger: logger)
                    }
                }
            }
            #expect(error.flatMap(DatabaseUnavailable.init)?.reason == .connectionLost, "\(String(describing: error))")
        }
    }

    /// A transaction whose body caught a failed statement and went on is rolled back by PostgreSQL
    /// whatever it asks; that must not pass for a commit.
    @Test func aTransactionThatRolledBackInsteadOfCommittingSaysSo() async throws {
        try await withTestDatabase { database in
            let (client, logger) = (database.client, database.logger)
            try await client.perform("CREATE TABLE kept (n int PRIMARY KEY)", logger: logger)
            await #expect(throws: TransactionRolledBack.self) {
                try await client.transaction(logger: logger) { connection in
                    try await connection.perform("INSERT INTO kept VALUES (1)", logger: logger)
                    _ = try? await connection.perform("INSERT INTO kept VALUES (1)", logger: logger)
                }
            }
            let kept = try await client.rows("SELECT count(*) FROM kept", logger: logger).first?.decode(Int.self)
            #expect(kept == 0)
        }
    }

    /// A connection to `database` outside its pool, and its backend's process id, to end it by.
    static func connectionOfItsOwn(to database: TestDatabase) async throws -> (PostgresConnection, Int32) {
        let connection = try await PostgresConnection.connect(
            configuration: try DatabaseEndpoint(url: database.url).connectionConfiguration(), id: 1,
            logger: database.logger)
        let pid = try #require(try await connection.rows("SELECT pg_backend_pid()", logger: database.logger).first)
            .decode(Int32.self)
        return (connection, pid)
    }
}
