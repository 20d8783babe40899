import PostgresNIO
import StrataTestSupport
import Synchronization
import Testing

@testable import StrataStore

/// Reads whose connection dies under them: what PostgreSQL restarting, or an operator ending a session,
/// looks like from the pool. A read changes nothing, so it runs again on another connection.
@Suite("Reads that lose their connection")
struct LostConnectionTests {
    @Test func aReadWhoseBackendIsTerminatedIsAnsweredFromAnotherConnection() async throws {
        try await withTestDatabase(migrated: false) { database in
            let backends = Backends()
            let (answer, terminated) = try await database.terminatingSleepers {
                try await database.pool.reading { connection in
                    let pid = try await connection.rows("SELECT pg_backend_pid()", logger: database.logger)
                        .first!.decode(Int32.self)
                    if backends.add(pid) == 1 {
                        try await connection.perform("SELECT pg_sleep(60)", logger: database.logger)
                    }
                    return try await connection.rows("SELECT 41 + 1", logger: database.logger).first!.decode(Int.self)
                }
            }
            #expect(answer == 42)
            #expect(terminated == 1)
            let pids = backends.pids.withLock { $0 }
            #expect(pids.count == 2 && pids[0] != pids[1], "\(pids)")
        }
    }

    /// A read that ends its connection every time (as one that crashed PostgreSQL would) is not run
    /// forever: after its retries, its caller hears that the connection was lost, a 503.
    @Test func aReadThatLosesEveryConnectionGivesUpAfterItsRetries() async throws {
        try await withTestDatabase(migrated: false) { database in
            let (outcome, ran, terminated) = try await readTerminatedEachTime(on: database.pool, database)
            // An attempt may also be handed a connection whose end the pool has not read yet, and fail
            // before it runs: it counts, but terminates no backend.
            #expect(ran >= 2 && ran <= 1 + BoundedPool.retriesAfterLostConnection, "\(ran) attempts ran")
            #expect(terminated == ran)
            expectConnectionLost(outcome, "a read answered although every connection it had was terminated")
        }
    }

    /// A replica's pool runs no read again: the reader asks the primary at once instead of waiting out
    /// the replica's connect deadline.
    @Test func aPoolWithoutReadRetriesFailsAtTheFirstLostConnection() async throws {
        try await withTestDatabase(migrated: false) { database in
            let pool = BoundedPool(client: RenewingClient(fixed: database.client), deadlines: .patient, readRetries: 0)
            let (outcome, ran, terminated) = try await readTerminatedEachTime(on: pool, database)
            #expect(ran == 1 && terminated == 1)
            expectConnectionLost(outcome, "a read answered although its connection was terminated")
        }
    }

    /// A read that fails for its own reasons is not run again: only a lost connection says nothing
    /// about the read.
    @Test func aReadThatFailsOnItsOwnRunsOnce() async throws {
        try await withTestDatabase(migrated: false) { database in
            let backends = Backends()
            let outcome = await Result(catching: {
                try await database.pool.reading { connection in
                    backends.add(0)
                    try await connection.perform("SELECT 1 / 0", logger: database.logger)
                }
            })
            #expect(backends.pids.withLock { $0.count } == 1)
            guard case .failure(let error) = outcome else {
                Issue.record("a division by zero answered")
                return
            }
            #expect(DatabaseUnavailable(error) == nil, "\(error)")
        }
    }
}

/// Runs a read on `pool` that notes its backend and sleeps, while every sleeping backend is terminated:
/// its outcome, how many attempts of it ran, and how many backends were terminated.
private func readTerminatedEachTime(
    on pool: BoundedPool, _ database: TestDatabase
) async throws -> (outcome: Result<Void, any Error>, ran: Int, terminated: Int) {
    let backends = Backends()
    let (outcome, terminated) = try await database.terminatingSleepers {
        await Result(catching: {
            try await pool.reading { connection in
                let pid = try await connection.rows("SELECT pg_backend_pid()", logger: database.logger)
                    .first!.decode(Int32.self)
                backends.add(pid)
                try await connection.perform("SELECT pg_sleep(60)", logger: database.logger)
            }
        })
    }
    return (outcome, backends.pids.withLock { $0.count }, terminated)
}

/// Records an issue (`answered`) unless `outcome` failed because its connection was lost.
func expectConnectionLost<Success>(
    _ outcome: Result<Success, any Error>, _ answered: Comment, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard case .failure(let error) = outcome else {
        Issue.record(answered, sourceLocation: sourceLocation)
        return
    }
    #expect(DatabaseUnavailable(error)?.reason == .connectionLost, "\(error)", sourceLocation: sourceLocation)
}

/// The backends a read ran on, one per attempt.
private final class Backends: Sendable {
    let pids = Mutex<[Int32]>([])

    @discardableResult
    func add(_ pid: Int32) -> Int {
        pids.withLock {
            $0.append(pid)
            return $0.count
        }
    }
}
