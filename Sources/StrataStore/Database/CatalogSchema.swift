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

    /// What ``prepare(_:logger:rebuildingOutdated:)`` did, and what it left to do.
    public struct Preparation: Sendable {
        public var appliedMigrations: [String]
        /// Projections whose definition changed and that were left serving from their old tables.
        public var outdatedProjections: [String]
    }

    /// Applies pending migrations, creates missing projections, rebuilds from the log those that are
    /// missing over existing events, and drops those whose file is gone. Projections whose definition file changed are rebuilt too,
    /// unless `rebuildingOutdated` is false: their old tables can keep serving meanwhile, so a server
    /// leaves them to a background rebuild (``ProjectionMaintenance/rebuild(_:progress:)``) and starts.
    @discardableResult
    public func prepare(_ client: PostgresClient, logger: Logger, rebuildingOutdated: Bool = true) async throws
        -> Preparation
    {
        let applied = try await migrations.migrate(client, logger: logger)
        let missing = try await projections.install(client, logger: logger)
        let maintenance = ProjectionMaintenance(client: client, catalog: projections, logger: logger)
        let outdated = try await maintenance.outdated().filter { !missing.contains($0) }
        let now = missing + (rebuildingOutdated ? outdated : [])
        if !now.isEmpty {
            logger.notice("rebuilding projections from the log", metadata: ["projections": "\(now)"])
            try await maintenance.rebuild(now)
        }
        try await projections.dropRemoved(client, logger: logger)
        return Preparation(appliedMigrations: applied, outdatedProjections: rebuildingOutdated ? [] : outdated)
    }
}
