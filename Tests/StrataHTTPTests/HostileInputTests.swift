import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import StrataTestSupport
import Testing

/// No 500 for anything a client sends. Every parameter of every operation in the served document gets
/// NUL bytes, broken percent-encoding, over-long and out-of-range values, over a real socket: the
/// answer is a 4xx problem (400 for what PostgreSQL could not even store), never a 5xx, and the server
/// keeps answering.
@Suite("Hostile input")
struct HostileInputTests {
    /// Values as they go on the wire: already percent-encoded where they stand in a path or query.
    static let hostile: [(name: String, encoded: String, mustBe400: Bool)] = [
        ("NUL", "%00", true), ("NUL inside", "a%00b", true), ("broken escape", "%ZZ", false),
        ("invalid UTF-8", "%C3%28", true), ("lone surrogate", "%ED%A0%80", true),
        ("long", String(repeating: "x", count: 9000), false), ("huge number", "99999999999999999999999999", false),
        ("negative", "-1", false), ("float", "1e309", false), ("SQL", "%27%3B%20DROP%20TABLE%20events%3B--", false),
        ("control", "%01%1F%7F", false), ("right-to-left", "%E2%80%AE", false), ("empty", "", false),
    ]

    @Test func everyParameterRefusesHostileValuesWithoutAServerError() async throws {
        try await withLiveApp { admin, _ in
            let port = try #require(admin.port)
            let base = "http://127.0.0.1:\(port)"
            let yaml = try await admin.presenting(nil).execute(uri: "/openapi.yaml", method: .get)
            let json = try await admin.presenting(nil).execute(uri: "/openapi.json", method: .get)
            let operations = try ServedDocumentCheck.run(yaml: Data(buffer: yaml.body), json: Data(buffer: json.body))
                .operations
            let target = try await admin.createDataset(namespace: "hostile", name: "target")
            let tried = try await withHTTPClient { http in
                var tried = 0
                for operation in operations where operation.path != "/v1/events/stream" {
                    for parameter in operation.parameters where parameter.location != "header" {
                        for value in Self.hostile {
                            var path = operation.path.replacingOccurrences(of: "{id}", with: target)
                                .replacingOccurrences(of: "{n}", with: "1")
                                .replacingOccurrences(of: "{namespace}", with: "hostile")
                                .replacingOccurrences(of: "{name}", with: "target")
                            if parameter.location == "path" {
                                path = operation.path.replacingOccurrences(
                                    of: "{\(parameter.name)}", with: value.encoded
                                )
                                .replacingOccurrences(of: "{id}", with: target)
                                .replacingOccurrences(of: "{n}", with: "1")
                                .replacingOccurrences(of: "{namespace}", with: "hostile")
                                .replacingOccurrences(of: "{name}", with: "target")
                            } else {
                                path += "?\(parameter.name)=\(value.encoded)"
                            }
                            var request = HTTPClientRequest(url: base + path)
                            request.method = HTTPMethod(rawValue: operation.method.uppercased())
                            request.headers.add(name: "Authorization", value: "Bearer \(testAdminSecret)")
                            if operation.method != "get" && operation.method != "delete" {
                                request.headers.add(name: "Content-Type", value: "application/json")
                                request.body = .bytes(ByteBuffer(string: "{}"))
                            }
                            let response = try await http.execute(request, timeout: .seconds(30))
                            tried += 1
                            let context = "\(operation.method) \(operation.path), \(parameter.name) = \(value.name)"
                            #expect(response.status.code < 500, "\(context): \(response.status.code)")
                            if value.mustBe400 && parameter.location == "query" {
                                #expect(response.status == .badRequest, "\(context): \(response.status.code)")
                            }
                            // A parameter the document lists is one its operation takes.
                            let body = String(buffer: try await response.body.collect(upTo: 16 << 20))
                            #expect(!body.contains("is not a parameter of this operation"), "\(context): \(body)")
                        }
                    }
                }
                // Headers: a value too long for the server's limits, and control characters where a
                // header may carry them.
                for header in ["Idempotency-Key", "If-Match", "Strata-Actor", "X-Request-ID", "Last-Event-ID"] {
                    for value in [
                        String(repeating: "k", count: 20_000), "a\u{1}b", "\u{7F}", String(repeating: "é", count: 300),
                    ] {
                        var request = HTTPClientRequest(url: base + "/v1/datasets/\(target)/archive")
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(testAdminSecret)")
                        request.headers.add(name: header, value: value)
                        let status = (try? await http.execute(request, timeout: .seconds(30)))?.status.code
                        #expect((status ?? 400) < 500, "\(header) = \(value.prefix(20))…: \(status ?? 0)")
                    }
                }
                let alive = try await http.execute(HTTPClientRequest(url: base + "/healthz"), timeout: .seconds(10))
                #expect(alive.status == .ok)
                return tried
            }
            #expect(tried > 100, "only \(tried) hostile requests were sent")
        }
    }

    /// A caller's X-Request-ID carries a trace across services and into the events' metadata, unless it
    /// could pass in the log line for fields of its own (a space, a control character) or is too long:
    /// then the request gets an id of the server's making.
    @Test func aRequestIDThatCouldPassForLogFieldsIsReplaced() async throws {
        try await withTestApp { client, _ in
            let traced = "Root=1-5759e988;Parent=53995c3f:sampled"
            let kept = try await client.send(
                .post, "/v1/datasets", json: #"{"namespace": "raw", "name": "traced"}"#,
                headers: ["X-Request-ID": traced])
            #expect(kept.headers[HTTPField.Name("X-Request-ID")!] == traced)
            for forged in ["x actor=bootstrap status=204", String(repeating: "r", count: 129), "tab\there"] {
                let answered = try await client.send(.get, "/v1/me", headers: ["X-Request-ID": forged])
                let id = try #require(answered.headers[HTTPField.Name("X-Request-ID")!])
                #expect(id != forged && UUID(uuidString: id) != nil, "\(forged) → \(id)")
            }
            let events = try await client.send(.get, "/v1/events?type=DatasetCreated").json()["events"]?.arrayValue
            #expect(events?.first?["metadata"]?["request_id"]?.stringValue == traced)
        }
    }

    /// A query parameter the operation does not take (a misspelt filter would otherwise be ignored, and
    /// every dataset listed) is refused, naming it and what the operation takes; the web UI's files,
    /// outside the API, are left alone.
    @Test func aQueryParameterTheOperationDoesNotTakeIsRefusedNamingIt() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()
            for (uri, unknown) in [
                ("/v1/datasets?namepsace=finance", "namepsace"), ("/v1/datasets/\(id)?asof=1", "asof"),
                ("/v1/search?q=x&sort=name", "sort"), ("/v1/events?after=0&limt=5", "limt"),
                ("/v1/datasets/\(id)/history?after=2", "after"), ("//v1//datasets?namepsace=finance", "namepsace"),
            ] {
                let refused = try await client.send(.get, uri)
                #expect(refused.status == .badRequest && refused.problemCode == "invalid_parameter", "\(uri)")
                #expect(try refused.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == unknown, "\(uri)")
                #expect(refused.text.contains("it takes"), "\(uri): \(refused.text)")
            }
            let head = try await client.send(.head, "/v1/datasets?namepsace=finance")
            #expect(head.status == .badRequest, "HEAD takes what GET takes")
            #expect(try await client.send(.get, "/v1/datasets?namespace=finance&limit=5").status == .ok)
            #expect(try await client.send(.get, "/?from=bookmark").status == .ok)
        }
    }

    /// A broken percent-escape is passed on verbatim only in-process (HTTP clients re-encode it).
    @Test func aBrokenPercentEscapeIsRefused() async throws {
        try await withTestApp { client, _ in
            for path in ["/v1/datasets?q=%ZZ", "/v1/namespaces/a%ZZ/datasets/b", "/v1/events?actor=%E0%80"] {
                let response = try await client.send(.get, path)
                #expect(response.status == .badRequest, "\(path): \(response.status)")
                #expect(response.problemCode == "invalid_parameter")
            }
        }
    }

    @Test func aURIOverItsLimitIs414AndAHugeHeaderIsRefusedBeforeRouting() async throws {
        try await withLiveApp { admin, _ in
            let base = "http://127.0.0.1:\(try #require(admin.port))"
            try await withHTTPClient { http in
                var long = HTTPClientRequest(url: base + "/v1/datasets?q=" + String(repeating: "q", count: 27_000))
                long.headers.add(name: "Authorization", value: "Bearer \(testAdminSecret)")
                let response = try await http.execute(long, timeout: .seconds(30))
                #expect(response.status == .uriTooLong)
                // The longest natural key the contract allows still fits.
                let longest = String(repeating: "%F0%9F%99%82", count: 1024)
                var natural = HTTPClientRequest(url: base + "/v1/namespaces/\(longest)/datasets/\(longest)")
                natural.headers.add(name: "Authorization", value: "Bearer \(testAdminSecret)")
                #expect(try await http.execute(natural, timeout: .seconds(30)).status == .notFound)
                var huge = HTTPClientRequest(url: base + "/v1/datasets")
                huge.headers.add(name: "Authorization", value: "Bearer \(testAdminSecret)")
                huge.headers.add(name: "X-Padding", value: String(repeating: "p", count: 70_000))
                let refused = try? await http.execute(huge, timeout: .seconds(30))
                #expect(refused.map { $0.status.code >= 400 && $0.status.code < 500 } ?? true)
                let alive = try await http.execute(HTTPClientRequest(url: base + "/healthz"), timeout: .seconds(10))
                #expect(alive.status == .ok)
            }
        }
    }
}
