import Foundation
import Hummingbird
import Logging
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
        if let key = try idempotencyKey(request), let body {
            // Each write of a batch request claims the key with its place in the batch, so a retried
            // batch replays each write's answer rather than finding the key taken by a different body.
            // Keys belong to the grant, not the name: a name granted again, perhaps with a narrower
            // scope, must not be answered what the grant before it was.
            idempotency = IdempotencyClaim(
                scope: caller.tokenID?.lowercased ?? caller.name, key: index.map { "\(key)#\($0)" } ?? key,
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
            occurredAt: Timestamp.truncated(time), idempotency: idempotency,
            refusal: idempotency == nil ? nil : refusalToStore(logger: context.identifiedLogger), respond: respond)
    }
}

/// The problem a refusal is answered with, to keep under the request's `Idempotency-Key`; nothing for a
/// failure of the server's own.
private func refusalToStore(logger: Logger) -> @Sendable (any Error) -> StoredResponse? {
    { error in
        let problem = ProblemMiddleware.problem(for: error, logger: logger)
        return problem.status.code < 500 ? problem.stored : nil
    }
}

/// `Idempotency-Key`: nil when absent; present, 1 to 256 characters.
func idempotencyKey(_ request: Request) throws -> String? {
    guard let key = request.headers[.idempotencyKey] else { return nil }
    guard (1...256).contains(key.count) else {
        throw invalidParameter("Idempotency-Key", "must be 1 to 256 characters")
    }
    return key
}

/// `If-Match: "7"` (`W/"7"` and a bare `7` too); `*` and absence mean no precondition. Anything else —
/// a half-quoted tag, a sign, a number past 18 digits — is refused, as the OpenAPI document's pattern says.
func ifMatch(_ request: Request) throws -> Int64? {
    guard let header = request.headers[.ifMatch], header != "*" else { return nil }
    let quoted = header.hasPrefix("\"") ? header.dropFirst() : header.hasPrefix("W/\"") ? header.dropFirst(3) : nil
    let digits = quoted.map { $0.hasSuffix("\"") ? $0.dropLast() : "" } ?? header[...]
    guard (1...18).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }),
        let version = Int64(digits)
    else {
        throw invalidParameter("If-Match", "must be an ETag this service sent, such as \"7\"")
    }
    return version
}
