import AsyncHTTPClient
import EmbeddedPostgres
import Foundation
import StrataTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `strata serve` on its embedded PostgreSQL, the README's first command, as a user runs it.
@Suite("strata serve on the embedded PostgreSQL", .timeLimit(.minutes(3)))
struct EmbeddedServeTests {
    /// PostgreSQL killed under the server (an OOM killer, a careless `kill -9`) is started again by the
    /// server that owns it: it answers again without anyone restarting it, and what it acknowledged
    /// before is there, recovered from the WAL.
    @Test func theEmbeddedPostgreSQLKilledUnderTheServerIsStartedAgain() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strata-embedded-\(UUID())").path
        let logs = folder + "-logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: folder)
            try? FileManager.default.removeItem(atPath: logs)
        }
        // No DATABASE_URL: the server starts, and owns, the cluster in `folder`.
        let server = try await ServerProcess.start(databaseURL: "", arguments: ["--data-dir", folder], logFolder: logs)
        defer {
            // Stopped as a user stops it, the server stops the cluster it owns, supervisor and all.
            server.signal(SIGTERM)
            #expect(server.waitForExit(within: .seconds(30)) == 0, "\(server.logExcerpt)")
            server.stop()
        }

        try await withHTTPClient { http in
            let created = await http.send(
                .POST, server.baseURL + "/v1/datasets", json: #"{"namespace": "raw", "name": "before-the-crash"}"#)
            let id = try #require(created.json["id"] as? String, "\(created.body)")

            let pidFile = try String(contentsOfFile: folder + "/postgres/postmaster.pid", encoding: .utf8)
            let postmaster = try #require(pid_t(pidFile.split(separator: "\n").first ?? ""))
            #expect(kill(postmaster, SIGKILL) == 0)
            let gone = ContinuousClock.now + .seconds(10)
            while isProcessAlive(postmaster), ContinuousClock.now < gone {
                try await Task.sleep(for: .milliseconds(20))
            }

            var answer = await http.send(.GET, server.baseURL + "/v1/datasets/\(id)")
            let deadline = ContinuousClock.now + .seconds(60)
            while answer.status != 200, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(250))
                answer = await http.send(.GET, server.baseURL + "/v1/datasets/\(id)")
            }
            #expect(answer.status == 200, "\(answer.body)\n\(server.logExcerpt)")
            #expect(server.log.contains("starting it again"), "\(server.logExcerpt)")
            let after = await http.send(
                .POST, server.baseURL + "/v1/datasets", json: #"{"namespace": "raw", "name": "after-the-crash"}"#)
            #expect(after.status == 201, "\(after.body)")

            // A second server on the same folder is the cluster's guest: it serves, and leaves restarts to
            // the owner (its supervisor waits for the shutdown rather than ending the server with it).
            let guest = try await ServerProcess.start(
                databaseURL: "", arguments: ["--data-dir", folder], logFolder: logs)
            defer { guest.stop() }
            try await Task.sleep(for: .seconds(2))
            let read = await http.send(.GET, guest.baseURL + "/v1/datasets/\(id)")
            #expect(read.status == 200, "\(read.body)\n\(guest.logExcerpt)")
            #expect(isProcessAlive(guest.pid), "\(guest.logExcerpt)")
        }
    }
}
