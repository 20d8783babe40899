import Hummingbird

/// Hummingbird's `MetricsMiddleware`, which counts a request (and ends it in the active-requests gauge)
/// once its body is written. A HEAD's body is never written: the router answers HEAD with the GET
/// route's answer and drops the body, and what was to count it with it — every HEAD would stay active
/// forever. So a HEAD is counted as soon as its answer is ready, by writing the empty body it is left
/// with to nowhere.
struct RequestMetrics: RouterMiddleware {
    typealias Context = StrataRequestContext
    private let metrics = MetricsMiddleware<Context>()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard request.method == .head else { return try await metrics.handle(request, context: context, next: next) }
        let response = try await metrics.handle(request, context: context) { request, context in
            try await next(request, context).createHeadResponse()
        }
        try await response.body.write(Nowhere())
        return response.createHeadResponse()
    }

    private struct Nowhere: ResponseBodyWriter {
        mutating func write(_ buffer: ByteBuffer) async throws {}
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
