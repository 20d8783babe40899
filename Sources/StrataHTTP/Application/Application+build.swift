import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import PostgresNIO
import Prometheus
import ServiceLifecycle
import StrataCore
import StrataResources
import StrataStore

/// Where the HTTP server listens.
public struct HTTPServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// A connection that sends no part of a request for this long is closed: a client that opens a
    /// connection and says nothing, or trickles a request's headers or body, cannot hold it. A response
    /// being written (a live feed) is not idle.
    public var idleTimeout: Duration

    public init(host: String = "127.0.0.1", port: Int = 8080, idleTimeout: Duration = .seconds(30)) {
        self.host = host
        self.port = port
        self.idleTimeout = idleTimeout
    }
}

/// What the routes need: the database, the schema guards, and where time and ids come from.
public struct StrataServices: Sendable {
    public var database: DatabaseClients
    /// The pool as requests use it: every wait on PostgreSQL bounded.
    public var pool: BoundedPool
    public var migrations: MigrationRunner
    public var projections: ProjectionCatalog
    public var writer: CatalogWriter
    public var reader: CatalogReader
    public var metrics: PrometheusCollectorRegistry
    public var clock: @Sendable () -> Date
    public var makeID: @Sendable () -> UUID
    public var logger: Logger
    /// Rebuilds, while serving, the projections whose definition changed since they were built.
    public var rebuilder: ProjectionRebuilder
    /// Whether the database can serve, for `/readyz`.
    public var monitor: DatabaseMonitor
    /// The valid API tokens, by the digest of their secrets.
    public var tokens: TokenDirectory
    /// The log's appends as PostgreSQL announces them, which live feeds wait for.
    public var announcements: LogAnnouncements
    /// How far behind the primary the streaming replicas that serve reads are (`/metrics`).
    public var replicaLag: ReplicaLag
    public var access: AccessMode
    /// The served description of the API, self-contained.
    public var openAPI: OpenAPIDocument
    /// The most edges one lineage answer holds (``LineageGraph/mostEdges``); tests lower it.
    public var lineageEdgeLimit = LineageGraph.mostEdges
    var webUI: WebUI

    /// - Parameter monitorEndpoint: where the readiness monitor opens a connection of its own, so that
    ///   requests learn promptly when PostgreSQL is down, and where the live feeds' listener opens its
    ///   own; nil for tests that drive the router alone (their feeds poll).
    /// - Parameter database: the primary, and PostgreSQL streaming replicas of its database, which serve
    ///   reads that they have replayed far enough for (``CatalogReader``).
    public init(
        database: DatabaseClients,
        logger: Logger,
        monitorEndpoint: PostgresConnection.Configuration? = nil,
        access: AccessMode = .tokens(bootstrapSecret: nil),
        deadlines: DatabaseDeadlines = .standard,
        metrics: PrometheusCollectorRegistry = StrataMetrics.registry,
        clock: @escaping @Sendable () -> Date = { Date() },
        makeID: @escaping @Sendable () -> UUID = UUIDv7.make
    ) throws {
        self.database = database
        self.pool = BoundedPool(client: database.primary, deadlines: deadlines)
        self.logger = logger
        self.migrations = try MigrationRunner.bundled()
        self.projections = try ProjectionCatalog.bundled()
        self.writer = CatalogWriter(pool: pool, logger: logger)
        // A replica that lends no connection soon leaves its read to the primary, rather than hold it for
        // the queue's deadline: it may be down, and ReplicaLag has not noticed yet.
        var replicaDeadlines = deadlines
        replicaDeadlines.queue = min(deadlines.queue, deadlines.connect)
        let replicaPools = database.replicas.map {
            BoundedPool(client: $0, deadlines: replicaDeadlines, readRetries: 0)
        }
        self.reader = CatalogReader(pool: pool, replicas: replicaPools, logger: logger)
        self.replicaLag = ReplicaLag(primary: pool, replicas: replicaPools, logger: logger)
        self.monitor = DatabaseMonitor(
            pool: pool, endpoint: monitorEndpoint, migrations: migrations, logger: logger)
        self.metrics = metrics
        self.clock = clock
        self.makeID = makeID
        self.rebuilder = ProjectionRebuilder(
            maintenance: ProjectionMaintenance(client: database.maintenance, catalog: projections, logger: logger))
        self.tokens = TokenDirectory(pool: pool, logger: logger)
        self.announcements = LogAnnouncements(endpoint: monitorEndpoint, logger: logger)
        self.access = access
        self.openAPI = try OpenAPIDocument.bundled()
        self.webUI = try WebUI()
    }

    public var maintenance: ProjectionMaintenance {
        ProjectionMaintenance(client: database.maintenance, catalog: projections, logger: logger)
    }

    /// Brings the database to this build's schema (see ``CatalogSchema/prepare(_:logger:rebuildingOutdated:)``),
    /// leaving projections whose definition changed to ``rebuilder``: they serve from their old tables
    /// until the rebuilt ones are swapped in.
    public func prepareDatabase() async throws {
        await database.untilMaintenanceRuns()
        let preparation = try await CatalogSchema(migrations: migrations, projections: projections)
            .prepare(database.maintenance, logger: logger, rebuildingOutdated: false)
        rebuilder.rebuild(preparation.outdatedProjections)
    }

    /// Creates the first admin token if no token exists, and shows a new secret once, on standard
    /// error. Answers the secret if it made one.
    @discardableResult
    public func bootstrapTokens() async throws -> String? {
        guard case .tokens(let secret) = access else {
            logger.critical(
                "authentication is OFF (--insecure-no-auth): anyone who can reach this port is an administrator")
            return nil
        }
        let outcome = try await TokenBootstrap.ensureAdmin(
            secret: secret, directory: tokens, writer: writer, actor: TokenName.server, now: clock())
        switch outcome {
        case .tokensExist:
            return nil
        case .createdFromEnvironment:
            logger.notice("created the admin token 'bootstrap' from STRATA_BOOTSTRAP_TOKEN")
            return nil
        case .created(let secret):
            logger.notice("created the admin token 'bootstrap'; its secret is printed once on standard error")
            let notice = """

                ==================================================================================
                  Strata had no API token, so it created an admin token named 'bootstrap'.
                  It is shown this once; keep it somewhere safe, then create narrower tokens with
                    strata token create --name NAME --role reader|writer|admin [--namespace NS]
                  and revoke this one when you no longer need it.

                    STRATA_TOKEN=\(secret)
                ==================================================================================

                """
            FileHandle.standardError.write(Data(notice.utf8))
            return secret
        }
    }
}

/// How requests are authenticated.
public enum AccessMode: Sendable, Equatable {
    /// Bearer tokens. `bootstrapSecret` (`STRATA_BOOTSTRAP_TOKEN`) becomes the secret of the first admin
    /// token when none exists; without it a new one is made and shown once.
    case tokens(bootstrapSecret: String?)
    /// `--insecure-no-auth`: every request acts as an administrator named `anonymous`. Loopback only.
    case insecureNoAuth
}

/// The whole service on one screen: the database client, the router, and the schema prepared while the
/// server already answers health checks (changed projections are rebuilt after it serves).
///
/// - Parameter untilDatabaseConnects: waits until PostgreSQL takes a connection (`serve` with a
///   `DATABASE_URL`), first of what the server waits for before it serves.
public func buildApplication(
    _ configuration: HTTPServerConfiguration,
    services: StrataServices,
    untilDatabaseConnects: (@Sendable () async throws -> Void)? = nil
) -> some ApplicationProtocol {
    let gate = StartupGate(pending: "the server starts", logger: services.logger)
    let app = Application(
        router: buildRouter(services, startup: gate),
        server: .http1(
            configuration: .init(
                idleTimeout: .nanoseconds(
                    configuration.idleTimeout.components.seconds * 1_000_000_000
                        + configuration.idleTimeout.components.attoseconds / 1_000_000_000),
                httpDecoderConfiguration: requestLimits)),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "strata"),
        services: services.database.services
            + [services.monitor, services.tokens, services.announcements, services.replicaLag, services.rebuilder]
            + [StartupPreparation(gate: gate, services: services, untilDatabaseConnects: untilDatabaseConnects)],
        onServerRunning: { channel in
            gate.bound(to: channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?")
        },
        logger: services.logger
    )
    return app
}

/// Header limits above what any client of the API sends (a request line with the longest natural key
/// is under 26 KiB), below NIO's defaults (80 KiB a field): a request over them is refused before routing.
let requestLimits = HTTP1Channel.Configuration.DecoderConfiguration(
    maxHeaderFieldSize: 32 * 1024, maxHeaderListSize: 64 * 1024, maxHeaderFieldCount: 100)

/// The routes, separate from the server so tests can drive them in-process (on a database prepared
/// beforehand: the gate is open unless told otherwise).
public func buildRouter(_ services: StrataServices, startup: StartupGate? = nil) -> Router<StrataRequestContext> {
    let router = servedRoutes(services, startup: startup)
    router.refuseUnservedMethods()
    return router
}

/// The routes the API serves, which `Schemas/openapi.yaml` describes, without the 405s for the methods
/// their paths do not take.
public func servedRoutes(_ services: StrataServices, startup: StartupGate? = nil) -> Router<StrataRequestContext> {
    let startup = startup ?? .open(logger: services.logger)
    // HEAD wherever GET: RFC 9110 §9.1 asks every general-purpose server for both.
    let router = Router(context: StrataRequestContext.self, options: .autoGenerateHeadEndpoints)
    router.add(middleware: RequestContextMiddleware())
    router.add(middleware: RequestMetrics())
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: RequestHygiene())
    router.add(middleware: services.webUI.assets())
    router.add(middleware: StartupGateMiddleware(gate: startup))
    switch services.access {
    case .tokens: router.add(middleware: TokenAuthenticator(directory: services.tokens))
    case .insecureNoAuth: router.add(middleware: OpenAccess())
    }
    router.add(middleware: AccessPolicy())
    router.add(middleware: QueryParameterCheck(operations: services.openAPI.queryParameters))
    HealthRoutes(
        readiness: StartupReadiness(gate: startup, database: services.monitor), rebuilding: services.rebuilder.pending
    ).register(on: router)
    router.get("/metrics") { _, _ -> Response in
        var text: [UInt8] = []
        services.metrics.emit(into: &text)
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: text)))
    }
    for (path, contentType, text) in [
        ("/openapi.yaml", "application/yaml", services.openAPI.yaml),
        ("/openapi.json", "application/json", services.openAPI.json),
    ] {
        router.get(RouterPath(path)) { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = contentType
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
    DatasetRoutes(writer: services.writer, reader: services.reader, clock: services.clock, makeID: services.makeID)
        .register(on: router)
    LineageRoutes(
        writer: services.writer, reader: services.reader, clock: services.clock, mostEdges: services.lineageEdgeLimit
    ).register(on: router)
    OpenLineageRoutes(writer: services.writer, clock: services.clock, makeID: services.makeID).register(on: router)
    // Live tails follow the primary's announcements, so they read where those commits already are.
    var events = EventRoutes(reader: services.reader.primaryOnly, announcements: services.announcements)
    if case .tokens = services.access { events.tokens = services.tokens }
    events.register(on: router)
    services.webUI.register(on: router)
    AdminRoutes(maintenance: services.maintenance).register(on: router)
    TokenRoutes(writer: services.writer, reader: services.reader, directory: services.tokens, clock: services.clock)
        .register(on: router)
    return router
}

/// The process's metrics registry. swift-metrics has one global backend by design, so the registry is
/// bootstrapped once, on first use, and shared by every application in the process.
public enum StrataMetrics {
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        ]
        factory.defaultValueHistogramBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256]
        MetricsSystem.bootstrap(factory)
        return registry
    }()
}
