import EmbeddedPostgres
import Logging
import NIOPosix
import ServiceLifecycle
import StrataStore

/// Keeps the embedded PostgreSQL of `strata serve` running: once a second it looks whether the server
/// runs, and starts it again if it crashed or was killed, as a process supervisor would restart a
/// database it runs. Without it, the server answered 503 until someone restarted it by hand.
///
/// Only the process that owns the cluster restarts it (a guest leaves that to its owner). Connections
/// come back by themselves: the connection pool renews itself once PostgreSQL accepts them again.
struct EmbeddedSupervisor: Service {
    let cluster: EmbeddedPostgres
    let logger: Logger
    /// How often to look: a check reads `postmaster.pid` and signals a process, nothing more.
    var interval: Duration = .seconds(1)
    /// How long to wait after a start that failed (a full disk, say) before trying again.
    var afterFailure: Duration = .seconds(5)

    func run() async throws {
        // A service that returns ends the whole group: a guest's supervisor waits for the shutdown.
        guard cluster.isOwner else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            while (try? await eventLoopSleep(for: interval)) != nil {
                guard !cluster.isServerRunning else { continue }
                do {
                    // pg_ctl and the wait for readiness block: on NIO's thread pool, not a cooperative thread.
                    _ = try await NIOThreadPool.singleton.runIfActive { try cluster.restartIfDown() }
                } catch {
                    logger.error(
                        "the embedded PostgreSQL did not start again; trying again shortly",
                        metadata: ["error": "\(error)"])
                    guard (try? await eventLoopSleep(for: afterFailure)) != nil else { return }
                }
            }
        }
    }
}
