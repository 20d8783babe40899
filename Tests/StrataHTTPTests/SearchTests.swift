import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataCore
import StrataStore
import StrataTestSupport
import Testing

/// `GET /v1/search` on a labelled catalog: a few hundred datasets whose names, columns, tags and
/// descriptions share words on purpose, and a handful whose right answers are known.
@Suite("Search")
struct SearchTests {
    static let nouns = ["orders", "customers", "payments", "sessions", "clicks", "invoices", "products", "refunds"]
    static let suffixes = ["daily", "cleaned", "agg", "snapshot", "features", "sample", "history", "latest"]
    static let namespaces = ["raw", "analytics", "ml", "finance", "marketing"]
    static let columnPool = [
        "id", "customer_id", "order_id", "amount", "currency", "created_at", "country", "session_id",
    ]

    /// The labelled catalog: 320 ordinary datasets, and the needles. Answers the needles' ids by label.
    static func seed(_ client: TokenClient) async throws -> [String: String] {
        var index = 0
        for noun in nouns {
            for suffix in suffixes {
                for copy in 0..<5 {
                    let namespace = namespaces[index % namespaces.count]
                    let columns = (0..<3).map { columnPool[(index + $0 * 3) % columnPool.count] }
                    let schema = Set(columns).sorted().map { #"{"name": "\#($0)", "type": "string"}"# }
                    let tags = [noun, index % 3 == 0 ? "pii" : "internal"]
                    _ = try await client.createDataset(
                        namespace: namespace, name: "\(noun)_\(suffix)_\(copy)",
                        fields:
                            #""owner": "team-\#(index % 4)", "format": "parquet", "schema": [\#(schema.joined(separator: ", "))], "#
                            + #""tags": ["\#(tags[0])", "\#(tags[1])"], "#
                            + #""description": "\#(suffix) \#(noun) for customer churn and pii reporting, events by session""#
                    )
                    index += 1
                }
            }
        }
        var needles: [String: String] = [:]
        needles["name"] = try await client.createDataset(
            namespace: "ml", name: "customer_churn_scores",
            fields: #""owner": "team-ml", "description": "churn probability per customer""#)
        needles["column"] = try await client.createDataset(
            namespace: "finance", name: "settlements",
            fields: #""schema": [{"name": "iban_hash", "type": "string"}, {"name": "amount", "type": "decimal"}]"#)
        needles["tag"] = try await client.createDataset(
            namespace: "raw", name: "crm_contacts", fields: #""tags": ["pii-restricted"], "format": "csv""#)
        needles["phrase"] = try await client.createDataset(
            namespace: "analytics", name: "stream_compacted",
            fields: #""description": "late-arriving events deduplicated by session and watermark""#)
        needles["property"] = try await client.createDataset(
            namespace: "ml", name: "split_train", fields: #""properties": {"split_seed": 42}"#)
        return needles
    }

    static func ids(_ answer: [String: JSONValue]) -> [String] {
        (answer["results"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
    }

    @Test func exactNamesAndColumnsComeFirstAndTagsAndPhrasesInTheTopThree() async throws {
        try await withTestApp { client, _ in
            let needles = try await Self.seed(client)
            func search(_ query: String) async throws -> [String: JSONValue] {
                let encoded = query.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? query
                let response = try await client.send(.get, "/v1/search?q=\(encoded)")
                #expect(response.status == .ok, "\(query): \(response.text)")
                return try response.json()
            }
            #expect(Self.ids(try await search("customer_churn_scores")).first == needles["name"])
            #expect(Self.ids(try await search("ml/customer_churn_scores")).first == needles["name"])
            #expect(Self.ids(try await search("iban_hash")).first == needles["column"])
            #expect(Self.ids(try await search("pii-restricted")).prefix(3).contains(needles["tag"]!))
            #expect(Self.ids(try await search("late arriving events")).prefix(3).contains(needles["phrase"]!))
            #expect(Self.ids(try await search("split_seed")).prefix(3).contains(needles["property"]!))

            // What matched is said, field by field.
            let column = try await search("iban_hash")
            let matched = column["results"]?.arrayValue?.first?["matched"]?.arrayValue ?? []
            #expect(
                matched.contains { $0["field"]?.stringValue == "schema" && $0["text"]?.stringValue == "iban_hash" },
                "\(matched)")
            // Punctuation splits words as it does in the query: team-2 is the words team and 2 (not a
            // signed number), so every dataset owned by team-2 is found.
            // A word shorter than three characters matches whole words only: 2 is not a prefix of 21.
            _ = try await client.createDataset(namespace: "raw", name: "audit_log", fields: #""owner": "team-21""#)
            let owned = try await search("team-2")
            #expect(owned["facets"]?["owner"]?["team-21"] == nil)
            #expect(owned["facets"]?["owner"]?["team-2"]?.intValue == 80)
            #expect(try await search("team-21")["facets"]?["owner"]?.objectValue?.keys.sorted() == ["team-21"])
            #expect(Self.ids(try await search("raw/crm_contacts")).first == needles["tag"])
            // A prefix finds the word; every word must match; nothing matches nothing.
            #expect(Self.ids(try await search("settlem")) == [needles["column"]!])
            #expect(Self.ids(try await search("settlements nonexistentword")).isEmpty)
            #expect(Self.ids(try await search("---")).isEmpty)
        }
    }

    @Test func facetsCountEveryMatchAndPagesNeitherRepeatNorSkip() async throws {
        try await withTestApp { client, _ in
            _ = try await Self.seed(client)
            var seen: [String] = []
            var cursor: String?
            var facets: [String: JSONValue] = [:]
            repeat {
                let page = try await client.send(
                    .get, "/v1/search?q=orders&limit=7" + (cursor.map { "&cursor=\($0)" } ?? "")
                ).json()
                if cursor == nil { facets = page["facets"]?.objectValue ?? [:] }
                seen += Self.ids(page)
                cursor = page["next_cursor"]?.stringValue
                // A write between pages does not move the ranking: the cursor keeps its position.
                _ = try await client.createDataset(namespace: "raw", name: "orders_late_\(seen.count)")
            } while cursor != nil
            #expect(seen.count == 40 && Set(seen).count == 40, "\(seen.count)")
            let namespaces = facets["namespace"]?.objectValue ?? [:]
            #expect(namespaces.values.compactMap(\.intValue).reduce(0, +) == 40)
            #expect(facets["tag"]?["orders"]?.intValue == 40)
            #expect(facets["format"]?["parquet"]?.intValue == 40)
            #expect(facets["status"]?["draft"]?.intValue == 40)

            // Without `limit`, a page holds the list's 50: the 40 and the one written after each page.
            let whole = try await client.send(.get, "/v1/search?q=orders").json()
            #expect(Self.ids(whole).count == 46)
            #expect(whole["next_cursor"] == .null)
        }
    }

    @Test func searchRespectsAsOfScopesFiltersAndRefusesBadInput() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset(
                namespace: "finance", name: "ledger", fields: #""description": "general ledger entries""#)
            let before = try await client.send(.get, "/v1/search?q=ledger")
            let position = before.headers[HTTPField.Name("Strata-Position")!] ?? ""
            try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"description": "journal of postings"}"#)
            #expect(Self.ids(try await client.send(.get, "/v1/search?q=general").json()).isEmpty)
            let then = try await client.send(.get, "/v1/search?q=general&as_of=\(position)")
            #expect(Self.ids(try then.json()) == [id])

            let analyst = try await client.granting("analyst", role: "reader", namespaces: ["analytics"])
            _ = try await client.createDataset(namespace: "analytics", name: "ledger_summary")
            let scoped = try await analyst.send(.get, "/v1/search?q=ledger").json()
            #expect(Self.ids(scoped).count == 1)
            #expect(scoped["facets"]?["namespace"]?.objectValue?.keys.sorted() == ["analytics"])

            #expect(Self.ids(try await client.send(.get, "/v1/search?q=ledger&namespace=finance").json()) == [id])
            // A cursor naming a position past the log's end was given by no one: the cursor is refused, not
            // an as_of the client never sent.
            let future = Data("99999999.0".utf8).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            for uri in ["/v1/search?q=ledger&cursor=\(future)", "/v1/datasets?sort=name&cursor=\(future)"] {
                let refused = try await client.send(.get, uri)
                #expect(refused.status == .badRequest, "\(uri): \(refused.text)")
                #expect(try refused.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == "cursor", "\(uri)")
            }
            // Words with nothing to search for find nothing, and the answer keeps its shape.
            let nothing = try await client.send(.get, "/v1/search?q=%21%21").json()
            #expect(nothing["facets"]?.objectValue?.keys.sorted() == ["format", "namespace", "owner", "status", "tag"])
            // A page as large as the list's (API.md: search takes "the list's filters, limit, cursor").
            #expect(try await client.send(.get, "/v1/search?q=ledger&limit=1000").status == .ok)
            for bad in [
                "", "?q=", "?q=x&limit=0", "?q=x&limit=1001", "?q=x&format=xlsx", "?q=x&cursor=nope",
                "?q=x&status=gone",
            ] {
                let answer = try await client.send(.get, "/v1/search\(bad)")
                #expect(answer.status == .badRequest, "\(bad): \(answer.status)")
                #expect(try answer.json()["code"]?.stringValue == "invalid_parameter", "\(bad)")
            }
        }
    }

    /// Search takes the list's filters on who created a dataset, its use and the jobs writing it, and
    /// narrows as the list does.
    /// A word asked for twice finds nothing more, so it is asked for once: 256 times the same word costs
    /// what one does. More than 32 different words is refused, naming the parameter.
    @Test func aRepeatedWordIsAskedOnceAndTooManyWordsAreRefused() async throws {
        try await withTestApp { client, _ in
            try await client.createDataset(namespace: "analytics", name: "orders")
            let repeated = Array(repeating: "ord", count: 256).joined(separator: " ")
            let once = try await client.send(.get, "/v1/search?q=ord").json()["results"]?.arrayValue
            let many = try await client.send(
                .get, "/v1/search?q=\(repeated.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            #expect(many.status == .ok)
            #expect(try many.json()["results"]?.arrayValue == once && once?.count == 1)
            let words = (1...33).map { "w\($0)" }.joined(separator: "+")
            let refused = try await client.send(.get, "/v1/search?q=\(words)")
            #expect(refused.status == .badRequest && refused.problemCode == "invalid_parameter")
            #expect(try refused.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == "q")
        }
    }

    @Test func searchNarrowsByCreatorUseAndProducerAsTheListDoes() async throws {
        try await withTestApp { client, _ in
            let fields = #""description": "sieve sample""#
            let used = try await client.createDataset(namespace: "sieve", name: "used_table", fields: fields)
            let produced = try await client.createDataset(namespace: "sieve", name: "produced_table", fields: fields)
            let loader = try await client.granting("loader", role: "writer", namespaces: ["sieve"])
            let loaded = try await loader.createDataset(namespace: "sieve", name: "loaded_table", fields: fields)
            try await client.send(.post, "/v1/datasets/\(used)/versions/1/usages", json: #"{"consumer": "run-1"}"#)
            try await Task.sleep(for: .milliseconds(20))
            let cutoff = Timestamp.string(from: Date())
            try await client.send(
                .post, "/v1/datasets/\(produced)/versions/1/usages", json: #"{"consumer": "run-2"}"#)
            try await client.send(
                .post, "/v1/lineage",
                json: #"{"job": {"namespace": "spark", "name": "clean"}, "inputs": [{"dataset_id": "\#(used)"}], "#
                    + #""outputs": [{"dataset_id": "\#(produced)"}]}"#)

            func found(_ query: String) async throws -> Set<String> {
                let response = try await client.send(.get, "/v1/search?q=sieve&\(query)")
                #expect(response.status == .ok, "\(query): \(response.text)")
                return Set(Self.ids(try response.json()))
            }
            #expect(try await found("namespace=sieve") == [used, produced, loaded])
            #expect(try await found("created_by=loader") == [loaded])
            #expect(try await found("in_use=true") == [used, produced])
            #expect(try await found("used_since=\(cutoff)") == [produced])
            #expect(try await found("produced_by=spark/clean") == [produced])
            #expect(try await found("produced_by=spark/other").isEmpty)
            for bad in ["in_use=maybe", "used_since=yesterday", "produced_by=nojob"] {
                let answer = try await client.send(.get, "/v1/search?q=sieve&\(bad)")
                #expect(answer.status == .badRequest, "\(bad): \(answer.status)")
            }
        }
    }

    /// Versions that only refresh a dataset's data keep its words, and share one row of them; search
    /// as of any position still finds each version by its own words, whether they are new, kept, or
    /// back to earlier ones.
    @Test func versionsKeepingTheirWordsShareThemAndEachPositionFindsItsOwn() async throws {
        try await withTestApp { client, database in
            let id = try await client.createDataset(
                namespace: "finance", name: "ledger", fields: #""description": "general ledger entries""#)
            var positions: [Int] = []
            for patch in [
                #"{"row_count": 10}"#, #"{"description": "journal of postings"}"#,
                #"{"description": "general ledger entries"}"#, #"{"row_count": 20}"#,
            ] {
                let answer = try await client.send(.patch, "/v1/datasets/\(id)", json: patch)
                #expect(answer.status == .ok)
                positions.append(Int(answer.headers[HTTPField.Name("Strata-Position")!] ?? "") ?? 0)
            }
            func found(_ word: String, asOf position: Int? = nil) async throws -> Bool {
                let asOf = position.map { "&as_of=\($0)" } ?? ""
                return Self.ids(try await client.send(.get, "/v1/search?q=\(word)\(asOf)").json()) == [id]
            }
            // What each word finds at the head and as of each version: the words of the version then.
            var finds: [String] = []
            for position in [nil] + positions.prefix(3).map(Optional.some) {
                let general = try await found("general", asOf: position)
                let journal = try await found("journal", asOf: position)
                finds.append(general ? (journal ? "both" : "general") : (journal ? "journal" : "neither"))
            }
            #expect(finds == ["general", "general", "journal", "general"])

            let rows = try await database.client.query(
                """
                SELECT (SELECT count(*) FROM versions WHERE dataset_id = \(UUID(uuidString: id)!)),
                       (SELECT count(*) FROM dataset_words WHERE dataset_id = \(UUID(uuidString: id)!))
                """, logger: database.logger
            ).collect()
            let (versions, words) = try #require(rows.first).decode((Int, Int).self)
            #expect(versions == 5 && words == 2, "\(versions) versions, \(words) sets of words")
            let maintenance = ProjectionMaintenance(
                client: database.client, catalog: try .bundled(), logger: database.logger)
            #expect(try await maintenance.verify().isClean)
        }
    }

    /// Letters beyond ASCII are lowercased on both sides: what is indexed and what is searched for.
    @Test func wordsInAnyCaseFindEachOtherBeyondASCII() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset(
                namespace: "bakery", name: "Éclairs", fields: #""description": "Crème brûlée and ÇA VA counts""#)
            for query in ["éclairs", "ÉCLAIRS", "CRÈME", "brûl", "ça"] {
                let found = Self.ids(
                    try await client.send(
                        .get, "/v1/search?q=\(query.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
                    ).json())
                #expect(found == [id], "\(query)")
            }
        }
    }
}
