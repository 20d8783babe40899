import HTTPTypes
import Hummingbird

/// Refuses a query parameter the operation does not take, naming it and the ones it takes: a misspelt
/// filter (`?namepsace=finance`) would otherwise be ignored, and a list of every namespace answered to
/// a script that meant one. What each operation takes is what `Schemas/openapi.yaml` says, so the
/// document and the server cannot disagree on it. Paths outside the API (the web UI's files) are left
/// alone.
struct QueryParameterCheck: RouterMiddleware {
    typealias Context = StrataRequestContext
    /// By `METHOD /path/{template}`, as ``OpenAPIDocument/queryParameters`` keys them.
    let operations: [String: Set<String>]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        // The route the router matched, not the path as sent, which may hold empty segments (`//v1/…`).
        guard let query = request.uri.query, !query.isEmpty, let endpoint = context.endpointPath,
            endpoint.hasPrefix("/v1/") || endpoint.hasPrefix("/api/v1/"),
            let taken = operations["\(request.method == .head ? "GET" : request.method.rawValue) \(endpoint)"]
        else { return try await next(request, context) }
        for (name, _) in request.uri.queryParameters where !taken.contains(String(name)) {
            let takes = taken.isEmpty ? "it takes none" : "it takes " + taken.sorted().joined(separator: ", ")
            throw invalidParameter(String(name), "is not a parameter of this operation; \(takes)")
        }
        return try await next(request, context)
    }
}
