import EmbeddedPostgres
import Foundation
import Histogram

/// `wrk` (Debian's package) as the HTTP load generator, when it is installed: a C program in a process
/// of its own, which costs the machine a fraction of what AsyncHTTPClient in the bench's process does
/// (on two cores the generator and the server share the CPU, so a heavier generator understates the
/// server). Each workload is a Lua script that says which request to send next; wrk keeps
/// `connections` of them in flight, closed-loop, and its `done` hook prints the count, the errors and
/// the latency percentiles from wrk's own histogram as one JSON line.
struct WrkLoad: Sendable {
    let executable: String
    let connections: Int
    /// Where the scripts and the id lists they read are written; removed by ``removeFiles()``.
    let folder: URL

    /// wrk from `PATH`, or nil if it is not installed.
    static func located(connections: Int) -> WrkLoad? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard
            let executable = path.split(separator: ":").map({ "\($0)/wrk" }).first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else { return nil }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strata-bench-wrk-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return WrkLoad(executable: executable, connections: connections, folder: folder)
    }

    func removeFiles() { try? FileManager.default.removeItem(at: folder) }

    /// Writes `lines` (one id per line) where a script can read them; answers the file's path.
    func list(_ name: String, _ lines: [String]) throws -> String {
        let file = folder.appendingPathComponent("\(name).txt")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    /// Runs `requestFunction` — the body of a Lua function answering the next request with
    /// `wrk.format(method, path, headers, body)`; `n` counts this thread's requests, `thread_id`
    /// tells the two threads apart and `run_tag` this run from others — against `baseURL`, for one second of warm-up and then `duration`.
    func run(
        _ name: String, baseURL: String, for duration: Duration, token: String?, prelude: String = "",
        requestFunction: String
    ) async throws -> LoadResult {
        // Each invocation has its own script, whose `run_tag` keeps the names it creates its own.
        func script() throws -> String {
            let tag = UUID().uuidString.prefix(8).lowercased()
            let file = folder.appendingPathComponent("\(tag).lua")
            try Self.script(tag: tag, token: token, prelude: prelude, requestFunction: requestFunction)
                .write(to: file, atomically: true, encoding: .utf8)
            return file.path
        }
        _ = try await wrk(seconds: 1, script: try script(), baseURL: baseURL)
        let output = try await wrk(
            seconds: max(1, Int(duration.components.seconds)), script: try script(), baseURL: baseURL)
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{\"requests\"") }),
            let figures = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double],
            let requests = figures["requests"], let errors = figures["errors"], let micros = figures["duration_us"]
        else { throw BenchError("wrk printed no figures for \(name):\n\(output)") }
        return LoadResult(
            name: name, requests: Int(requests - errors), failures: Int(errors), seconds: micros / 1_000_000,
            latencies: .percentiles(
                [
                    50: UInt64(figures["p50_us"] ?? 0), 90: UInt64(figures["p90_us"] ?? 0),
                    99: UInt64(figures["p99_us"] ?? 0),
                ]))
    }

    private func wrk(seconds: Int, script: String, baseURL: String) async throws -> String {
        let arguments = [
            executable, "--threads", "2", "--connections", "\(connections)", "--duration", "\(seconds)s",
            "--timeout", "30s", "--script", script, baseURL,
        ]
        // wrk runs for seconds: wait for it off Swift Concurrency's few threads.
        let result = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try ProcessRunner.run(arguments) })
            }
        }
        guard result.status == 0 else { throw BenchError("wrk failed (\(result.status)):\n\(result.output)") }
        return result.output
    }

    /// A whole wrk script: per-thread numbering, the token, the request function, and a `done` hook
    /// that prints the figures. Any answer outside 2xx/3xx counts as an error (wrk's `status` errors).
    private static func script(tag: String, token: String?, prelude: String, requestFunction: String) -> String {
        let authorization = token.map { #"wrk.headers["Authorization"] = "Bearer \#($0)""# } ?? ""
        return """
            run_tag = "\(tag)"
            local threads = 0
            function setup(thread)
              threads = threads + 1
              thread:set("thread_id", threads)
            end
            \(authorization)
            wrk.headers["Content-Type"] = "application/json"
            n = 0
            \(prelude)
            function request()
              n = n + 1
            \(requestFunction)
            end
            function done(summary, latency, requests)
              local e = summary.errors
              io.write(string.format(
                '{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\\n',
                summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
                latency:percentile(50), latency:percentile(90), latency:percentile(99)))
            end
            """
    }
}

extension WrkLoad {
    /// Lua that reads the lines of `path` into the table `name`.
    static func readLines(_ path: String, into name: String) -> String {
        """
        \(name) = {}
        for line in io.lines("\(path)") do \(name)[#\(name) + 1] = line end
        """
    }
}
