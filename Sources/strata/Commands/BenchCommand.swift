import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import StrataStore

/// `strata bench`: measurements in a scratch database on the same server, with their set-up in the
/// same run. Build with `-c release`: debug builds are several times slower.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run benchmarks in a scratch database.",
        subcommands: [
            RebuildBench.self, LineageBench.self, HTTPBench.self, UIBench.self, SearchBench.self, FeedBench.self,
            ReplicaBench.self,
        ]
    )
}

/// Rebuild throughput: generate a log of N events, then time `replay` of every projection, a few rounds,
/// with the time to merely read the log (decoded, in the rebuild's batches) as the baseline.
struct RebuildBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild", abstract: "Time a rebuild of all projections from a synthetic log."
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Events in the synthetic log") var events = 1_000_000
    @Option(help: "Rebuilds to time, one after another on the same log") var rounds = 3

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let (count, rounds) = (events, max(1, rounds))
        try await withScratchDatabase(configuration, logger: logger) { client, schema in
            let generated = ContinuousClock.now
            let written = try await SyntheticLog(client: client, logger: logger).generate(events: count)
            print("generated \(written) events in \(ContinuousClock.now - generated)")
            // As autovacuum would have long since done to a live catalog's log; otherwise it does it
            // during the first round, and the first reads also pay for setting the new rows' hint bits.
            try await client.perform("VACUUM (ANALYZE) events", logger: logger)
            let maintenance = ProjectionMaintenance(client: client, catalog: schema.projections, logger: logger)
            let reading = ContinuousClock.now
            var read = 0
            var position: Int64 = 0
            let store = EventStore(client: client, logger: logger)
            while true {
                let events = try await store.readAll(after: position, limit: maintenance.batchSize)
                guard let last = events.last else { break }
                read += events.count
                position = last.position
            }
            let readSeconds = (ContinuousClock.now - reading).seconds
            print(
                String(
                    format: "baseline (read the log): %d events in %.2f s = %.0f events/s", read, readSeconds,
                    Double(read) / readSeconds))
            var rates: [Double] = []
            for round in 1...rounds {
                let report = try await maintenance.rebuild { progress in ProgressLine.print(progress) }
                ProgressLine.finish()
                rates.append(Double(written) / report.elapsed.seconds)
                print(
                    String(
                        format: "rebuild %d: %d events in %.2f s = %.0f events/s", round, written,
                        report.elapsed.seconds, rates.last ?? 0))
                print(ProgressLine.stages(report.stages))
            }
            print(String(format: "rebuild median: %.0f events/s", rates.sorted()[rates.count / 2]))
        }
    }
}

/// Lineage latency on a large graph: depth-10 queries from mid-graph nodes, with a point read of one
/// dataset as the baseline measured in the same run.
struct LineageBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage", abstract: "Time lineage queries on a synthetic graph."
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Datasets in the graph") var datasets = 100_000
    @Option(help: "Lineage edges in the graph") var edges = 1_000_000
    @Option(help: "Queries per kind") var queries = 200
    @Option(help: "Traversal depth") var depth = 10

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let (datasetCount, edgeCount, queryCount, depth) = (datasets, edges, queries, depth)
        try await withScratchDatabase(configuration, logger: logger) { client, schema in
            let generated = ContinuousClock.now
            let layers = try await SyntheticLog(client: client, logger: logger)
                // One version each: the traversals' figures stay comparable from run to run, and histories
                // would only lengthen the generation.
                .generateLineageGraph(datasets: datasetCount, edges: edgeCount, histories: false)
            print(
                "generated \(layers.joined().count) datasets and about \(edgeCount) edges in \(ContinuousClock.now - generated)"
            )
            let report = try await ProjectionMaintenance(client: client, catalog: schema.projections, logger: logger)
                .rebuild { progress in ProgressLine.print(progress) }
            ProgressLine.finish()
            print(
                String(
                    format: "rebuild: %lld events in %.2f s = %.0f events/s", report.position,
                    report.elapsed.seconds, Double(report.position) / report.elapsed.seconds))
            try await client.perform("ANALYZE", logger: logger)

            let reader = CatalogReader(client: client, logger: logger)
            let middle = layers[layers.count / 2]
            var baseline: [Duration] = []
            var timings: [LineageGraph.Direction: [Duration]] = [:]
            var sizes: [LineageGraph.Direction: [Int]] = [:]
            for round in 0..<queryCount {
                let root = middle[(round * 7919) % middle.count]
                let started = ContinuousClock.now
                _ = try await reader.read { try await $0.dataset(root) }
                baseline.append(ContinuousClock.now - started)
                for direction in LineageGraph.Direction.allCases {
                    let began = ContinuousClock.now
                    let (graph, _) = try await reader.read {
                        try await $0.lineage(of: root, version: nil, direction: direction, depth: depth)
                    }
                    timings[direction, default: []].append(ContinuousClock.now - began)
                    sizes[direction, default: []].append(graph.nodes.count + graph.edges.count)
                }
            }
            func line(_ name: String, _ values: [Duration], _ answer: [Int]?) -> String {
                let sorted = values.sorted()
                let pick = { (q: Double) in sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))].milliseconds }
                let size =
                    answer.map { String(format: ", answer median %d nodes+edges", $0.sorted()[$0.count / 2]) } ?? ""
                return String(
                    format: "%@: p50 %.2f ms, p95 %.2f ms, max %.2f ms%@", name, pick(0.5), pick(0.95),
                    sorted.last?.milliseconds ?? 0, size)
            }
            print(line("baseline (one dataset by id)", baseline, nil))
            for direction in LineageGraph.Direction.allCases {
                print(line("lineage \(direction.rawValue) depth \(depth)", timings[direction] ?? [], sizes[direction]))
            }
        }
    }
}

/// Runs `body` on a new database on the configured server, prepared and dropped afterwards.
func withScratchDatabase(
    _ configuration: StrataConfiguration,
    logger: Logger,
    _ body: @Sendable (PostgresClient, CatalogSchema) async throws -> Void
) async throws {
    try await withScratchDatabase(configuration, logger: logger) { client, schema, _ in try await body(client, schema) }
}

/// Runs `body` on a new database on the configured server, prepared and dropped afterwards; `body` also
/// gets the database's endpoint, for processes of its own.
func withScratchDatabase(
    _ configuration: StrataConfiguration,
    logger: Logger,
    _ body: @Sendable (PostgresClient, CatalogSchema, DatabaseEndpoint) async throws -> Void
) async throws {
    let schema = try CatalogSchema.bundled()
    let session = try await DatabaseSession.open(configuration, logger: logger)
    defer { session.close() }
    let scratch = "strata_bench_\(getpid())"
    var adminConfiguration = session.clientConfiguration
    adminConfiguration.database = "postgres"
    var scratchEndpoint = session.endpoint
    scratchEndpoint.database = scratch
    let benchConfiguration = {
        var configuration = scratchEndpoint.clientConfiguration
        // Baselines drive the database with as many clients as the HTTP loads.
        configuration.options.maximumConnections = 128
        return configuration
    }()
    let endpoint = scratchEndpoint
    try await PostgresClient(configuration: adminConfiguration, backgroundLogger: logger).whileRunning { admin in
        try await admin.perform("CREATE DATABASE \(unescaped: scratch)", logger: logger)
        do {
            try await PostgresClient(configuration: benchConfiguration, backgroundLogger: logger).whileRunning {
                client in
                try await schema.prepare(client, logger: logger)
                try await body(client, schema, endpoint)
            }
        } catch {
            try? await admin.perform("DROP DATABASE IF EXISTS \(unescaped: scratch) WITH (FORCE)", logger: logger)
            throw error
        }
        try await admin.perform("DROP DATABASE IF EXISTS \(unescaped: scratch) WITH (FORCE)", logger: logger)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { seconds * 1000 }
}
