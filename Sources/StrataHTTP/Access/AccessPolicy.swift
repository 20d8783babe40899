import HTTPTypes
import Hummingbird
import HummingbirdAuth
import StrataCore
import StrataStore

/// Who may call what, for every route in one place: each needs a token with the role its method and
/// path ask for, except the few open to all. A route added later is covered by default: a GET needs a
/// reader, any other method a writer, anything under `/v1/admin/` an admin.
public enum AccessRules {
    /// The role `method` on `path` needs; nil for the routes open to all.
    public static func requiredRole(_ method: HTTPRequest.Method, _ path: String) -> Role? {
        if openPaths.contains(path) || path.hasPrefix("/ui/") { return nil }
        if path.hasPrefix("/v1/admin/") || path == "/v1/admin" { return .admin }
        return method == .get || method == .head ? .reader : .writer
    }

    /// The role a request needs, judged by the route the router matched: the path as sent may hold empty
    /// segments (`//v1//admin/tokens`) that the router reads past and a test of its text would not.
    static func requiredRole(_ request: Request, _ context: some RequestContext) -> Role? {
        requiredRole(request.method, context.endpointPath ?? request.uri.path)
    }

    /// Liveness, readiness, metrics, the API's description and the web UI's files need no token.
    public static let openPaths: Set<String> = [
        "/healthz", "/readyz", "/metrics", "/openapi.yaml", "/openapi.json", "/",
    ]
}

/// Enforces ``AccessRules``: 401 without a valid token, 403 for a role too low.
struct AccessPolicy: RouterMiddleware {
    typealias Context = StrataRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let needed = AccessRules.requiredRole(request, context) else {
            return try await next(request, context)
        }
        guard let caller = context.identity else {
            throw AccessProblem.unauthorized(
                request.headers[.authorization] == nil
                    ? "this needs a token: send Authorization: Bearer <token>"
                    : "the token is not valid: unknown, revoked or malformed")
        }
        context.notes.actor = caller.name
        guard caller.may(needed) else {
            throw AccessProblem.forbidden(
                "this needs the \(needed.rawValue) role; the token has \(caller.role.rawValue)")
        }
        var context = context
        // Only a write records it; a read ignores it, as it ignores any header it does not use.
        if request.method != .get && request.method != .head, let onBehalfOf = request.headers[.strataActor] {
            // Dropped, a name the caller thought recorded would be missing from the audit trail.
            guard (1...256).contains(onBehalfOf.count), !onBehalfOf.containsControlCharacter else {
                throw invalidParameter("Strata-Actor", "must be 1 to 256 characters, none of them control characters")
            }
            context.onBehalfOf = onBehalfOf
        }
        return try await next(request, context)
    }
}

/// Recognises `Authorization: Bearer <token>` by the directory of valid tokens.
struct TokenAuthenticator: AuthenticatorMiddleware {
    typealias Context = StrataRequestContext
    let directory: TokenDirectory

    func authenticate(request: Request, context: Context) async throws -> Caller? {
        // The open routes answer without the database (/healthz above all), whatever a client presents.
        guard AccessRules.requiredRole(request, context) != nil,
            let token = Self.bearerToken(request.headers[.authorization]), !token.isEmpty, token.utf8.count <= 256
        else { return nil }
        return try await directory.caller(presenting: String(token))
    }

    /// The token of `Bearer <token>`, the scheme in any case (RFC 9110 §11.1: `bearer` is `Bearer`).
    static func bearerToken(_ authorization: String?) -> Substring? {
        guard let authorization, let space = authorization.firstIndex(of: " "),
            authorization[..<space].lowercased() == "bearer"
        else { return nil }
        return authorization[authorization.index(after: space)...]
    }
}

/// `--insecure-no-auth`: every request acts as an administrator named `anonymous`. For experiments on
/// a loopback address only; `strata serve` refuses it anywhere else.
struct OpenAccess: AuthenticatorMiddleware {
    typealias Context = StrataRequestContext

    func authenticate(request: Request, context: Context) async throws -> Caller? {
        Caller(name: TokenName.anonymous, role: .admin, scope: .all)
    }
}

/// The refusals of authentication and authorization, as problems.
enum AccessProblem {
    static func unauthorized(_ detail: String) -> Problem {
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = #"Bearer realm="strata""#
        return Problem(status: .unauthorized, code: "unauthorized", detail: detail, headers: headers)
    }

    static func forbidden(_ detail: String) -> Problem {
        Problem(status: .forbidden, code: "forbidden", detail: detail)
    }
}
