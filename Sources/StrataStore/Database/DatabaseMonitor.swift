import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Watches whether the service can serve — PostgreSQL answers, and its schema is the one this build
/// expects — on a connection of its own, so that neither a busy pool nor a dead one hides the answer.
///
/// Run as a service, it asks every second, notices the loss of its connection at once, and while
/// PostgreSQL is down tries to reconnect four times a second. `/readyz` answers from its last answer
/// immediately, and the pool learns from it whether a slow lease means "down" (see
/// ``DatabaseReachability``). Without a connection of its own (tests that drive the router alone) it
/// asks through the pool, within the pool's bounds.
public actor DatabaseMonitor: Service {
    private let pool: BoundedPool
    private let endpoint: PostgresConnection.Configuration?
    private let migrations: MigrationRunner
    private let logger: Logger
    private let interval: Duration
    private var connection: PostgresConnection?
    /// The connect under way. The actor lets probes interleave at every `await`, and a `/readyz` probes
    /// while the run loop does: they share one connect rather than each opening a connection and the
    /// last one overwriting the others, which would be let go unclosed.
    private var opening: Task<PostgresConnection, any Error>?
    private var last: (at: ContinuousClock.Instant, unreadiness: String?)?
    private var hasBeenReady = false

    /// The monitor's own connection answers within this, or PostgreSQL counts as unavailable.
    static let probeDeadline: Duration = .seconds(2)

    /// - Parameter endpoint: where to open the monitor's own connection; without one (tests), it probes
    ///   through the pool and cannot tell the pool whether PostgreSQL is reachable.
    public init(
        pool: BoundedPool,
        endpoint: PostgresConnection.Configuration?,
        migrations: MigrationRunner,
        logger: Logger,
        interval: Duration = .seconds(1)
    ) {
        self.pool = pool
        self.endpoint = endpoint
        self.migrations = migrations
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let pause = await check() == nil ? interval : .milliseconds(250)
            try? await cancelWhenGracefulShutdown { try await eventLoopSleep(for: pause) }
        }
        // Awaited, not left to a callback: PostgresNIO traps on a connection let go before it is closed.
        try? await connection?.close()
    }

    /// Why the service cannot serve now, or nil when it can. The last answer serves while it is fresh
    /// and still agrees with what the connection says (a "ready" is stale once the connection closed);
    /// an "unready" serves only while PostgreSQL is known to be down, so a schema migrated or a
    /// database started a moment ago is seen at once.
    public func unreadiness() async -> String? {
        if let last, last.at.duration(to: .now) < interval * 2,
            (last.unreadiness == nil) != pool.reachability.isUnreachable
        {
            return last.unreadiness
        }
        return await check()
    }

    @discardableResult
    private func check() async -> String? {
        let unreadiness = await probe()
        if unreadiness != last?.unreadiness {
            // Until the first "ready", the server is starting (migrating, say): nothing has gone wrong.
            switch (unreadiness, hasBeenReady) {
            case (let reason?, true): logger.warning("not ready", metadata: ["reason": "\(reason)"])
            case (let reason?, false): logger.info("not ready yet", metadata: ["reason": "\(reason)"])
            case (nil, true): logger.notice("ready again")
            case (nil, false): logger.info("ready")
            }
        }
        hasBeenReady = hasBeenReady || unreadiness == nil
        last = (.now, unreadiness)
        return unreadiness
    }

    private func probe() async -> String? {
        let (migrations, logger) = (migrations, logger)
        do {
            let status: MigrationRunner.Status
            if endpoint != nil {
                let connection = try await ownConnection()
                status = try await withDeadline(Self.probeDeadline) {
                    try await migrations.status(on: connection, logger: logger)
                }
                pool.reachability.update(.reachable)
            } else {
                status = try await pool.withConnection { try await migrations.status(on: $0, logger: logger) }
            }
            return status.isCurrent ? nil : "migrations pending: \(status.pending.joined(separator: ", "))"
        } catch let error as MigrationError {
            return "database schema not usable: \(error)"
        } catch {
            if let outage = DatabaseUnavailable(error) {
                // A probe that only ran out of time says PostgreSQL is slow, not gone: a machine under
                // load must not turn every waiting request into a prompt 503. A lost or refused
                // connection is news the pool acts on.
                if endpoint != nil && outage.reason != .timedOut {
                    pool.reachability.update(.unreachable(outage.reason))
                }
                return "database unavailable: \(outage)"
            }
            return "database not usable: \(error)"
        }
    }

    /// The monitor's connection, opened anew if it is gone.
    private func ownConnection() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        if let opening { return try await opening.value }
        guard let endpoint else { throw DatabaseUnavailable(.unreachable) }
        let logger = logger
        let connect = Task {
            try await withDeadline(Self.probeDeadline) {
                try await PostgresConnection.connect(configuration: endpoint, id: 0, logger: logger)
            } abandoned: { late in
                try? await late.close()
            }
        }
        opening = connect
        defer { opening = nil }
        let opened = try await connect.value
        connection = opened
        let reachability = pool.reachability
        opened.closeFuture.whenComplete { _ in
            // Said at once, not at the next probe: requests waiting for a connection stop waiting.
            reachability.update(.unreachable(.connectionLost))
        }
        return opened
    }
}
