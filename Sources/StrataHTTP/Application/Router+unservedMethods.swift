import HTTPTypes
import Hummingbird

extension Router {
    /// The methods a path can be asked with that the API does not serve there, which Hummingbird's router
    /// answers as if the path did not exist (404). RFC 9110 §15.5.6 wants 405 with `Allow`, which tells a
    /// client (or a tool probing the API) that the path is right and which methods it takes. These are
    /// RFC 9110's methods that name a resource by its path, PATCH, and QUERY (a safe method with a body,
    /// on its way through the IETF); a method no one defines stays a path not found.
    static var refusableMethods: [HTTPRequest.Method] {
        [.get, .head, .post, .put, .patch, .delete, .options, .trace, HTTPRequest.Method("QUERY")!]
    }

    /// Routes each method that a path with routes lacks to a 405 naming the ones it has. Call it once
    /// every route is registered; HEAD counts as served wherever GET is (`autoGenerateHeadEndpoints`).
    func refuseUnservedMethods() {
        let byPath = Dictionary(grouping: routes, by: { $0.path.description })
        for routes in byPath.values {
            var served = Set(routes.map(\.method))
            if served.contains(.get) { served.insert(.head) }
            let problem = Problem.methodNotAllowed(served)
            for method in Self.refusableMethods where !served.contains(method) {
                on(routes[0].path, method: method) { _, _ -> Response in throw problem }
            }
        }
    }
}

extension Problem {
    static func methodNotAllowed(_ served: Set<HTTPRequest.Method>) -> Problem {
        let allow = served.map(\.rawValue).sorted().joined(separator: ", ")
        var headers = HTTPFields()
        headers[.allow] = allow
        return Problem(
            status: .methodNotAllowed, code: "method_not_allowed",
            detail: "this resource does not take that method; it takes \(allow)", headers: headers)
    }
}
