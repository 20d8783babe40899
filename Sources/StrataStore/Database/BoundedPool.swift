import Metrics
import PostgresNIO
import Synchronization

/// How long a request waits on PostgreSQL before it gives up and answers that the database is
/// unavailable: no request may wait without bound because PostgreSQL restarted, stopped or hangs.
public struct DatabaseDeadlines: Sendable, Equatable {
    /// To get a connection while PostgreSQL is known to be unreachable: the pool keeps trying to open
    /// one, and a request stops waiting for it after this long.
    public var connect: Duration
    /// To get a connection while PostgreSQL is reachable but every pooled connection is busy.
    public var queue: Duration
    /// For the work done on a connection once it has one: a read, or an append batch and its commit. A
    /// connection that dies is noticed at once; this bounds a server that stops answering.
    public var work: Duration

    public init(connect: Duration, queue: Duration, work: Duration) {
        self.connect = connect
        self.queue = queue
        self.work = work
    }

    public static let standard = DatabaseDeadlines(
        connect: .milliseconds(1500), queue: .seconds(10), work: .seconds(30))
}

/// The connection pool as requests use it: every use bounded in time, and answered at once when its
/// connection dies.
///
/// The bound cannot come from cancelling the work: PostgresNIO does not cancel a running query, and a
/// query written to a connection that has just closed is never answered at all. So the work runs in a
/// task of its own, and whichever comes first — its result, its connection's end, or a deadline —
/// answers the caller. On a deadline the connection is closed, which makes PostgreSQL roll back whatever
/// transaction the work had open; work stuck on a dead connection is left to end with it.
public final class BoundedPool: Sendable {
    public let client: RenewingClient
    public let deadlines: DatabaseDeadlines
    /// Whether a slow lease is a busy pool or a database that is down.
    public let reachability: DatabaseReachability
    /// For each connection in use, the call to fail if it closes. One close callback is registered per
    /// connection, not per use: a pooled connection lives for thousands of uses.
    private let holders = Mutex<[ObjectIdentifier: Holder]>([:])

    private struct Holder {
        var connectionLost: (@Sendable () -> Void)?
    }

    /// How many times ``reading(_:)`` runs a read again whose connection was lost.
    public let readRetries: Int

    /// `readRetries`: ``retriesAfterLostConnection`` for the primary; none for a replica, since a read
    /// that a replica failed is the primary's to answer at once (see ``CatalogReader``), not after the
    /// replica's connect deadline.
    public init(
        client: RenewingClient,
        deadlines: DatabaseDeadlines = .standard,
        reachability: DatabaseReachability = DatabaseReachability(),
        readRetries: Int = BoundedPool.retriesAfterLostConnection
    ) {
        self.client = client
        self.deadlines = deadlines
        self.reachability = reachability
        self.readRetries = readRetries
    }

    /// A pool of `client`'s connections, which is never renewed (see ``RenewingClient/init(fixed:)``).
    public convenience init(client: PostgresClient, deadlines: DatabaseDeadlines = .standard) {
        self.init(client: RenewingClient(fixed: client), deadlines: deadlines)
    }

    /// The same pool, with another bound on the work done on a connection.
    public func allowing(work: Duration) -> BoundedPool {
        var deadlines = deadlines
        deadlines.work = work
        return BoundedPool(client: client, deadlines: deadlines, reachability: reachability, readRetries: readRetries)
    }

    /// Runs `body` on a pooled connection. Without one, it answers after `deadlines.connect` if
    /// PostgreSQL is unreachable, after `deadlines.queue` at most if it is only busy; once it has one,
    /// within `deadlines.work`, and at once if the connection dies.
    public func withConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let race = BoundedRace<Result>()
        let (deadlines, reachability) = (deadlines, reachability)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(continuation)
                let work = Task {
                    do {
                        let result = try await self.client.withConnection { connection in
                            guard race.leased(connection) else { throw DatabaseUnavailable(.unreachable) }
                            self.watch(connection, for: race)
                            PoolUsage.leased.increment()
                            defer {
                                PoolUsage.leased.decrement()
                                self.unwatch(connection)
                            }
                            do {
                                return try await body(connection)
                            } catch let error
                                where DatabaseUnavailable(error)?.reason == .connectionLost && !connection.isClosed
                            {
                                // PostgreSQL says it ends a session (57P01, 57P02) before it closes it: given
                                // back open, the connection would be the next caller's, and fail it too.
                                try? await connection.close().get()
                                throw error
                            }
                        }
                        race.finish(.success(result))
                    } catch {
                        race.finish(.failure(error))
                    }
                }
                // The deadlines run as event-loop callbacks, not as a sleeping task: every call has them,
                // and on Linux each `Task.sleep` leaves memory behind (see ``eventLoopSleep(for:)``).
                let alarm = Alarm()
                let started = ContinuousClock.now
                @Sendable func checkLease() {
                    if race.isLeased {
                        alarm.schedule(in: deadlines.work) {
                            race.finish(.failure(DatabaseUnavailable(.timedOut)), closingConnection: true)
                        }
                        return
                    }
                    if reachability.isUnreachable || started.duration(to: .now) >= deadlines.queue {
                        let reason: DatabaseUnavailable.Reason = reachability.isUnreachable ? .unreachable : .busy
                        if race.failIfNotLeased(DatabaseUnavailable(reason)) { work.cancel() }
                        return
                    }
                    alarm.schedule(in: .milliseconds(100), checkLease)
                }
                alarm.schedule(in: deadlines.connect, checkLease)
                race.onFinish { alarm.cancel() }
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// ``withConnection(_:)`` for work that changes nothing: a read whose connection is lost runs again on
    /// another, up to ``readRetries`` times.
    ///
    /// When PostgreSQL restarts, every pooled connection dies with it, and the pool learns of each death a
    /// few milliseconds later, when it reads the connection's end: reads that were under way, and reads
    /// handed a connection in those milliseconds, fail. Such a read is safe to run again, and the next
    /// attempt waits for a new connection within deadlines of its own (so a read that keeps losing its
    /// connection may take up to three times them in all): a restart that takes less than
    /// ``DatabaseDeadlines/connect`` is then a slow answer, not a 503. A deadline or an unreachable
    /// database ends the read as before.
    public func reading<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        var attempt = 0
        while true {
            do {
                return try await withConnection(body)
            } catch let error where attempt < readRetries && DatabaseUnavailable(error)?.reason == .connectionLost {
                attempt += 1
                PoolUsage.readsAgain.increment()
                try await eventLoopSleep(for: Self.pause(beforeRetry: attempt))
            }
        }
    }

    /// How long to wait before running work again after its connection was lost: 50 ms, then 200 ms.
    /// The pool learns that a connection died only once it reads the connection's end; asked again at
    /// once, it may hand out the same dead connection (on a busy machine, to every attempt: a clean-clone
    /// run lost all three of a commit probe's that way).
    public static func pause(beforeRetry attempt: Int) -> Duration {
        .milliseconds(50 << (2 * (max(1, attempt) - 1)))
    }

    /// How many times work that lost its connection, and is known to have changed nothing, runs again: a
    /// read on the primary here, a batch of writes in ``CatalogWriter``. Work that loses its connection
    /// every time (work that ends PostgreSQL itself, say) must not end it forever.
    public static let retriesAfterLostConnection = 2

    private func watch<Value>(_ connection: PostgresConnection, for race: BoundedRace<Value>) {
        let key = ObjectIdentifier(connection)
        let isNew = holders.withLock { holders in
            let isNew = holders[key] == nil
            holders[key] = Holder(connectionLost: { race.finish(.failure(DatabaseUnavailable(.connectionLost))) })
            return isNew
        }
        guard isNew else { return }
        connection.closeFuture.whenComplete { _ in
            let holder = self.holders.withLock { $0.removeValue(forKey: key) }
            holder?.connectionLost?()
        }
    }

    private func unwatch(_ connection: PostgresConnection) {
        let key = ObjectIdentifier(connection)
        holders.withLock { holders in
            if holders[key] != nil { holders[key] = Holder(connectionLost: nil) }
        }
    }
}

/// The first of a bounded database call's outcomes, delivered once.
private final class BoundedRace<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, any Error>?
        var connection: PostgresConnection?
        var finished = false
        var onFinish: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<Value, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func onFinish(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state in
            if state.finished { return true }
            state.onFinish = action
            return false
        }
        if runNow { action() }
    }

    /// Notes the connection the work got; false if the caller was already answered (the lease came too
    /// late), so the connection goes straight back to the pool.
    func leased(_ connection: PostgresConnection) -> Bool {
        state.withLock { state in
            if state.finished { return false }
            state.connection = connection
            return true
        }
    }

    /// Whether the work got its connection, or the call is over.
    var isLeased: Bool {
        state.withLock { $0.finished || $0.connection != nil }
    }

    /// Fails the call if it is still waiting for a connection; answers whether it did.
    func failIfNotLeased(_ error: DatabaseUnavailable) -> Bool {
        let waiting = state.withLock { !$0.finished && $0.connection == nil }
        if waiting { finish(.failure(error)) }
        return waiting
    }

    func finish(_ result: Result<Value, any Error>, closingConnection: Bool = false) {
        let taken = state.withLock {
            state -> (CheckedContinuation<Value, any Error>, PostgresConnection?, (@Sendable () -> Void)?)? in
            guard !state.finished, let continuation = state.continuation else { return nil }
            state.finished = true
            state.continuation = nil
            return (continuation, state.connection, state.onFinish)
        }
        guard let (continuation, connection, onFinish) = taken else { return }
        if closingConnection { connection?.close().whenComplete { _ in } }
        onFinish?()
        continuation.resume(with: result)
    }
}

/// One pending callback on an event loop at a time, replaced as a deadline moves on; once cancelled it
/// schedules nothing more.
private final class Alarm: Sendable {
    private let state = Mutex<(scheduled: Scheduled<Void>?, cancelled: Bool)>((nil, false))

    func schedule(in duration: Duration, _ body: @escaping @Sendable () -> Void) {
        let (seconds, attoseconds) = duration.components
        state.withLock { state in
            guard !state.cancelled else { return }
            state.scheduled = PostgresConnection.defaultEventLoopGroup.any()
                .scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000), body)
        }
    }

    func cancel() {
        let scheduled = state.withLock { state in
            state.cancelled = true
            return state.scheduled
        }
        scheduled?.cancel()
    }
}

/// How many pooled connections Strata holds right now. PostgresNIO keeps its pool's own numbers
/// private, so the pool's users count themselves here.
enum PoolUsage {
    static let leased = Meter(label: "strata_db_connections_in_use")
    /// Reads run again because their connection was lost (see ``BoundedPool/reading(_:)``).
    static let readsAgain = Counter(label: "strata_db_reads_retried_total")
}
