import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import StrataStore

/// `strata bench`: measurements in a scratch database on the same server, with their set-up in the
/// same run. Build with `-c release`: debug builds are several times slower.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run benchmarks in a scratch database.",
        discussion: """
            `strata bench --json` runs the rebuild, lineage and HTTP benchmarks with their defaults and prints \
            their figures as one JSON document, to track them from run to run; each benchmark also takes --json.
            """,
        subcommands: [
            RebuildBench.self, LineageBench.self, HTTPBench.self, UIBench.self, SearchBench.self, FeedBench.self,
            ReplicaBench.self, FaultBench.self,
        ]
    )

    @OptionGroup var output: BenchOutput

    func run() async throws {
        guard output.json else { throw CleanExit.helpRequest(self) }
        let configuration = try StrataConfiguration(database: try DatabaseOptions.parse([]))
        let logger = configuration.makeLogger()
        let rebuild = try await RebuildBench.measure(
            configuration: configuration, logger: logger, events: RebuildBench.defaultEvents,
            rounds: RebuildBench.defaultRounds, log: false)
        let lineage = try await LineageBench.measure(
            configuration: configuration, logger: logger, datasets: LineageBench.defaultDatasets,
            edges: LineageBench.defaultEdges, queries: LineageBench.defaultQueries, depth: LineageBench.defaultDepth,
            log: false)
        let http = try await HTTPBench.measure(
            configuration: configuration, logger: logger, connections: HTTPBench.defaultConnections,
            seconds: HTTPBench.defaultSeconds, datasets: HTTPBench.defaultDatasets,
            authRounds: HTTPBench.defaultAuthRounds, log: false)
        print(try BenchJSON.document(["rebuild": rebuild, "lineage": lineage, "http": http]))
    }
}

/// `--json`, which `strata bench` and the benchmarks take. Declared once, in a group: the parent and a
/// subcommand declaring the same flag each would leave the subcommand's unset.
struct BenchOutput: ParsableArguments {
    @Flag(help: "Print the figures as one JSON document") var json = false
}

/// Rebuild throughput: generate a log of N events, then time `replay` of every projection, a few rounds,
/// with the time to merely read the log (decoded, in the rebuild's batches) as the baseline.
struct RebuildBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild", abstract: "Time a rebuild of all projections from a synthetic log."
    )

    static let (defaultEvents, defaultRounds) = (1_000_000, 3)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Events in the synthetic log") var events = defaultEvents
    @Option(help: "Rebuilds to time, one after another on the same log") var rounds = defaultRounds
    @OptionGroup var output: BenchOutput

    func validate() throws {
        guard events >= 1, rounds >= 1 else { throw ValidationError("--events and --rounds must be at least 1") }
    }

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let figures = try await Self.measure(
            configuration: configuration, logger: configuration.makeLogger(), events: events, rounds: rounds,
            log: !output.json)
        if output.json { print(try BenchJSON.document(["rebuild": figures])) }
    }

    /// Prints each figure as it is measured when `log` is set; answers them all.
    static func measure(
        configuration: StrataConfiguration, logger: Logger, events count: Int, rounds: Int, log: Bool
    ) async throws -> [String: Any] {
        let rounds = max(1, rounds)
        let figures = Box<[String: Any]>([:])
        try await withScratchDatabase(configuration, logger: logger) { client, schema in
            let generated = ContinuousClock.now
            let written = try await SyntheticLog(client: client, logger: logger).generate(events: count)
            if log { print("generated \(written) events in \(ContinuousClock.now - generated)") }
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
            let readRate = Double(read) / readSeconds
            if log {
                print(
                    String(
                        format: "baseline (read the log): %d events in %.2f s = %.0f events/s", read, readSeconds,
                        readRate))
            }
            var rates: [Double] = []
            for round in 1...rounds {
                let report = try await maintenance.rebuild { progress in ProgressLine.print(progress) }
                ProgressLine.finish()
                rates.append(Double(written) / report.elapsed.seconds)
                if log {
                    print(
                        String(
                            format: "rebuild %d: %d events in %.2f s = %.0f events/s", round, written,
                            report.elapsed.seconds, rates.last ?? 0))
                    print(ProgressLine.stages(report.stages))
                }
            }
            let median = rates.sorted()[rates.count / 2]
            if log { print(String(format: "rebuild median: %.0f events/s", median)) }
            figures.value = [
                "events": written, "read_events_per_second": readRate.rounded(),
                "rebuild_events_per_second": rates.map { $0.rounded() },
                "rebuild_median_events_per_second": median.rounded(),
                "rebuild_per_read": (median / readRate * 100).rounded() / 100,
            ]
        }
        return figures.value
    }
}

/// Lineage latency on a large graph: depth-10 queries from mid-graph nodes, with a point read of one
/// dataset as the baseline measured in the same run.
struct LineageBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage", abstract: "Time lineage queries on a synthetic graph."
    )

    static let (defaultDatasets, defaultEdges, defaultQueries, defaultDepth) = (100_000, 1_000_000, 200, 10)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Datasets in the graph") var datasets = defaultDatasets
    @Option(help: "Lineage edges in the graph") var edges = defaultEdges
    @Option(help: "Queries per kind") var queries = defaultQueries
    @Option(help: "Traversal depth") var depth = defaultDepth
    @OptionGroup var output: BenchOutput

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let figures = try await Self.measure(
            configuration: configuration, logger: configuration.makeLogger(), datasets: datasets, edges: edges,
            queries: queries, depth: depth, log: !output.json)
        if output.json { print(try BenchJSON.document(["lineage": figures])) }
    }

    /// Prints each figure as it is measured when `log` is set; answers them all.
    static func measure(
        configuration: StrataConfiguration, logger: Logger, datasets datasetCount: Int, edges edgeCount: Int,
        queries queryCount: Int, depth: Int, log: Bool
    ) async throws -> [String: Any] {
        let figures = Box<[String: Any]>([:])
        try await withScratchDatabase(configuration, logger: logger) { client, schema in
            let generated = ContinuousClock.now
            let layers = try await SyntheticLog(client: client, logger: logger)
                // One version each: the traversals' figures stay comparable from run to run, and histories
                // would only lengthen the generation.
                .generateLineageGraph(datasets: datasetCount, edges: edgeCount, histories: false)
            if log {
                print(
                    "generated \(layers.joined().count) datasets and about \(edgeCount) edges in \(ContinuousClock.now - generated)"
                )
            }
            let report = try await ProjectionMaintenance(client: client, catalog: schema.projections, logger: logger)
                .rebuild { progress in ProgressLine.print(progress) }
            ProgressLine.finish()
            if log {
                print(
                    String(
                        format: "rebuild: %lld events in %.2f s = %.0f events/s", report.position,
                        report.elapsed.seconds, Double(report.position) / report.elapsed.seconds))
            }
            try await client.perform("ANALYZE", logger: logger)

            let reader = CatalogReader(client: client, logger: logger)
            let middle = layers[layers.count / 2]
            var baseline: [Duration] = []
            var timings: [LineageGraph.Direction: [Duration]] = [:]
            var sizes: [LineageGraph.Direction: [Int]] = [:]
            // A walk cut short answers sooner: its figures would not be the whole graph's.
            var truncated: [LineageGraph.Direction: Int] = [:]
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
                    if graph.isTruncated { truncated[direction, default: 0] += 1 }
                }
            }
            func quantiles(_ values: [Duration]) -> (p50: Double, p95: Double, max: Double) {
                let sorted = values.sorted()
                let pick = { (q: Double) in sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))].milliseconds }
                return (pick(0.5), pick(0.95), sorted.last?.milliseconds ?? 0)
            }
            func line(_ name: String, _ values: [Duration], _ answer: [Int]?) -> String {
                let (p50, p95, max) = quantiles(values)
                let size =
                    answer.map { String(format: ", answer median %d nodes+edges", $0.sorted()[$0.count / 2]) } ?? ""
                return String(format: "%@: p50 %.2f ms, p95 %.2f ms, max %.2f ms%@", name, p50, p95, max, size)
            }
            func figure(_ values: [Duration], _ answer: [Int]?) -> [String: Any] {
                let (p50, p95, max) = quantiles(values)
                let microseconds = { (milliseconds: Double) in (milliseconds * 1000).rounded() / 1000 }
                var figure: [String: Any] = [
                    "p50_ms": microseconds(p50), "p95_ms": microseconds(p95), "max_ms": microseconds(max),
                ]
                if let answer { figure["answer_median_size"] = answer.sorted()[answer.count / 2] }
                return figure
            }
            if log {
                print(line("baseline (one dataset by id)", baseline, nil))
                for direction in LineageGraph.Direction.allCases {
                    let cut = truncated[direction].map { ", \($0) of \(queryCount) truncated" } ?? ""
                    print(
                        line("lineage \(direction.rawValue) depth \(depth)", timings[direction] ?? [], sizes[direction])
                            + cut)
                }
            }
            var result: [String: Any] = [
                "datasets": datasetCount, "edges": edgeCount, "depth": depth, "queries": queryCount,
                "baseline_by_id": figure(baseline, nil),
            ]
            for direction in LineageGraph.Direction.allCases {
                var walks = figure(timings[direction] ?? [], sizes[direction])
                walks["truncated"] = truncated[direction] ?? 0
                result[direction.rawValue] = walks
            }
            figures.value = result
        }
        return figures.value
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
