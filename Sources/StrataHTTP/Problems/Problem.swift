import Foundation
import Hummingbird
import StrataCore
import StrataStore

/// An RFC 9457 problem document: every error Strata answers has this shape and a machine `code`.
public struct Problem: Error, Codable, Sendable, Equatable, HTTPResponseError {
    /// One field-level complaint, for validation errors: a JSON Pointer into the request and what is wrong.
    public struct FieldError: Codable, Sendable, Equatable {
        public var path: String
        public var message: String

        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }
    }

    public var type: String
    public var title: String
    public var status: HTTPResponse.Status
    public var detail: String
    public var code: String
    public var errors: [FieldError]?
    /// Headers the answer carries besides the document (`Retry-After`, `WWW-Authenticate`).
    public var headers: HTTPFields

    public init(
        status: HTTPResponse.Status, code: String, detail: String, errors: [FieldError]? = nil,
        headers: HTTPFields = [:]
    ) {
        self.type = "https://strata.dev/problems/\(code.replacingOccurrences(of: "_", with: "-"))"
        self.title = status.reasonPhrase
        self.status = status
        self.detail = detail
        self.code = code
        self.errors = errors
        self.headers = headers
    }

    enum CodingKeys: String, CodingKey {
        case type, title, status, detail, code, errors
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        type = try container.decode(String.self, forKey: .type)
        title = try container.decode(String.self, forKey: .title)
        status = HTTPResponse.Status(code: try container.decode(Int.self, forKey: .status))
        detail = try container.decode(String.self, forKey: .detail)
        code = try container.decode(String.self, forKey: .code)
        errors = try container.decodeIfPresent([FieldError].self, forKey: .errors)
        headers = [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        try container.encode(title, forKey: .title)
        try container.encode(status.code, forKey: .status)
        try container.encode(detail, forKey: .detail)
        try container.encode(code, forKey: .code)
        try container.encodeIfPresent(errors, forKey: .errors)
    }

    /// The problem as a response to keep under an `Idempotency-Key`: the bytes ``response(from:context:)``
    /// sends.
    var stored: StoredResponse {
        var headers = ["Content-Type": "application/problem+json"]
        for field in self.headers { headers[field.name.rawName] = field.value }
        return StoredResponse(status: status.code, headers: headers, body: CanonicalJSON.string(self))
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/problem+json"
        return Response(
            status: status,
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(string: CanonicalJSON.string(self)))
        )
    }
}
