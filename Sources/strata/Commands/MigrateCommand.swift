import ArgumentParser
import StrataStore

/// `strata migrate`: apply pending `Migrations/*.sql`, and create or rebuild the projections that need it.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply pending schema migrations and bring the projections up to date."
    )

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let schema = try CatalogSchema.bundled()
        let applied = try await DatabaseSession.with(configuration, logger: logger) { client in
            try await schema.prepare(client, logger: logger).appliedMigrations
        }
        print(applied.isEmpty ? "database is up to date" : "applied: \(applied.joined(separator: ", "))")
    }
}
