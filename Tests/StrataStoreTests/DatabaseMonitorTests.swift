import PostgresNIO
import StrataStore
import StrataTestSupport
import Testing

@Suite("Readiness monitor")
struct DatabaseMonitorTests {
    static let applicationName = "strata-monitor-test"

    /// Many `/readyz` at once, before the monitor has its connection (a server just started, or one
    /// whose connect timed out under load), open one connection between them. Before, each probe opened
    /// its own and the last overwrote the others: the ones let go unclosed leak in a release build, and
    /// PostgresNIO traps on them in a debug one, which is how a restarted server crashed under load.
    @Test func readinessAskedByManyAtOnceOpensOneConnectionAndClosesItWhenStopped() async throws {
        try await withTestDatabase { database in
            var endpoint = try DatabaseEndpoint(url: database.url).connectionConfiguration()
            endpoint.options.additionalStartupParameters = [("application_name", Self.applicationName)]
            let monitor = DatabaseMonitor(
                pool: database.pool, endpoint: endpoint, migrations: try .bundled(), logger: database.logger)

            let answers = await withTaskGroup(of: String?.self, returning: [String?].self) { group in
                for _ in 0..<16 { group.addTask { await monitor.unreadiness() } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            // On a loaded machine the connect may outrun the probe's 2 s deadline: then every probe says
            // so, and the connection that came too late is closed. Either way there is never more than one.
            #expect(
                answers.count == 16
                    && answers.allSatisfy { $0 == nil || $0?.contains("did not answer in time") == true },
                "\(answers)")
            #expect(try await Self.monitorConnections(database) <= 1)

            let running = Task { try await monitor.run() }
            running.cancel()
            try await running.value
            // A backend leaves `pg_stat_activity` a moment after its client said goodbye.
            var remaining = try await Self.monitorConnections(database)
            for _ in 0..<100 where remaining > 0 {
                try await Task.sleep(for: .milliseconds(50))
                remaining = try await Self.monitorConnections(database)
            }
            #expect(remaining == 0, "the monitor closes its connection when it stops")
        }
    }

    private static func monitorConnections(_ database: TestDatabase) async throws -> Int {
        try await database.client.query(
            "SELECT count(*)::int FROM pg_stat_activity WHERE application_name = \(applicationName) AND datname = current_database()",
            logger: database.logger
        ).collect().first!.decode(Int.self)
    }
}
