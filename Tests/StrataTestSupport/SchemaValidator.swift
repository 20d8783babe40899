import EmbeddedPostgres
import Foundation

/// `Tests/validate-json.py`, run once per batch: NDJSON requests in, one verdict per line out.
public enum SchemaValidator {
    public struct Verdict: Decodable, Sendable {
        public var line: Int
        public var valid: Bool?
        public var errors: [String]?
        public var error: String?

        public var isValid: Bool { valid == true }
        /// What is wrong: the schema errors, or why the line could not be validated at all.
        public var problems: [String] { (errors ?? []) + (error.map { ["usage error: \($0)"] } ?? []) }
    }

    /// The repository root: this file is `Tests/StrataTestSupport/SchemaValidator.swift`.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Validates each `instance` (JSON text) against `schema` (a path below `Schemas/`), in order.
    public static func validate(_ requests: [(schema: String, instance: String)]) throws -> [Verdict] {
        var input = ""
        for request in requests {
            // JSON text holds no raw newline inside a string, so dropping them keeps the value intact.
            let instance = request.instance.replacingOccurrences(of: "\n", with: " ")
                .replacingOccurrences(of: "\r", with: " ")
            input += "{\"schema\": \"\(request.schema)\", \"instance\": \(instance)}\n"
        }
        // A file, not a pipe fed from Dispatch: see ``ProcessRunner/run(_:inputPath:)``.
        let inputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("strata-validate-\(UUID().uuidString).ndjson").path
        try input.write(toFile: inputPath, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: inputPath) }
        let result = try ProcessRunner.run(
            [
                "/usr/bin/env", "python3", root.appendingPathComponent("Tests/validate-json.py").path,
                root.appendingPathComponent("Schemas").path,
            ], inputPath: inputPath
        )

        var verdicts: [Verdict] = []
        var noise: [String] = []
        for line in result.output.split(separator: "\n") {
            if let verdict = try? JSONDecoder().decode(Verdict.self, from: Data(line.utf8)) {
                verdicts.append(verdict)
            } else {
                noise.append(String(line))
            }
        }
        guard verdicts.map(\.line) == Array(0..<requests.count).map({ $0 + 1 }), noise.isEmpty else {
            throw ValidatorFailed(
                status: result.status, verdicts: verdicts.count, expected: requests.count,
                output: noise.joined(separator: "\n")
            )
        }
        return verdicts
    }

    struct ValidatorFailed: Error, CustomStringConvertible {
        var status: Int32
        var verdicts: Int
        var expected: Int
        var output: String

        var description: String {
            "validate-json.py exited \(status) with \(verdicts) verdicts for \(expected) lines: \(output)"
        }
    }
}
