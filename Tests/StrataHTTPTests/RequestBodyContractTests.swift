import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import StrataCore
import StrataTestSupport
import Testing

/// The server's body rules (`RequestSchemas`) and `Schemas/requests/*.json` must agree: the same bytes go
/// to `Tests/validate-json.py` and to the router, and the verdicts must match. A body the schema refuses
/// is answered 422 `validation_failed` with field errors and appends nothing; a body the schema accepts is
/// never refused as malformed (a domain answer such as 404, 409 or 422 `publish_check_failed` is fine).
@Suite("Request bodies: server and JSON Schemas agree")
struct RequestBodyContractTests {
    @Test func theServerAndTheSchemasGiveEveryBodyTheSameVerdict() async throws {
        let corpus = Self.corpus()
        let verdicts = try SchemaValidator.validate(corpus.map { (schema: $0.endpoint.schema, instance: $0.json) })
        try #require(verdicts.count == corpus.count)
        for endpoint in Endpoint.allCases {
            let mine = zip(corpus, verdicts).filter { $0.0.endpoint == endpoint }
            #expect(mine.contains { $0.1.isValid }, "the corpus has no valid \(endpoint) body")
            #expect(mine.contains { !$0.1.isValid }, "the corpus has no invalid \(endpoint) body")
        }
        for verdict in verdicts where verdict.error != nil {
            Issue.record("validate-json.py could not check line \(verdict.line): \(verdict.error ?? "")")
        }

        try await withTestApp { client, _ in
            for (body, verdict) in zip(corpus, verdicts) where verdict.error == nil {
                let datasetsBefore = try await Self.datasetCount(client)
                let id = body.endpoint.needsDataset ? try await client.createDataset() : ""
                let historyBefore = id.isEmpty ? 0 : try await Self.historyCount(client, id)
                let response = try await client.send(
                    body.endpoint.method, body.endpoint.path(id), json: body.json,
                    contentType: body.endpoint == .patch ? "application/merge-patch+json" : "application/json"
                )
                let code = response.problemCode
                let errors = (try? response.json())?["errors"]?.arrayValue ?? []

                func disagree(_ what: String) {
                    Issue.record(
                        """
                        \(what)
                          endpoint: \(body.endpoint.method) \(body.endpoint.path(":id")) (\(body.endpoint.schema))
                          body: \(Self.abbreviated(body.json))
                          schema says: \(verdict.isValid ? "valid" : verdict.problems.joined(separator: "; "))
                          server says: \(response.status.code) \(Self.abbreviated(response.text))
                        """
                    )
                }

                if verdict.isValid {
                    if response.status.code >= 500 {
                        disagree("a body the schema accepts made the server fail")
                    } else if code == "validation_failed" || code == "invalid_json" {
                        disagree("the server refuses a body the schema accepts")
                    }
                } else {
                    if response.status != .unprocessableContent || code != "validation_failed" {
                        disagree("the server does not refuse a body the schema refuses with 422 validation_failed")
                    } else if errors.isEmpty {
                        disagree("the server refuses the body without naming a field error")
                    }
                    // A refused body appends nothing, to the dataset or anywhere else.
                    #expect(
                        try await Self.datasetCount(client) == datasetsBefore + (id.isEmpty ? 0 : 1),
                        "refused \(body.endpoint) body made a dataset: \(Self.abbreviated(body.json))"
                    )
                    if !id.isEmpty {
                        #expect(
                            try await Self.historyCount(client, id) == historyBefore,
                            "refused \(body.endpoint) body appended events: \(Self.abbreviated(body.json))"
                        )
                    }
                }
            }
        }
    }

    @Test func refusedCreatesOfBadlyFramedBodiesAppendNothing() async throws {
        try await withTestApp { client, _ in
            for refusal in Self.framingRefusals(valid: #"{"namespace": "analytics", "name": "orders"}"#) {
                let response = try await refusal.send(client, .post, "/v1/datasets")
                #expect(response.status == refusal.status, "\(refusal.name): \(response.status) \(response.text)")
                #expect(response.problemCode == refusal.code, "\(refusal.name): \(response.text)")
            }
            let list = try await client.send(.get, "/v1/datasets?status=all")
            #expect(list.status == .ok)
            #expect(try list.json()["datasets"]?.arrayValue?.isEmpty == true, "\(list.text)")
        }
    }

    /// A schema naming a column twice (byte for byte) is refused, naming the repeat — the one rule of a
    /// body that JSON Schema cannot say, so the corpus above leaves it out. Names that only look alike are
    /// two columns.
    @Test func aSchemaNamingAColumnTwiceIsRefusedNamingTheRepeat() async throws {
        try await withTestApp { client, _ in
            let twice =
                #"[{"name": "id", "type": "bigint"}, {"name": "amount", "type": "decimal"}, {"name": "id", "type": "text"}]"#
            let created = try await client.send(
                .post, "/v1/datasets", json: #"{"namespace": "raw", "name": "orders", "schema": \#(twice)}"#)
            #expect(created.status == .unprocessableContent && created.problemCode == "validation_failed")
            #expect(try created.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == "/schema/2/name")
            #expect(created.text.contains("repeats the name of item 0"), "\(created.text)")

            let id = try await client.createDataset(name: "orders")
            let patched = try await client.send(
                .patch, "/v1/datasets/\(id)", json: #"{"schema": \#(twice)}"#,
                contentType: "application/merge-patch+json")
            #expect(patched.status == .unprocessableContent, "\(patched.text)")
            #expect(try await Self.historyCount(client, id) == 2, "the refused edit appended nothing")

            let alike =
                #"[{"name": "caf\u00e9", "type": "text"}, {"name": "cafe\u0301", "type": "text"}, {"name": "ID", "type": "text"}, {"name": "id", "type": "text"}]"#
            let distinct = try await client.send(
                .patch, "/v1/datasets/\(id)", json: #"{"schema": \#(alike)}"#,
                contentType: "application/merge-patch+json")
            #expect(distinct.status == .ok, "\(distinct.text)")
        }
    }

    /// A media type is matched whatever its case, its parameters and the spaces and tabs around it.
    @Test func aContentTypeIsReadWithoutCaseParametersOrSpaces() async throws {
        try await withTestApp { client, _ in
            for (index, contentType) in [
                "application/json", "Application/JSON; charset=utf-8", " \tapplication/json ;charset=UTF-8",
                "application/json\t",
            ].enumerated() {
                var fields = HTTPFields()
                fields[.contentType] = contentType
                let response = try await client.execute(
                    uri: "/v1/datasets", method: .post, headers: fields,
                    body: ByteBuffer(string: #"{"namespace": "analytics", "name": "orders-\#(index)"}"#))
                #expect(response.status == .created, "\(contentType): \(response.status) \(response.text)")
            }
            for contentType in ["application/jsonx", "application/ json", "json", ";application/json"] {
                var fields = HTTPFields()
                fields[.contentType] = contentType
                let response = try await client.execute(
                    uri: "/v1/datasets", method: .post, headers: fields,
                    body: ByteBuffer(string: #"{"namespace": "analytics", "name": "refused"}"#))
                #expect(response.status == .unsupportedMediaType, "\(contentType): \(response.status)")
            }
            // A content coding the server does not undo is 415 too (RFC 9110), not JSON broken "at byte 0";
            // identity is no coding at all.
            for (coding, expected) in [("gzip", HTTPResponse.Status.unsupportedMediaType), ("identity", .created)] {
                var fields = HTTPFields()
                fields[.contentType] = "application/json"
                fields[.contentEncoding] = coding
                let response = try await client.execute(
                    uri: "/v1/datasets", method: .post, headers: fields,
                    body: ByteBuffer(string: #"{"namespace": "analytics", "name": "coded-\#(coding)"}"#))
                #expect(response.status == expected, "\(coding): \(response.status) \(response.text)")
            }
            var gzipped = HTTPFields()
            gzipped[.contentType] = "application/json"
            gzipped[.contentEncoding] = "gzip"
            let batch = try await client.execute(
                uri: "/api/v1/lineage/batch", method: .post, headers: gzipped, body: ByteBuffer(string: "[]"))
            #expect(batch.status == .unsupportedMediaType, "an OpenLineage batch reads its body itself, alike")
        }
    }

    @Test(arguments: [
        (HTTPRequest.Method.patch, "", #"{"description": "cleaned"}"#),
        (.post, "/publish", #"{"change_note": "q4"}"#),
        (.post, "/archive", #"{"reason": "cleanup"}"#),
        (.post, "/retire", #"{"reason": "replaced"}"#),
        (.post, "/clone", #"{"name": "orders-copy"}"#),
        (.post, "/versions/1/usages", #"{"consumer": "training-run-42"}"#),
    ])
    func refusedWritesOfBadlyFramedBodiesAppendNothing(method: HTTPRequest.Method, suffix: String, valid: String)
        async throws
    {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()
            let before = try await Self.historyCount(client, id)
            #expect(before == 2)
            for refusal in Self.framingRefusals(valid: valid) {
                let response = try await refusal.send(client, method, "/v1/datasets/\(id)\(suffix)")
                #expect(response.status == refusal.status, "\(refusal.name): \(response.status) \(response.text)")
                #expect(response.problemCode == refusal.code, "\(refusal.name): \(response.text)")
            }
            #expect(try await Self.historyCount(client, id) == before)
            #expect(try await Self.datasetCount(client) == 1)
            // The well-framed body itself is accepted, so the refusals above were about framing alone.
            let accepted = try await client.send(method, "/v1/datasets/\(id)\(suffix)", json: valid)
            #expect(accepted.status.code < 300, "\(accepted.status) \(accepted.text)")
        }
    }
}

// MARK: - framing

extension RequestBodyContractTests {
    /// A request refused before its body is read as JSON: not JSON, not sent as JSON, too large.
    struct FramingRefusal: Sendable {
        var name: String
        var body: String
        var contentType: String?
        var status: HTTPResponse.Status
        var code: String

        func send(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String) async throws
            -> TestResponse
        {
            var fields = HTTPFields()
            if let contentType { fields[.contentType] = contentType }
            return try await client.execute(uri: uri, method: method, headers: fields, body: ByteBuffer(string: body))
        }
    }

    static func framingRefusals(valid: String) -> [FramingRefusal] {
        let large = #"{"description": ""# + String(repeating: "x", count: 2 << 20) + #""}"#
        return [
            .init(
                name: "not JSON", body: "namespace=analytics&name=orders", contentType: "application/json",
                status: .badRequest, code: "invalid_json"),
            .init(
                name: "truncated JSON", body: String(valid.dropLast()), contentType: "application/json",
                status: .badRequest, code: "invalid_json"),
            .init(
                name: "trailing garbage", body: valid + "}", contentType: "application/json",
                status: .badRequest, code: "invalid_json"),
            // Readers disagree on which of the two values counts; the schema check in these tests keeps
            // the last, a Swift decoder the first.
            .init(
                name: "a member named twice", body: String(valid.dropLast()) + ", " + String(valid.dropFirst()),
                contentType: "application/json", status: .badRequest, code: "invalid_json"),
            .init(
                name: "text/plain", body: valid, contentType: "text/plain",
                status: .unsupportedMediaType, code: "unsupported_media_type"),
            .init(
                name: "form-encoded", body: valid, contentType: "application/x-www-form-urlencoded",
                status: .unsupportedMediaType, code: "unsupported_media_type"),
            .init(
                name: "no Content-Type", body: valid, contentType: nil,
                status: .unsupportedMediaType, code: "unsupported_media_type"),
            .init(
                name: "2 MiB", body: large, contentType: "application/json",
                status: .contentTooLarge, code: "payload_too_large"),
        ]
    }
}

// MARK: - the corpus

extension RequestBodyContractTests {
    enum Endpoint: String, CaseIterable, Sendable {
        case create, patch, publish, archive, retire, clone, usage

        var schema: String {
            switch self {
            case .create: return "requests/CreateDataset.json"
            case .patch: return "requests/PatchDataset.json"
            case .publish: return "requests/PublishDataset.json"
            case .archive: return "requests/ArchiveDataset.json"
            case .retire: return "requests/RetireDataset.json"
            case .clone: return "requests/CloneDataset.json"
            case .usage: return "requests/RecordUsage.json"
            }
        }

        var method: HTTPRequest.Method { self == .patch ? .patch : .post }

        /// Every endpoint but create acts on a dataset; each body gets a fresh one, so no body sees
        /// another's effects (a publish, a retire).
        var needsDataset: Bool { self != .create }

        func path(_ id: String) -> String {
            switch self {
            case .create: return "/v1/datasets"
            case .patch: return "/v1/datasets/\(id)"
            case .publish, .archive, .retire, .clone: return "/v1/datasets/\(id)/\(rawValue)"
            case .usage: return "/v1/datasets/\(id)/versions/1/usages"
            }
        }
    }

    struct Body: Sendable {
        var endpoint: Endpoint
        var json: String
    }

    static let uuid = "0193b6c2-7d4e-7a10-8b2c-3d4e5f607182"

    /// Valid and invalid bodies of every endpoint. Names are unique so that valid creates and clones
    /// succeed instead of meeting `name_taken`.
    static func corpus() -> [Body] {
        var counter = 0
        func unique() -> String {
            counter += 1
            return "contract-\(counter)"
        }
        func create(_ fields: String) -> Body {
            Body(endpoint: .create, json: #"{"namespace": "contract", "name": "\#(unique())", \#(fields)}"#)
        }
        func named(_ name: String) -> Body {
            Body(endpoint: .create, json: #"{"namespace": "contract", "name": "\#(name)"}"#)
        }
        func long(_ count: Int, _ character: String = "x") -> String { String(repeating: character, count: count) }

        let bodies: [Body] = [
            // create: names
            Body(endpoint: .create, json: #"{"namespace": "contract", "name": "minimal"}"#),
            Body(endpoint: .create, json: #"{"namespace": "postgres://db:5432", "name": "public/orders: q4 2024"}"#),
            named(long(1024, "\u{E9}")),
            named(long(1024, "\u{1F642}")),
            named(long(512, "e\u{301}")),
            named(long(1025)),
            named(""),
            named(#"tab\there"#),
            named(#"nul\u0000"#),
            named(#"del\u007f"#),
            named(#"ends with a newline\n"#),
            named(#"line\u2028separator and nbsp\u00a0"#),
            named(#"\u0085 next-line (C1)"#),
            Body(endpoint: .create, json: #"{"namespace": null, "name": "n"}"#),
            Body(endpoint: .create, json: #"{"namespace": "contract"}"#),
            Body(endpoint: .create, json: #"{"name": "no-namespace"}"#),
            Body(endpoint: .create, json: #"{"namespace": "contract", "name": 7}"#),
            // create: every field at once, and each field wrong
            create(
                #""owner": "team-data", "description": "orders", "location": "s3://b/o/", "format": "parquet", "#
                    + #""schema": [{"name": "id", "type": "bigint", "nullable": false, "description": null}], "#
                    + #""tags": ["a", "b"], "row_count": 0, "size_bytes": 1048576, "#
                    + #""properties": {"split": "train", "n": [1, 2.5, {"x": null}]}, "#
                    + #""parents": [{"dataset_id": "\#(uuid)", "version": 2}], "change_note": "first""#
            ),
            create(#""colour": "red""#),
            create(#""owner": 42"#),
            create(#""owner": null, "description": null, "location": null, "change_note": null"#),
            create(#""owner": """#),
            create(#""owner": "\#(long(256))""#),
            create(#""owner": "\#(long(257))""#),
            create(#""owner": "control\u0001character""#),
            create(#""owner": "nul\u0000inside""#),
            create(#""description": "\#(long(65537))""#),
            create(#""location": "\#(long(4097))""#),
            create(#""format": "Parquet""#),
            create(#""format": null"#),
            create(#""format": "delta""#),
            create(#""schema": null"#),
            create(#""schema": []"#),
            create(#""schema": {"id": "bigint"}"#),
            create(#""schema": [{"name": "id"}]"#),
            create(#""schema": [{"name": "", "type": "bigint"}]"#),
            create(#""schema": [{"name": "id", "type": ""}]"#),
            create(#""schema": [{"name": "id", "type": "decimal", "precision": 10}]"#),
            create(#""schema": [{"name": "id", "type": "bigint", "nullable": "yes"}]"#),
            create(#""schema": [{"name": "id", "type": "bigint", "nullable": 1}]"#),
            create(#""schema": [{"name": "id", "type": "bigint", "description": "\#(long(4097))"}]"#),
            create(#""schema": ["id"]"#),
            create(#""tags": ["a", "a"]"#),
            create(#""tags": [""]"#),
            create(#""tags": "a""#),
            create(#""tags": [1]"#),
            create(#""tags": null"#),
            create(#""tags": ["\#(long(257))"]"#),
            create(#""tags": [\#((0..<257).map { "\"t\($0)\"" }.joined(separator: ","))]"#),
            create(#""row_count": -1"#),
            create(#""row_count": 1.5"#),
            create(#""row_count": 1.0"#),
            create(#""row_count": 1e3"#),
            create(#""row_count": "10""#),
            create(#""row_count": true"#),
            create(#""row_count": null"#),
            create(#""row_count": 9223372036854775807"#),
            create(#""size_bytes": -0.5"#),
            create(#""properties": []"#),
            create(#""properties": null"#),
            create(#""properties": "x""#),
            create(#""parents": [{"dataset_id": "not-a-uuid", "version": 1}]"#),
            create(#""parents": [{"dataset_id": "0193b6c27d4e7a108b2c3d4e5f607182", "version": 1}]"#),
            create(#""parents": [{"dataset_id": "\#(uuid.uppercased())", "version": 1}]"#),
            create(#""parents": [{"dataset_id": "\#(uuid)", "version": 0}]"#),
            create(#""parents": [{"dataset_id": "\#(uuid)"}]"#),
            create(#""parents": [{"dataset_id": "\#(uuid)", "version": 1, "role": "input"}]"#),
            create(#""parents": [{"dataset_id": null, "version": 1}]"#),
            create(#""parents": null"#),
            create(#""change_note": "\#(long(4097))""#),
            Body(endpoint: .create, json: "[]"),
            Body(endpoint: .create, json: #""orders""#),
            Body(endpoint: .create, json: "null"),
            Body(endpoint: .create, json: "42"),

            // patch: a JSON Merge Patch, where null removes a field
            Body(endpoint: .patch, json: "{}"),
            Body(endpoint: .patch, json: #"{"description": "cleaned"}"#),
            Body(endpoint: .patch, json: #"{"schema": null, "tags": null, "properties": null, "parents": null}"#),
            Body(endpoint: .patch, json: #"{"owner": null, "format": null, "row_count": null, "size_bytes": null}"#),
            Body(endpoint: .patch, json: #"{"properties": {"a": null, "b": {"c": [1]}}}"#),
            Body(endpoint: .patch, json: #"{"change_note": "only a note"}"#),
            Body(endpoint: .patch, json: #"{"name": "renamed"}"#),
            Body(endpoint: .patch, json: #"{"namespace": "moved"}"#),
            Body(endpoint: .patch, json: #"{"version": 3}"#),
            Body(endpoint: .patch, json: #"{"tags": ["x", "x"]}"#),
            Body(endpoint: .patch, json: #"{"row_count": -5}"#),
            Body(endpoint: .patch, json: #"{"properties": [1]}"#),
            Body(endpoint: .patch, json: #"{"format": "xlsx"}"#),
            Body(endpoint: .patch, json: #"{"schema": [{"name": "id"}]}"#),
            Body(endpoint: .patch, json: #"{"parents": [{"dataset_id": "\#(uuid)", "version": -1}]}"#),
            Body(endpoint: .patch, json: "[]"),

            // publish
            Body(endpoint: .publish, json: "{}"),
            Body(endpoint: .publish, json: #"{"version": 1, "change_note": "q4"}"#),
            Body(endpoint: .publish, json: #"{"version": 1.0}"#),
            Body(endpoint: .publish, json: #"{"version": 2}"#),
            Body(endpoint: .publish, json: #"{"change_note": null}"#),
            Body(endpoint: .publish, json: #"{"version": 0}"#),
            Body(endpoint: .publish, json: #"{"version": -1}"#),
            Body(endpoint: .publish, json: #"{"version": 1.5}"#),
            Body(endpoint: .publish, json: #"{"version": "1"}"#),
            Body(endpoint: .publish, json: #"{"version": null}"#),
            Body(endpoint: .publish, json: #"{"change_note": 5}"#),
            Body(endpoint: .publish, json: #"{"force": true}"#),

            // archive
            Body(endpoint: .archive, json: "{}"),
            Body(endpoint: .archive, json: #"{"reason": null}"#),
            Body(endpoint: .archive, json: #"{"reason": ""}"#),
            Body(endpoint: .archive, json: #"{"reason": "\#(long(4096))"}"#),
            Body(endpoint: .archive, json: #"{"reason": "\#(long(4097))"}"#),
            Body(endpoint: .archive, json: #"{"reason": 1}"#),
            Body(endpoint: .archive, json: #"{"why": "cleanup"}"#),

            // retire
            Body(endpoint: .retire, json: #"{"reason": "replaced"}"#),
            Body(endpoint: .retire, json: #"{"reason": "replaced", "dry_run": true}"#),
            Body(endpoint: .retire, json: #"{"reason": "replaced", "dry_run": false}"#),
            Body(endpoint: .retire, json: #"{"reason": ""}"#),
            Body(endpoint: .retire, json: "{}"),
            Body(endpoint: .retire, json: #"{"reason": null}"#),
            Body(endpoint: .retire, json: #"{"reason": "x", "dry_run": "yes"}"#),
            Body(endpoint: .retire, json: #"{"reason": "x", "dry_run": null}"#),
            Body(endpoint: .retire, json: #"{"reason": "\#(long(4097))"}"#),

            // clone
            Body(endpoint: .clone, json: #"{"name": "\#(unique())"}"#),
            Body(endpoint: .clone, json: #"{"name": "\#(unique())", "namespace": "other/ns: x", "change_note": null}"#),
            Body(endpoint: .clone, json: "{}"),
            Body(endpoint: .clone, json: #"{"name": ""}"#),
            Body(endpoint: .clone, json: #"{"name": "a\nb"}"#),
            Body(endpoint: .clone, json: #"{"name": "\#(unique())", "namespace": null}"#),
            Body(endpoint: .clone, json: #"{"name": "\#(unique())", "owner": "team"}"#),
            Body(endpoint: .clone, json: #"{"name": "\#(long(1025))"}"#),

            // usages
            Body(endpoint: .usage, json: #"{"consumer": "training-run-42"}"#),
            Body(endpoint: .usage, json: #"{"consumer": "r", "kind": null, "properties": {"seed": 7}}"#),
            Body(endpoint: .usage, json: #"{"consumer": "r", "kind": ""}"#),
            Body(endpoint: .usage, json: #"{"consumer": "r", "properties": {"note": "nul\u0000inside"}}"#),
            Body(endpoint: .usage, json: #"{"consumer": ""}"#),
            Body(endpoint: .usage, json: "{}"),
            Body(endpoint: .usage, json: #"{"consumer": "r", "properties": null}"#),
            Body(endpoint: .usage, json: #"{"consumer": "r", "properties": []}"#),
            Body(endpoint: .usage, json: #"{"consumer": "r", "kind": "\#(long(257))"}"#),
            Body(endpoint: .usage, json: #"{"consumer": "\#(long(1025))"}"#),
            Body(endpoint: .usage, json: #"{"consumer": "r", "version": 1}"#),
        ]
        return bodies
    }
}

// MARK: - helpers

extension RequestBodyContractTests {
    static func datasetCount(_ client: some TestClientProtocol) async throws -> Int {
        let response = try await client.send(.get, "/v1/datasets?status=all&limit=1000")
        guard response.status == .ok, let datasets = try response.json()["datasets"]?.arrayValue else {
            throw Unexpected(what: "GET /v1/datasets answered \(response.status) \(response.text)")
        }
        return datasets.count
    }

    static func historyCount(_ client: some TestClientProtocol, _ id: String) async throws -> Int {
        let response = try await client.send(.get, "/v1/datasets/\(id)/history")
        guard response.status == .ok, let events = try response.json()["events"]?.arrayValue else {
            throw Unexpected(what: "GET /v1/datasets/\(id)/history answered \(response.status) \(response.text)")
        }
        return events.count
    }

    static func abbreviated(_ text: String) -> String {
        text.count <= 300 ? text : "\(text.prefix(150))… (\(text.count) characters) …\(text.suffix(60))"
    }

    struct Unexpected: Error, CustomStringConvertible {
        var what: String
        var description: String { what }
    }
}
