import Hummingbird

/// Refuses, before anything acts on it, a request whose target PostgreSQL could not store or no route
/// expects: an over-long URI (414), a path segment or query parameter that is not valid percent-encoded
/// UTF-8, or that holds U+0000, which no `text` column can hold (400 `invalid_parameter`). Without this,
/// such a value reached a query and came back as a 500. It also reads `Strata-Min-Position` into the
/// context, refusing one that is not a position.
struct RequestHygiene: RouterMiddleware {
    typealias Context = StrataRequestContext

    /// Longer than any URI the API needs: a namespace and a name of 1,024 four-byte characters each,
    /// percent-encoded (12 bytes a character). Past the HTTP decoder's limit on a request line (32 KiB)
    /// the request is refused before it gets here, with 400.
    static let maximumURILength = 26 * 1024

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let uri = request.uri
        guard uri.description.utf8.count <= Self.maximumURILength else {
            throw Problem(
                status: .uriTooLong, code: "uri_too_long",
                detail: "the request's URI is longer than \(Self.maximumURILength) bytes")
        }
        for segment in uri.path.split(separator: "/") where !Self.isStorable(segment) {
            throw invalidParameter("path", "must be valid percent-encoded UTF-8 without U+0000")
        }
        for pair in (uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecoded(parts[0]) ?? String(parts[0])
            guard parts.allSatisfy(Self.isStorable) else {
                throw invalidParameter(name, "must be valid percent-encoded UTF-8 without U+0000")
            }
        }
        var context = context
        if let value = request.headers[.strataMinPosition] {
            guard let position = Int64(value), position >= 0 else {
                throw invalidParameter("Strata-Min-Position", "must be a log position (a non-negative integer)")
            }
            context.minPosition = position
        }
        return try await next(request, context)
    }

    /// A query's `+` stands for a space; it is left as it is here, since neither is U+0000.
    private static func isStorable(_ text: Substring) -> Bool {
        guard let decoded = percentDecoded(text) else { return false }
        return !decoded.unicodeScalars.contains("\u{0}")
    }
}
