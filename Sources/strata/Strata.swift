import ArgumentParser

/// The `strata` command: the service and the operator's tools around its event log.
@main
struct Strata: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An event-sourced lineage and metadata catalog for datasets.",
        subcommands: [
            ServeCommand.self, MigrateCommand.self, ReplayCommand.self, VerifyCommand.self, ExportCommand.self,
            ImportCommand.self, TokenCommand.self, BenchCommand.self, DatasetCommand.self, LineageCommand.self,
            ImpactCommand.self, EventsCommand.self, WhoAmICommand.self,
        ]
    )
}
