import ArgumentParser
import Foundation
import Hummingbird
import NIOCore
import PostgresNIO
import ServiceLifecycle
import StrataHTTP
import StrataStore

/// `strata serve`: migrate, then answer HTTP until SIGINT/SIGTERM, then stop what this process started.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the HTTP service.")

    /// How long a graceful shutdown may take: requests in flight finish (each is bounded by the database
    /// deadlines), new ones are refused; after that whatever is left is cancelled.
    static let gracefulShutdownLimit: Duration = .seconds(15)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Address to listen on (default: $STRATA_HOST, else 127.0.0.1)") var host: String?
    @Option(help: "Port to listen on (default: $STRATA_PORT, else 8080)") var port: Int?
    @Flag(help: "No authentication: every request is an administrator. Only on a loopback address; for experiments.")
    var insecureNoAuth = false

    func run() async throws {
        let configuration = try StrataConfiguration(database: database, host: host, port: port)
        let logger = configuration.makeLogger()
        let access = try accessMode(host: configuration.http.host)
        let session = try await DatabaseSession.open(configuration, logger: logger, waitsItself: true)
        defer { session.close() }
        let replicas = try configuration.readDatabaseURLs.map { try DatabaseEndpoint(url: $0) }
        if !replicas.isEmpty { logger.notice("serving reads from \(replicas.count) replica(s) as well") }
        let services = try StrataServices(
            database: DatabaseClients(primary: session.endpoint, replicas: replicas, logger: logger), logger: logger,
            monitorEndpoint: try session.endpoint.connectionConfiguration(), access: access)
        // An embedded cluster is up once opened; a server named by DATABASE_URL may not be up yet, and is
        // waited for while the server already answers health checks.
        let endpoint = session.endpoint
        let untilConnects: (@Sendable () async throws -> Void)? =
            session.embedded != nil ? nil : { @Sendable in try await endpoint.untilConnects(logger: logger) }
        let app = buildApplication(configuration.http, services: services, untilDatabaseConnects: untilConnects)
        var running: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
        if let cluster = session.embedded {
            running.append(.init(service: EmbeddedSupervisor(cluster: cluster, logger: logger)))
        }
        var group = ServiceGroupConfiguration(
            services: running, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = Self.gracefulShutdownLimit
        do {
            try await ServiceGroup(configuration: group).run()
        } catch let error as IOError where [EADDRINUSE, EACCES, EADDRNOTAVAIL].contains(error.errnoCode) {
            throw CannotListen(host: configuration.http.host, port: configuration.http.port, errno: error.errnoCode)
        }
    }

    private func accessMode(host: String) throws -> AccessMode {
        if insecureNoAuth {
            guard ["127.0.0.1", "::1", "localhost"].contains(host) else {
                throw ValidationError("--insecure-no-auth is refused unless the server listens on a loopback address")
            }
            return .insecureNoAuth
        }
        let bootstrap = ProcessInfo.processInfo.environment["STRATA_BOOTSTRAP_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if let bootstrap, bootstrap.count < TokenSecret.minimumLength {
            throw ValidationError("STRATA_BOOTSTRAP_TOKEN must be at least \(TokenSecret.minimumLength) characters")
        }
        return .tokens(bootstrapSecret: bootstrap)
    }
}

/// The address `serve` was told to listen on cannot be had, said so that the fix is plain.
struct CannotListen: Error, CustomStringConvertible {
    let host: String
    let port: Int
    let errno: Int32

    var description: String {
        let why =
            switch errno {
            case EADDRINUSE: "something else listens there already (another `strata serve`?)"
            case EACCES: "this user may not listen on ports below 1024"
            default: "it is not an address of this machine"
            }
        return "cannot listen on \(host):\(port): \(why); choose another with --host/--port (STRATA_HOST, STRATA_PORT)"
    }
}
