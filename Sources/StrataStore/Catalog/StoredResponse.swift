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

/// A refusal kept under an `Idempotency-Key` (see ``CatalogWriter/Request/refusal``), answered again to
/// a retry of its request: the same key and body get the first response again, a refusal included.
public struct AnsweredRefusal: Error, Sendable, Equatable {
    public var response: StoredResponse

    public init(response: StoredResponse) { self.response = response }
}

/// An `Idempotency-Key` as a request presents it: the caller it belongs to, and a hash of the request.
/// The pipeline looks keys up and stores answers in the append transaction, under the log's lock, so
/// sixteen simultaneous requests with one key cannot both act (see ``BatchRun``).
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
