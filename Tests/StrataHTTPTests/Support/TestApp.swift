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

/// The secret of the admin token every test app starts with (`STRATA_BOOTSTRAP_TOKEN`'s way in).
let testAdminSecret = "strata_test-admin-secret-0123456789"

/// Runs `body` against the real router on a fresh database, in-process, with a client that presents
/// an admin token unless a request says otherwise.

func withTestApp<Result: Sendable>(
    configuring configure: @Sendable (inout StrataServices) -> Void = { _ in },
    _ body: @Sendable (TokenClient, TestDatabase) async throws -> Result
) async throws -> Result {
    try await withTestDatabase { database in
        var services = try StrataServices(
            database: .fixed(database.client), logger: database.logger,
            access: .tokens(bootstrapSecret: testAdminSecret),
            deadlines: .patient)
        configure(&services)
        try await services.bootstrapTokens()
        return try await Application(router: buildRouter(services), logger: database.logger).test(.router) {
            client in
            try await body(TokenClient(base: client, token: testAdminSecret), database)
        }
    }
}

/// Runs `body` against a real server on a loopback port, for tests that need true concurrency.
func withLiveApp<Result: Sendable>(
    _ body: @Sendable (TokenClient, TestDatabase) async throws -> Result
) async throws -> Result {
    try await withTestDatabase { database in
        let services = try StrataServices(
            database: .fixed(database.makeClient()), logger: database.logger,
            access: .tokens(bootstrapSecret: testAdminSecret), deadlines: .patient)
        let app = buildApplication(.init(host: "127.0.0.1", port: 0), services: services)
        return try await app.test(.live) { client in
            try await untilServing(client)
            return try await body(TokenClient(base: client, token: testAdminSecret), database)
        }
    }
}

/// Returns once a live server serves: it listens, and answers health checks, before its database is
/// prepared.
func untilServing(_ client: some TestClientProtocol) async throws {
    // Generous: at the suite's start every test makes its database at once, and a first connection can
    // take a minute (a liveness wait, not a figure).
    let deadline = ContinuousClock.now + .seconds(180)
    while try await client.execute(uri: "/readyz", method: .get).status != .ok {
        guard ContinuousClock.now < deadline else {
            Issue.record("the server did not become ready in 180 s")
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// A test client that presents a bearer token with every request that does not carry its own
/// `Authorization`.
struct TokenClient: TestClientProtocol {
    let base: any TestClientProtocol
    let token: String?

    func executeRequest(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?)
        async throws -> TestResponse
    {
        var headers = headers
        if let token, headers[.authorization] == nil { headers[.authorization] = "Bearer \(token)" }
        return try await base.executeRequest(uri: uri, method: method, headers: headers, body: body)
    }

    var port: Int? { base.port }

    /// The same client presenting `token` instead (nil: none).
    func presenting(_ token: String?) -> TokenClient {
        TokenClient(base: base, token: token)
    }

    /// Grants a token through the admin API and answers a client that presents it.
    func granting(_ name: String, role: String, namespaces: [String] = []) async throws -> TokenClient {
        let scope =
            namespaces.isEmpty
            ? "" : #", "namespace": \#(CanonicalJSON.string(JSONValue.array(namespaces.map(JSONValue.string))))"#
        let response = try await send(
            .post, "/v1/admin/tokens", json: #"{"name": "\#(name)", "role": "\#(role)"\#(scope)}"#)
        #expect(response.status == .created, "\(response.text)")
        return presenting(try response.json()["token"]?.stringValue)
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
