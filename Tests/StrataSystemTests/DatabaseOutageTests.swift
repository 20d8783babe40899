import AsyncHTTPClient
import EmbeddedPostgres
import Foundation
import PostgresNIO
import StrataTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// How soon a request must hear that PostgreSQL is down: the server gives up after its connect deadline
/// (1.5 s); the rest is margin for a machine busy with the other suites (4 s was once exceeded, at 4.7 s,
/// with a release build compiling alongside). Waiting for a pooled connection instead would take 10 s.
private let outageAnswerBound: Duration = .seconds(6)

/// The same for a request under way when PostgreSQL went down: the work whose connection was lost runs
/// again, up to twice, and each attempt waits out the connect deadline before it gives up.
private let inFlightOutageAnswerBound: Duration = outageAnswerBound + .milliseconds(1500) * 2

/// PostgreSQL restarts, stops and ends sessions under a running `strata serve` while writers are busy;
/// and (`NodeFaultTests.swift`) the server crashes, several servers share the database, and the feed is
/// pushed to them. Each test runs its own cluster and server processes, and is bounded in time.
/// Serialized: the bounds asserted here are about the server, not about two of these tests fighting
/// over two cores.
@Suite("Faults under load", .serialized, .timeLimit(.minutes(4)))
struct FaultTests {
    @Test func writesComeBackAfterAFastAndAnImmediateRestartAndNothingAcknowledgedIsLost() async throws {
        try await withServer { cluster, server, client in
            let writers = Writers(server: server.baseURL, client: client, count: 16, retrying: false)
            let (_, answers) = try await writers.writing {
                try await Task.sleep(for: .seconds(2))
                for mode in [EmbeddedPostgres.ShutdownMode.fast, .immediate] {
                    try await blocking {
                        try cluster.cluster.stopServer(mode: mode)
                        try cluster.cluster.startServer()
                    }
                    let recovery = try await timeUntilWritesSucceed(client, server: server, within: .seconds(15))
                    print("restart -m \(mode): writes succeeded again after \(recovery)")
                    try await Task.sleep(for: .seconds(2))
                }
            }
            print("restarts under load: \(summary(answers))")
            #expect(answers.contains { $0.answer.status == 201 })
            try await timeUntilReady(client, server: server)
            try await expectNothingAcknowledgedWasLost(answers, cluster: cluster, server: server)
        }
    }

    @Test func whileTheDatabaseIsDownRequestsAre503PromptlyAndReadinessSaysSo() async throws {
        try await withServer { cluster, server, client in
            let id = try #require(
                await client.send(.POST, server.baseURL + "/v1/datasets", json: #"{"namespace": "n", "name": "kept"}"#)
                    .json["id"] as? String)
            let writers = Writers(server: server.baseURL, client: client, count: 8, retrying: false)
            let (_, answers) = try await writers.writing {
                try await Task.sleep(for: .seconds(1))
                try await blocking { try cluster.cluster.stopServer(mode: .fast) }

                // Readiness turns within a probe interval, and a probe answers within its deadline (a
                // connection refused at once, or a postmaster still shutting down that takes a while).
                let turned = ContinuousClock.now
                var ready = await client.send(.GET, server.baseURL + "/readyz")
                while ready.status == 200 && turned.duration(to: .now) < .seconds(3) {
                    try await Task.sleep(for: .milliseconds(100))
                    ready = await client.send(.GET, server.baseURL + "/readyz")
                }
                #expect(ready.status == 503)
                #expect(ready.elapsed < outageAnswerBound, "readiness took \(ready.elapsed)")
                #expect((ready.json["detail"] as? String)?.contains("database unavailable") == true, "\(ready.body)")
                #expect(await client.send(.GET, server.baseURL + "/healthz").status == 200)

                // Reads and writes answer 503 with Retry-After, within the connect deadline and a margin.
                try await Task.sleep(for: .seconds(2))
                for path in ["/v1/datasets/\(id)", "/v1/datasets", "/v1/events"] {
                    let read = await client.send(.GET, server.baseURL + path)
                    #expect(read.status == 503, "\(path): \(read.body)")
                    #expect(read.headers.first(name: "Retry-After") != nil)
                    #expect(read.elapsed < outageAnswerBound, "\(path) took \(read.elapsed)")
                }
                let write = await client.send(
                    .POST, server.baseURL + "/v1/datasets", json: #"{"namespace": "n", "name": "during"}"#)
                #expect(write.status == 503)
                #expect(write.json["code"] as? String == "database_unavailable")
                #expect(write.elapsed < outageAnswerBound, "the write took \(write.elapsed)")

                try await blocking { try cluster.cluster.startServer() }
                let recovery = try await timeUntilWritesSucceed(client, server: server, within: .seconds(10))
                print("after a stop of several seconds, writes succeeded again \(recovery) after the start")
                try await timeUntilReady(client, server: server)
                #expect(await client.send(.GET, server.baseURL + "/v1/datasets/\(id)").status == 200)
            }
            print("a stop under load: \(summary(answers))")
            let duringOutage = answers.filter { $0.answer.status == 503 }
            #expect(!duringOutage.isEmpty)
            #expect(
                duringOutage.allSatisfy { $0.answer.elapsed < inFlightOutageAnswerBound }, "\(summary(duringOutage))")
            try await expectNothingAcknowledgedWasLost(answers, cluster: cluster, server: server)
        }
    }

    @Test func killingTheAppendConnectionMidBatchLosesNothingAndRetriesApplyOnce() async throws {
        try await withServer { cluster, server, client in
            let writers = Writers(server: server.baseURL, client: client, count: 16, retrying: true)
            let (kills, answers) = try await writers.writing {
                try await cluster.client().whileRunning { killer in
                    var kills = 0
                    let started = ContinuousClock.now
                    // Eight seconds of it, and at least five kills however slow the machine is today.
                    while started.duration(to: .now) < .seconds(8)
                        || (kills < 5 && started.duration(to: .now) < .seconds(40))
                    {
                        // The backend holding the log's append lock is the one in the middle of a batch.
                        let rows = try await killer.query(
                            """
                            SELECT pg_terminate_backend(pid) FROM pg_locks
                            WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
                              AND ((classid::bigint << 32) | objid::bigint) = 6004514643731631175
                            """, logger: TestPostgres.logger
                        ).collect()
                        kills += rows.count
                        try await Task.sleep(for: .milliseconds(Int.random(in: 20...120)))
                    }
                    return kills
                }
            }
            print("append backends killed mid-batch: \(kills); \(summary(answers))")
            #expect(kills >= 5, "the test must actually kill batches")
            #expect(answers.allSatisfy { $0.answer.status == 201 }, "retries with the same key must all succeed")
            // The kills cost the writers time more than errors: the pipeline decided the commands of the
            // batches killed before their COMMIT again, rather than answering them 503.
            let metrics = await client.send(.GET, server.baseURL + "/metrics").body
            let retried = metrics.split(separator: "\n").first { $0.hasPrefix("strata_append_batches_retried_total ") }
            #expect(
                retried.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 >= 1 } == true,
                "\(retried ?? "no retry metric")")
            try await expectNothingAcknowledgedWasLost(answers, cluster: cluster, server: server)
            // Exactly once: every key made one dataset, the one its final answer named.
            let created = try await cluster.client().whileRunning { client in
                try await client.query(
                    "SELECT count(*) FROM events WHERE event_type = 'DatasetCreated'", logger: TestPostgres.logger
                ).collect().first!.decode(Int.self)
            }
            #expect(created == answers.count)
        }
    }

    @Test func sigtermDuringAnOutageStopsTheServerWithinItsBound() async throws {
        try await withServer { cluster, server, client in
            try await blocking { try cluster.cluster.stopServer(mode: .fast) }
            let writers = Writers(server: server.baseURL, client: client, count: 8, retrying: false)
            let (exit, answers) = try await writers.writing {
                try await Task.sleep(for: .milliseconds(500))
                let signalled = ContinuousClock.now
                server.signal(SIGTERM)
                let exit = try await blocking { server.waitForExit(within: .seconds(25)) }
                print("SIGTERM during an outage: the server exited after \(signalled.duration(to: .now))")
                return exit
            }
            #expect(
                exit == 0,
                "strata serve did not exit cleanly after SIGTERM: \(exit.map(String.init) ?? "still running")\n\(server.logExcerpt)"
            )
            // Every request either got its 503 or found the server gone; none got a 500 or hung.
            #expect(answers.allSatisfy { $0.answer.status == nil || $0.answer.status == 503 }, "\(summary(answers))")
            #expect(answers.allSatisfy { $0.answer.elapsed <= requestBound }, "\(summary(answers))")
        }
    }

    /// A server started before its PostgreSQL (a machine booting, a container starting first) says it
    /// waits and serves once PostgreSQL is up; meanwhile it is alive to a liveness probe, not ready, and
    /// a 503 to requests. Settings that cannot work stop every command at once.
    @Test func serveWaitsForAPostgreSQLNotUpYetAndWrongSettingsStopAtOnce() async throws {
        let cluster = try await PrivateCluster.start()
        defer { cluster.remove() }
        try cluster.cluster.stopServer(mode: .fast)
        // Stopped while it waits, a server ends at once, and cleanly.
        let stopped = try await ServerProcess.start(
            databaseURL: cluster.databaseURL, logFolder: cluster.folder, untilServing: false)
        defer { stopped.stop() }
        stopped.signal(SIGTERM)
        let status = try await blocking { stopped.waitForExit(within: .seconds(10)) }
        #expect(status == 0, "exit \(status.map(String.init) ?? "none within 10 s"): \(stopped.logExcerpt)")

        let server = try await ServerProcess.start(
            databaseURL: cluster.databaseURL, logFolder: cluster.folder, untilServing: false)
        defer { server.stop() }
        try await withHTTPClient { client in
            #expect(await client.send(.GET, server.baseURL + "/healthz").status == 200, "\(server.logExcerpt)")
            let ready = await client.send(.GET, server.baseURL + "/readyz")
            #expect(ready.status == 503)
            #expect(
                (ready.json["detail"] as? String)?.contains("PostgreSQL takes connections") == true, "\(ready.body)")
            let list = await client.send(.GET, server.baseURL + "/v1/datasets")
            #expect(list.status == 503 && list.json["code"] as? String == "database_unavailable", "\(list.body)")
            #expect(list.headers.first(name: "Retry-After") != nil)

            try await blocking { try cluster.cluster.startServer() }
            _ = try await timeUntilReady(client, server: server)
            #expect(await client.send(.GET, server.baseURL + "/v1/datasets").status == 200)
        }
        #expect(server.log.contains("waiting for it"), "\(server.logExcerpt)")
        #expect(server.log.contains("strata listening on"), "\(server.logExcerpt)")

        let misnamed = cluster.databaseURL.replacingOccurrences(
            of: "/\(PrivateCluster.databaseName)?", with: "/no_such_database?")
        for command in [["serve", "--port", "0"], ["migrate"], ["token", "ls"]] {
            let started = ContinuousClock.now
            let run = try await blocking { try StrataBinary.run(command, environment: ["DATABASE_URL": misnamed]) }
            #expect(run.status == 1, "\(command): \(run.output)")
            #expect(run.output.contains(#"database "no_such_database" does not exist"#), "\(command): \(run.output)")
            #expect(started.duration(to: .now) < .seconds(10), "\(command)")
        }
    }

    /// A client verb run while PostgreSQL restarts keeps asking while the server answers 503, and its
    /// write lands once; with `--retry-for 0` it exits 10 at the first 503, for a script to decide.
    @Test func aClientVerbWaitsThroughARestartAndItsWriteLandsOnce() async throws {
        try await withServer { cluster, server, client in
            let environment = ["STRATA_URL": server.baseURL, "STRATA_TOKEN": ServerProcess.adminToken]
            try await blocking { try cluster.cluster.stopServer(mode: .fast) }
            let impatient = try await blocking {
                try StrataBinary.run(["ds", "create", "ns/impatient", "--retry-for", "0"], environment: environment)
            }
            #expect(impatient.status == 10, "\(impatient.output)")
            #expect(!impatient.output.contains("asking again"), "\(impatient.output)")

            let creating = Task {
                try await blocking {
                    try StrataBinary.run(["ds", "create", "ns/patient", "--retry-for", "60"], environment: environment)
                }
            }
            // Long enough for the verb to be answered 503 at least once.
            try await Task.sleep(for: .seconds(3))
            try await blocking { try cluster.cluster.startServer() }
            let patient = try await creating.value
            #expect(patient.status == 0, "\(patient.output)")
            #expect(patient.output.contains("asking again"), "\(patient.output)")

            let listed = await client.send(.GET, server.baseURL + "/v1/datasets?namespace=ns&status=all")
            let names = (listed.json["datasets"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
            #expect(names == ["patient"], "\(listed.body)")
        }
    }

    /// A command working on the catalog whose PostgreSQL session ends under it says so and exits 10, as a
    /// client verb does on a 503, so that a script can tell an outage (run it again) from what the command
    /// found (`verify`'s drift exits 1). Before, both exited 1.
    @Test func aCommandWhoseDatabaseGoesAwayExitsTen() async throws {
        let cluster = try await PrivateCluster.start()
        defer { cluster.remove() }
        let environment = ["DATABASE_URL": cluster.databaseURL]
        let migrate = try await blocking { try StrataBinary.run(["migrate"], environment: environment) }
        try #require(migrate.status == 0, "\(migrate.output)")

        let logger = TestPostgres.logger
        let verify = try await cluster.client().whileRunning { client in
            try await client.withConnection { locker in
                // `verify` reads the log first: it waits for this lock, and its session is ended meanwhile.
                try await locker.perform("BEGIN", logger: logger)
                try await locker.perform("LOCK TABLE events IN ACCESS EXCLUSIVE MODE", logger: logger)
                let verifying = Task {
                    try await blocking { try StrataBinary.run(["verify"], environment: environment) }
                }
                var ended = 0
                let deadline = ContinuousClock.now + .seconds(60)
                while ended == 0, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                    ended =
                        try await client.query(
                            """
                            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                            WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
                            """, logger: logger
                        ).collect().first?.decode(Int.self) ?? 0
                }
                try await locker.perform("ROLLBACK", logger: logger)
                try #require(ended > 0, "verify was never seen waiting")
                return try await verifying.value
            }
        }
        #expect(verify.status == 10, "\(verify.output)")
        #expect(
            verify.output.contains("PostgreSQL")
                && verify.output.contains("; run the command again once PostgreSQL is back"),
            "\(verify.output)")
    }
}

/// Runs `body` with a private cluster, `strata serve` on it, and an HTTP client; removes them after.
private func withServer(
    _ body: @Sendable (PrivateCluster, ServerProcess, HTTPClient) async throws -> Void
) async throws {
    let (cluster, server) = try await PrivateCluster.startServed()
    defer {
        server.stop()
        cluster.remove()
    }
    do {
        try await withHTTPClient { client in try await body(cluster, server, client) }
    } catch {
        Issue.record("server log:\n\(server.logExcerpt)")
        throw error
    }
}
