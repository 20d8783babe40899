import Foundation
import HTTPTypes
import Hummingbird
import StrataResources

/// The web UI: `index.html` at `/`, its scripts and styles under `/ui/`. The files are served as they
/// are carried in the binary; every view's state lives in the URL fragment, so the server knows one page.
struct WebUI {
    let folder: String
    let index: ByteBuffer

    init() throws {
        folder = try StrataResources.path(of: .ui)
        index = ByteBuffer(string: try StrataResources.file("index.html", in: .ui).contents)
    }

    /// The page talks only to this origin and runs only its own scripts: a dataset's description or
    /// name can never become code, whatever a writer put in it.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy:
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        .xContentTypeOptions: "nosniff",
        .referrerPolicy: "no-referrer",
    ]

    func register(on router: Router<StrataRequestContext>) {
        router.get("/") { _, _ -> Response in
            var headers = Self.securityHeaders
            headers[.contentType] = "text/html; charset=utf-8"
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: index))
        }
    }

    /// Serves `/ui/…` from the carried folder when no route matched (so the API's paths never touch the
    /// file system). `no-cache` makes a browser revalidate by ETag, so a new build's files are seen at once.
    func assets() -> FileMiddleware<StrataRequestContext, LocalFileSystem> {
        FileMiddleware(folder, urlBasePath: "/ui", cacheControl: .init([(MediaType(type: .any), [.noCache])]))
    }
}

extension HTTPField.Name {
    static let referrerPolicy = Self("Referrer-Policy")!
}
