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
}
