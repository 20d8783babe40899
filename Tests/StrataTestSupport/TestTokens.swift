import Foundation
import StrataCore
import StrataStore

extension CatalogWriter {
    /// Grants an admin token with `secret` straight through the pipeline, whatever tokens exist already.
    public func grantAdmin(named name: String = "test-admin", secret: String) async throws {
        _ = try await submit(
            CatalogWriter.Request(
                target: .createToken(
                    UUIDv7.make(), name: name, role: .admin, namespaces: [], secretSHA256: TokenSecret.sha256(secret)),
                metadata: EventMetadata(actor: "test"), occurredAt: Date()
            ) { _ in StoredResponse(status: 201, headers: [:], body: "") })
    }
}
