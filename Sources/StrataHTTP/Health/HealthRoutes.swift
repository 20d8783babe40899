import Hummingbird
import StrataStore

/// What `/readyz` asks: is the database reachable, and is its schema the one this build expects?
public protocol ReadinessProbe: Sendable {
    /// `nil` when ready, otherwise why not.
    func unreadiness() async -> String?
}

/// `/healthz` (the process answers) and `/readyz` (it can serve: database reachable, migrations current).
struct HealthRoutes<Context: RequestContext> {
    let readiness: any ReadinessProbe

    func register(on router: Router<Context>) {
        router.get("/healthz") { _, _ in Self.statusBody("ok") }
        router.get("/readyz") { _, _ -> Response in
            if let reason = await readiness.unreadiness() {
                throw Problem(status: .serviceUnavailable, code: "not_ready", detail: reason)
            }
            return Self.statusBody("ready")
        }
    }

    private static func statusBody(_ status: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"\(status)\"}")))
    }
}

extension DatabaseMonitor: ReadinessProbe {}
