import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle

/// How far each read replica trails the primary, exported every second (four times a second while one is
/// left out of reads) for `/metrics`:
/// `strata_replica_lag_positions{replica="N"}` (log positions the primary has and the replica has not
/// replayed yet) and `strata_replica_replay_delay_seconds{replica="N"}` (how long ago the last
/// transaction it replayed committed; it grows while the primary is idle too, so read it with the
/// first). A replica that cannot be asked reports -1 for both.
///
/// It also tells the reads which replicas to leave alone, through each replica pool's
/// ``BoundedPool/reachability``: one that cannot be asked, or that has trailed the primary for
/// ``maximumReplayDelay`` without replaying a position (its WAL gone from the primary, say: it will
/// never catch up; see ``ReplayProgress``), is marked unreachable, and reads go to the others or the
/// primary until it answers and catches up again. Otherwise each read checks its own snapshot
/// (``CatalogReader``).
public struct ReplicaLag: Service {
    let primary: BoundedPool
    let replicas: [BoundedPool]
    let logger: Logger
    var interval: Duration = .seconds(1)
    /// PostgreSQL's own default for how long a replica may hold its replay back for a conflicting query
    /// (`max_standby_streaming_delay`): a replica behind for longer than this is stuck, not busy.
    public static let maximumReplayDelay: Duration = .seconds(30)

    public init(primary: BoundedPool, replicas: [BoundedPool], logger: Logger) {
        self.primary = primary
        self.replicas = replicas
        self.logger = logger
    }

    public func run() async throws {
        guard !replicas.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        let positions = replicas.indices.map {
            Gauge(label: "strata_replica_lag_positions", dimensions: [("replica", "\($0)")])
        }
        let delays = replicas.indices.map {
            Gauge(label: "strata_replica_replay_delay_seconds", dimensions: [("replica", "\($0)")])
        }
        var progress = replicas.map { _ in ReplayProgress() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let head = try? await Self.head(of: primary, logger: logger)
            for (index, replica) in replicas.enumerated() {
                do {
                    let (replicaHead, delay) = try await replica.withConnection { connection in
                        try await connection.rows(
                            """
                            SELECT (SELECT coalesce(max(global_position), 0) FROM events),
                                   coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float8
                            """, logger: logger
                        ).first!.decode((Int64, Double).self)
                    }
                    let behind = head.map { max(0, $0 - replicaHead) }
                    positions[index].record(behind ?? -1)
                    delays[index].record(delay)
                    let stalled = progress[index].observe(replayed: replicaHead, behind: behind ?? 0, at: .now)
                    mark(
                        index, stalled > Self.maximumReplayDelay ? .unreachable(.timedOut) : .reachable,
                        because: "\(behind ?? -1) positions behind, replayed nothing for \(stalled)")
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {
                    // It answers, but has not replayed the catalog's tables (a new replica, or one started
                    // with the primary's first migrations; or the wrong database): left out of reads, each
                    // of which would otherwise look for the tables and wait for it, until a check finds them.
                    positions[index].record(-1)
                    delays[index].record(-1)
                    mark(index, .unreachable(.unreachable), because: "it holds no catalog (yet): \(error)")
                } catch {
                    positions[index].record(-1)
                    delays[index].record(-1)
                    mark(index, .unreachable(.unreachable), because: "\(error)")
                }
            }
            // Sooner while one is left out, so that it serves again soon after it can.
            let pause = replicas.contains { $0.reachability.isUnreachable } ? interval / 4 : interval
            try? await cancelWhenGracefulShutdown { try await eventLoopSleep(for: pause) }
        }
    }

    private func mark(_ index: Int, _ state: DatabaseReachability.State, because reason: String) {
        let wasLeftOut = replicas[index].reachability.isUnreachable
        guard replicas[index].reachability.update(state) else { return }
        if case .unreachable = state {
            logger.warning(
                "a replica is left out of reads until it answers and catches up",
                metadata: ["replica": "\(index)", "reason": "\(reason)"])
        } else if wasLeftOut {
            logger.notice("a replica serves reads again", metadata: ["replica": "\(index)"])
        }
    }

    private static func head(of pool: BoundedPool, logger: Logger) async throws -> Int64 {
        try await pool.withConnection { connection in
            try await connection.rows("SELECT coalesce(max(global_position), 0) FROM events", logger: logger).first!
                .decode(Int64.self)
        }
    }
}

/// How long a replica has trailed the primary without replaying a position. Not the age of the last
/// transaction it replayed (`pg_last_xact_replay_timestamp()`): that grows while the primary is idle,
/// so the first write after a quiet half-minute made every replica look stuck until it replayed it.
public struct ReplayProgress: Sendable {
    private var lastReplayed: Int64?
    private var advancing: ContinuousClock.Instant?

    public init() {}

    /// Records what the replica has replayed and how far it trails at `now`; answers how long it has
    /// trailed without replaying anything new (zero when it is level with the primary, or moved on).
    public mutating func observe(replayed: Int64, behind: Int64, at now: ContinuousClock.Instant) -> Duration {
        defer { lastReplayed = replayed }
        if behind <= 0 || advancing == nil || replayed > (lastReplayed ?? .min) {
            advancing = now
            return .zero
        }
        return advancing.map { $0.duration(to: now) } ?? .zero
    }
}
