import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle

/// How far each read replica trails the primary, exported every second for `/metrics`:
/// `strata_replica_lag_positions{replica="N"}` (log positions the primary has and the replica has not
/// replayed yet) and `strata_replica_replay_delay_seconds{replica="N"}` (how long ago the last
/// transaction it replayed committed; it grows while the primary is idle too, so read it with the
/// first). A replica that cannot be asked reports -1 for both. Routing does not depend on these: each
/// read checks its own snapshot (``CatalogReader``).
public struct ReplicaLag: Service {
    let primary: BoundedPool
    let replicas: [BoundedPool]
    let logger: Logger
    var interval: Duration = .seconds(1)

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
                    positions[index].record(head.map { max(0, $0 - replicaHead) } ?? -1)
                    delays[index].record(delay)
                } catch {
                    positions[index].record(-1)
                    delays[index].record(-1)
                    logger.debug(
                        "cannot ask a replica how far it is", metadata: ["replica": "\(index)", "error": "\(error)"])
                }
            }
            try? await cancelWhenGracefulShutdown { try await eventLoopSleep(for: interval) }
        }
    }

    private static func head(of pool: BoundedPool, logger: Logger) async throws -> Int64 {
        try await pool.withConnection { connection in
            try await connection.rows("SELECT coalesce(max(global_position), 0) FROM events", logger: logger).first!
                .decode(Int64.self)
        }
    }
}
