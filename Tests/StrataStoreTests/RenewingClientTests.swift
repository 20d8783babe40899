import Foundation
import Logging
import PostgresNIO
import StrataStore
import StrataTestSupport
import Testing

@Suite("The serving pool after PostgreSQL restarts")
struct RenewingClientTests {
    /// PostgreSQL stops while requests wait, and comes back while new ones keep arriving. A bare fixed
    /// `PostgresClient` traps here, on the first request that finds no idle connection while the pool
    /// regrows (PostgresNIO 1.33's `precondition` in `createNewDemandConnectionIfPossible()`), and the
    /// process ends. The renewing client serves every request from a fresh pool, and shuts the old one
    /// down once its last request has ended.
    @Test func aPoolThatFailedToConnectIsReplacedAndServesEveryRequestAfterPostgreSQLIsBack() async throws {
        let privateCluster = try await PrivateCluster.start()
        defer { privateCluster.remove() }
        // A server that logs only what is serious must still hear of a failed connect.
        let logger = {
            var logger = TestPostgres.logger
            logger.logLevel = .critical
            return logger
        }()
        let clients = try RenewingClient(serving: DatabaseEndpoint(url: privateCluster.databaseURL), logger: logger)
        let running = Task { await clients.run() }
        defer { running.cancel() }
        // Through the pool as requests use it, so that no wait in this test is unbounded; the bounds are
        // loose, since beside the rest of the suite a request can wait tens of seconds for its turn.
        let pool = BoundedPool(
            client: clients, deadlines: .init(connect: .seconds(90), queue: .seconds(90), work: .seconds(30)))
        /// nil when it was answered, else why not.
        @Sendable func selectOne() async -> String? {
            do {
                try await pool.reading { try await $0.perform("SELECT 1", logger: logger) }
                return nil
            } catch {
                return String(describing: error)
            }
        }

        #expect(await selectOne() == nil)
        try privateCluster.cluster.stopServer(mode: .immediate)
        let waitedThroughTheOutage = Task {
            await withTaskGroup(of: String?.self, returning: [String?].self) { group in
                for _ in 0..<32 {
                    // A read may take a connection whose end the client has not read yet (under the
                    // suite's load, once, all 32 did): it runs again, and that waits for PostgreSQL.
                    group.addTask { await selectOne() }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        // Long enough for the pool to fail several connects and drop all but one of its connections; and
        // at least until it has failed one, which on a machine busy with the rest of the suite can take
        // longer (once, in CI, PostgreSQL was back before the pool had tried, and nothing was renewed).
        try await Task.sleep(for: .seconds(2))
        let waited = ContinuousClock.now
        while !clients.isWaitingForPostgreSQL && waited.duration(to: .now) < .seconds(60) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(clients.isWaitingForPostgreSQL, "the pool never failed to connect while PostgreSQL was down")
        try privateCluster.cluster.startServer()
        // Requests arrive on their own, not one per answer, so some find the pool with no idle connection.
        let arrivedAfter = await withTaskGroup(of: String?.self, returning: [String?].self) { group in
            for arrival in 0..<400 {
                group.addTask {
                    try? await Task.sleep(for: .milliseconds(5 * arrival))
                    return await selectOne()
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }

        let failedAfter = arrivedAfter.compactMap { $0 }
        #expect(failedAfter.isEmpty, "requests after the restart that failed: \(Set(failedAfter))")
        let failedDuring = await waitedThroughTheOutage.value.compactMap { $0 }
        #expect(failedDuring.isEmpty, "requests in the outage that failed: \(Set(failedDuring))")
        #expect(clients.renewals >= 1)
        // The retired pool regrows too if it is left running; it is shut down once its requests ended.
        var backends = Int.max
        for _ in 0..<200 where backends > 20 {
            backends = try await pool.withConnection { connection in
                try await connection.query(
                    "SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database()", logger: logger
                ).collect().first!.decode(Int.self)
            }
            if backends > 20 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(backends <= 20, "one pool's connections, not two")
        running.cancel()
        let stopped = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await running.value
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(30))
                return false
            }
            defer { group.cancelAll() }
            return await group.next() ?? false
        }
        #expect(stopped, "the renewing client stops when cancelled")
    }
}
