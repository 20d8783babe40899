import ArgumentParser
import StrataStore

/// `strata migrate`: apply the carried `Migrations/*.sql` that the database lacks, and create missing projections.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply pending schema migrations."
    )

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let migrations = try MigrationRunner.bundled()
        let projections = try ProjectionCatalog.bundled()
        let applied = try await DatabaseSession.with(configuration, logger: logger) { client in
            let applied = try await migrations.migrate(client, logger: logger)
            try await projections.install(client, logger: logger)
            return applied
        }
        print(applied.isEmpty ? "database is up to date" : "applied: \(applied.joined(separator: ", "))")
    }
}
