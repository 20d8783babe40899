import Foundation
import PostgresNIO
import StrataTestSupport
import Testing

@testable import StrataStore

@Suite("Statements prepared with SQL's PREPARE")
struct ExecutedStatementTests {
    /// The lineage walk's statements run this way; what they rely on: each connection prepares a
    /// statement once, whether or not a PREPARE already happened there, and every run answers every row.
    @Test func aStatementIsPreparedOncePerConnectionAndAnswersEveryRun() async throws {
        try await withTestDatabase(migrated: false) { database in
            let logger = database.logger
            let ids = (0..<300).map { _ in UUID() }
            let statement = Echo(ids: ids, times: 3)
            try await database.client.withConnections(2) { connections in
                let (first, second) = (connections[0], connections[1])
                for _ in 0..<3 {
                    let rows = try await first.rows(executing: statement, logger: logger)
                    #expect(rows == ids.flatMap { Array(repeating: $0, count: 3) })
                }
                let prepared = try await first.rows(
                    "SELECT count(*)::int FROM pg_prepared_statements WHERE name = \(Echo.name)", logger: logger)
                #expect(try prepared.first?.decode(Int.self) == 1)

                // A connection that prepared it by itself (a PREPARE whose answer was lost) is not asked
                // to prepare it again, which would fail, and inside a transaction fail the transaction.
                try await second.perform(
                    PostgresQuery(unsafeSQL: "PREPARE \(Echo.name)(uuid[], integer) AS \(Echo.sql)"), logger: logger)
                try await second.perform("BEGIN", logger: logger)
                let rows = try await second.rows(executing: Echo(ids: [ids[0]], times: 2), logger: logger)
                try await second.perform("COMMIT", logger: logger)
                #expect(rows == [ids[0], ids[0]])
            }
        }
    }

    private struct Echo: ExecutedStatement {
        static let name = "strata_test_echo"
        static let parameterTypes = ["uuid[]", "integer"]
        static let sql = "SELECT id FROM unnest($1) WITH ORDINALITY AS u(id, n), generate_series(1, $2) ORDER BY n"

        var ids: [UUID]
        var times: Int

        var arguments: [String] { [Self.literal(ids), "\(times)"] }

        func decodeRow(_ row: PostgresRow) throws -> UUID { try row.decode(UUID.self) }
    }
}
