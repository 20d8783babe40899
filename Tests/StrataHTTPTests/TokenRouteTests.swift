import HTTPTypes
import HummingbirdTesting
import StrataTestSupport
import Testing

@Suite("Token routes")
struct TokenRouteTests {
    /// A revocation retried with its `Idempotency-Key` (the first answer was lost) answers its first 204,
    /// not 404 for a token that is already gone; without the key the retry is 404.
    @Test func aRevocationRetriedWithItsIdempotencyKeyAnswersAsTheFirstDid() async throws {
        try await withTestApp { client, _ in
            for name in ["keyed", "unkeyed"] { _ = try await client.granting(name, role: "reader") }
            let keyed = ["Idempotency-Key": "revoke-keyed-1"]
            let first = try await client.send(.delete, "/v1/admin/tokens/keyed", headers: keyed)
            #expect(first.status == .noContent)
            let retried = try await client.send(.delete, "/v1/admin/tokens/keyed", headers: keyed)
            #expect(retried.status == .noContent)
            #expect(
                retried.headers[HTTPField.Name("Strata-Position")!] == first.headers[HTTPField.Name("Strata-Position")!]
            )
            let events = try await client.send(.get, "/v1/events?type=TokenRevoked").json()["events"]?.arrayValue
            #expect(events?.count == 1, "revoked once")

            #expect(try await client.send(.delete, "/v1/admin/tokens/unkeyed").status == .noContent)
            #expect(try await client.send(.delete, "/v1/admin/tokens/unkeyed").status == .notFound)
        }
    }
}
