import ArgumentParser
import Foundation
import StrataStore

/// `strata export`: the log as NDJSON on standard output, one event per line.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write the event log as NDJSON to standard output."
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Only events after this log position") var after: Int64 = 0

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let count = try await DatabaseSession.with(configuration, logger: logger, existingOnly: true) { client in
            // A catalog whose applied migrations this build does not carry is refused, naming the file, as by
            // every command: what it exports might not be what this build's import reads.
            _ = try await MigrationRunner.bundled().status(client, logger: logger)
            return try await LogArchive(client: client, logger: logger).export(after: after) { line in
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        }
        FileHandle.standardError.write(Data("exported \(count) events\n".utf8))
    }
}

/// `strata import`: load an export into an empty catalog, then build the projections from it.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Load an NDJSON export from standard input into an empty catalog."
    )

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        var lines: [String] = []
        while let line = readLine(strippingNewline: true) { lines.append(line) }
        let schema = try CatalogSchema.bundled()
        let count = try await DatabaseSession.with(configuration, logger: logger) { [lines] client in
            try await schema.prepare(client, logger: logger)
            let count = try await LogArchive(client: client, logger: logger).importLog(lines)
            try await ProjectionMaintenance(client: client, catalog: schema.projections, logger: logger).rebuild()
            return count
        }
        print("imported \(count) events and rebuilt the projections")
    }
}
