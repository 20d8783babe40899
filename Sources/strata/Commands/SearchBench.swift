import ArgumentParser
import Foundation
import StrataCore
import StrataStore

/// `strata bench search`: `GET /v1/search`'s query and a page of the dataset list on a generated catalog,
/// each next to the cheapest read of the same snapshot (one dataset by id), as the reader runs them.
struct SearchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Time search and the dataset list on a generated catalog.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Datasets in the catalog") var datasets = 100_000
    @Option(help: "Queries per kind") var queries = 100
    @OptionGroup var output: BenchOutput

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let (count, rounds, log) = (datasets, queries, !output.json)
        let figures = Box<[[String: Any]]>([])
        try await withScratchDatabase(configuration, logger: logger) { client, schema in
            let started = ContinuousClock.now
            let layers = try await SyntheticLog(client: client, logger: logger)
                .generateLineageGraph(datasets: count, edges: count)
            _ = try await ProjectionMaintenance(client: client, catalog: schema.projections, logger: logger).rebuild()
            try await client.perform("VACUUM (ANALYZE)", logger: logger)
            // The load's dirty pages are written now, not by a checkpoint in the middle of the timings.
            // (A role that may not checkpoint leaves it to the server.)
            _ = try? await client.perform("CHECKPOINT", logger: logger)
            let ids = layers.flatMap { $0 }
            if log { print("generated and projected \(ids.count) datasets in \(ContinuousClock.now - started)") }

            let reader = CatalogReader(client: client, logger: logger)
            // Names are dataset-N in namespaces bench/layer-L, owners team-0…19 (see SyntheticLog).
            let perLayer = ids.count / layers.count
            let kinds: [(String, @Sendable (Int) -> CatalogSnapshot.SearchFilter)] = [
                ("an exact name", { CatalogSnapshot.SearchFilter(text: "dataset-\(($0 * 7919) % perLayer)") }),
                ("an owner (1 in 20 match)", { CatalogSnapshot.SearchFilter(text: "team-\($0 % 20)") }),
                (
                    "two words, one namespace",
                    {
                        var filter = CatalogSnapshot.SearchFilter(text: "dataset \(($0 * 31) % perLayer)")
                        filter.namespace = "bench/layer-\($0 % layers.count)"
                        return filter
                    }
                ),
            ]
            var results: [(String, [Duration])] = []
            var baseline: [Duration] = []
            for round in 0..<rounds {
                let began = ContinuousClock.now
                _ = try await reader.read { [id = ids[(round * 104_729) % ids.count]] in try await $0.dataset(id) }
                baseline.append(ContinuousClock.now - began)
            }
            results.append(("baseline: one dataset by id", baseline))
            for (name, filter) in kinds {
                // Every pooled connection plans and caches once before the timings: steady state.
                for round in 0..<10 { _ = try await reader.read { try await $0.search(filter(rounds + round)) } }
                var timings: [Duration] = []
                var matches: [Int] = []
                for round in 0..<rounds {
                    let began = ContinuousClock.now
                    let (page, _) = try await reader.read { try await $0.search(filter(round)) }
                    timings.append(ContinuousClock.now - began)
                    matches.append(page.facets["status"]?.values.reduce(0, +) ?? 0)
                }
                results.append(("search: \(name), median \(matches.sorted()[matches.count / 2]) matches", timings))
            }
            for (name, sort) in [
                ("id order", nil), ("sorted by name", .init(key: .name, descending: false)),
                ("sorted by -created_at", .init(key: .createdAt, descending: true)),
                ("sorted by -updated_at", .init(key: .updatedAt, descending: true)),
                ("sorted by -last_used_at", .init(key: .lastUsedAt, descending: true)),
            ]
                as [(String, CatalogSnapshot.ListFilter.Sort?)]
            {
                for inNamespace in [false, true] {
                    var timings: [Duration] = []
                    for round in 0..<rounds {
                        var filter = CatalogSnapshot.ListFilter(limit: 50)
                        filter.sort = sort
                        filter.namespace = inNamespace ? "bench/layer-\(round % layers.count)" : nil
                        let began = ContinuousClock.now
                        _ = try await reader.read { [filter] in try await $0.datasets(filter) }
                        timings.append(ContinuousClock.now - began)
                    }
                    let scope = inNamespace ? "one namespace of \(perLayer)" : "all"
                    results.append(("list, 50 a page, \(scope), \(name)", timings))
                }
            }
            for (name, timings) in results {
                let sorted = timings.sorted()
                let at = { (q: Double) in sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))].milliseconds }
                let label = name.padding(toLength: 66, withPad: " ", startingAt: 0)
                if log { print(label + String(format: " p50 %8.2f ms  p99 %8.2f ms", at(0.5), at(0.99))) }
                figures.value.append(["name": name, "p50_ms": at(0.5), "p99_ms": at(0.99)])
            }
        }
        if output.json {
            print(
                try BenchJSON.document(["search": ["datasets": count, "queries": rounds, "workloads": figures.value]]))
        }
    }
}
