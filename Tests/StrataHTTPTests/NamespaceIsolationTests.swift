import EmbeddedPostgres
import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataCore
import StrataTestSupport
import Testing

/// A token scoped to a namespace sees that namespace only: every read path hides the others (not even
/// their names leak), lineage and impact show them as bare ids, and writes into them are refused.
@Suite("Namespace isolation")
struct NamespaceIsolationTests {
    /// Two teams' datasets, joined by lineage both ways: alpha feeds beta, beta feeds alpha.
    struct Catalog {
        var alpha1: String, alpha3: String, beta1: String, beta2: String
        /// The log's position once everything was written.
        var position: Int
        /// Names only alpha's own records hold. (The job of lineage *into* beta is beta's record, and
        /// shown; the job of lineage into alpha is not.)
        static let alphaWords = ["alpha\"", "alpha/", "secret-orders", "team-alpha", "beta-to-alpha"]
    }

    static func seed(_ admin: TokenClient) async throws -> Catalog {
        let fields = #""owner": "team-alpha", "location": "s3://a/", "schema": [{"name": "id", "type": "bigint"}]"#
        let alpha1 = try await admin.createDataset(namespace: "alpha", name: "secret-orders", fields: fields)
        let alpha3 = try await admin.createDataset(namespace: "alpha", name: "secret-orders-mirror", fields: fields)
        let beta1 = try await admin.createDataset(namespace: "beta", name: "orders-b")
        let beta2 = try await admin.createDataset(namespace: "beta", name: "orders-b-daily")
        for id in [alpha1, alpha3, beta1, beta2] { try await admin.send(.post, "/v1/datasets/\(id)/publish") }
        for (from, to, job) in [
            (alpha1, beta1, "alpha-to-beta"), (beta1, beta2, "daily"), (beta1, alpha3, "beta-to-alpha"),
        ] {
            let recorded = try await admin.send(
                .post, "/v1/lineage",
                json:
                    #"{"job": {"namespace": "airflow", "name": "\#(job)"}, "inputs": [{"dataset_id": "\#(from)"}], "outputs": [{"dataset_id": "\#(to)"}]}"#
            )
            #expect(recorded.status == .created, "\(recorded.text)")
        }
        for id in [alpha1, beta1] {
            try await admin.send(.post, "/v1/datasets/\(id)/versions/1/usages", json: #"{"consumer": "run-1"}"#)
        }
        let head = try await admin.send(.get, "/v1/events?limit=1").headers[HTTPField.Name("Strata-Position")!]
        return Catalog(alpha1: alpha1, alpha3: alpha3, beta1: beta1, beta2: beta2, position: Int(head ?? "") ?? 0)
    }

    /// Whether `text` names anything of namespace alpha.
    static func leaks(_ text: String) -> Bool {
        Catalog.alphaWords.contains { text.contains($0) }
    }

    @Test func aScopedReaderSeesItsNamespaceOnlyOnEveryReadPath() async throws {
        try await withTestApp { admin, _ in
            let catalog = try await Self.seed(admin)
            let reader = try await admin.granting("beta-reader", role: "reader", namespaces: ["beta"])
            let hidden = catalog.alpha1

            // One dataset, by id or natural key, and everything under it: not found, naming nothing.
            for path in [
                "/v1/datasets/\(hidden)", "/v1/namespaces/alpha/datasets/secret-orders",
                "/v1/datasets/\(hidden)/versions",
                "/v1/datasets/\(hidden)/versions/1", "/v1/datasets/\(hidden)/usages", "/v1/datasets/\(hidden)/history",
                "/v1/datasets/\(hidden)/lineage", "/v1/datasets/\(hidden)/lineage?format=dot",
                "/v1/datasets/\(hidden)/impact", "/v1/datasets/\(hidden)?as_of=\(catalog.position)",
                "/v1/datasets/\(hidden)/versions?as_of=\(catalog.position)",
            ] {
                let response = try await reader.send(.get, path)
                #expect(response.status == .notFound, "\(path): \(response.status)")
                #expect(response.problemCode == "not_found", "\(path)")
                #expect(!Self.leaks(response.text), "\(path) leaks: \(response.text)")
            }
            // What the same paths show an unscoped reader: the refusals above are the scope's doing.
            let everyone = try await admin.granting("all-reader", role: "reader")
            #expect(try await everyone.send(.get, "/v1/datasets/\(hidden)").status == .ok)

            // Lists leave the namespace out, whatever the filters, now and as of the past.
            func listed(_ query: String) async throws -> Set<String> {
                let response = try await reader.send(.get, "/v1/datasets?\(query)")
                #expect(response.status == .ok && !Self.leaks(response.text), "\(query)")
                return Set(try response.json()["datasets"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [])
            }
            #expect(try await listed("") == [catalog.beta1, catalog.beta2])
            #expect(try await listed("status=all&limit=1000") == [catalog.beta1, catalog.beta2])
            #expect(try await listed("namespace=alpha").isEmpty)
            #expect(try await listed("q=secret").isEmpty)
            #expect(try await listed("as_of=\(catalog.position)") == [catalog.beta1, catalog.beta2])
            for sort in ["-created_at", "-updated_at", "last_used_at", "name"] {
                #expect(try await listed("sort=\(sort)") == [catalog.beta1, catalog.beta2], "\(sort)")
            }

            // The feed: the namespace's events only, and no grants of access.
            let feed = try await reader.send(.get, "/v1/events?limit=10000")
            let events = try feed.json()["events"]?.arrayValue ?? []
            #expect(!events.isEmpty)
            let streams = Set(events.compactMap { $0["stream_id"]?.stringValue })
            #expect(streams.isSubset(of: [catalog.beta1, catalog.beta2]), "\(streams)")
            #expect(!events.contains { $0["type"]?.stringValue?.hasPrefix("Token") == true })
            #expect(!Self.leaks(feed.text), "the feed leaks: \(feed.text)")
            let streamFeed = try await reader.send(.get, "/v1/events?stream_id=\(hidden)")
            #expect(try streamFeed.json()["events"]?.arrayValue?.isEmpty == true)

            // Lineage and impact: datasets of other namespaces as bare ids, in every direction.
            for query in ["direction=both", "direction=upstream", "direction=downstream", "version=1"] {
                let lineage = try await reader.send(.get, "/v1/datasets/\(catalog.beta1)/lineage?\(query)")
                #expect(lineage.status == .ok, "\(query)")
                #expect(!Self.leaks(lineage.text), "lineage \(query) leaks: \(lineage.text)")
                let nodes = try lineage.json()["nodes"]?.arrayValue ?? []
                let bare = nodes.filter {
                    [catalog.alpha1, catalog.alpha3].contains($0["dataset_id"]?.stringValue ?? "")
                }
                #expect(!bare.isEmpty || query == "direction=downstream" || query == "direction=upstream")
                for node in bare {
                    #expect(Set(node.objectValue?.keys.map { $0 } ?? []) == ["dataset_id", "version", "distance"])
                }
            }
            let dot = try await reader.send(.get, "/v1/datasets/\(catalog.beta1)/lineage?format=dot")
            #expect(dot.text.contains(catalog.alpha1) && !Self.leaks(dot.text), "\(dot.text)")
            let impact = try await reader.send(.get, "/v1/datasets/\(catalog.beta1)/impact")
            #expect(impact.text.contains(catalog.alpha3) && !Self.leaks(impact.text), "\(impact.text)")
            let past = try await reader.send(
                .get, "/v1/datasets/\(catalog.beta1)/lineage?as_of=\(catalog.position)")
            #expect(past.status == .ok && !Self.leaks(past.text))
        }
    }

    @Test func aScopedWriterCannotReachOrCreateIntoAnotherNamespace() async throws {
        try await withTestApp { admin, _ in
            let catalog = try await Self.seed(admin)
            let writer = try await admin.granting("beta-writer", role: "writer", namespaces: ["beta"])
            let hidden = catalog.alpha1
            let before = try await admin.send(.get, "/v1/events?limit=1").headers[HTTPField.Name("Strata-Position")!]

            let notFound: [(HTTPRequest.Method, String, String?)] = [
                (.patch, "/v1/datasets/\(hidden)", #"{"description": "mine now"}"#),
                (.post, "/v1/datasets/\(hidden)/publish", nil), (.post, "/v1/datasets/\(hidden)/archive", nil),
                (.post, "/v1/datasets/\(hidden)/retire", #"{"reason": "x"}"#),
                (.post, "/v1/datasets/\(hidden)/retire", #"{"reason": "x", "dry_run": true}"#),
                (.post, "/v1/datasets/\(hidden)/clone", #"{"name": "copy"}"#),
                (.post, "/v1/datasets/\(hidden)/versions/1/usages", #"{"consumer": "c"}"#),
                (
                    .post, "/v1/lineage",
                    #"{"inputs": [{"dataset_id": "\#(hidden)"}], "outputs": [{"dataset_id": "\#(catalog.beta2)"}]}"#
                ),
                (
                    .post, "/v1/lineage",
                    #"{"inputs": [{"dataset_id": "\#(catalog.beta2)"}], "outputs": [{"dataset_id": "\#(hidden)"}]}"#
                ),
            ]
            for (method, path, body) in notFound {
                let response = try await writer.send(method, path, json: body)
                #expect(response.status == .notFound, "\(method) \(path): \(response.status) \(response.text)")
                #expect(!Self.leaks(response.text), "\(path) leaks: \(response.text)")
            }
            let forbidden: [(String, String)] = [
                ("/v1/datasets", #"{"namespace": "alpha", "name": "planted"}"#),
                ("/v1/datasets/\(catalog.beta1)/clone", #"{"name": "copy", "namespace": "alpha"}"#),
                (
                    "/api/v1/lineage",
                    #"{"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z", "run": {"runId": "0193b6c2-7d4e-7a10-8b2c-3d4e5f607182"}, "job": {"namespace": "j", "name": "j"}, "inputs": [], "outputs": [{"namespace": "alpha", "name": "planted"}], "producer": "p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}"#
                ),
            ]
            for (path, body) in forbidden {
                let response = try await writer.send(.post, path, json: body)
                #expect(response.status == .forbidden, "\(path): \(response.status) \(response.text)")
                #expect(response.problemCode == "forbidden")
            }
            let after = try await admin.send(.get, "/v1/events?limit=1").headers[HTTPField.Name("Strata-Position")!]
            #expect(before == after, "a refused write appended something")

            // Its own namespace is its to change.
            let own = try await writer.send(.patch, "/v1/datasets/\(catalog.beta2)", json: #"{"description": "ok"}"#)
            #expect(own.status == .ok, "\(own.text)")
            let created = try await writer.send(.post, "/v1/datasets", json: #"{"namespace": "beta", "name": "new"}"#)
            #expect(created.status == .created)
            let dry = try await writer.send(
                .post, "/v1/datasets/\(catalog.beta1)/retire", json: #"{"reason": "x", "dry_run": true}"#)
            #expect(dry.status == .ok && dry.text.contains(catalog.alpha3) && !Self.leaks(dry.text), "\(dry.text)")

            // A hidden dataset's status is not the writer's to learn: retired, it stays in the dry run's
            // impact as in /impact, where comparing the two would otherwise tell.
            #expect(
                try await admin.send(.post, "/v1/datasets/\(catalog.alpha3)/retire", json: #"{"reason": "gone"}"#)
                    .status == .ok)
            let impact = try await writer.send(.get, "/v1/datasets/\(catalog.beta1)/impact")
            #expect(impact.text.contains(catalog.alpha3))
            let retiredHidden = try await writer.send(
                .post, "/v1/datasets/\(catalog.beta1)/retire", json: #"{"reason": "x", "dry_run": true}"#)
            #expect(retiredHidden.text.contains(catalog.alpha3), "\(retiredHidden.text)")
        }
    }
}

/// The live feed over a real socket: a scoped reader's stream carries its namespace's events only.
@Suite("Namespace isolation on the live feed")
struct LiveFeedIsolationTests {
    @Test func aScopedReadersStreamCarriesItsNamespaceOnly() async throws {
        try await withLiveApp { admin, _ in
            let catalog = try await NamespaceIsolationTests.seed(admin)
            let reader = try await admin.granting("beta-stream", role: "reader", namespaces: ["beta"])
            let port = try #require(admin.port)
            let token = try #require(reader.token)
            // A few seconds of the stream; on a machine busy with the rest of the suite, a few more.
            var output = ""
            var data: [Substring] = []
            for seconds in [4, 10, 20] where data.isEmpty {
                output = try await Task.detached {
                    try ProcessRunner.run([
                        "/usr/bin/curl", "-s", "-N", "--max-time", "\(seconds)", "-H", "Authorization: Bearer \(token)",
                        "http://127.0.0.1:\(port)/v1/events/stream",
                    ]).output
                }.value
                data = output.split(separator: "\n").filter { $0.hasPrefix("data: ") }
            }
            #expect(!data.isEmpty, "the stream carried nothing: \(output)")
            #expect(!NamespaceIsolationTests.leaks(output), "the stream leaks: \(output)")
            for line in data {
                let event = try JSONDecoder().decode([String: JSONValue].self, from: Data(line.dropFirst(6).utf8))
                #expect([catalog.beta1, catalog.beta2].contains(event["stream_id"]?.stringValue ?? ""), "\(line)")
            }
        }
    }
}
