import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataTestSupport
import Testing

/// The web UI's files as the server hands them out: without a token, with a policy that lets the page run
/// only its own scripts, revalidated by ETag, and nothing outside their folder.
@Suite("Web UI files")
struct WebUIRouteTests {
    @Test func thePageAndItsFilesNeedNoTokenAndThePageMayRunOnlyItsOwnScripts() async throws {
        try await withTestApp { admin, _ in
            let anonymous = admin.presenting(nil)
            let page = try await anonymous.send(.get, "/")
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.text.contains(#"<script type="module" src="/ui/app.js">"#))
            let policy = try #require(page.headers[.contentSecurityPolicy])
            #expect(policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"))
            #expect(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"))

            var total = page.body.readableBytes
            for (file, type) in [("app.js", "javascript"), ("lineage.js", "javascript"), ("app.css", "text/css")] {
                let asset = try await anonymous.send(.get, "/ui/\(file)")
                #expect(asset.status == .ok, "\(file)")
                #expect(asset.headers[.contentType]?.contains(type) == true, "\(file): \(asset.headers)")
                let etag = try #require(asset.headers[.eTag])
                let again = try await anonymous.send(.get, "/ui/\(file)", headers: ["If-None-Match": etag])
                #expect(again.status == .notModified)
                total += asset.body.readableBytes
            }
            #expect(total < 300_000, "every asset together stays under 300 KB: \(total)")
        }
    }

    @Test func nothingOutsideTheUIFolderIsServedAndTheAPIIsNotShadowed() async throws {
        try await withTestApp { admin, _ in
            let anonymous = admin.presenting(nil)
            for path in ["/ui/../Migrations/0001_events.sql", "/ui/%2e%2e/Schemas/openapi.yaml", "/ui/missing.js"] {
                let answer = try await anonymous.send(.get, path)
                #expect([400, 404].contains(answer.status.code), "\(path): \(answer.status)")
                #expect(!answer.text.contains("CREATE TABLE") && !answer.text.contains("openapi:"), "\(path)")
            }
            // An unknown API path is still the API's 404 problem, and API routes still need a token.
            #expect(try await admin.send(.get, "/v1/nothing-here").status == .notFound)
            #expect(try await anonymous.send(.get, "/v1/datasets").status == .unauthorized)
            let me = try await admin.send(.get, "/v1/me").json()
            #expect(me["role"]?.stringValue == "admin" && me["namespaces"]?.arrayValue == [])
        }
    }
}
