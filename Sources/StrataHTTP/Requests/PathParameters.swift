import Foundation
import HTTPTypes
import Hummingbird
import StrataStore

/// The dataset id in the path; a malformed one is 400 `invalid_id`.
func datasetID(_ context: StrataRequestContext) throws -> UUID {
    let text = try pathText("id", context)
    guard let id = UUID(uuidString: text) else {
        // A UUID is 36 characters: past 64, what was sent is shown cut, not echoed back whole.
        let shown = text.count > 64 ? text.prefix(64) + "…" : Substring(text)
        throw Problem(status: .badRequest, code: "invalid_id", detail: "'\(shown)' is not a dataset id (a UUID)")
    }
    return id
}

func versionNumber(_ context: StrataRequestContext) throws -> Int {
    try versionNumber(try pathText("n", context), parameter: "n")
}

/// A version number as a parameter gives it: 1 up to the largest the projections hold (a PostgreSQL
/// `integer`), so a larger one is refused here rather than by the database.
func versionNumber(_ text: some StringProtocol, parameter: String) throws -> Int {
    guard let number = Int(text), (1...Int(Int32.max)).contains(number) else {
        throw invalidParameter(parameter, "must be a version number: an integer from 1 to \(Int32.max)")
    }
    return number
}

/// A path parameter, percent-decoded: routing matched the encoded path, so `%2F` stays inside a name.
func pathText(_ name: String, _ context: StrataRequestContext) throws -> String {
    guard let raw = context.parameters.get(name), let text = percentDecoded(raw) else {
        throw invalidParameter(name, "is not a valid percent-encoded path segment")
    }
    return text
}

/// `text` percent-decoded; nil if it is not valid percent-encoded UTF-8. Most of what a request carries
/// holds no escape, and is itself: Foundation's decoding, for every path segment and query parameter,
/// was 1–2% of the server's CPU.
func percentDecoded(_ text: some StringProtocol) -> String? {
    text.utf8.contains(UInt8(ascii: "%")) ? text.removingPercentEncoding : String(text)
}

/// A response as the append pipeline rendered (or, for a retry, stored) it.
func storedResponse(_ stored: StoredResponse) -> Response {
    var headers = HTTPFields()
    for (name, value) in stored.headers.sorted(by: { $0.key < $1.key }) {
        if let field = HTTPField.Name(name) { headers[field] = value }
    }
    return Response(
        status: .init(code: stored.status), headers: headers,
        body: .init(byteBuffer: ByteBuffer(string: stored.body))
    )
}

/// A page size from the query string: nil when absent; present, a whole number from 1 to `maximum`.
func limitParameter(in query: Parameters, maximum: Int) throws -> Int? {
    guard let text = query["limit"].map(String.init) else { return nil }
    guard let value = Int(text), (1...maximum).contains(value) else {
        throw invalidParameter("limit", "must be an integer from 1 to \(maximum)")
    }
    return value
}

/// A text filter from the query string: nil when absent; present, 1 to `maxLength` characters (and none
/// of them a control character, for a filter on what cannot hold one, such as a namespace). An empty
/// `tag=` would otherwise filter on the empty text and silently match nothing (or, for `q=`, everything).
func textParameter(
    _ name: String, in query: Parameters, maxLength: Int, allowingControlCharacters: Bool = true
) throws -> String? {
    guard let value = query[Substring(name)].map(String.init) else { return nil }
    guard (1...maxLength).contains(value.count) else {
        throw invalidParameter(name, "must be 1 to \(maxLength) characters")
    }
    if !allowingControlCharacters, value.containsControlCharacter {
        throw invalidParameter(name, "must not contain control characters")
    }
    return value
}

extension StringProtocol {
    /// Whether any character is a Unicode control character (general category Cc: U+0000–001F and
    /// U+007F–009F), which a namespace, a name or an audit header may not hold: they cannot be typed,
    /// shown or told apart from their neighbours.
    var containsControlCharacter: Bool {
        unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
