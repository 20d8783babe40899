import Foundation
import PostgresNIO

/// A response as it was sent, kept so a retried request gets the very same answer.
public struct StoredResponse: Sendable, Equatable, Codable {
    public var status: Int
    public var headers: [String: String]
    public var body: String

    public init(status: Int, headers: [String: String], body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// An `Idempotency-Key` as a request presents it: the caller it belongs to, and a hash of the request.
public struct IdempotencyClaim: Sendable, Equatable {
    public var scope: String
    public var key: String
    public var requestHash: String

    public init(scope: String, key: String, requestHash: String) {
        self.scope = scope
        self.key = key
        self.requestHash = requestHash
    }
}

/// The `idempotency_keys` table. Lookups and stores happen inside the append transaction, under the
/// log's lock, so sixteen simultaneous requests with one key cannot both act.
enum IdempotencyStore {
    /// The first response to this key, or nil if the key is new; a key reused for another request is refused.
    static func lookup(_ claim: IdempotencyClaim, on connection: PostgresConnection, logger: Logger) async throws
        -> StoredResponse?
    {
        let rows = try await connection.query(
            """
            SELECT request_hash, status, headers::text, body FROM idempotency_keys
            WHERE scope = \(claim.scope) AND key = \(claim.key)
            """,
            logger: logger
        ).collect()
        guard let row = rows.first else { return nil }
        let (hash, status, headers, body) = try row.decode((String, Int, String, String).self)
        guard hash == claim.requestHash else { throw CatalogError.idempotencyKeyReused }
        return StoredResponse(
            status: status, headers: try JSONDecoder().decode([String: String].self, from: Data(headers.utf8)),
            body: body
        )
    }

    static func store(
        _ response: StoredResponse,
        for claim: IdempotencyClaim,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        let headers = String(decoding: try JSONEncoder().encode(response.headers), as: UTF8.self)
        try await connection.perform(
            """
            INSERT INTO idempotency_keys (scope, key, request_hash, status, headers, body)
            VALUES (\(claim.scope), \(claim.key), \(claim.requestHash), \(response.status), \(headers)::jsonb,
                    \(response.body))
            """,
            logger: logger
        )
    }
}
