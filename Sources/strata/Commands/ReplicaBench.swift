import ArgumentParser
import AsyncHTTPClient
import EmbeddedPostgres
import Foundation
import PostgresNIO
import StrataStore

/// `strata bench replica`: `GET /v1/datasets/{id}` from a server reading the primary alone, and from one
/// that also reads a PostgreSQL streaming replica, in turn, on a cluster of its own (a replica needs a
/// primary that writes the replication WAL, which the embedded cluster does not).
struct ReplicaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replica",
        abstract: "GET by id reading the primary alone, then with a streaming replica added, alternately.")

    @Option(help: "Concurrent clients") var connections = 64
    @Option(help: "Seconds per run") var seconds = 5
    @Option(help: "Datasets in the generated catalog") var datasets = 20_000
    @Option(help: "Runs of each, alternating") var rounds = 3
    @OptionGroup var output: BenchOutput

    func run() async throws {
        let log = !output.json
        let logger = try StrataConfiguration(database: DatabaseOptions.parse([])).makeLogger()
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("strata-bench-replica-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let primary = try EmbeddedPostgres.start(
            .init(dataDirectory: folder + "/primary", removeWhenProcessExits: true, servesReplicas: true),
            logger: logger)
        defer { try? primary.stop() }
        try await PostgresClient(
            configuration: primary.endpoint(database: "postgres").clientConfiguration, backgroundLogger: logger
        )
        .whileRunning { try await $0.perform("CREATE DATABASE strata", logger: logger) }
        let count = datasets
        let ids = try await PostgresClient(
            configuration: primary.endpoint(database: "strata").clientConfiguration, backgroundLogger: logger
        ).whileRunning { client in
            let schema = try CatalogSchema.bundled()
            try await schema.prepare(client, logger: logger)
            let layers = try await SyntheticLog(client: client, logger: logger)
                .generateLineageGraph(datasets: count, edges: count * 3)
            _ = try await ProjectionMaintenance(client: client, catalog: schema.projections, logger: logger).rebuild()
            try await client.perform("VACUUM (ANALYZE)", logger: logger)
            return layers.flatMap { $0 }
        }
        let replica = try EmbeddedPostgres.startReplica(
            of: primary, .init(dataDirectory: folder + "/replica", removeWhenProcessExits: true, servesReplicas: true),
            logger: logger)
        defer { try? replica.stop() }
        if log { print("generated \(ids.count) datasets; a streaming replica follows the primary") }

        let alone = try await ServerUnderTest.start(
            databaseURL: primary.endpoint(database: "strata").url, arguments: ["--insecure-no-auth"])
        defer { alone.stop() }
        let scaled = try await ServerUnderTest.start(
            databaseURL: primary.endpoint(database: "strata").url, arguments: ["--insecure-no-auth"],
            environment: ["STRATA_READ_DATABASE_URL": replica.endpoint(database: "strata").url])
        defer { scaled.stop() }

        var settings = HTTPClient.Configuration()
        settings.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
        let load = LoadGenerator(concurrency: connections)
        var ratios: [Double] = []
        var runs: [[String: Any]] = []
        for _ in 0..<rounds {
            var rates: [Double] = []
            for (server, name) in [(alone, "primary only"), (scaled, "primary + 1 replica")] {
                let result = await load.run("GET /v1/datasets/{id}, \(name)", for: .seconds(seconds)) {
                    index, iteration in
                    let id = ids[(index * 7919 + iteration * 104_729) % ids.count]
                    return await http.attempt(HTTPClientRequest(url: server.baseURL + "/v1/datasets/\(id.lowercased)"))
                }
                rates.append(result.rate)
                var run = result.json
                run["name"] = result.name
                runs.append(run)
                if log {
                    print(
                        String(
                            format: "%-50@ %9.0f/s  p50 %7.2f ms  p99 %7.2f ms%@", result.name, result.rate,
                            result.milliseconds(at: 50), result.milliseconds(at: 99),
                            result.failures > 0 ? "  (\(result.failures) failed)" : ""))
                }
            }
            ratios.append(rates[1] / rates[0])
        }
        try? await http.shutdown()
        let median = ratios.sorted()[ratios.count / 2]
        if log {
            print(
                String(
                    format: "with a replica / primary only: %@ (median %.2f)",
                    ratios.map { String(format: "%.2f", $0) }.joined(separator: ", "), median))
        }
        if output.json {
            let figures: [String: Any] = [
                "datasets": count, "connections": connections, "seconds_per_run": seconds, "runs": runs,
                "replica_per_primary": ratios, "replica_per_primary_median": median,
            ]
            print(try BenchJSON.document(["replica": figures]))
        }
    }
}
