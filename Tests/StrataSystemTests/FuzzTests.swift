import EmbeddedPostgres
import Foundation
import StrataTestSupport
import Testing

/// Schemathesis (from PyPI) reads the served OpenAPI document and sends generated requests — valid,
/// invalid, NUL-laden, oversized, with methods no path takes — to every operation of a real server, as
/// an admin: none may answer with a server error, and every answer must be one the document describes
/// (its status, content type, headers and body), or a 405 for a method the path does not take.
@Suite("Generated requests", .timeLimit(.minutes(5)))
struct FuzzTests {
    static let checks = [
        "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
        "response_headers_conformance", "unsupported_method",
    ].joined(separator: ",")

    @Test func everyAnswerIsOneTheDocumentDescribesAndNoneIsAServerError() async throws {
        let (cluster, server) = try await PrivateCluster.startServed()
        defer {
            server.stop()
            cluster.remove()
        }
        let reportFolder = cluster.folder + "/schemathesis"
        // The live feed never ends; revoking tokens would revoke the fuzzer's own (it is tested apart).
        let script = """
            import sys
            from schemathesis.cli import schemathesis
            sys.argv = ["st"] + sys.argv[1:]
            sys.exit(schemathesis())
            """
        let result = try await blocking {
            try ProcessRunner.run(
                [
                    "/usr/bin/timeout", "240", "/usr/bin/env", "python3", "-c", script, "run",
                    server.baseURL + "/openapi.json",
                    "-H", "Authorization: Bearer \(ServerProcess.adminToken)", "--checks", Self.checks,
                    "--phases", "examples,coverage,fuzzing", "--max-examples", "20", "--seed", "20261202",
                    "--exclude-path", "/v1/events/stream", "--exclude-operation-id", "revokeToken",
                    "--request-timeout", "20", "--workers", "1", "--no-shrink", "--report-dir", reportFolder,
                ])
        }
        let summary = result.output.split(separator: "\n").filter {
            $0.contains("generated") || $0.contains("passed") || $0.contains("failed") || $0.contains("Tested")
        }
        print("schemathesis: \(summary.joined(separator: " | "))")
        #expect(!result.output.contains("No module named"), "install schemathesis: pip install schemathesis")
        #expect(result.output.contains(" generated"), "schemathesis did not run:\n\(result.output.suffix(3000))")
        let reproductions = result.output.split(separator: "\n").filter { $0.contains("curl ") }
        let failedChecks = result.output.split(separator: "\n").filter { $0.hasPrefix("- ST") }
        #expect(
            failedChecks.isEmpty,
            """
            answers the document does not describe:
            \(result.output.split(separator: "\n").filter { $0.hasPrefix("- ST") || $0.contains("curl ") }
                .joined(separator: "\n").suffix(6000))
            """)
        let serverFailures = server.log.split(separator: "\n").filter { $0.contains("request failed") }
        // Its exit status also counts errors of its own (a flaky draw in Hypothesis), which say nothing
        // about the server: what matters is a server error found, or one in the server's log.
        #expect(
            !result.output.contains("Server error"),
            """
            schemathesis found server errors:
            \(reproductions.joined(separator: "\n"))
            the server's log:
            \(serverFailures.joined(separator: "\n").suffix(4000))
            """)
        #expect(result.output.contains("Tested: "), "\(summary)")
        #expect(serverFailures.isEmpty, "the server failed:\n\(serverFailures.joined(separator: "\n").suffix(4000))")
    }
}
