import HTTPTypes
import Hummingbird
import Logging
import StrataCore

/// Gives each request its id, logs it when it completes (with the token that acted, once the access
/// policy has learned it), and echoes the id back.
///
/// The id is the caller's `X-Request-ID` when it sends a sane one — 1 to 128 visible ASCII characters,
/// no spaces, so that it cannot pass in the log line for fields of its own (`x actor=bootstrap …`) — so
/// a trace can cross services; otherwise a new time-ordered UUID.
struct RequestContextMiddleware: RouterMiddleware {
    typealias Context = StrataRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var context = context
        let offered = request.headers[.xRequestID].flatMap { Self.isSane(requestID: $0) ? $0 : nil }
        context.requestID = offered ?? UUIDv7.make().lowercased
        let started = ContinuousClock.now
        var response = try await next(request, context)
        response.headers[.xRequestID] = context.requestID
        let elapsed = ContinuousClock.now - started
        context.logger.info(
            "request",
            metadata: [
                "request_id": .string(context.requestID), "method": .string(request.method.rawValue),
                "path": .string(request.uri.path),
                "status": .stringConvertible(response.status.code), "actor": .string(context.notes.actor ?? "-"),
                "duration_ms": .stringConvertible(
                    Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000),
            ]
        )
        return response
    }

    static func isSane(requestID: String) -> Bool {
        (1...128).contains(requestID.utf8.count) && requestID.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-ID")!
    static let strataActor = Self("Strata-Actor")!
    static let strataPosition = Self("Strata-Position")!
    static let strataMinPosition = Self("Strata-Min-Position")!
    static let idempotencyKey = Self("Idempotency-Key")!
}
