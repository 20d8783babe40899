import Logging
import PostgresNIO
import ServiceLifecycle

/// The PostgreSQL clients a service holds: the pool requests use, the pools of the streaming replicas
/// that serve reads, and a client for maintenance (migrations, projection rebuilds).
public struct DatabaseClients: Sendable {
    public let primary: RenewingClient
    public let replicas: [RenewingClient]
    public let maintenance: PostgresClient
    /// Runs `maintenance`, unless it is the primary's client.
    private let maintenanceRun: ClientRun?
    /// What the service runs, each client once.
    public let services: [any Service]

    /// For `strata serve`: on the primary and on each replica a fixed pool that renews itself after a
    /// failed connect (``RenewingClient``), and an elastic client of its own for maintenance, so that a
    /// long rebuild never holds the connections requests need.
    public init(primary: DatabaseEndpoint, replicas: [DatabaseEndpoint], logger: Logger) throws {
        self.primary = try RenewingClient(serving: primary, logger: logger)
        self.replicas = try replicas.map { try RenewingClient(serving: $0, logger: logger) }
        var maintenance = primary.clientConfiguration
        maintenance.options.maximumConnections = ProjectionMaintenance.connectionsAtOnce
        self.maintenance = PostgresClient(configuration: maintenance, backgroundLogger: logger)
        let maintenanceRun = ClientRun(self.maintenance)
        self.maintenanceRun = maintenanceRun
        services = [self.primary, maintenanceRun] + self.replicas
    }

    private init(primary: PostgresClient, replicas: [PostgresClient]) {
        self.primary = RenewingClient(fixed: primary)
        self.replicas = replicas.map(RenewingClient.init(fixed:))
        maintenance = primary
        maintenanceRun = nil
        services = [self.primary] + self.replicas
    }

    /// Returns once `maintenance` runs, for work at start that leases it directly: see ``ClientRun``.
    public func untilMaintenanceRuns() async {
        if let maintenanceRun { await maintenanceRun.untilBegun() } else { await primary.untilRunning() }
    }

    /// Everything on `client` and `replicas`, never renewed: for tests. A service runs them; a test that
    /// drives the router alone runs them itself.
    public static func fixed(_ client: PostgresClient, replicas: [PostgresClient] = []) -> DatabaseClients {
        DatabaseClients(primary: client, replicas: replicas)
    }
}
