import HTTPTypes
import HummingbirdTesting
import StrataCore
import StrataTestSupport
import Testing

@Suite("Admin routes")
struct AdminRouteTests {
    /// A rebuild appends nothing, yet answers, as every write does, the log position its answer reflects:
    /// the one its fresh tables were built up to, here the head.
    @Test func aRebuildAnswersThePositionItsTablesWereBuiltUpTo() async throws {
        try await withTestApp { client, _ in
            _ = try await client.createDataset(namespace: "analytics", name: "orders")
            let position = HTTPField.Name("Strata-Position")!
            let head = try #require(try await client.send(.get, "/v1/events?limit=1").headers[position])
            let rebuilt = try await client.send(
                .post, "/v1/admin/projections/rebuild", json: #"{"names": ["dataset_states"]}"#)
            #expect(rebuilt.status == .ok, "\(rebuilt.text)")
            #expect(rebuilt.headers[position] == head)
            #expect(try rebuilt.json()["position"]?.intValue == Int(head))
        }
    }

    /// Each projection's rows are counted as PostgreSQL counts them, not the planner's estimate, which
    /// reads 0 until the table is first analyzed.
    @Test func theProjectionsListCountsTheRowsWritten() async throws {
        try await withTestApp { client, _ in
            for index in 0..<3 { _ = try await client.createDataset(namespace: "analytics", name: "set-\(index)") }
            var rows: Int?
            // PostgreSQL's statistics reach other sessions within a second or so of a commit.
            for _ in 0..<50 where (rows ?? 0) < 3 {
                let list = try await client.send(.get, "/v1/admin/projections").json()["projections"]?.arrayValue
                rows = list?.first { $0["name"]?.stringValue == "dataset_identities" }?["rows"]?.intValue
                if (rows ?? 0) < 3 { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(rows == 3)
        }
    }
}
