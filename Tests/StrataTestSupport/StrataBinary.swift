import EmbeddedPostgres
import Foundation

/// The `strata` executable built beside the tests, run as a separate process.
public enum StrataBinary {
    /// The path of the built binary; the test bundle sits in the same build folder.
    public static var path: String {
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
        while folder.path != "/" {
            let candidate = folder.appendingPathComponent("strata").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return "strata"
    }

    /// Copies the binary and its resource bundle into `folder`, readable by everyone; answers the copy's path.
    public static func copy(into folder: String) throws -> String {
        let source = URL(fileURLWithPath: path)
        let fileManager = FileManager.default
        let bundles = try fileManager.contentsOfDirectory(atPath: source.deletingLastPathComponent().path)
            .filter { $0.hasSuffix(".resources") }
        for name in [source.lastPathComponent] + bundles {
            try fileManager.copyItem(
                atPath: source.deletingLastPathComponent().appendingPathComponent(name).path,
                toPath: folder + "/" + name
            )
        }
        _ = try ProcessRunner.run(["/bin/chmod", "-R", "a+rX", folder])
        return folder + "/" + source.lastPathComponent
    }

    /// Starts `strata <arguments>` without waiting; answers its pid (its output is discarded).
    public static func spawn(_ arguments: [String]) throws -> pid_t {
        try ProcessRunner.start([path] + arguments)
    }

    /// Runs `strata <arguments>` to completion, optionally as another system user (through `runuser`),
    /// and answers its exit status and everything it printed.
    public static func run(
        _ arguments: [String],
        asUser user: String? = nil,
        environment: [String: String] = [:],
        binary: String = path
    ) throws -> ProcessRunner.Result {
        let asUser = user.map { ["/usr/sbin/runuser", "-u", $0, "--"] } ?? []
        let settings = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return try ProcessRunner.run(asUser + ["/usr/bin/env"] + settings + [binary] + arguments)
    }
}
