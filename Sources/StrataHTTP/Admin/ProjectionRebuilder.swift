import Logging
import ServiceLifecycle
import StrataStore
import Synchronization

/// Rebuilds projections in the background while the server keeps serving from their old tables: the
/// start-up rebuild of projections whose definition file changed. The swap at the end of a rebuild is
/// one short transaction; until then nothing changes for readers or writers.
///
/// A rebuild stopped by PostgreSQL's unavailability (a restart, a lost connection) is tried again until
/// it lands. One that fails otherwise leaves the old tables serving; the failure is logged and
/// `GET /v1/admin/projections` keeps showing the projection's definition as not current.
public struct ProjectionRebuilder: Service {
    let maintenance: ProjectionMaintenance
    /// The projections asked for and not yet rebuilt, which `/readyz` names as catching up.
    let pending = PendingRebuilds()
    private let requests: AsyncStream<[String]>
    private let continuation: AsyncStream<[String]>.Continuation

    public init(maintenance: ProjectionMaintenance) {
        self.maintenance = maintenance
        (requests, continuation) = AsyncStream.makeStream()
    }

    /// The longest wait between two tries of a rebuild that PostgreSQL's unavailability stopped.
    static let longestPause: Duration = .seconds(30)

    /// Asks for the named projections to be rebuilt, after any rebuild asked for before.
    public func rebuild(_ names: [String]) {
        guard !names.isEmpty else { return }
        pending.add(names)
        continuation.yield(names)
    }

    public func run() async {
        let logger = maintenance.logger
        // On shutdown a rebuild under way is cancelled; it leaves the live tables as they were.
        for await names in requests.cancelOnGracefulShutdown() {
            logger.notice("rebuilding changed projections while serving", metadata: ["projections": "\(names)"])
            // PostgreSQL restarting under the rebuild is no reason to serve from the old tables until the
            // next start: it is tried again, a little later each time, and stays "catching up" meanwhile.
            var pause = Duration.seconds(1)
            while !Task.isShuttingDownGracefully {
                do {
                    let report = try await maintenance.rebuild(names)
                    logger.notice(
                        "changed projections rebuilt",
                        metadata: ["projections": "\(report.projections)", "position": "\(report.position)"])
                } catch let error where DatabaseUnavailable(error) != nil {
                    let wait = pause
                    logger.warning(
                        "rebuilding changed projections stopped: \(DatabaseUnavailable(error)!); trying again",
                        metadata: ["projections": "\(names)", "in": "\(wait)"])
                    try? await cancelWhenGracefulShutdown { try await eventLoopSleep(for: wait) }
                    pause = min(pause * 2, Self.longestPause)
                    continue
                } catch {
                    logger.error(
                        "rebuilding changed projections failed; their old tables keep serving",
                        metadata: ["projections": "\(names)", "error": "\(String(reflecting: error))"])
                }
                break
            }
            pending.remove(names)
        }
    }
}

/// The projections waiting for, or in, a rebuild while the server serves from their old tables.
public final class PendingRebuilds: Sendable {
    private let names = Mutex<[String: Int]>([:])

    func add(_ projections: [String]) {
        names.withLock { for name in projections { $0[name, default: 0] += 1 } }
    }

    func remove(_ projections: [String]) {
        names.withLock { names in
            for name in projections {
                names[name, default: 1] -= 1
                if names[name] == 0 { names.removeValue(forKey: name) }
            }
        }
    }

    public var projections: [String] { names.withLock { $0.keys.sorted() } }
}
