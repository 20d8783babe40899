import ArgumentParser
import Foundation
import PostgresNIO
import StrataStore

/// `strata bench`: measurements in a scratch database on the same server, with their set-up in the
/// same run. Build with `-c release`: debug builds are several times slower.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run benchmarks in a scratch database.",
        subcommands: [RebuildBench.self]
    )
}

/// Rebuild throughput: generate a log of N events, then time `replay` of every projection.
struct RebuildBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild", abstract: "Time a rebuild of all projections from a synthetic log."
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Events in the synthetic log") var events = 1_000_000

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let schema = try CatalogSchema.bundled()
        let session = try await DatabaseSession.open(configuration, logger: logger)
        defer { session.close() }
        let scratch = "strata_bench_\(getpid())"
        var maintenanceConfiguration = session.clientConfiguration
        maintenanceConfiguration.database = "postgres"
        let admin = PostgresClient(configuration: maintenanceConfiguration, backgroundLogger: logger)
        var scratchConfiguration = session.clientConfiguration
        scratchConfiguration.database = scratch
        let benchConfiguration = scratchConfiguration
        let count = events
        try await admin.whileRunning { admin in
            try await admin.perform("CREATE DATABASE \(unescaped: scratch)", logger: logger)
            do {
                try await PostgresClient(configuration: benchConfiguration, backgroundLogger: logger).whileRunning {
                    client in
                    try await schema.prepare(client, logger: logger)
                    let generated = ContinuousClock.now
                    let written = try await SyntheticLog(client: client, logger: logger).generate(events: count)
                    print("generated \(written) events in \(ContinuousClock.now - generated)")
                    let report = try await ProjectionMaintenance(
                        client: client, catalog: schema.projections, logger: logger
                    ).rebuild { progress in ProgressLine.print(progress) }
                    ProgressLine.finish()
                    let seconds =
                        Double(report.elapsed.components.seconds)
                        + Double(report.elapsed.components.attoseconds) / 1e18
                    print(
                        String(
                            format: "rebuild: %d events in %.2f s = %.0f events/s", written, seconds,
                            Double(written) / seconds))
                }
            } catch {
                try? await admin.perform("DROP DATABASE IF EXISTS \(unescaped: scratch) WITH (FORCE)", logger: logger)
                throw error
            }
            try await admin.perform("DROP DATABASE IF EXISTS \(unescaped: scratch) WITH (FORCE)", logger: logger)
        }
    }
}
