import Foundation
import PostgresNIO
import StrataCore

/// An API token as `GET /v1/admin/tokens` lists it: never its secret.
public struct TokenSummary: Sendable, Equatable {
    public var name: String
    public var role: Role
    public var namespaces: [String]
    public var createdAt: Date
    public var createdBy: String
}

extension CatalogSnapshot {
    /// The tokens valid at this snapshot's position (only the one called `name`, if given), by name; who
    /// granted each and when is the envelope of its `TokenCreated` event.
    public func tokens(named name: String? = nil) async throws -> [TokenSummary] {
        let rows = try await connection.rows(
            """
            SELECT t.name, t.role, t.namespaces, e.occurred_at, e.metadata->>'actor'
            FROM api_tokens t JOIN events e ON e.global_position = t.valid_from
            WHERE t.valid_from <= \(position) AND (t.valid_to IS NULL OR t.valid_to > \(position))
              AND (\(name)::text IS NULL OR t.name = \(name))
            ORDER BY t.name
            """,
            logger: logger
        )
        var tokens: [TokenSummary] = []
        for row in rows {
            let (name, role, namespaces, createdAt, createdBy) = try row.decode(
                (String, String, [String], Date, String).self)
            guard let role = Role(rawValue: role) else {
                throw UnreadableProjectionRow(description: "token \(name) has the unknown role \(role)")
            }
            tokens.append(
                TokenSummary(name: name, role: role, namespaces: namespaces, createdAt: createdAt, createdBy: createdBy)
            )
        }
        return tokens
    }
}
