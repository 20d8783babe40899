import Foundation
import Hummingbird
import StrataCore
import StrataStore

extension CatalogWriter.Request {
    /// A write as an HTTP request asks for it: what to do, within the caller's namespaces, with the
    /// request's envelope — who acts (the token's name), on whose behalf, which request, why — its
    /// `If-Match` (when `target` is one dataset, or the source of a clone) and its `Idempotency-Key`, which
    /// belongs to the token.
    init(
        _ target: Target,
        from request: Request,
        context: StrataRequestContext,
        body: RequestBody?,
        at time: Date,
        reason: String? = nil,
        producer: String? = nil,
        runID: String? = nil,
        partOfBatch index: Int? = nil,
        respond: @escaping @Sendable (CatalogWriter.Outcome) -> StoredResponse
    ) throws {
        let caller = try context.caller()
        var idempotency: IdempotencyClaim?
        if let key = request.headers[.idempotencyKey], let body {
            guard (1...256).contains(key.count) else {
                throw invalidParameter("Idempotency-Key", "must be 1 to 256 characters")
            }
            // Each write of a batch request claims the key with its place in the batch, so a retried
            // batch replays each write's answer rather than finding the key taken by a different body.
            idempotency = IdempotencyClaim(
                scope: caller.name, key: index.map { "\(key)#\($0)" } ?? key,
                requestHash: body.fingerprint(of: request))
        }
        var expected: Int64?
        switch target {
        case .dataset, .clone: expected = try ifMatch(request)
        default: break
        }
        self.init(
            target: target, scope: caller.scope, expectedStreamVersion: expected,
            metadata: EventMetadata(
                actor: caller.name, onBehalfOf: context.onBehalfOf, requestID: context.requestID, reason: reason,
                producer: producer, runID: runID),
            occurredAt: Timestamp.truncated(time), idempotency: idempotency, respond: respond)
    }
}

/// `If-Match: "7"` (weak or bare forms too); `*` and absence mean no precondition.
func ifMatch(_ request: Request) throws -> Int64? {
    guard let header = request.headers[.ifMatch]?.trimmingCharacters(in: .whitespaces), header != "*" else {
        return nil
    }
    let bare = header.hasPrefix("W/") ? String(header.dropFirst(2)) : header
    guard let version = Int64(bare.trimmingCharacters(in: CharacterSet(charactersIn: "\""))) else {
        throw invalidParameter("If-Match", "must be an ETag this service sent, such as \"7\"")
    }
    return version
}
