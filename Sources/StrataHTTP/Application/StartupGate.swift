import Hummingbird
import Logging
import ServiceLifecycle
import StrataStore
import Synchronization

/// Whether the server may serve yet. `strata serve` listens at once, so that `/healthz` answers while it
/// waits for PostgreSQL and brings the schema up to date (an orchestrator must not kill a node that is
/// waiting correctly); until then `/readyz` says what it waits for, and every request that needs the
/// database is a 503 that says when to ask again.
public final class StartupGate: Sendable {
    private struct State {
        /// What the server still waits for; nil once it serves.
        var pending: String?
        /// Where it listens, once it does.
        var address: String?
    }

    private let state: Mutex<State>
    private let logger: Logger

    /// A gate already open: for a router driven without a server, on a database prepared beforehand.
    public static func open(logger: Logger) -> StartupGate { StartupGate(pending: nil, logger: logger) }

    init(pending: String?, logger: Logger) {
        state = Mutex(State(pending: pending))
        self.logger = logger
    }

    /// What the server still waits for, or nil once it serves.
    var pending: String? { state.withLock(\.pending) }

    func waitFor(_ stage: String) {
        state.withLock { $0.pending = stage }
    }

    /// The server took its address. Said at notice, so a server running with its request log off still
    /// says where it listens; "listening on" only once it serves, which is what scripts wait for.
    func bound(to address: String) {
        let pending = state.withLock { state -> String? in
            state.address = address
            return state.pending
        }
        if let pending {
            logger.notice("strata bound to \(address), answering health checks until \(pending) (then it serves)")
        } else {
            logger.notice("strata listening on \(address)")
        }
    }

    /// The database is ready: every request is served from now on.
    func openGate() {
        let address = state.withLock { state -> String? in
            state.pending = nil
            return state.address
        }
        if let address { logger.notice("strata listening on \(address)") }
    }
}

/// Refuses, until the gate opens, every request that needs the database; the open routes (health,
/// metrics, the API's description, the web UI's files) answer all along.
struct StartupGateMiddleware: RouterMiddleware {
    typealias Context = StrataRequestContext
    let gate: StartupGate

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if let pending = gate.pending, AccessRules.requiredRole(request, context) != nil {
            throw Problem(
                status: .serviceUnavailable, code: "database_unavailable",
                detail: "the server is starting: it waits until \(pending)",
                headers: [.retryAfter: "\(Problem.retryAfterSeconds)"])
        }
        return try await next(request, context)
    }
}

/// `/readyz` while starting says what the server waits for; afterwards it asks the database.
struct StartupReadiness: ReadinessProbe {
    let gate: StartupGate
    let database: any ReadinessProbe

    func unreadiness() async -> String? {
        if let pending = gate.pending { return "starting: waiting until \(pending)" }
        return await database.unreadiness()
    }
}

/// Gets the database ready once the server listens: waits for PostgreSQL (when told how), brings the
/// schema up to date, makes the first token, then opens the gate. A failure that waiting cannot mend (a
/// changed migration, a wrong password) ends the service group, and `serve` exits saying why.
struct StartupPreparation: Service {
    let gate: StartupGate
    let services: StrataServices
    let untilDatabaseConnects: (@Sendable () async throws -> Void)?

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                if let untilDatabaseConnects {
                    gate.waitFor("PostgreSQL takes connections")
                    try await untilDatabaseConnects()
                }
                gate.waitFor("the schema is up to date")
                try await services.prepareDatabase()
                try await services.bootstrapTokens()
                gate.openGate()
            }
        } catch  where Task.isShuttingDownGracefully || Task.isCancelled {
            // Stopped while waiting (a cancelled wait may throw other than CancellationError, a
            // connection lease's cancellation say): nothing was left half done.
            return
        }
        // A service that returns ends its group: this one stays until the server stops.
        try? await gracefulShutdown()
    }
}
