import PostgresNIO
import StrataTestSupport
import Synchronization
import Testing

@testable import StrataStore

@Suite("Which failures are PostgreSQL's, to retry")
struct DatabaseUnavailableTests {
    /// Two transactions that each wait for what the other holds: PostgreSQL ends one of them to break
    /// the deadlock. Nothing of it happened, and the same request again goes through, so a client is
    /// told to retry (a 503), not that the server failed (a 500).
    @Test func aDeadlockPostgreSQLBreaksIsAConflictToRetry() async throws {
        try await withTestDatabase(migrated: false) { database in
            let logger = database.logger
            try await database.client.perform("CREATE TABLE pair (n int PRIMARY KEY)", logger: logger)
            try await database.client.perform("INSERT INTO pair VALUES (1), (2)", logger: logger)
            // Each holds its first row before either asks for its second, however slow either is to start.
            let holding = Holding()
            let failures = try await database.makeClient().whileRunning { other in
                await withTaskGroup(of: (any Error)?.self) { group in
                    for (client, first, second) in [(database.client, 1, 2), (other, 2, 1)] {
                        group.addTask {
                            do {
                                try await client.transaction(logger: logger) { connection in
                                    try await connection.perform(
                                        "UPDATE pair SET n = n WHERE n = \(first)", logger: logger)
                                    holding.rows.withLock { $0 += 1 }
                                    let deadline = ContinuousClock.now + .seconds(60)
                                    while holding.rows.withLock({ $0 }) < 2, ContinuousClock.now < deadline {
                                        try await Task.sleep(for: .milliseconds(10))
                                    }
                                    try await connection.perform(
                                        "UPDATE pair SET n = n WHERE n = \(second)", logger: logger)
                                }
                                return nil
                            } catch {
                                return error
                            }
                        }
                    }
                    return await group.compactMap { $0 }.reduce(into: []) { $0.append($1) }
                }
            }
            #expect(failures.count == 1, "\(failures)")
            #expect(failures.first.flatMap(DatabaseUnavailable.init)?.reason == .conflict, "\(failures)")
        }
    }
}

/// How many of the test's transactions hold their first row.
private final class Holding: Sendable {
    let rows = Mutex(0)
}
