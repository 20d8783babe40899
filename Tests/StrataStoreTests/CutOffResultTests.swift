import Foundation
import PostgresNIO
import StrataTestSupport
import Testing

@testable import StrataStore

@Suite("A result cut off when PostgreSQL goes away")
struct CutOffResultTests {
    /// PostgreSQL stops (immediate mode, as a crash or a failover would) while a long answer is being
    /// read. Read through PostgresNIO's `async` `query`, whose rows stream to the task, this traps the
    /// process (`RowStreamStateMachine.channelReadComplete`); read through ``PostgresConnection/rows(_:logger:file:line:)``,
    /// the query fails with a lost connection and the process goes on.
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

    /// PostgresNIO never answers a query written to a connection that has closed, so work that went on
    /// after its connection died (a ROLLBACK in a `catch`, the next step of a rebuild whose session was
    /// ended) waited forever and held all it had: each rebuild cut off under a PostgreSQL restart left
    /// the server 40–140 MB larger. Such a query now fails at once.
    @Test func aQueryOnAConnectionThatHasClosedFailsAtOnce() async throws {
        try await withTestDatabase { database in
            let logger = database.logger
            let connection = try await PostgresConnection.connect(
                configuration: try DatabaseEndpoint(url: database.url).connectionConfiguration(), id: 1, logger: logger)
            let pid = try #require(try await connection.rows("SELECT pg_backend_pid()", logger: logger).first)
                .decode(Int32.self)
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
}
