import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a program to completion and collects what it printed; the launcher's only way of touching
/// the PostgreSQL programs.
///
/// This spawns with `posix_spawn` and waits with `waitpid` rather than using Foundation's `Process`:
/// `Process` notices a child's end through a descriptor the child inherits, and `pg_ctl start` leaves a
/// server running that inherits it too, so `Process` would wait for the server to stop.
public enum ProcessRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
    }

    /// Runs `arguments` (program first), merging standard output and standard error into a temporary
    /// file so a failure message can quote whatever the program said; its standard input is the file at
    /// `inputPath`, if given.
    ///
    /// It blocks its thread in `waitpid` and needs no other: unlike `Process` with pipes, whose ends are
    /// noticed and fed by work on Dispatch's global queues, which a Swift task blocking in it can starve.
    public static func run(_ arguments: [String], inputPath: String = "/dev/null") throws -> Result {
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("strata-command-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let pid = try spawn(arguments, inputPath: inputPath, outputPath: outputPath)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw SpawnError(program: arguments[0], code: errno) }
        }
        let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return Result(status: exitCode, output: output)
    }

    /// Starts `arguments` without waiting for it, its output going to `outputPath` (discarded by
    /// default), with `environment` added to ours. Answers its pid.
    @discardableResult
    public static func start(
        _ arguments: [String],
        outputPath: String = "/dev/null",
        environment: [String: String] = [:]
    ) throws -> pid_t {
        try spawn(arguments, inputPath: "/dev/null", outputPath: outputPath, environment: environment)
    }

    private static func spawn(
        _ arguments: [String], inputPath: String, outputPath: String, environment: [String: String] = [:]
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of ours — sockets, the HTTP listener, a test runner's descriptors — may leak into
        // a server that outlives us.
        _ = closeFrom?(&actions, 3)

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment) { _, new in new }
        let envp: [UnsafeMutablePointer<CChar>?] = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for variable in envp { free(variable) } }
        var pid = pid_t()
        let code = posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        guard code == 0 else { throw SpawnError(program: arguments[0], code: code) }
        return pid
    }

    /// glibc (2.34+) has `posix_spawn_file_actions_addclosefrom_np`, but Swift's Glibc module does not
    /// export it; look it up at run time.
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? =
        {
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
            else { return nil }
            return unsafeBitCast(
                symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self
            )
        }()

    struct SpawnError: Error, CustomStringConvertible {
        var program: String
        var code: Int32
        var description: String { "could not run \(program): \(String(cString: strerror(code)))" }
    }
}
