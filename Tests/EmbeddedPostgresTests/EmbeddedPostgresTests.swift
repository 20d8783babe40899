import EmbeddedPostgres
import Foundation
import PostgresNIO
import StrataStore
import StrataTestSupport
import Testing

@Suite("The embedded PostgreSQL launcher")
struct EmbeddedPostgresTests {
    @Test func missingServerProgramsAreReportedWithWhatToInstall() throws {
        let error = #expect(throws: EmbeddedPostgresError.self) {
            try PostgresBinaries.locate(searchPath: "/nonexistent", debianRoot: "/nonexistent")
        }
        #expect(error?.description.contains("apt-get install postgresql") == true)
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let launch = #expect(throws: EmbeddedPostgresError.self) {
            try EmbeddedPostgres.start(
                .init(dataDirectory: folder, binaries: PostgresBinaries(directory: "/nonexistent")),
                logger: TestPostgres.logger
            )
        }
        #expect(launch != nil)
    }

    @Test func startsAClusterThatAcceptsConnectionsAndStopsItWithoutLeavingAServer() async throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cluster = try EmbeddedPostgres.start(.init(dataDirectory: folder), logger: TestPostgres.logger)
        #expect(cluster.isOwner)
        #expect(try await answersQueries(cluster))
        if geteuid() == 0 {
            // PostgreSQL refuses to run as root: the cluster belongs to the unprivileged `postgres` user.
            let owner = try FileManager.default.attributesOfItem(atPath: folder + "/postgres")[.ownerAccountName]
            #expect(owner as? String == "postgres")
        }
        let serverPID = try #require(serverProcess(folder))

        try cluster.stop()
        #expect(serverProcess(folder) == nil)
        #expect(!isProcessAlive(serverPID))
    }

    @Test func aRestartedClusterKeepsItsData() async throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try EmbeddedPostgres.start(.init(dataDirectory: folder), logger: TestPostgres.logger)
        try await withClient(first) { try await $0.perform("CREATE TABLE kept (id int)", logger: TestPostgres.logger) }
        try first.stop()

        let second = try EmbeddedPostgres.start(.init(dataDirectory: folder), logger: TestPostgres.logger)
        defer { try? second.stop() }
        let count = try await withClient(second) {
            try await $0.query("SELECT count(*) FROM kept", logger: TestPostgres.logger).collect().first?.decode(
                Int.self)
        }
        #expect(count == 0)
    }

    @Test func aSecondProcessUsesTheRunningClusterAndLeavesItRunning() async throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let owner = try EmbeddedPostgres.start(.init(dataDirectory: folder), logger: TestPostgres.logger)
        defer { try? owner.stop() }
        let serverPID = try #require(serverProcess(folder))

        let migrate = try StrataBinary.run(["migrate", "--data-dir", folder])
        #expect(migrate.status == 0, "\(migrate.output)")
        #expect(migrate.output.contains("using the embedded PostgreSQL already running"))
        #expect(serverProcess(folder) == serverPID, "the guest must neither restart nor stop the owner's server")
        #expect(try await answersQueries(owner))
    }

    /// Run from the wrong folder, `strata token create` once made a new empty catalog there and granted
    /// a token in it that no server knew: commands that work on a catalog now refuse, and touch nothing.
    @Test(arguments: [
        ["token", "create", "--name", "alice", "--role", "writer"], ["token", "ls"], ["token", "revoke", "alice"],
        ["export"], ["replay"], ["verify"],
    ])
    func commandsOnACatalogRefuseToCreateOne(_ command: [String]) throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let dataDirectory = folder + "/nothing-here"

        let result = try StrataBinary.run(command + ["--data-dir", dataDirectory])
        #expect(result.status != 0)
        #expect(result.output.contains("no catalog in \(dataDirectory)"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: dataDirectory))
    }

    @Test func aClusterWhoseOwnerDiedIsAdoptedByTheNextProcess() async throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try EmbeddedPostgres.start(.init(dataDirectory: folder), logger: TestPostgres.logger)
        let serverPID = try #require(serverProcess(folder))
        // The owner dies without stopping its server: its record names a process that is gone.
        try "\(try deadProcessID())\n".write(toFile: folder + "/owner.pid", atomically: true, encoding: .utf8)

        let adopter = try EmbeddedPostgres.start(.init(dataDirectory: folder), logger: TestPostgres.logger)
        #expect(adopter.isOwner)
        #expect(serverProcess(folder) == serverPID)
        try first.stop()  // no longer the owner: must not stop the adopter's server
        #expect(serverProcess(folder) == serverPID)
        try adopter.stop()
        #expect(serverProcess(folder) == nil)
    }

    @Test func aNormalUserRunsTheClusterAsItself() throws {
        // As root, run the real `strata` binary as the unprivileged `postgres` user; as a normal user,
        // the other tests here already are that case.
        guard geteuid() == 0 else { return }
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: folder)
        // The build folder may sit where `postgres` cannot enter (a clone under /root), so run a copy of
        // the binary, with the resources it carries, from the scratch folder.
        let binary = try StrataBinary.copy(into: folder)

        let migrate = try StrataBinary.run(
            ["migrate", "--data-dir", folder + "/data"], asUser: "postgres", binary: binary
        )
        #expect(migrate.status == 0, "\(migrate.output)")
        #expect(migrate.output.contains("applied: 0001_events.sql"))
        #expect(serverProcess(folder + "/data") == nil, "the command started the cluster, so it must stop it")
    }

    @Test func aDataDirectoryTheClusterUserCannotReachIsExplained() throws {
        guard geteuid() == 0 else { return }
        let parent = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: parent)
        let error = #expect(throws: EmbeddedPostgresError.self) {
            try EmbeddedPostgres.start(.init(dataDirectory: parent + "/data"), logger: TestPostgres.logger)
        }
        #expect(error == .dataDirectoryUnreachable(path: parent + "/data", user: "postgres"))
    }
}

/// A new empty folder under the system's temporary directory, which the `postgres` user may enter.
private func scratchFolder() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("strata-launcher-\(UUID().uuidString)")
        .path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The pid of the server running on the cluster in `folder`, if one runs.
private func serverProcess(_ folder: String) -> pid_t? {
    guard let text = try? String(contentsOfFile: folder + "/postgres/postmaster.pid", encoding: .utf8),
        let pid = text.split(separator: "\n").first.flatMap({ pid_t($0) }), isProcessAlive(pid)
    else { return nil }
    return pid
}

private func deadProcessID() throws -> pid_t {
    let result = try ProcessRunner.run(["/bin/sh", "-c", "echo $$"])
    return pid_t(result.output.trimmingCharacters(in: .whitespacesAndNewlines))!
}

private func withClient<Result: Sendable>(
    _ cluster: EmbeddedPostgres,
    _ body: @Sendable (PostgresClient) async throws -> Result
) async throws -> Result {
    let client = PostgresClient(
        configuration: .init(
            unixSocketPath: cluster.unixSocketPath, username: EmbeddedPostgres.superuser, password: nil,
            database: "postgres"
        ),
        backgroundLogger: TestPostgres.logger
    )
    return try await client.whileRunning(body)
}

private func answersQueries(_ cluster: EmbeddedPostgres) async throws -> Bool {
    try await withClient(cluster) {
        try await $0.query("SELECT 1", logger: TestPostgres.logger).collect().first?.decode(Int.self) == 1
    }
}
