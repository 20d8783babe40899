import EmbeddedPostgres
import Foundation

/// `strata serve` as a separate process, on the bench's scratch database, as a user would run it.
final class ServerUnderTest: Sendable {
    let pid: pid_t
    let baseURL: String
    let logPath: String

    private init(pid: pid_t, baseURL: String, logPath: String) {
        self.pid = pid
        self.baseURL = baseURL
        self.logPath = logPath
    }

    /// Starts this very binary's `serve` on a free loopback port; returns once it listens.
    static func start(databaseURL: String, arguments: [String] = [], environment: [String: String] = [:])
        async throws -> ServerUnderTest
    {
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strata-bench-serve-\(UUID().uuidString.prefix(8)).log"
        ).path
        let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        // At notice the server says where it listens and stays quiet per request, as a busy
        // production node would run.
        var settings = ["DATABASE_URL": databaseURL, "STRATA_LOG_LEVEL": "notice"]
        settings.merge(environment) { _, new in new }
        let pid = try ProcessRunner.start(
            [binary, "serve", "--host", "127.0.0.1", "--port", "0"] + arguments, outputPath: logPath,
            environment: settings)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let line = log.split(separator: "\n").first(where: { $0.contains("strata listening on") }),
                let port = line.split(separator: ":").last.flatMap({ Int($0.prefix(while: \.isNumber)) })
            {
                return ServerUnderTest(pid: pid, baseURL: "http://127.0.0.1:\(port)", logPath: logPath)
            }
            guard isProcessAlive(pid) else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(pid, SIGKILL)
        throw BenchError("strata serve did not start: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
    }

    /// The process's peak resident memory so far (`VmHWM`).
    var peakRSSBytes: Int? { memoryStatus("VmHWM:") }

    /// The process's resident memory now (`VmRSS`).
    var currentRSSBytes: Int? { memoryStatus("VmRSS:") }

    private func memoryStatus(_ field: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kilobytes * 1024
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<200 {
            if waitpid(pid, &status, WNOHANG) == pid { break }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, WNOHANG)
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
