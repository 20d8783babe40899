import Foundation
import Logging
import StrataCore

/// The first token of a catalog: without one, nobody could create the others.
public enum TokenBootstrap {
    public static let name = "bootstrap"

    /// What the bootstrap did.
    public enum Outcome: Sendable, Equatable {
        /// Some token is valid already: nothing was done.
        case tokensExist
        /// An admin token named `bootstrap` was created with the operator's secret.
        case createdFromEnvironment
        /// An admin token named `bootstrap` was created with this new secret, to be shown once.
        case created(secret: String)
    }

    /// Makes sure a token exists: if none is valid, creates an admin token named `bootstrap`, with
    /// `secret` (`STRATA_BOOTSTRAP_TOKEN`) if given, else a new one. Two processes starting at once
    /// create one token between them: the second finds the name taken and does nothing.
    public static func ensureAdmin(
        secret: String?,
        directory: TokenDirectory,
        writer: CatalogWriter,
        actor: String,
        now: Date
    ) async throws -> Outcome {
        guard try await directory.isEmpty() else { return .tokensExist }
        let chosen = secret ?? TokenSecret.generate()
        let request = CatalogWriter.Request(
            target: .createToken(
                UUIDv7.make(), name: name, role: .admin, namespaces: [], secretSHA256: TokenSecret.sha256(chosen)),
            metadata: EventMetadata(actor: actor, reason: "no token existed"), occurredAt: now
        ) { outcome in StoredResponse(status: 201, headers: [:], body: "") }
        do {
            _ = try await writer.submit(request)
        } catch AccessError.tokenNameTaken {
            return .tokensExist
        }
        try await directory.reload()
        return secret == nil ? .created(secret: chosen) : .createdFromEnvironment
    }
}
