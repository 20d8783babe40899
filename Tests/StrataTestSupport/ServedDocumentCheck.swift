import EmbeddedPostgres
import Foundation

/// `Tests/check-openapi.py` on a served OpenAPI document (its YAML and JSON forms): what it describes,
/// and what is wrong with it.
public struct ServedDocumentCheck: Decodable, Sendable {
    public struct Operation: Decodable, Sendable {
        public var method: String
        public var path: String
        /// The security schemes the operation requires; empty when it needs none.
        public var schemes: [String]
        /// Each parameter's name and where it goes (`path`, `query`, `header`).
        public var parameters: [(name: String, location: String)]

        public init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            method = try container.decode(String.self)
            path = try container.decode(String.self)
            schemes = try container.decode([String].self)
            parameters = try container.decode([[String]].self).map { ($0[0], $0[1]) }
        }
    }

    public var operations: [Operation]
    public var problems: [String]

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    public static func run(yaml: Data, json: Data) throws -> ServedDocumentCheck {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try yaml.write(to: folder.appendingPathComponent("served.yaml"))
        try json.write(to: folder.appendingPathComponent("served.json"))
        let output = Data(
            try ProcessRunner.run([
                "/usr/bin/env", "python3", root.appendingPathComponent("Tests/check-openapi.py").path,
                folder.appendingPathComponent("served.yaml").path, folder.appendingPathComponent("served.json").path,
            ]).output.utf8)
        do {
            return try JSONDecoder().decode(ServedDocumentCheck.self, from: output)
        } catch {
            throw CheckFailed(output: String(decoding: output, as: UTF8.self))
        }
    }

    struct CheckFailed: Error, CustomStringConvertible {
        var output: String
        var description: String { "check-openapi.py failed: \(output)" }
    }
}
