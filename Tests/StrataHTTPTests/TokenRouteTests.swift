import HTTPTypes
import HummingbirdTesting
import StrataCore
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

    /// Idempotency keys belong to a grant, not to its name: a name revoked and granted again, with a
    /// narrower scope, is not answered what the earlier grant stored — the write is decided afresh.
    @Test func aNameGrantedAgainIsNotAnsweredItsEarlierGrantsStoredWrites() async throws {
        try await withTestApp { admin, _ in
            let body = #"{"namespace": "finance", "name": "ledger"}"#
            let key = ["Idempotency-Key": "etl-1"]
            let wide = try await admin.granting("etl", role: "writer")
            let created = try await wide.send(.post, "/v1/datasets", json: body, headers: key)
            #expect(created.status == .created)
            #expect(try await wide.send(.post, "/v1/datasets", json: body, headers: key).text == created.text)

            #expect(try await admin.send(.delete, "/v1/admin/tokens/etl").status == .noContent)
            let narrow = try await admin.granting("etl", role: "writer", namespaces: ["sandbox"])
            let retried = try await narrow.send(.post, "/v1/datasets", json: body, headers: key)
            #expect(retried.status == .forbidden, "\(retried.status): \(retried.text)")
            #expect(!retried.text.contains("ledger"))
        }
    }

    /// The server, an unauthenticated caller and an operator at the command line append events under
    /// names of their own; a token by one of those names would pass for them in the audit trail.
    @Test func aTokenCannotTakeTheNameOfAnActorTheCatalogRecordsAsItself() async throws {
        try await withTestApp { admin, _ in
            for name in ["strata-serve", "Anonymous", "cli:root", "CLI:ops"] {
                let refused = try await admin.send(
                    .post, "/v1/admin/tokens", json: #"{"name": "\#(name)", "role": "admin"}"#)
                #expect(
                    refused.status == .unprocessableContent && refused.problemCode == "validation_failed", "\(name)")
                #expect(try refused.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == "/name")
            }
            #expect(try await admin.send(.get, "/v1/events?type=TokenCreated").json()["events"]?.arrayValue?.count == 1)
            _ = try await admin.granting("cli-runner", role: "reader")
        }
    }

    /// `café` and `café` (a combining accent) are two namespaces of the catalog, so a token may be
    /// granted both: they are not the same item twice.
    @Test func aTokenMayBeGrantedNamespacesThatOnlyLookAlike() async throws {
        try await withTestApp { admin, _ in
            let granted = try await admin.send(
                .post, "/v1/admin/tokens",
                json: #"{"name": "both", "role": "reader", "namespace": ["caf\u00e9", "cafe\u0301"]}"#)
            #expect(granted.status == .created, "\(granted.text)")
            let shown = try await admin.send(.get, "/v1/admin/tokens/both").json()
            #expect(shown["namespaces"]?.arrayValue?.count == 2, "\(shown)")
            let twice = try await admin.send(
                .post, "/v1/admin/tokens", json: #"{"name": "twice", "role": "reader", "namespace": ["ml", "ml"]}"#)
            #expect(twice.status == .unprocessableContent)
        }
    }

    /// `GET /v1/admin/tokens/{name}` answers the token as the list shows it, never its secret; once revoked
    /// it is 404, and as of a position before the revocation it is there again.
    @Test func oneTokenIsShownAsTheListShowsItUntilRevoked() async throws {
        try await withTestApp { client, _ in
            _ = try await client.granting("airflow-analytics", role: "writer", namespaces: ["analytics", "raw"])
            let shown = try await client.send(.get, "/v1/admin/tokens/airflow-analytics")
            #expect(shown.status == .ok)
            let listed = try await client.send(.get, "/v1/admin/tokens").json()["tokens"]?.arrayValue
            let entry = try #require(listed?.first { $0["name"]?.stringValue == "airflow-analytics" })
            #expect(try JSONValue.object(shown.json()) == entry)
            #expect(try shown.json()["namespaces"] == .array([.string("analytics"), .string("raw")]))
            #expect(try shown.json()["token"] == nil, "the secret is shown only when granted")
            let grantedAt = try #require(shown.headers[HTTPField.Name("Strata-Position")!])

            #expect(try await client.send(.delete, "/v1/admin/tokens/airflow-analytics").status == .noContent)
            let gone = try await client.send(.get, "/v1/admin/tokens/airflow-analytics")
            #expect(gone.status == .notFound)
            #expect(try gone.json()["code"] == .string("not_found"))
            let then = try await client.send(.get, "/v1/admin/tokens/airflow-analytics?as_of=\(grantedAt)")
            #expect(then.status == .ok)
            #expect(try await client.send(.get, "/v1/admin/tokens/nobody").status == .notFound)
        }
    }

    /// The scheme of `Authorization` is case-insensitive (RFC 9110 §11.1), the token is not; a grant's
    /// empty namespace list is refused for being empty, not for its type.
    @Test func theBearerSchemeIsReadInAnyCaseAndAnEmptyScopeIsNamedForWhatItLacks() async throws {
        try await withTestApp { client, _ in
            for scheme in ["Bearer", "bearer", "BEARER"] {
                let me = try await client.send(
                    .get, "/v1/me", headers: ["Authorization": "\(scheme) \(testAdminSecret)"])
                #expect(me.status == .ok, "\(scheme)")
            }
            let wrongCase = try await client.send(
                .get, "/v1/me", headers: ["Authorization": "Bearer \(testAdminSecret.uppercased())"])
            #expect(wrongCase.status == .unauthorized)
            #expect(
                try await client.send(.get, "/v1/me", headers: ["Authorization": "Basic eDp5"]).status == .unauthorized)

            let empty = try await client.send(
                .post, "/v1/admin/tokens", json: #"{"name": "x2", "role": "reader", "namespace": []}"#)
            #expect(empty.status == .unprocessableContent)
            #expect(
                try empty.json()["errors"]?.arrayValue?.first?["message"]?.stringValue == "must have at least 1 item")
        }
    }
}
