import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataTestSupport
import Testing

/// The methods a path takes: HEAD wherever GET, and for any other method a path does not take, 405
/// naming the ones it does — not the 404 of a path that does not exist.
@Suite("HTTP methods", .serialized)
struct HTTPMethodTests {
    static let position = HTTPField.Name("Strata-Position")!

    @Test func headAnswersWhatGetAnswersWithoutTheBody() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()
            for path in ["/v1/datasets/\(id)", "/v1/datasets?limit=5", "/v1/datasets/\(id)/history", "/healthz"] {
                let get = try await client.send(.get, path)
                let head = try await client.send(.head, path)
                #expect(get.status == .ok && head.status == .ok, "\(path): \(get.status), \(head.status)")
                #expect(head.body.readableBytes == 0, "\(path)")
                #expect(!get.text.isEmpty, "\(path)")
                for header in [HTTPField.Name.eTag, .contentType, Self.position] {
                    #expect(head.headers[header] == get.headers[header], "\(path): \(header)")
                }
            }
            #expect(try await client.send(.head, "/v1/datasets/\(UUID())").status == .notFound)
            #expect(try await client.presenting(nil).send(.head, "/v1/datasets/\(id)").status == .unauthorized)
        }
    }

    /// A HEAD's body is dropped unwritten; it must still be counted, and must not stay active forever.
    @Test func aHeadIsCountedAndEnds() async throws {
        try await withTestApp { client, _ in
            for _ in 0..<3 { try await client.send(.head, "/healthz") }
            let metrics = try await client.send(.get, "/metrics").text.split(separator: "\n")
            let active = metrics.filter { $0.hasPrefix("http_server_active_requests") && $0.contains("\"HEAD\"") }
            #expect(!active.isEmpty, "no gauge of active HEADs")
            #expect(active.allSatisfy { $0.hasSuffix(" 0") || $0.hasSuffix(" 0.0") }, "\(active)")
            let counted = metrics.first {
                $0.hasPrefix("http_server_request_duration_count") && $0.contains("\"HEAD\"")
                    && $0.contains("\"/healthz\"")
            }
            let count = counted.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
            #expect(count >= 3, "\(counted ?? "no count of HEAD /healthz")")
        }
    }

    @Test func aMethodAPathDoesNotTakeIs405WithAllowAndChangesNothing() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()
            let before = try await client.send(.get, "/v1/datasets/\(id)")
            for (method, path, allow) in [
                (HTTPRequest.Method.delete, "/v1/datasets/\(id)", "GET, HEAD, PATCH"),
                (.put, "/v1/datasets/\(id)", "GET, HEAD, PATCH"),
                (.put, "/v1/datasets", "GET, HEAD, POST"),
                (.get, "/v1/datasets/\(id)/publish", "POST"),
                (.trace, "/healthz", "GET, HEAD"),
                (.options, "/v1/events", "GET, HEAD"),
                (HTTPRequest.Method("QUERY")!, "/api/v1/lineage", "POST"),
            ] {
                let response = try await client.send(method, path, json: "{}")
                #expect(response.status == .methodNotAllowed, "\(method) \(path): \(response.status)")
                #expect(response.problemCode == "method_not_allowed", "\(method) \(path)")
                #expect(response.headers[.allow] == allow, "\(method) \(path)")
            }
            let after = try await client.send(.get, "/v1/datasets/\(id)")
            #expect(after.text == before.text)
            #expect(after.headers[Self.position] == before.headers[Self.position])
            // A path that is not the API's is still not found, whatever the method.
            for method in [HTTPRequest.Method.get, .delete] {
                let response = try await client.send(method, "/v1/no-such-thing")
                #expect(response.status == .notFound && response.problemCode == "not_found", "\(method)")
            }
        }
    }

    /// A name the caller meant to record as whom it acts for, dropped, would leave the audit trail
    /// without it: a `Strata-Actor` that cannot be recorded is refused, and the write does not happen.
    @Test func aStrataActorThatCannotBeRecordedIsRefusedAndNothingIsWritten() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()
            for actor in ["", "a\tb", String(repeating: "é", count: 257)] {
                let response = try await client.send(
                    .post, "/v1/datasets/\(id)/archive", json: "{}", headers: ["Strata-Actor": actor])
                #expect(response.status == .badRequest, "\(actor.prefix(8)): \(response.status)")
                #expect(response.problemCode == "invalid_parameter")
                #expect(try response.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == "Strata-Actor")
            }
            let history = try await client.send(.get, "/v1/datasets/\(id)/history").json()["events"]?.arrayValue
            #expect(history?.count == 2, "only the create's events")
            let read = try await client.send(.get, "/v1/datasets/\(id)", headers: ["Strata-Actor": ""])
            #expect(read.status == .ok, "a read records no one, and ignores the header")
            let accepted = try await client.send(
                .post, "/v1/datasets/\(id)/archive", json: "{}",
                headers: ["Strata-Actor": String(repeating: "é", count: 256)])
            #expect(accepted.status == .ok, "\(accepted.text)")
        }
    }
}
