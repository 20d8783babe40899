import Foundation
import Hummingbird
import StrataCore
import StrataStore

/// `/v1/admin/tokens`: granting, listing and revoking API tokens. Every grant and revocation is an event
/// of the log, so the audit trail shows who gave access to whom; the secret is shown once, in the answer
/// to its creation, and kept nowhere.
struct TokenRoutes {
    let writer: CatalogWriter
    let reader: CatalogReader
    /// Reloaded after each grant or revocation, so that this process answers with it in force.
    let directory: TokenDirectory
    let clock: @Sendable () -> Date

    func register(on router: Router<StrataRequestContext>) {
        router.post("/v1/admin/tokens", use: create)
        router.get("/v1/admin/tokens", use: list)
        router.get("/v1/admin/tokens/{name}", use: show)
        router.delete("/v1/admin/tokens/{name}", use: revoke)
        router.get("/v1/me", use: me)
    }

    /// The caller's own token: its name, role and namespaces, so a client (the web UI) offers only what
    /// it may do. Any valid token may ask; nothing is read from the database.
    @Sendable func me(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let caller = try context.caller()
        let document = JSONValue.object([
            "name": .string(caller.name), "role": .string(caller.role.rawValue),
            "namespaces": .array((caller.scope.namespaces ?? []).map(JSONValue.string)),
        ])
        return jsonResponse(.ok, body: CanonicalJSON.string(document))
    }

    static let createToken = BodyRules(
        fields: [
            "name": .tokenName, "role": .oneOf(Role.allCases.map(\.rawValue), nullable: false),
            "namespace": .anyOf([
                .namespaceOrName, .array(of: .namespaceOrName, maxItems: 100, uniqueItems: true, minItems: 1),
            ]),
        ],
        required: ["name", "role"]
    )

    @Sendable func create(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let body = try await RequestBody.read(request, context: context, rules: Self.createToken)
        let name = body.string("name")!
        let role = Role(rawValue: body.string("role")!)!
        let namespaces: [String] =
            switch body.object["namespace"] {
            case .string(let one): [one]
            case .array(let many): many.compactMap(\.stringValue)
            default: []
            }
        let secret = TokenSecret.generate()
        let creator = try context.caller().name
        // Idempotency-Key is not honoured here: replaying the first answer would mean keeping the secret.
        // The name is the natural key: a retried grant meets its own first attempt as 409 name_taken.
        let write = try CatalogWriter.Request(
            .createToken(
                UUIDv7.make(), name: name, role: role, namespaces: namespaces,
                secretSHA256: TokenSecret.sha256(secret)),
            from: request, context: context, body: nil, at: clock()
        ) { outcome in
            var document = outcome.token.map { Self.document($0.state, createdAt: $0.recordedAt) } ?? [:]
            document["created_by"] = .string(creator)
            document["token"] = .string(secret)
            return StoredResponse(
                status: 201,
                headers: ["Content-Type": "application/json", "Strata-Position": "\(outcome.position)"],
                body: CanonicalJSON.string(JSONValue.object(document)))
        }
        let response = try await writer.submit(write)
        try await directory.reload()
        return storedResponse(response)
    }

    @Sendable func list(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let (tokens, position) = try await reader.read(asOf: try asOf(request), atLeast: context.minPosition) {
            try await $0.tokens()
        }
        return jsonResponse(
            .ok, body: CanonicalJSON.string(JSONValue.object(["tokens": .array(tokens.map(Self.document))])),
            position: position)
    }

    /// One token that is not revoked, as the list shows it; 404 for a name no valid token holds.
    @Sendable func show(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let name = try pathText("name", context)
        let (tokens, position) = try await reader.read(asOf: try asOf(request), atLeast: context.minPosition) {
            try await $0.tokens(named: name)
        }
        guard let token = tokens.first else { throw AccessError.tokenNotFound(name) }
        return jsonResponse(.ok, body: CanonicalJSON.string(Self.document(token)), position: position)
    }

    private static func document(_ token: TokenSummary) -> JSONValue {
        .object([
            "name": .string(token.name), "role": .string(token.role.rawValue),
            "namespaces": .array(token.namespaces.map(JSONValue.string)),
            "created_at": .string(Timestamp.string(from: token.createdAt)), "created_by": .string(token.createdBy),
        ])
    }

    @Sendable func revoke(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let name = try pathText("name", context)
        // A DELETE has no body: an Idempotency-Key binds to the method and the path alone, so a retried
        // revocation answers its first 204 rather than 404.
        let write = try CatalogWriter.Request(
            .revokeToken(name: name), from: request, context: context,
            body: RequestBody(object: [:], bytes: ByteBuffer()), at: clock()
        ) { outcome in
            StoredResponse(status: 204, headers: ["Strata-Position": "\(outcome.position)"], body: "")
        }
        let response = try await writer.submit(write)
        try await directory.reload()
        return storedResponse(response)
    }

    private static func document(_ token: TokenState, createdAt: Date) -> [String: JSONValue] {
        [
            "name": .string(token.name ?? ""), "role": .string(token.role?.rawValue ?? ""),
            "namespaces": .array(token.namespaces.map(JSONValue.string)),
            "created_at": .string(Timestamp.string(from: createdAt)),
        ]
    }
}
