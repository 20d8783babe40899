import AsyncHTTPClient
import Foundation
import PostgresNIO
import StrataTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `strata serve` processes crashed under load, several of them sharing one database, and the live
/// feed they push from PostgreSQL's notifications: part of the serialized ``FaultTests``.
extension FaultTests {
    @Test func killingTheServerUnderWritesLosesNothingItAcknowledged() async throws {
        let cluster = try await PrivateCluster.start()
        defer { cluster.remove() }
        try await withHTTPClient { client in
            var outcomes: [CreateOutcome] = []
            for _ in 0..<2 {
                let server = try await ServerProcess.start(databaseURL: cluster.databaseURL, logFolder: cluster.folder)
                defer { server.stop() }
                let writers = Writers(server: server.baseURL, client: client, count: 8, retrying: false)
                let (_, answers) = try await writers.writing {
                    try await writers.waitUntilAcknowledged(40)
                    try await Task.sleep(for: .milliseconds(Int.random(in: 100...400)))
                    server.signal(SIGKILL)
                    _ = try await blocking { server.waitForExit(within: .seconds(10)) }
                }
                outcomes += answers
            }
            let restarted = try await ServerProcess.start(databaseURL: cluster.databaseURL, logFolder: cluster.folder)
            defer { restarted.stop() }
            let readiness = try await timeUntilReady(client, server: restarted)
            let acknowledged = outcomes.filter(\.isAcknowledged)
            let unanswered = outcomes.filter { $0.answer.status == nil }
            print(
                "kill -9 twice under 8 writers: \(acknowledged.count) creates acknowledged, all found after the "
                    + "restart, ready after \(readiness); \(unanswered.count) cut off without an answer; \(summary(outcomes))"
            )
            #expect(acknowledged.count >= 80, "the writers must actually have written")
            #expect(outcomes.allSatisfy { $0.answer.status == nil || $0.answer.status == 201 }, "\(summary(outcomes))")
            try await expectNothingAcknowledgedWasLost(
                outcomes, cluster: cluster, server: restarted, unansweredAllowed: true)
            // A dataset acknowledged before the crash reads back through the restarted server.
            let sample = try #require(acknowledged.last?.id)
            let read = await client.send(.GET, restarted.baseURL + "/v1/datasets/\(sample)")
            #expect(read.status == 200, "\(read.body)\n\(restarted.logExcerpt)")
        }
    }

    @Test func sigtermUnderWritesFinishesWhatIsInFlightWithinItsBoundAndLosesNothing() async throws {
        let cluster = try await PrivateCluster.start()
        defer { cluster.remove() }
        try await withHTTPClient { client in
            let server = try await ServerProcess.start(databaseURL: cluster.databaseURL, logFolder: cluster.folder)
            defer { server.stop() }
            let writers = Writers(server: server.baseURL, client: client, count: 8, retrying: false)
            let (stopped, answers) = try await writers.writing {
                try await writers.waitUntilAcknowledged(40)
                let signalled = ContinuousClock.now
                server.signal(SIGTERM)
                let exit = try await blocking { server.waitForExit(within: .seconds(30)) }
                return (exit, signalled.duration(to: .now))
            }
            print(
                "SIGTERM under 8 writers: exited \(stopped.0.map(String.init) ?? "-") after \(stopped.1); \(summary(answers))"
            )
            #expect(stopped.0 == 0, "strata serve did not exit cleanly:\n\(server.logExcerpt)")
            #expect(stopped.1 < .seconds(15), "graceful shutdown took \(stopped.1)")
            // Requests either finished or found the server gone; none failed inside it.
            #expect(answers.allSatisfy { $0.answer.status == nil || $0.answer.status == 201 }, "\(summary(answers))")
            let restarted = try await ServerProcess.start(databaseURL: cluster.databaseURL, logFolder: cluster.folder)
            defer { restarted.stop() }
            try await expectNothingAcknowledgedWasLost(
                answers, cluster: cluster, server: restarted, unansweredAllowed: true)
        }
    }

    @Test func threeNodesOnOneDatabaseKeepOneOrderedLogAndEveryFeedSeesEveryEvent() async throws {
        let cluster = try await PrivateCluster.start()
        defer { cluster.remove() }
        let first = try await ServerProcess.start(databaseURL: cluster.databaseURL, logFolder: cluster.folder)
        defer { first.stop() }
        async let second = ServerProcess.start(databaseURL: cluster.databaseURL, logFolder: cluster.folder)
        async let third = ServerProcess.start(databaseURL: cluster.databaseURL, logFolder: cluster.folder)
        let nodes = [first, try await second, try await third]
        defer { for node in nodes.dropFirst() { node.stop() } }

        try await withHTTPClient { client in
            var datasets: [String] = []
            for name in ["a", "b", "c"] {
                let created = await client.send(
                    .POST, first.baseURL + "/v1/datasets", json: #"{"namespace": "shared", "name": "\#(name)"}"#)
                datasets.append(try #require(created.json["id"] as? String, "\(created.body)"))
            }
            let feeds = nodes.map { FeedFollower(client: client, server: $0.baseURL) }
            defer { for feed in feeds { feed.stop() } }
            for feed in feeds { #expect(await feed.waitUntilOpen(within: .seconds(10))) }

            // Writers on every node edit the same three datasets with If-Match, and race the same
            // Idempotency-Keys through different nodes.
            async let editing = Self.editRaces(on: nodes, client: client, datasets: datasets, for: .seconds(4))
            async let keyed = Self.sameKeysThroughEveryNode(nodes, client: client, keys: 12)
            let (edits, answersByKey) = await (editing, keyed)
            let unexpected = edits.filter { $0.status != 200 && $0.status != 412 }
            #expect(unexpected.isEmpty, "\(unexpected.prefix(5))")
            // One answer per key, whichever node was asked, and it is a creation.
            for (name, answers) in answersByKey {
                #expect(answers.count == 1 && answers.first?.hasPrefix("201 ") == true, "\(name): \(answers)")
            }

            let (positions, versions, creations) = try await cluster.client().whileRunning { database in
                var positions: [Int64] = []
                for try await position in try await database.query(
                    "SELECT global_position FROM events ORDER BY global_position", logger: TestPostgres.logger
                ).decode(Int64.self) { positions.append(position) }
                var versions: [String: Int] = [:]
                for try await (id, latest) in try await database.query(
                    "SELECT dataset_id, latest_version FROM dataset_states WHERE valid_to IS NULL",
                    logger: TestPostgres.logger
                ).decode((UUID, Int).self) { versions[id.uuidString.lowercased()] = latest }
                let creations = try await database.query(
                    "SELECT count(*) FROM dataset_identities WHERE name LIKE 'once-%'", logger: TestPostgres.logger
                ).collect().first!.decode(Int.self)
                return (positions, versions, creations)
            }
            #expect(creations == 12, "each Idempotency-Key made one dataset across the nodes")
            // Exactly one edit won each version: the versions drafted are the winners, plus the first.
            for dataset in datasets {
                let won = edits.filter { $0.dataset == dataset && $0.status == 200 }.count
                let lost = edits.filter { $0.dataset == dataset && $0.status == 412 }.count
                #expect(won > 0 && lost > 0, "\(dataset): \(won) won, \(lost) lost")
                #expect(
                    versions[dataset] == won + 1, "\(dataset): \(won) edits won, \(versions[dataset] ?? 0) versions")
            }
            // Each node's feed delivers the whole log, in order, none skipped, none twice.
            for (index, feed) in feeds.enumerated() {
                let delivered = await feed.waitFor(Set(positions), within: .seconds(15))
                #expect(delivered, "node \(index)'s feed is missing events; \(feed.error ?? "")")
                #expect(feed.positions == positions, "node \(index)'s feed is not the log in order")
            }
            print(
                "three nodes: \(positions.count) events, \(edits.count) If-Match edits; every feed saw the whole log in order"
            )
        }
    }

    /// Four writers per node read a dataset and PATCH it with the ETag they read, for `duration`.
    static func editRaces(on nodes: [ServerProcess], client: HTTPClient, datasets: [String], for duration: Duration)
        async -> [(dataset: String, status: Int?, body: String)]
    {
        let stop = ContinuousClock.now + duration
        return await withTaskGroup(of: [(dataset: String, status: Int?, body: String)].self) { group in
            for (index, node) in nodes.enumerated() {
                for writer in 0..<4 {
                    group.addTask {
                        var answers: [(dataset: String, status: Int?, body: String)] = []
                        var round = 0
                        while ContinuousClock.now < stop {
                            round += 1
                            let dataset = datasets[(writer + round) % datasets.count]
                            let url = node.baseURL + "/v1/datasets/\(dataset)"
                            guard let etag = await client.send(.GET, url).headers.first(name: "ETag") else { continue }
                            let edit = await client.send(
                                .PATCH, url, json: #"{"description": "node \#(index) writer \#(writer) #\#(round)"}"#,
                                headers: ["If-Match": etag])
                            answers.append((dataset, edit.status, edit.body))
                        }
                        return answers
                    }
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Sends the same create with the same Idempotency-Key to every node at once, for each of `keys`
    /// keys; answers the distinct (status, id) answers per dataset name.
    static func sameKeysThroughEveryNode(_ nodes: [ServerProcess], client: HTTPClient, keys: Int) async
        -> [String: Set<String>]
    {
        await withTaskGroup(of: (String, String).self) { group in
            for key in 0..<keys {
                for node in nodes {
                    group.addTask {
                        let answer = await client.send(
                            .POST, node.baseURL + "/v1/datasets",
                            json: #"{"namespace": "shared", "name": "once-\#(key)"}"#,
                            headers: ["Idempotency-Key": "shared-key-\(key)"])
                        return ("once-\(key)", "\(answer.status ?? 0) \(answer.json["id"] as? String ?? "-")")
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0, default: []].insert($1.1) }
        }
    }

    @Test func idleFeedSubscribersCostTheDatabaseNothingAndHearANewEventAtOnce() async throws {
        let (cluster, server) = try await PrivateCluster.startServed()
        defer {
            server.stop()
            cluster.remove()
        }
        try await withHTTPClient { client in
            let subscribers = 40
            let feeds = (0..<subscribers).map { _ in FeedFollower(client: client, server: server.baseURL) }
            defer { for feed in feeds { feed.stop() } }
            for feed in feeds { #expect(await feed.waitUntilOpen(within: .seconds(10))) }
            try await Task.sleep(for: .seconds(1))

            // Transactions the database ran while the subscribers were idle: the server's own
            // readiness and token checks only, not one per subscriber per poll.
            func transactions() async throws -> Int {
                try await cluster.client().whileRunning { database in
                    try await database.query(
                        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()",
                        logger: TestPostgres.logger
                    ).collect().first!.decode(Int.self)
                }
            }
            let before = try await transactions()
            try await Task.sleep(for: .seconds(4))
            let idle = try await transactions() - before
            print("\(subscribers) idle feed subscribers for 4 s: \(idle) transactions in the database")
            // Polling every 200 ms, they would have run 40 × 20 = 800.
            #expect(idle < 120, "idle subscribers made the database work: \(idle) transactions")

            let sent = ContinuousClock.now
            let created = await client.send(
                .POST, server.baseURL + "/v1/datasets", json: #"{"namespace": "feed", "name": "news"}"#)
            let position = try #require(
                created.headers.first(name: "Strata-Position").flatMap { Int64($0) }, "\(created.body)")
            var latencies: [Duration] = []
            for feed in feeds {
                #expect(await feed.waitFor([position], within: .seconds(10)), "\(feed.error ?? "")")
                if let arrival = feed.arrival(of: position) { latencies.append(sent.duration(to: arrival)) }
            }
            latencies.sort()
            print(
                "a new event reached \(latencies.count) subscribers: median \(latencies[latencies.count / 2]), last \(latencies.last!)"
            )
        }
    }
}
