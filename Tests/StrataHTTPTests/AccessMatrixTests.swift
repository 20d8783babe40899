import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import StrataCore
import StrataTestSupport
import Testing

/// Every operation of the served OpenAPI document, asked by no token, a reader, a writer, an admin and
/// a writer scoped to another namespace, over a real socket: the answer's class must be the one the
/// contract gives. A route added to the document without a line in `contract` fails here.
@Suite("Who may call what")
struct AccessMatrixTests {
    /// The role each operation needs, as API.md gives it; nil for the ones open to all.
    static let contract: [String: Role?] = [
        "get /healthz": nil, "get /readyz": nil, "get /metrics": nil, "get /openapi.yaml": nil,
        "get /openapi.json": nil, "get /": nil, "get /v1/me": .reader, "get /v1/search": .reader,
        "get /v1/datasets": .reader, "post /v1/datasets": .writer, "get /v1/datasets/{id}": .reader,
        "patch /v1/datasets/{id}": .writer, "get /v1/namespaces/{namespace}/datasets/{name}": .reader,
        "post /v1/datasets/{id}/publish": .writer, "post /v1/datasets/{id}/archive": .writer,
        "post /v1/datasets/{id}/restore": .writer, "post /v1/datasets/{id}/retire": .writer,
        "post /v1/datasets/{id}/clone": .writer, "get /v1/datasets/{id}/versions": .reader,
        "get /v1/datasets/{id}/versions/{n}": .reader, "post /v1/datasets/{id}/versions/{n}/usages": .writer,
        "get /v1/datasets/{id}/usages": .reader, "get /v1/datasets/{id}/history": .reader,
        "get /v1/events": .reader, "get /v1/events/stream": .reader, "post /v1/lineage": .writer,
        "get /v1/datasets/{id}/lineage": .reader, "get /v1/datasets/{id}/impact": .reader,
        "post /api/v1/lineage": .writer, "post /api/v1/lineage/batch": .writer,
        "get /v1/admin/projections": .admin, "post /v1/admin/projections/rebuild": .admin,
        "post /v1/admin/tokens": .admin, "get /v1/admin/tokens": .admin,
        "get /v1/admin/tokens/{name}": .admin, "delete /v1/admin/tokens/{name}": .admin,
    ]

    enum Caller: String, CaseIterable {
        case nobody, reader, writer, admin, scopedWriter
        var role: Role? {
            switch self {
            case .nobody: nil
            case .reader: .reader
            case .writer, .scopedWriter: .writer
            case .admin: .admin
            }
        }
    }

    /// Spelt with doubled slashes (`//v1//admin//tokens`), a path reaches the same route, which the
    /// router finds by its non-empty segments: it must need the same role.
    @Test(arguments: ["/", "//"])
    func everyOperationAnswersEachKindOfCallerAsTheContractSays(separator: String) async throws {
        try await withLiveApp { admin, _ in
            let port = try #require(admin.port)
            let base = "http://127.0.0.1:\(port)"
            let document = try await admin.presenting(nil).execute(uri: "/openapi.yaml", method: .get)
            let json = try await admin.presenting(nil).execute(uri: "/openapi.json", method: .get)
            let operations = try ServedDocumentCheck.run(
                yaml: Data(buffer: document.body), json: Data(buffer: json.body)
            )
            .operations
            let keys = Set(operations.map { "\($0.method) \($0.path)" })
            #expect(
                keys == Set(Self.contract.keys),
                "operations without a line in the contract, or gone: \(keys.symmetricDifference(Self.contract.keys).sorted())"
            )

            var tokens: [Caller: String] = [.admin: testAdminSecret]
            for (caller, role) in [(Caller.reader, "reader"), (.writer, "writer")] {
                tokens[caller] = try await admin.granting(caller.rawValue, role: role).token
            }
            tokens[.scopedWriter] = try await admin.granting("scoped", role: "writer", namespaces: ["beta"]).token
            let presented = tokens

            try await withHTTPClient { http in
                for operation in operations {
                    let key = "\(operation.method) \(operation.path)"
                    guard let needed = Self.contract[key] else { continue }
                    for caller in Caller.allCases {
                        // Each call gets a dataset of its own (in namespace alpha), so none sees another's effects.
                        let target = try await admin.createDataset(
                            namespace: "alpha", name: "m-\(UUID().uuidString.prefix(8))")
                        try await admin.send(.post, "/v1/datasets/\(target)/publish")
                        let request = Self.request(
                            operation.method, operation.path, target: target, base: base, separator: separator)
                        let status = try await http.status(of: request, token: presented[caller])
                        let expected = Self.expected(needed, caller, key)
                        #expect(expected.admits(status), "\(caller) → \(key): \(status.code), expected \(expected)")
                    }
                }
            }
        }
    }

    /// The class of answer a caller must get.
    enum Expected: CustomStringConvertible {
        case allowed, unauthorized, forbidden, notFound

        func admits(_ status: HTTPResponseStatus) -> Bool {
            switch self {
            case .allowed: return status.code < 500 && ![401, 403].contains(status.code)
            case .unauthorized: return status == .unauthorized
            case .forbidden: return status == .forbidden
            case .notFound: return status == .notFound
            }
        }

        var description: String { "\(self)" }
    }

    static func expected(_ needed: Role?, _ caller: Caller, _ key: String) -> Expected {
        guard let needed else { return .allowed }
        guard let role = caller.role else { return .unauthorized }
        guard role >= needed else { return .forbidden }
        guard caller == .scopedWriter else { return .allowed }
        // Scoped to beta, asking about a dataset of alpha: it does not exist for this caller; creating in
        // alpha is refused outright.
        if key.contains("{id}") || key.contains("{namespace}") { return .notFound }
        if key == "post /v1/datasets" || key == "post /api/v1/lineage" { return .forbidden }
        if key == "post /v1/lineage" { return .notFound }
        return .allowed
    }

    /// A request for the operation, aimed at `target` (a dataset of namespace alpha), with a valid body.
    static func request(_ method: String, _ template: String, target: String, base: String, separator: String)
        -> HTTPClientRequest
    {
        let path = template.replacingOccurrences(of: "{id}", with: target).replacingOccurrences(of: "{n}", with: "1")
            .replacingOccurrences(of: "{namespace}", with: "alpha").replacingOccurrences(of: "{name}", with: "nobody")
            .replacingOccurrences(of: "/", with: separator)
        var request = HTTPClientRequest(url: base + path)
        request.method = HTTPMethod(rawValue: method.uppercased())
        let bodies: [String: String] = [
            "post /v1/datasets": #"{"namespace": "alpha", "name": "made-\#(UUID().uuidString)"}"#,
            "patch /v1/datasets/{id}": #"{"description": "edited"}"#,
            "post /v1/datasets/{id}/retire": #"{"reason": "matrix"}"#,
            "post /v1/datasets/{id}/clone": #"{"name": "clone-\#(UUID().uuidString)"}"#,
            "post /v1/datasets/{id}/versions/{n}/usages": #"{"consumer": "matrix"}"#,
            "post /v1/lineage": #"{"inputs": [], "outputs": [{"dataset_id": "\#(target)"}]}"#,
            "post /api/v1/lineage": openLineageEvent,
            "post /api/v1/lineage/batch": "[\(openLineageEvent)]",
            "post /v1/admin/tokens": #"{"name": "t-\#(UUID().uuidString.prefix(8))", "role": "reader"}"#,
        ]
        if let body = bodies["\(method) \(template)"] {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        return request
    }

    static let openLineageEvent = #"""
        {"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z",
         "run": {"runId": "0193b6c2-7d4e-7a10-8b2c-3d4e5f607182"}, "job": {"namespace": "j", "name": "j"},
         "inputs": [], "outputs": [{"namespace": "alpha", "name": "from-openlineage"}], "producer": "p",
         "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
        """#
}

extension HTTPClient {
    /// The status of `request` presenting `token`; the body is not waited for (the live feed has no end).
    func status(of request: HTTPClientRequest, token: String?) async throws -> HTTPResponseStatus {
        var request = request
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await execute(request, timeout: .seconds(30))
        return response.status
    }
}

/// A client for talking to a live test server over a real socket.
func withHTTPClient<Result: Sendable>(_ body: @Sendable (HTTPClient) async throws -> Result) async throws -> Result {
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    do {
        let result = try await body(client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}
