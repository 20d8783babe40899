import PostgresNIO

/// Everything the database must hold before Strata serves: the permanent schema (`Migrations/`) and
/// the read models (`Projections/`), built from the log where they are missing or outdated.
public struct CatalogSchema: Sendable {
    public var migrations: MigrationRunner
    public var projections: ProjectionCatalog

    public init(migrations: MigrationRunner, projections: ProjectionCatalog) {
        self.migrations = migrations
        self.projections = projections
    }

    public static func bundled() throws -> CatalogSchema {
        CatalogSchema(migrations: try .bundled(), projections: try .bundled())
    }

    /// Applies pending migrations, creates missing projections, and rebuilds from the log those that
    /// are missing over existing events or whose definition file changed. Answers the migrations applied.
    @discardableResult
    public func prepare(_ client: PostgresClient, logger: Logger) async throws -> [String] {
        let applied = try await migrations.migrate(client, logger: logger)
        let missing = try await projections.install(client, logger: logger)
        let maintenance = ProjectionMaintenance(client: client, catalog: projections, logger: logger)
        let outdated = try await maintenance.outdated()
        if !(missing + outdated).isEmpty {
            logger.notice("rebuilding projections from the log", metadata: ["projections": "\(missing + outdated)"])
            try await maintenance.rebuild(missing + outdated)
        }
        return applied
    }
}
