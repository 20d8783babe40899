import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import StrataCore

/// A request body, read and checked before anything acts on it.
///
/// The rules mirror `Schemas/requests/*.json` field by field (`RequestBodyContractTests` feeds the same
/// documents to both and demands the same verdict). The order of checks gives each kind of bad input
/// its own answer: 413 too large, 415 not JSON by content type, 400 not parseable, 422 against the rules.
struct RequestBody {
    /// The parsed body, always a JSON object.
    var object: [String: JSONValue]
    /// The bytes as received, for the idempotency hash.
    var bytes: ByteBuffer

    /// A compressed body read as JSON would fail "at byte 0"; RFC 9110 answers a coding not taken with 415.
    static func refuseContentCoding(of request: Request) throws {
        if let coding = request.headers[.contentEncoding], coding.lowercased() != "identity" {
            throw Problem(
                status: .unsupportedMediaType, code: "unsupported_media_type",
                detail: "send the body uncompressed: Content-Encoding \(coding) is not accepted"
            )
        }
    }

    /// The request's body, at most `limit` bytes (else 413). A body the connection could not deliver whole
    /// (a malformed chunk, a client gone before its Content-Length was sent) is the client's doing: 400,
    /// not the 500 of an error the server did not expect.
    static func collect(_ request: inout Request, upTo limit: Int) async throws -> ByteBuffer {
        do {
            return try await request.collectBody(upTo: limit)
        } catch let error as any HTTPResponseError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw Problem(
                status: .badRequest, code: "bad_request",
                detail: "the request's body could not be read whole: its framing was malformed or it was cut short")
        }
    }

    static func read(
        _ request: Request,
        context: StrataRequestContext,
        rules: BodyRules,
        allowEmpty: Bool = false,
        mediaTypes: [String] = ["application/json"],
        skipRules: Bool = false
    ) async throws -> RequestBody {
        var request = request
        let bytes = try await collect(&request, upTo: context.maxUploadSize)
        if bytes.readableBytes == 0 && allowEmpty {
            return RequestBody(object: [:], bytes: bytes)
        }
        guard let mediaType = request.headers[.contentType].map(Self.mediaType(of:)), mediaTypes.contains(mediaType)
        else {
            throw Problem(
                status: .unsupportedMediaType, code: "unsupported_media_type",
                detail: "send the body as \(mediaTypes.joined(separator: " or "))"
            )
        }
        try refuseContentCoding(of: request)
        let value = try parse(bytes)
        guard case .object(let object) = value else {
            throw Problem(
                status: .unprocessableContent, code: "validation_failed", detail: "the body must be a JSON object",
                errors: [.init(path: "", message: "must be an object")]
            )
        }
        if let path = firstNul(in: value, at: "") {
            throw Problem(
                status: .unprocessableContent, code: "validation_failed",
                detail: "the body does not match the schema",
                errors: [.init(path: path, message: "must not contain the character U+0000")]
            )
        }
        let errors = skipRules ? [] : rules.check(object)
        guard errors.isEmpty else {
            throw Problem(
                status: .unprocessableContent, code: "validation_failed",
                detail: "the body does not match the schema", errors: errors
            )
        }
        return RequestBody(object: object, bytes: bytes)
    }

    /// The media type a `Content-Type` names, lowercased, without its parameters and the spaces and tabs
    /// around it. By hand: Foundation's `trimmingCharacters(in:)`, through NSString, was 2% of the
    /// server's CPU under creates.
    static func mediaType(of contentType: String) -> String {
        var type = contentType.prefix { $0 != ";" }
        while let first = type.first, first == " " || first == "\t" { type = type.dropFirst() }
        while let last = type.last, last == " " || last == "\t" { type = type.dropLast() }
        return type.lowercased()
    }

    /// The body's JSON, which must be I-JSON (RFC 7493): UTF-8, and no object naming a member twice,
    /// which readers resolve differently (the first value or the last); 400 otherwise, saying where.
    static func parse(_ bytes: ByteBuffer) throws -> JSONValue {
        do {
            return try bytes.withUnsafeReadableBytes { bytes in
                Result { () throws(JSONReadError) in
                    try JSONReader.read(bytes) { reader throws(JSONReadError) in try reader.valueWithUniqueMembers() }
                }
            }.get()
        } catch {
            throw Problem(status: .badRequest, code: "invalid_json", detail: "the body is not valid JSON: \(error)")
        }
    }

    /// The JSON Pointer of the first string or member name holding U+0000, which PostgreSQL's `jsonb` and
    /// `text` cannot store; the schemas refuse it everywhere.
    static func firstNul(in value: JSONValue, at path: String) -> String? {
        // Paths are put together only for a body that holds one: every body is searched.
        guard holdsNul(value) else { return nil }
        switch value {
        case .string(let text): return text.unicodeScalars.contains("\u{0}") ? path : nil
        case .array(let items):
            for (index, item) in items.enumerated() {
                if let found = firstNul(in: item, at: "\(path)/\(index)") { return found }
            }
            return nil
        case .object(let members):
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                let memberPath =
                    "\(path)/\(key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1"))"
                if key.unicodeScalars.contains("\u{0}") { return memberPath }
                if let found = firstNul(in: member, at: memberPath) { return found }
            }
            return nil
        default: return nil
        }
    }

    private static func holdsNul(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let text): return text.utf8.contains(0)
        case .array(let items): return items.contains(where: holdsNul)
        case .object(let members): return members.contains { $0.key.utf8.contains(0) || holdsNul($0.value) }
        default: return false
        }
    }

    func string(_ key: String) -> String? {
        if case .string(let value) = object[key] { return value }
        return nil
    }

    func integer(_ key: String) -> Int? {
        if case .number(let value) = object[key] { return Int(value) }
        return nil
    }

    func bool(_ key: String) -> Bool? {
        if case .bool(let value) = object[key] { return value }
        return nil
    }

    /// SHA-256 of method, path and body: what an `Idempotency-Key` is bound to.
    func fingerprint(of request: Request) -> String {
        var hasher = SHA256()
        // The path as the router reads it, without empty segments: a retry spelt //v1//datasets is the same request.
        let routed = request.uri.path.split(separator: "/").joined(separator: "/")
        hasher.update(data: Data("\(request.method.rawValue) /\(routed)\n".utf8))
        hasher.update(data: Data(buffer: bytes))
        return hasher.finalize().hexadecimal
    }
}

/// The allowed fields of one kind of request body and what each must hold.
struct BodyRules: Sendable {
    var fields: [String: FieldRule]
    var required: [String] = []

    func check(_ object: [String: JSONValue]) -> [Problem.FieldError] {
        var errors: [Problem.FieldError] = []
        for name in required where object[name] == nil {
            errors.append(.init(path: "/\(name)", message: "is required"))
        }
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            guard let rule = fields[name] else {
                errors.append(.init(path: "/\(name)", message: "is not a known field"))
                continue
            }
            errors += rule.check(value, at: "/\(name)")
        }
        return errors
    }
}

/// What one field must hold.
indirect enum FieldRule: Sendable {
    case string(minLength: Int = 0, maxLength: Int, nullable: Bool = false, noControlCharacters: Bool = false)
    case integer(minimum: Int64, maximum: Int64 = Self.largestExactInteger, nullable: Bool = false)
    case boolean
    case object(nullable: Bool = false)
    case oneOf([String], nullable: Bool)
    case array(
        of: FieldRule, maxItems: Int, uniqueItems: Bool = false, nullable: Bool = false, minItems: Int = 0,
        uniqueMember: String? = nil)
    case record(BodyRules, nullable: Bool = false)
    /// Any one of the rules.
    case anyOf([FieldRule])
    /// An API token's name (`TokenName` in `Schemas/common.json`).
    case tokenName

    static let namespaceOrName = FieldRule.string(minLength: 1, maxLength: 1024, noControlCharacters: true)
    /// 2^53 − 1: the largest integer every JSON reader (JavaScript's included) holds exactly.
    static let largestExactInteger: Int64 = 9_007_199_254_740_991
    static let uuid = FieldRule.string(minLength: 36, maxLength: 36)

    func check(_ value: JSONValue, at path: String) -> [Problem.FieldError] {
        func fail(_ message: String) -> [Problem.FieldError] { [.init(path: path, message: message)] }
        switch (self, value) {
        case (.string(_, _, true, _), .null), (.integer(_, _, true), .null), (.object(true), .null),
            (.oneOf(_, true), .null), (.array(_, _, _, true, _, _), .null), (.record(_, true), .null):
            return []
        case (.anyOf(let rules), _):
            let complaints = rules.map { $0.check(value, at: path) }
            if complaints.contains(where: \.isEmpty) { return [] }
            // A value of the type one rule takes gets that rule's complaint (an empty array: "must have at
            // least 1 item"), not "must be a string or an array".
            let ofItsType = zip(rules, complaints).filter { rule, complaint in
                complaint != [.init(path: path, message: "must be \(rule.expectation)")]
            }
            return ofItsType.count == 1 ? ofItsType[0].1 : fail("must be \(expectation)")
        case (.tokenName, .string(let text)):
            return TokenName.isValid(text)
                ? [] : fail("must be 1 to 128 letters, digits and . _ @ : + -, starting with a letter or digit")
        case (.string(let minLength, let maxLength, _, let noControl), .string(let text)):
            let length = text.unicodeScalars.count
            if length < minLength { return fail(minLength == 1 ? "must not be empty" : "is too short") }
            if length > maxLength { return fail("must be at most \(maxLength) characters") }
            if noControl && text.containsControlCharacter {
                return fail("must not contain control characters")
            }
            if case .string(36, 36, _, _) = self, UUID(uuidString: text) == nil { return fail("must be a UUID") }
            return []
        case (.integer(let minimum, let maximum, _), .number(let number)):
            guard number.rounded() == number else { return fail("must be an integer") }
            if number < Double(minimum) { return fail("must be at least \(minimum)") }
            if number > Double(maximum) { return fail("must be at most \(maximum)") }
            return []
        case (.boolean, .bool), (.object, .object):
            return []
        case (.oneOf(let allowed, _), .string(let text)):
            return allowed.contains(text) ? [] : fail("must be one of \(allowed.joined(separator: ", "))")
        case (.array(let element, let maxItems, let unique, _, let minItems, let uniqueMember), .array(let items)):
            if items.count > maxItems { return fail("must have at most \(maxItems) items") }
            if items.count < minItems { return fail("must have at least \(minItems) item\(minItems == 1 ? "" : "s")") }
            // Compared by their bytes, as the catalog stores them: `café` and `café` (a combining accent)
            // are two tags, as they are two namespaces.
            if unique && Set(items.map { Array(CanonicalJSON.string($0).utf8) }).count != items.count {
                return fail("must not repeat items")
            }
            let complaints = items.enumerated().flatMap { element.check($1, at: "\(path)/\($0)") }
            guard complaints.isEmpty, let member = uniqueMember else { return complaints }
            // Compared as the catalog stores them, by their bytes.
            var first: [[UInt8]: Int] = [:]
            for (index, item) in items.enumerated() {
                guard case .string(let text) = item[member] else { continue }
                if let earlier = first[Array(text.utf8)] {
                    return [
                        .init(path: "\(path)/\(index)/\(member)", message: "repeats the \(member) of item \(earlier)")
                    ]
                }
                first[Array(text.utf8)] = index
            }
            return []
        case (.record(let rules, _), .object(let object)):
            return rules.check(object).map { .init(path: path + $0.path, message: $0.message) }
        default:
            return fail("must be \(expectation)")
        }
    }

    private var expectation: String {
        switch self {
        case .string(_, _, let nullable, _): return nullable ? "a string or null" : "a string"
        case .integer(_, _, let nullable): return nullable ? "an integer or null" : "an integer"
        case .boolean: return "true or false"
        case .object(let nullable): return nullable ? "an object or null" : "an object"
        case .oneOf(_, let nullable): return nullable ? "a string or null" : "a string"
        case .array(_, _, _, let nullable, _, _): return nullable ? "an array or null" : "an array"
        case .record(_, let nullable): return nullable ? "an object or null" : "an object"
        case .anyOf(let rules): return rules.map(\.expectation).joined(separator: " or ")
        case .tokenName: return "a token name"
        }
    }
}

/// The bodies of the dataset endpoints; each mirrors its file in `Schemas/requests/`.
enum RequestSchemas {
    static let column = BodyRules(
        fields: [
            "name": .string(minLength: 1, maxLength: 1024), "type": .string(minLength: 1, maxLength: 256),
            "nullable": .boolean, "description": .string(maxLength: 4096, nullable: true),
        ],
        required: ["name", "type"]
    )
    static let versionRef = BodyRules(
        fields: ["dataset_id": .uuid, "version": .integer(minimum: 1)], required: ["dataset_id", "version"]
    )

    /// The version fields; in a merge patch every one of them may also be null.
    static func versionFields(patch: Bool) -> [String: FieldRule] {
        [
            "owner": .string(maxLength: 256, nullable: true),
            "description": .string(maxLength: 65536, nullable: true),
            "location": .string(maxLength: 4096, nullable: true),
            "format": .oneOf(DatasetFormat.allCases.map(\.rawValue), nullable: true),
            // A table has each column name once; a schema naming one twice says nothing a reader can use.
            "schema": .array(of: .record(column), maxItems: 10000, nullable: patch, uniqueMember: "name"),
            "tags": .array(
                of: .string(minLength: 1, maxLength: 256), maxItems: 256, uniqueItems: true, nullable: patch),
            "row_count": .integer(minimum: 0, nullable: true),
            "size_bytes": .integer(minimum: 0, nullable: true),
            "properties": .object(nullable: patch),
            "parents": .array(of: .record(versionRef), maxItems: 1000, nullable: patch),
            "change_note": .string(maxLength: 4096, nullable: true),
        ]
    }

    static let createDataset = BodyRules(
        fields: versionFields(patch: false).merging(["namespace": .namespaceOrName, "name": .namespaceOrName]) { $1 },
        required: ["namespace", "name"]
    )
    static let patchDataset = BodyRules(fields: versionFields(patch: true))
    static let publishDataset = BodyRules(
        fields: ["version": .integer(minimum: 1), "change_note": .string(maxLength: 4096, nullable: true)]
    )
    static let archiveDataset = BodyRules(fields: ["reason": .string(maxLength: 4096, nullable: true)])
    static let restoreDataset = BodyRules(fields: [:])
    static let retireDataset = BodyRules(
        fields: ["reason": .string(minLength: 1, maxLength: 4096), "dry_run": .boolean], required: ["reason"]
    )
    static let cloneDataset = BodyRules(
        fields: [
            "name": .namespaceOrName, "namespace": .namespaceOrName,
            "change_note": .string(maxLength: 4096, nullable: true),
        ],
        required: ["name"]
    )
    static let recordUsage = BodyRules(
        fields: [
            "consumer": .string(minLength: 1, maxLength: 1024), "kind": .string(maxLength: 256, nullable: true),
            "properties": .object(),
        ],
        required: ["consumer"]
    )
}
