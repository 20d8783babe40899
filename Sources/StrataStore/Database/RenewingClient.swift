import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The serving pool's `PostgresClient`, replaced by a fresh one once it has failed to open a connection.
///
/// A fixed pool (``PostgresNIO/PostgresClient/Configuration/servingRequests()``) that failed to connect
/// cannot be trusted again. PostgresNIO 1.33 keeps retrying one of the connections it lost and drops the
/// others, so once PostgreSQL is back the pool holds fewer connections than its minimum, and grows back
/// one at a time while requests queue. Until it is whole, a new request that finds no idle connection
/// trips a `precondition` in the pool (`createNewDemandConnectionIfPossible()`), which ends the process:
/// a PostgreSQL restart under load could kill the server.
///
/// So the first failed connect retires the client: no new request goes to it, a fresh client takes over
/// once PostgreSQL accepts a connection again (until then requests wait, within their own deadlines),
/// and the old one is shut down when the last request that had it ends. A fresh client opens all its
/// connections at once, before any request can find it short.
public final class RenewingClient: Service, Sendable {
    private let renewal: Renewal?
    private let state: Mutex<State>
    private let retirements: AsyncStream<Generation>
    private let retired: AsyncStream<Generation>.Continuation

    private struct State {
        /// The client new requests go to; nil while a fresh one waits for PostgreSQL.
        var current: Generation?
        var renewals = 0
        var stopped = false
    }

    /// How a serving client renews itself.
    fileprivate struct Renewal: Sendable {
        let configuration: PostgresClient.Configuration
        /// Where to check, on one connection, that PostgreSQL accepts connections again.
        let endpoint: PostgresConnection.Configuration
        let logger: Logger
    }

    /// A fixed pool on `endpoint` that renews itself after a failed connect. Run it as a service.
    public init(serving endpoint: DatabaseEndpoint, logger: Logger) throws {
        let renewal = Renewal(
            configuration: endpoint.clientConfiguration.servingRequests(),
            endpoint: try endpoint.connectionConfiguration(), logger: logger)
        self.renewal = renewal
        (retirements, retired) = AsyncStream.makeStream()
        state = Mutex(State())
        state.withLock { $0.current = Generation(number: 0, renewal: renewal, owner: self) }
    }

    /// Every request served by `client`, never renewed: for tests and commands that run their own
    /// client. Running this service runs `client`; a lease does not wait for it to.
    public init(fixed client: PostgresClient) {
        renewal = nil
        (retirements, retired) = AsyncStream.makeStream()
        state = Mutex(State(current: Generation(number: 0, client: client, begun: true)))
    }

    /// How many times a fresh client has taken over.
    public var renewals: Int { state.withLock { $0.renewals } }

    /// Whether the client in service failed to connect and a fresh one waits for PostgreSQL.
    public var isWaitingForPostgreSQL: Bool { state.withLock { $0.current == nil && !$0.stopped } }

    /// Runs `body` on a connection of the client in service, waiting (cancellably) while a fresh one
    /// waits for PostgreSQL.
    public func withConnection<Result: Sendable>(
        _ body: @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let generation = try await clientInService()
        defer { generation.useEnded() }
        await generation.run.untilBegun()
        return try await generation.client.withConnection(body)
    }

    /// Returns once the client in service runs: see ``ClientRun``.
    public func untilRunning() async {
        guard let generation = state.withLock({ $0.current }) else { return }
        await generation.run.untilBegun()
    }

    private func clientInService() async throws -> Generation {
        while true {
            let (generation, stopped) = state.withLock { state -> (Generation?, Bool) in
                state.current?.useBegan()
                return (state.current, state.stopped)
            }
            if let generation { return generation }
            if stopped { throw DatabaseUnavailable(.unreachable) }
            try await eventLoopSleep(for: .milliseconds(20))
        }
    }

    public func run() async {
        let current = state.withLock { $0.current! }
        guard let renewal else {
            await current.run.run()
            return
        }
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await current.serve() }
                var lastStart = ContinuousClock.now
                for await failed in self.retirements {
                    renewal.logger.warning(
                        "the connection pool failed to connect to PostgreSQL; a fresh one takes over once PostgreSQL accepts connections",
                        metadata: ["pool": "\(failed.number)"])
                    // At most one fresh pool a second, however fast the fresh ones fail.
                    guard
                        (try? await eventLoopSleep(for: ContinuousClock.now.duration(to: lastStart + .seconds(1))))
                            != nil,
                        await Self.untilPostgreSQLAccepts(renewal)
                    else { break }
                    let fresh = Generation(number: failed.number + 1, renewal: renewal, owner: self)
                    group.addTask { await fresh.serve() }
                    self.state.withLock {
                        $0.current = fresh
                        $0.renewals += 1
                    }
                    lastStart = .now
                    Self.renewalCount.increment()
                    renewal.logger.notice("a fresh connection pool took over", metadata: ["pool": "\(fresh.number)"])
                }
                group.cancelAll()
            }
        }
        state.withLock { $0.stopped = true }
    }

    /// Retires the client numbered `number` if it is the one in service, and has the run loop renew it.
    fileprivate func connectFailed(client number: Int) {
        let retiring = state.withLock { state -> Generation? in
            guard let current = state.current, current.number == number, !state.stopped else { return nil }
            state.current = nil
            return current
        }
        guard let retiring else { return }
        retiring.retire()
        retired.yield(retiring)
    }

    /// Answers true once PostgreSQL accepts a connection, false if cancelled first.
    private static func untilPostgreSQLAccepts(_ renewal: Renewal) async -> Bool {
        while !Task.isCancelled {
            let connection = try? await withDeadline(.seconds(2)) {
                try await PostgresConnection.connect(configuration: renewal.endpoint, id: 0, logger: renewal.logger)
            } abandoned: { late in
                try? await late.close()
            }
            if let connection {
                try? await connection.close()
                return true
            }
            guard (try? await eventLoopSleep(for: .milliseconds(250))) != nil else { return false }
        }
        return false
    }

    static let renewalCount = Counter(label: "strata_db_pool_renewals_total")
}

/// One `PostgresClient` in the succession, and how many requests are using it.
private final class Generation: Sendable {
    let number: Int
    let run: ClientRun
    var client: PostgresClient { run.client }
    private let uses = Mutex<Int>(0)
    private let retirement: AsyncStream<Void>
    private let retiring: AsyncStream<Void>.Continuation

    /// The longest a retired client waits for its requests before it is shut down anyway: a request
    /// stuck on a dead connection is never answered (``BoundedPool`` answers its caller regardless).
    static let drainLimit: Duration = .seconds(60)

    init(number: Int, client: PostgresClient, begun: Bool = false) {
        self.number = number
        run = ClientRun(client, begun: begun)
        (retirement, retiring) = AsyncStream.makeStream()
    }

    convenience init(number: Int, renewal: RenewingClient.Renewal, owner: RenewingClient) {
        var logger = renewal.logger
        logger.handler = ConnectFailureWatch(wrapped: logger.handler) { [weak owner] in
            owner?.connectFailed(client: number)
        }
        self.init(
            number: number, client: PostgresClient(configuration: renewal.configuration, backgroundLogger: logger))
    }

    func useBegan() { uses.withLock { $0 += 1 } }
    func useEnded() { uses.withLock { $0 -= 1 } }

    func retire() { retiring.finish() }

    /// Runs the client until it has been retired and its last request has ended.
    func serve() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.run.run() }
            // Ends when retired, or when the service is cancelled.
            for await _ in retirement {}
            let deadline = ContinuousClock.now + Self.drainLimit
            while uses.withLock({ $0 }) > 0, ContinuousClock.now < deadline {
                guard (try? await eventLoopSleep(for: .milliseconds(100))) != nil else { break }
            }
            group.cancelAll()
        }
    }
}

/// Passes every message on, and calls `connectFailed` on PostgresNIO's "Connection creation failed":
/// its pool tells its user of a failed connect only in its background log. It listens at `info` whatever
/// the level passed on, so a server that logs only warnings still hears it.
private struct ConnectFailureWatch: LogHandler {
    var wrapped: any LogHandler
    let connectFailed: @Sendable () -> Void

    static let connectFailure: Logger.Message = "Connection creation failed"

    init(wrapped: any LogHandler, connectFailed: @escaping @Sendable () -> Void) {
        self.wrapped = wrapped
        self.connectFailed = connectFailed
    }

    func log(event: LogEvent) {
        if event.level == .info, event.message == Self.connectFailure { connectFailed() }
        if event.level >= wrapped.logLevel { wrapped.log(event: event) }
    }

    var logLevel: Logger.Level {
        get { min(wrapped.logLevel, .info) }
        set { wrapped.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }
}
