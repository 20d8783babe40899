import EmbeddedPostgres
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `strata serve` running as a process of its own, as a user runs it: for tests that crash it, signal
/// it, or take its database away underneath it.
public final class ServerProcess: Sendable {
    public let pid: pid_t
    /// `http://127.0.0.1:<port>`, the port the server chose.
    public let baseURL: String
    /// Everything the server printed.
    public let logPath: String

    /// The secret of the admin token every server started here has (`STRATA_BOOTSTRAP_TOKEN`).
    public static let adminToken = "strata_test-server-admin-0123456789"

    private init(pid: pid_t, baseURL: String, logPath: String) {
        self.pid = pid
        self.baseURL = baseURL
        self.logPath = logPath
    }

    /// Starts `strata serve` on a free loopback port (or on `port`, where a server that stopped listened)
    /// against `databaseURL`, and returns once it serves (or, with `untilServing` false, once it has
    /// bound its port, which it does before its database is ready).
    public static func start(
        databaseURL: String,
        port: Int = 0,
        arguments: [String] = [],
        environment: [String: String] = [:],
        logFolder: String,
        untilServing: Bool = true
    ) async throws -> ServerProcess {
        let logPath = logFolder + "/serve-\(UUID().uuidString.prefix(8)).log"
        var settings = [
            "DATABASE_URL": databaseURL, "STRATA_LOG_LEVEL": "info", "STRATA_BOOTSTRAP_TOKEN": adminToken,
            // A crash reports the crashed thread alone, so the report fits in a failed test's message.
            "SWIFT_BACKTRACE": "interactive=no,threads=crashed,registers=none,images=none",
        ]
        settings.merge(environment) { _, new in new }
        let pid = try ProcessRunner.start(
            [StrataBinary.path, "serve", "--host", "127.0.0.1", "--port", "\(port)"] + arguments, outputPath: logPath,
            environment: settings)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let port = boundPort(after: "strata listening on ", in: log)
                ?? (untilServing ? nil : boundPort(after: "strata bound to ", in: log))
            {
                return ServerProcess(pid: pid, baseURL: "http://127.0.0.1:\(port)", logPath: logPath)
            }
            guard isProcessAlive(pid) else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(pid, SIGKILL)
        _ = waitForExit(pid, within: .seconds(5))
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        throw ServerProcessError(message: "strata serve did not start listening:\n\(log)")
    }

    /// The port of the address the log names after `marker` ("strata listening on 127.0.0.1:PORT").
    private static func boundPort(after marker: String, in log: String) -> Int? {
        guard let found = log.range(of: marker) else { return nil }
        let address = log[found.upperBound...].prefix { !$0.isWhitespace && $0 != "," }
        return address.split(separator: ":").last.flatMap { Int($0) }
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// What a failed test shows of the log: its end, or, if the server crashed, what led up to the crash
    /// and the crash report from its first line, which the end of a long report would leave out.
    public var logExcerpt: String {
        let log = self.log
        guard let crash = log.range(of: "Program crashed") else { return String(log.suffix(4000)) }
        return String(log[..<crash.lowerBound].suffix(1500)) + String(log[crash.lowerBound...].prefix(6000))
    }

    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Waits for the process to end, up to `limit`; answers its exit status, or nil if it is still running.
    public func waitForExit(within limit: Duration) -> Int32? {
        Self.waitForExit(pid, within: limit)
    }

    /// Kills the process if it still runs, and reaps it.
    public func stop() {
        kill(pid, SIGKILL)
        _ = waitForExit(within: .seconds(10))
    }

    public static func waitForExit(_ pid: pid_t, within limit: Duration) -> Int32? {
        let deadline = ContinuousClock.now + limit
        var status: Int32 = 0
        repeat {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
            if reaped == -1 && errno != EINTR { return -1 }
            usleep(20_000)
        } while ContinuousClock.now < deadline
        return nil
    }
}

public struct ServerProcessError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    public init(message: String) {
        self.message = message
    }
}
