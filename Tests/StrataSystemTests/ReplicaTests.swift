import AsyncHTTPClient
import EmbeddedPostgres
import Foundation
import PostgresNIO
import StrataTestSupport
import Testing

/// Reads from a real streaming replica of the test cluster (`pg_basebackup -R`, a second postmaster on
/// its own socket): part of the serialized ``FaultTests``.
extension FaultTests {
    @Test func aReplicaServesReadsAndEveryClientReadsItsOwnWrites() async throws {
        let primary = try await PrivateCluster.start(servingReplicas: true)
        defer { primary.remove() }
        let replica = try await blocking { try primary.startReplica() }
        defer { try? replica.cluster.stopServer(mode: .immediate) }
        let server = try await ServerProcess.start(
            databaseURL: primary.databaseURL, environment: ["STRATA_READ_DATABASE_URL": replica.databaseURL],
            logFolder: primary.folder)
        defer { server.stop() }

        try await withHTTPClient { client in
            // Writers create and edit, then read back through the replica with the position their write
            // answered: each sees its own write, whatever the replication lag.
            let stale = try await withThrowingTaskGroup(of: Int.self) { group in
                for writer in 0..<6 {
                    group.addTask {
                        var misses = 0
                        for round in 0..<15 {
                            let created = await client.send(
                                .POST, server.baseURL + "/v1/datasets",
                                json: #"{"namespace": "ryw", "name": "w\#(writer)-\#(round)"}"#)
                            let id = try #require(created.json["id"] as? String, "\(created.body)")
                            let edited = await client.send(
                                .PATCH, server.baseURL + "/v1/datasets/\(id)",
                                json: #"{"description": "round \#(round)"}"#)
                            let position = try #require(edited.headers.first(name: "Strata-Position"), "\(edited.body)")
                            let read = await client.send(
                                .GET, server.baseURL + "/v1/datasets/\(id)", headers: ["Strata-Min-Position": position])
                            #expect(read.status == 200, "\(read.body)")
                            #expect(description(read) == "round \(round)")
                            let answered = read.headers.first(name: "Strata-Position").flatMap { Int64($0) } ?? 0
                            #expect(answered >= Int64(position) ?? .max)
                            // Without the position, a replica a moment behind may not have it yet.
                            let unguarded = await client.send(.GET, server.baseURL + "/v1/datasets/\(id)")
                            if description(unguarded) != "round \(round)" { misses += 1 }
                        }
                        return misses
                    }
                }
                return try await group.reduce(0, +)
            }
            print(
                "read-your-writes through a replica: 90 writes read back with Strata-Min-Position; \(stale) reads without it were behind"
            )

            // With the replica's replay paused, a read that names a newer position waits briefly and is
            // answered by the primary; one that does not is answered by the replica, as it stands.
            try await standbyClient(replica.cluster).whileRunning { standby in
                try await standby.perform("SELECT pg_wal_replay_pause()", logger: TestPostgres.logger)
            }
            let created = await client.send(
                .POST, server.baseURL + "/v1/datasets", json: #"{"namespace": "ryw", "name": "while-paused"}"#)
            let id = try #require(created.json["id"] as? String)
            let position = try #require(created.headers.first(name: "Strata-Position"))
            let guarded = await client.send(
                .GET, server.baseURL + "/v1/datasets/\(id)", headers: ["Strata-Min-Position": position])
            #expect(guarded.status == 200, "\(guarded.body)")
            #expect(await client.send(.GET, server.baseURL + "/v1/datasets/\(id)").status == 404)

            // A retire reports what it breaks as the primary has it, downstream made a moment ago included.
            let downstream = await client.send(
                .POST, server.baseURL + "/v1/datasets", json: #"{"namespace": "ryw", "name": "downstream"}"#)
            let downstreamID = try #require(downstream.json["id"] as? String)
            let edge = await client.send(
                .POST, server.baseURL + "/v1/lineage",
                json:
                    #"{"job": {"namespace": "etl", "name": "copy"}, "run_id": "r1", "inputs": [{"dataset_id": "\#(id)"}], "outputs": [{"dataset_id": "\#(downstreamID)"}]}"#
            )
            #expect(edge.status == 201 || edge.status == 200, "\(edge.body)")
            let retired = await client.send(
                .POST, server.baseURL + "/v1/datasets/\(id)/retire", json: #"{"reason": "replaced"}"#)
            #expect(retired.status == 200, "\(retired.body)")
            let impact = (retired.json["impact"] as? [[String: Any]])?.compactMap { $0["dataset_id"] as? String }
            #expect(impact == [downstreamID], "\(retired.body)")
            try await Task.sleep(for: .seconds(1.5))
            let metrics = await client.send(.GET, server.baseURL + "/metrics").body
            let lag = metrics.split(separator: "\n").first { $0.hasPrefix("strata_replica_lag_positions{") }
            #expect(
                lag.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 >= 1 } == true,
                "\(lag ?? "no lag metric")")
            #expect(metrics.contains("strata_replica_reads_total"))
            #expect(metrics.contains("strata_replica_fallbacks_total"))

            // A malformed position is the client's mistake.
            let bad = await client.send(
                .GET, server.baseURL + "/v1/datasets/\(id)", headers: ["Strata-Min-Position": "soon"])
            #expect(bad.status == 400 && bad.json["code"] as? String == "invalid_parameter")

            try await standbyClient(replica.cluster).whileRunning { standby in
                try await standby.perform("SELECT pg_wal_replay_resume()", logger: TestPostgres.logger)
            }
        }
    }
}

/// A client of the replica's `strata` database, to pause and resume its replay.
private func standbyClient(_ replica: EmbeddedPostgres) -> PostgresClient {
    PostgresClient(
        configuration: .init(
            unixSocketPath: replica.unixSocketPath, username: EmbeddedPostgres.superuser, password: nil,
            database: PrivateCluster.databaseName),
        backgroundLogger: TestPostgres.logger)
}

/// The description of the dataset's current version, in a dataset's answer.
private func description(_ answer: Answer) -> String? {
    (answer.json["current"] as? [String: Any])?["description"] as? String
}
