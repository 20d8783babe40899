import ArgumentParser
import StrataStore

/// `strata migrate`: apply the carried `Migrations/*.sql` that the database lacks.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply pending schema migrations."
    )

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let migrations = try MigrationRunner.bundled()
        let applied = try await DatabaseSession.with(configuration, logger: logger) { client in
            try await migrations.migrate(client, logger: logger)
        }
        print(applied.isEmpty ? "database is up to date" : "applied: \(applied.joined(separator: ", "))")
    }
}
