import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import StrataCore
import StrataHTTP
import StrataStore
import StrataTestSupport
import Testing

/// Runs `body` against the real router on a fresh database, in-process.
func withTestApp<Result: Sendable>(
    _ body: @Sendable (any TestClientProtocol, TestDatabase) async throws -> Result
) async throws -> Result {
    try await withTestDatabase { database in
        let services = try StrataServices(client: database.client, logger: database.logger)
        return try await Application(router: buildRouter(services), logger: database.logger).test(.router) {
            client in
            try await body(client, database)
        }
    }
}

/// Runs `body` against a real server on a loopback port, for tests that need true concurrency.
func withLiveApp<Result: Sendable>(
    _ body: @Sendable (any TestClientProtocol, TestDatabase) async throws -> Result
) async throws -> Result {
    try await withTestDatabase { database in
        let services = try StrataServices(client: database.makeClient(), logger: database.logger)
        let app = buildApplication(.init(host: "127.0.0.1", port: 0), services: services)
        return try await app.test(.live) { client in try await body(client, database) }
    }
}

extension TestClientProtocol {
    /// Sends a JSON request and answers the response.
    @discardableResult
    func send(
        _ method: HTTPRequest.Method,
        _ uri: String,
        json: String? = nil,
        headers: [String: String] = [:],
        contentType: String = "application/json"
    ) async throws -> TestResponse {
        var fields = HTTPFields()
        if json != nil { fields[.contentType] = contentType }
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        return try await execute(
            uri: uri, method: method, headers: fields, body: json.map { ByteBuffer(string: $0) }
        )
    }

    /// Creates a dataset and answers its id.
    func createDataset(
        namespace: String = "analytics",
        name: String = "orders-\(UUID().uuidString.prefix(8))",
        fields: String =
            #""owner": "team-data", "location": "s3://bucket/orders/", "schema": [{"name": "id", "type": "bigint"}]"#
    ) async throws -> String {
        let response = try await send(
            .post, "/v1/datasets", json: #"{"namespace": "\#(namespace)", "name": "\#(name)", \#(fields)}"#)
        #expect(response.status == .created, "\(String(buffer: response.body))")
        return try response.json()["id"]?.stringValue ?? ""
    }
}

extension TestResponse {
    func json() throws -> [String: JSONValue] {
        try JSONDecoder().decode([String: JSONValue].self, from: Data(buffer: body))
    }

    var text: String { String(buffer: body) }

    /// The problem document's `code`, for error responses.
    var problemCode: String? {
        guard headers[.contentType] == "application/problem+json" else { return nil }
        return (try? json())?["code"]?.stringValue
    }
}
