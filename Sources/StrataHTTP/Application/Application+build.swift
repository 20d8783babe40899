import Hummingbird
import Logging
import PostgresNIO
import StrataStore

/// Where the HTTP server listens.
public struct HTTPServerConfiguration: Sendable {
    public var host: String
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// The whole service on one screen: the database client, the migrations run before the server
/// accepts requests, and the router.
public func buildApplication(
    _ configuration: HTTPServerConfiguration,
    database: PostgresClient,
    migrations: MigrationRunner,
    logger: Logger
) -> some ApplicationProtocol {
    let router = buildRouter(readiness: DatabaseReadiness(client: database, migrations: migrations, logger: logger))
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "strata"),
        services: [database],
        logger: logger
    )
    app.beforeServerStarts {
        try await migrations.migrate(database, logger: logger)
    }
    return app
}

/// The routes, separate from the server so tests can drive them in-process.
public func buildRouter(readiness: any ReadinessProbe) -> Router<StrataRequestContext> {
    let router = Router(context: StrataRequestContext.self)
    HealthRoutes(readiness: readiness).register(on: router)
    return router
}

/// Ready when the database answers and every carried migration has been applied unchanged.
public struct DatabaseReadiness: ReadinessProbe {
    let client: PostgresClient
    let migrations: MigrationRunner
    let logger: Logger

    public init(client: PostgresClient, migrations: MigrationRunner, logger: Logger) {
        self.client = client
        self.migrations = migrations
        self.logger = logger
    }

    public func unreadiness() async -> String? {
        do {
            let status = try await migrations.status(client, logger: logger)
            return status.isCurrent ? nil : "migrations pending: \(status.pending.joined(separator: ", "))"
        } catch {
            return "database not usable: \(error)"
        }
    }
}
