import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataCore
import StrataTestSupport
import Testing

@Suite("Listing datasets")
struct DatasetListingTests {
    @Test func filtersByNamespaceStatusTagOwnerCreatorAndText() async throws {
        try await withTestApp { client, _ in
            let sales = try await client.createDataset(
                namespace: "sales", name: "orders",
                fields:
                    #""owner": "team-a", "description": "Cleaned ORDERS", "tags": ["prod", "pii"], "location": "s3://x", "schema": [{"name": "id", "type": "int"}]"#
            )
            try await client.send(.post, "/v1/datasets/\(sales)/publish")
            let draft = try await client.createDataset(
                namespace: "sales", name: "returns", fields: #""owner": "team-b", "tags": ["dev"]"#)
            let archived = try await client.createDataset(
                namespace: "ml", name: "features", fields: #""owner": "team-a""#)
            try await client.send(.post, "/v1/datasets/\(archived)/archive")
            let byBob = try await client.granting("bob", role: "writer").send(
                .post, "/v1/datasets", json: #"{"namespace": "ml", "name": "labels"}"#)
            let bob = try byBob.json()["id"]?.stringValue ?? ""

            func ids(_ query: String) async throws -> Set<String> {
                let response = try await client.send(.get, "/v1/datasets?\(query)")
                #expect(response.status == .ok, "\(query): \(response.text)")
                return Set(try response.json()["datasets"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [])
            }
            #expect(try await ids("") == [sales, draft, bob], "the default is draft and published")
            #expect(try await ids("status=all") == [sales, draft, archived, bob])
            #expect(try await ids("status=archived") == [archived])
            #expect(try await ids("status=published,archived") == [sales, archived])
            #expect(try await ids("namespace=sales") == [sales, draft])
            #expect(try await ids("tag=pii") == [sales])
            #expect(try await ids("owner=team-a&status=all") == [sales, archived])
            #expect(try await ids("created_by=bob") == [bob])
            #expect(try await ids("q=orders") == [sales], "q matches the name")
            #expect(try await ids("q=cleaned") == [sales], "q matches the description, ignoring case")
            let bad = try await client.send(.get, "/v1/datasets?status=gone")
            #expect(bad.status == .badRequest && bad.problemCode == "invalid_parameter")
            let badCursor = try await client.send(.get, "/v1/datasets?cursor=!!")
            #expect(badCursor.status == .badRequest && badCursor.problemCode == "invalid_parameter")
        }
    }

    /// A listed dataset is its document, byte for byte, as a read by id gives it, with its usage added.
    /// An empty text filter would filter on the empty text, matching nothing (or, for `q`, everything)
    /// without a word: it is refused, naming the parameter, as is one over its length.
    @Test func anEmptyOrOverlongTextFilterIsRefused() async throws {
        try await withTestApp { client, _ in
            try await client.createDataset(namespace: "sales", name: "orders", fields: #""tags": ["prod"]"#)
            let overlong = String(repeating: "t", count: 257)
            for (path, parameter) in [
                ("/v1/datasets?namespace=", "namespace"), ("/v1/datasets?tag=", "tag"),
                ("/v1/datasets?owner=", "owner"),
                ("/v1/datasets?q=", "q"), ("/v1/datasets?created_by=", "created_by"),
                ("/v1/datasets?tag=\(overlong)", "tag"), ("/v1/datasets?namespace=sa%0Fles", "namespace"),
                ("/v1/search?q=orders&tag=", "tag"),
                ("/v1/search?q=orders&namespace=", "namespace"), ("/v1/search?q=orders&created_by=", "created_by"),
            ] {
                let response = try await client.send(.get, path)
                #expect(response.status == .badRequest, "\(path.prefix(60)): \(response.status)")
                #expect(try response.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == parameter)
            }
            let tagged = try await client.send(.get, "/v1/datasets?tag=prod&namespace=sales").json()
            #expect(tagged["datasets"]?.arrayValue?.count == 1)
        }
    }

    @Test func aListedDatasetIsItsDocumentWithItsUsage() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset(
                name: "huge",
                fields:
                    #""row_count": 9007199254740991, "description": "a/b \\u00e9", "properties": {"z": 1.5, "a": [true]}"#
            )
            let document = try await client.send(.get, "/v1/datasets/\(id)").text
            let list = try await client.send(.get, "/v1/datasets").text
            let withoutUsage = list.replacingOccurrences(of: #","last_used_at":null"#, with: "")
                .replacingOccurrences(of: #","usage_count":0"#, with: "")
            #expect(withoutUsage == #"{"datasets":["# + document + #"],"next_cursor":null}"#)
        }
    }

    /// Pages are cut by id, so while other clients create and edit datasets, a reader walking the pages
    /// sees every dataset that existed when it started exactly once.
    @Test func cursorPagesNeitherLoseNorRepeatAnItemWhileWritesHappen() async throws {
        try await withTestApp { client, _ in
            var existing: Set<String> = []
            for index in 0..<23 { existing.insert(try await client.createDataset(name: "set-\(index)")) }
            let seen = try await withThrowingTaskGroup(of: [String].self) { group in
                group.addTask {
                    for index in 0..<15 {
                        let id = try await client.createDataset(name: "new-\(index)")
                        try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"row_count": 1}"#)
                    }
                    return []
                }
                group.addTask {
                    var seen: [String] = []
                    var cursor: String?
                    repeat {
                        let query = "limit=4" + (cursor.map { "&cursor=\($0)" } ?? "")
                        let page = try await client.send(.get, "/v1/datasets?\(query)").json()
                        seen += page["datasets"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
                        cursor = page["next_cursor"]?.stringValue
                    } while cursor != nil
                    return seen
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(seen.count == Set(seen).count, "an item was repeated")
            #expect(existing.isSubset(of: Set(seen)), "an item was lost")
        }
    }

    @Test func sortsByNameTimeAndUseAndFiltersByUseFormatAndProducer() async throws {
        try await withTestApp { client, _ in
            let zeta = try await client.createDataset(namespace: "sorting", name: "zeta", fields: #""format": "csv""#)
            let alpha = try await client.createDataset(namespace: "sorting", name: "alpha")
            let mid = try await client.createDataset(namespace: "sorting", name: "mid")
            for consumer in ["run-1", "run-2"] {
                try await client.send(
                    .post, "/v1/datasets/\(alpha)/versions/1/usages", json: #"{"consumer": "\#(consumer)"}"#)
            }
            let between = try await client.send(.get, "/v1/datasets?namespace=sorting")
            try await Task.sleep(for: .milliseconds(20))
            let cutoff = Timestamp.string(from: Date())
            try await client.send(.post, "/v1/datasets/\(mid)/versions/1/usages", json: #"{"consumer": "run-3"}"#)
            try await client.send(
                .post, "/v1/lineage",
                json: #"{"job": {"namespace": "spark", "name": "clean"}, "inputs": [{"dataset_id": "\#(alpha)"}], "#
                    + #""outputs": [{"dataset_id": "\#(mid)"}]}"#)

            func ids(_ query: String) async throws -> [String] {
                let response = try await client.send(.get, "/v1/datasets?namespace=sorting&\(query)")
                #expect(response.status == .ok, "\(query): \(response.text)")
                return (try response.json()["datasets"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            }
            func allIDs(_ query: String) async throws -> [String] {
                let response = try await client.send(.get, "/v1/datasets?\(query)")
                #expect(response.status == .ok, "\(query): \(response.text)")
                return (try response.json()["datasets"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            }
            #expect(try await ids("sort=name") == [alpha, mid, zeta])
            #expect(try await ids("sort=-name") == [zeta, mid, alpha])
            #expect(try await ids("sort=created_at") == [zeta, alpha, mid])
            #expect(try await ids("sort=-last_used_at") == [mid, alpha, zeta], "latest use first, never used last")
            #expect(
                try await ids("sort=last_used_at") == [zeta, alpha, mid], "never used first, then the longest unused")
            #expect(Set(try await ids("in_use=true")) == [alpha, mid])
            #expect(try await ids("used_since=\(cutoff)") == [mid])
            #expect(try await ids("format=csv") == [zeta])
            #expect(try await ids("produced_by=spark/clean") == [mid])
            #expect(try await ids("produced_by=spark/other").isEmpty)

            // Each listed dataset says how much and how lately it was used, as of the answer's position.
            let listed = try await client.send(.get, "/v1/datasets?namespace=sorting&sort=name").json()
            let rows = listed["datasets"]?.arrayValue ?? []
            #expect(rows.map { $0["usage_count"]?.intValue } == [2, 1, 0])
            #expect(rows[2]["last_used_at"] == .null && rows[0]["last_used_at"]?.stringValue != nil)
            let position = between.headers[HTTPField.Name("Strata-Position")!] ?? ""
            let then = try await client.send(.get, "/v1/datasets?namespace=sorting&sort=name&as_of=\(position)").json()
            #expect(then["datasets"]?.arrayValue?.map { $0["usage_count"]?.intValue } == [2, 0, 0])

            // A sorted list pages at the position of its first page, whatever is written meanwhile.
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await client.send(
                    .get, "/v1/datasets?namespace=sorting&sort=-name&limit=1" + (cursor.map { "&cursor=\($0)" } ?? "")
                ).json()
                seen += (page["datasets"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
                cursor = page["next_cursor"]?.stringValue
                _ = try await client.createDataset(namespace: "sorting", name: "aaa-\(seen.count)")
            } while cursor != nil
            #expect(seen == [zeta, mid, alpha])

            // Across namespaces, by creation (walked from the log's creations): newest first, and as of a
            // position, only what existed there.
            let created = try await allIDs("sort=-created_at")
            #expect(created.count == 6 && Array(created.suffix(3)) == [mid, alpha, zeta], "\(created)")
            #expect(try await allIDs("sort=created_at&limit=2") == [zeta, alpha])
            #expect(try await allIDs("sort=-created_at&as_of=\(position)") == [mid, alpha, zeta])
            #expect(try await allIDs("sort=-created_at&status=retired").isEmpty)

            // By last change (walked from the log's events): the dataset edited last comes first, ties in
            // time go by id, and as of before the edit its last change was its creation, the oldest.
            try await Task.sleep(for: .milliseconds(5))
            let touched = try await client.send(.patch, "/v1/datasets/\(zeta)", json: #"{"description": "touched"}"#)
            let touchedAt = Int(touched.headers[HTTPField.Name("Strata-Position")!] ?? "") ?? 0
            let changed = try await client.send(.get, "/v1/datasets?sort=-updated_at").json()
            let keys = (changed["datasets"]?.arrayValue ?? []).map {
                ($0["updated_at"]?.stringValue ?? "", $0["id"]?.stringValue ?? "")
            }
            #expect(keys.count == 6 && keys.first?.1 == zeta, "\(keys)")
            #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 >= $1 }, "\(keys)")
            #expect(try await allIDs("sort=-updated_at&as_of=\(touchedAt - 1)").last == zeta)
            #expect(try await allIDs("sort=updated_at&as_of=\(touchedAt - 1)").first == zeta)
            // Every dataset here is in one namespace, so the walks answer as the namespace's sort does.
            for query in [
                "sort=-updated_at", "sort=-created_at", "sort=created_at", "sort=-updated_at&as_of=\(touchedAt - 1)",
                "sort=-created_at&as_of=\(position)", "sort=-updated_at&limit=2", "sort=updated_at",
            ] {
                #expect(try await allIDs(query) == ids(query), "\(query)")
            }

            for bad in ["sort=size", "in_use=maybe", "used_since=yesterday", "produced_by=nojob", "format=xlsx"] {
                let answer = try await client.send(.get, "/v1/datasets?\(bad)")
                #expect(answer.status == .badRequest, "\(bad)")
            }
        }
    }
}
