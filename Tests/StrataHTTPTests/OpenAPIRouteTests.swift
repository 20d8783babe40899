import EmbeddedPostgres
import Foundation
import Hummingbird
import HummingbirdTesting
import StrataHTTP
import StrataTestSupport
import Testing

/// `Schemas/openapi.yaml` describes exactly the routes the router serves, and is what `/openapi.yaml` serves.
@Suite("The OpenAPI document and the router")
struct OpenAPIRouteTests {
    @Test func everyRouteIsInTheSpecAndEveryOperationInTheSpecIsARoute() async throws {
        let documented = try Self.specOperations()
        let served = try await withTestDatabase { database in
            let router = servedRoutes(try StrataServices(database: .fixed(database.client), logger: database.logger))
            return Set(router.routes.map { Self.operation(method: $0.method.rawValue, path: $0.path.description) })
        }
        // Both sides must have been read, in the same notation, for the comparison to mean anything.
        #expect(served.contains("get /v1/datasets/{id}"), "router: \(served.sorted())")
        #expect(documented.contains("get /v1/datasets/{id}"), "spec: \(documented.sorted())")

        let undocumented = served.subtracting(documented).sorted()
        let unserved = documented.subtracting(served).sorted()
        #expect(
            undocumented.isEmpty,
            "routes that Schemas/openapi.yaml lacks:\n  \(undocumented.joined(separator: "\n  "))"
        )
        #expect(
            unserved.isEmpty,
            "operations in Schemas/openapi.yaml that no route serves:\n  \(unserved.joined(separator: "\n  "))"
        )
    }

    /// Generic OpenAPI tooling (clients, fuzzers, Swagger UI) follows only references inside the
    /// document: the served one must carry every schema, in both its forms, and describe each operation
    /// with the security the access policy enforces.
    @Test func theServedDocumentIsSelfContainedValidAndDescribesEveryOperation() async throws {
        let source = try Self.specOperations()
        try await withTestApp { client, _ in
            let anonymous = client.presenting(nil)
            let yaml = try await anonymous.execute(uri: "/openapi.yaml", method: .get)
            let json = try await anonymous.execute(uri: "/openapi.json", method: .get)
            #expect(yaml.status == .ok && json.status == .ok, "the document needs no token")
            #expect(yaml.headers[.contentType] == "application/yaml")
            #expect(json.headers[.contentType] == "application/json")
            let check = try ServedDocumentCheck.run(yaml: Data(buffer: yaml.body), json: Data(buffer: json.body))
            #expect(check.problems.isEmpty, "\(check.problems.joined(separator: "\n"))")
            let served = Set(check.operations.map { Self.operation(method: $0.method, path: $0.path) })
            #expect(served == source, "the served document's operations differ from Schemas/openapi.yaml's")
            for operation in check.operations {
                let needed = AccessRules.requiredRole(.init(rawValue: operation.method.uppercased())!, operation.path)
                #expect(
                    operation.schemes == (needed == nil ? [] : ["bearerAuth"]),
                    "\(operation.method) \(operation.path): security \(operation.schemes), the policy needs \(needed?.rawValue ?? "none")"
                )
            }
        }
    }

    /// "method /path" with a lowercase method, `{param}` captures and no trailing slash.
    static func operation(method: String, path: String) -> String {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map { segment in
            segment.hasPrefix(":") ? "{\(segment.dropFirst())}" : String(segment)
        }
        return "\(method.lowercased()) /\(segments.joined(separator: "/"))"
    }

    /// The repository root: this file is `Tests/<Target>/<File>.swift`.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Every operation of the spec's `paths`, read with PyYAML.
    static func specOperations() throws -> Set<String> {
        let script = """
            import json, sys, yaml
            spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
            methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
            print(json.dumps([[m, p] for p, item in spec["paths"].items() for m in item if m.lower() in methods]))
            """
        // ProcessRunner, not Process: see ``ProcessRunner/run(_:inputPath:)``.
        let result = try ProcessRunner.run([
            "/usr/bin/env", "python3", "-c", script, root.appendingPathComponent("Schemas/openapi.yaml").path,
        ])
        // Standard error shares the output: the list is its last line.
        let last = result.output.split(separator: "\n").last.map(String.init) ?? ""
        guard result.status == 0, let pairs = try? JSONDecoder().decode([[String]].self, from: Data(last.utf8)) else {
            throw SpecUnreadable(status: result.status, output: result.output)
        }
        return Set(pairs.map { operation(method: $0[0], path: $0[1]) })
    }

    struct SpecUnreadable: Error, CustomStringConvertible {
        var status: Int32
        var output: String
        var description: String { "reading Schemas/openapi.yaml with PyYAML failed (\(status)): \(output)" }
    }
}
