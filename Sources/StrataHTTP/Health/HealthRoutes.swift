import Hummingbird
import StrataStore

/// What `/readyz` asks: is the database reachable, and is its schema the one this build expects?
public protocol ReadinessProbe: Sendable {
    /// `nil` when ready, otherwise why not.
    func unreadiness() async -> String?
}

/// `/healthz` (the process answers) and `/readyz` (it can serve: database reachable, migrations current).
///
/// A projection being rebuilt in the background does not make the server unready (its old tables
/// serve), but `/readyz` names it under `catching_up` until the rebuilt tables are swapped in.
struct HealthRoutes<Context: RequestContext> {
    let readiness: any ReadinessProbe
    var rebuilding: PendingRebuilds?

    func register(on router: Router<Context>) {
        router.get("/healthz") { _, _ in Self.statusBody("ok") }
        router.get("/readyz") { _, _ -> Response in
            if let reason = await readiness.unreadiness() {
                // A 503 says when to ask again, as the catalog's own do.
                throw Problem(
                    status: .serviceUnavailable, code: "not_ready", detail: reason,
                    headers: [.retryAfter: "\(Problem.retryAfterSeconds)"])
            }
            return Self.statusBody("ready", catchingUp: rebuilding?.projections ?? [])
        }
    }

    private static func statusBody(_ status: String, catchingUp: [String] = []) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        var body = "{\"status\":\"\(status)\""
        if !catchingUp.isEmpty {
            // Projection names are identifiers from Projections/*.sql: nothing to escape.
            body += ",\"catching_up\":[" + catchingUp.map { "\"\($0)\"" }.joined(separator: ",") + "]"
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body + "}")))
    }
}

extension DatabaseMonitor: ReadinessProbe {}
