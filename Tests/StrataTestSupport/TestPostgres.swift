import EmbeddedPostgres
import Foundation
import Logging
import PostgresNIO
import StrataStore

/// The one PostgreSQL cluster of a test process, started on first use in a temporary folder, and a
/// fresh database for each test that wants one.
///
/// Databases are copied from a template migrated once per process, which takes milliseconds, so every
/// test gets a schema of its own and no test can see another's rows. The cluster runs with `fsync` off
/// and disappears with the process (see ``EmbeddedPostgres/Configuration/removeWhenProcessExits``).
public actor TestPostgres {
    public static let shared = TestPostgres()
    static let templateName = "strata_test_template"

    private var cluster: EmbeddedPostgres?
    private var admin: PostgresClient?
    private var template: Task<Void, any Error>?

    public static let logger: Logger = {
        var logger = Logger(label: "strata-test")
        let level = ProcessInfo.processInfo.environment["STRATA_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
        logger.logLevel = level ?? .error
        return logger
    }()

    /// The running test cluster.
    public func runningCluster() throws -> EmbeddedPostgres {
        if let cluster { return cluster }
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("strata-test-\(getpid())-\(UUID().uuidString.prefix(8))").path
        // Every suite runs at once, each test on a database of its own with pools of its own: at 300
        // connections the suite's busiest minute ran out ("too many clients"), and tests waited a minute
        // or two for a connection.
        let started = try EmbeddedPostgres.start(
            .init(dataDirectory: folder, durability: .none, removeWhenProcessExits: true, maximumConnections: 1000),
            logger: Self.logger
        )
        cluster = started
        return started
    }

    /// The client configuration of database `name` on the test cluster.
    public func configuration(database name: String) throws -> PostgresClient.Configuration {
        let cluster = try runningCluster()
        var configuration = PostgresClient.Configuration(
            unixSocketPath: cluster.unixSocketPath, username: EmbeddedPostgres.superuser, password: nil,
            database: name
        )
        configuration.options.maximumConnections = 60
        return configuration
    }

    /// Creates a database, migrated unless told otherwise, and answers its name.
    public func createDatabase(migrated: Bool) async throws -> String {
        let name = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        if migrated { try await templatePrepared() }
        let template = migrated ? Self.templateName : "template0"
        try await withRetryWhileTemplateBusy {
            try await self.adminClient().perform(
                "CREATE DATABASE \(unescaped: name) TEMPLATE \(unescaped: template)", logger: Self.logger
            )
        }
        return name
    }

    public func dropDatabase(_ name: String) async throws {
        try await adminClient().perform("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)", logger: Self.logger)
    }

    /// The migrated template, prepared once however many tests ask for it at the same moment.
    private func templatePrepared() async throws {
        if let template { return try await template.value }
        let admin = try adminClient()
        let configuration = try configuration(database: Self.templateName)
        let preparation = Task { try await Self.prepareTemplate(admin: admin, configuration: configuration) }
        template = preparation
        try await preparation.value
    }

    private static func prepareTemplate(admin: PostgresClient, configuration: PostgresClient.Configuration)
        async throws
    {
        try await admin.perform("DROP DATABASE IF EXISTS \(unescaped: Self.templateName)", logger: Self.logger)
        try await admin.perform("CREATE DATABASE \(unescaped: Self.templateName)", logger: Self.logger)
        let client = PostgresClient(configuration: configuration, backgroundLogger: Self.logger)
        _ = try await client.whileRunning { client in
            try await CatalogSchema.bundled().prepare(client, logger: Self.logger)
        }
    }

    /// A long-lived client on the `postgres` database, for creating and dropping test databases.
    private func adminClient() throws -> PostgresClient {
        if let admin { return admin }
        let client = PostgresClient(
            configuration: try configuration(database: "postgres"), backgroundLogger: Self.logger)
        Task.detached { await client.run() }
        admin = client
        return client
    }

    /// Copying a template fails while anything is still connected to it, which a just-closed client
    /// may briefly be.
    private func withRetryWhileTemplateBusy(_ body: () async throws -> Void) async throws {
        for attempt in 1... {
            do {
                return try await body()
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55006" && attempt < 50 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}

/// A fresh database for one test, with a running client on it.
public struct TestDatabase: Sendable {
    public let name: String
    public let client: PostgresClient
    public let configuration: PostgresClient.Configuration
    public let socketDirectory: String
    public var logger: Logger { TestPostgres.logger }

    /// A `DATABASE_URL` for this database, for tests that run the `strata` binary.
    public var url: String {
        "postgres://\(EmbeddedPostgres.superuser)@localhost/\(name)?host=\(socketDirectory)"
    }

    /// A bounded pool on this database's client, with the deadlines of tests that do not test them.
    public var pool: BoundedPool { BoundedPool(client: client, deadlines: .patient) }

    /// Another client on the same database: a second, independent connection pool.
    public func makeClient() -> PostgresClient {
        PostgresClient(configuration: configuration, backgroundLogger: logger)
    }
}

/// Runs `body` on a fresh database (migrated unless `migrated` is false), then drops the database.
public func withTestDatabase<Result: Sendable>(
    migrated: Bool = true,
    _ body: @Sendable (TestDatabase) async throws -> Result
) async throws -> Result {
    let postgres = TestPostgres.shared
    let name = try await postgres.createDatabase(migrated: migrated)
    let configuration = try await postgres.configuration(database: name)
    let socketDirectory = try await postgres.runningCluster().socketDirectory
    let client = PostgresClient(configuration: configuration, backgroundLogger: TestPostgres.logger)
    let database = TestDatabase(
        name: name, client: client, configuration: configuration, socketDirectory: socketDirectory
    )
    do {
        let result = try await client.whileRunning { _ in try await body(database) }
        try await postgres.dropDatabase(name)
        return result
    } catch {
        try? await postgres.dropDatabase(name)
        throw error
    }
}

extension TestDatabase {
    /// Holds the log's append lock from another connection for `duration` while `body` runs. Writes
    /// submitted meanwhile queue up behind it, which is how tests make the pipeline form a batch.
    public func holdingTheAppendLock<Result: Sendable>(
        for duration: Duration,
        _ body: @Sendable () async throws -> Result
    ) async throws -> Result {
        let logger = self.logger
        return try await makeClient().whileRunning { blocker in
            try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
                let held = AsyncStream<Void>.makeStream()
                group.addTask {
                    try await blocker.transaction(logger: logger) { connection in
                        try await connection.perform("SELECT strata_begin_append()", logger: logger)
                        held.continuation.yield()
                        try await Task.sleep(for: duration)
                    }
                }
                for await _ in held.stream { break }
                let result = try await body()
                try await group.waitForAll()
                return result
            }
        }
    }

    /// Runs `body` while another connection terminates each backend of this database that it finds in
    /// `pg_sleep`, within 20 ms of its falling asleep: how a test loses a connection in the middle of its
    /// work, at a moment of the test's choosing. Answers `body`'s result and how many it terminated.
    public func terminatingSleepers<Result: Sendable>(
        _ body: @Sendable () async throws -> Result
    ) async throws -> (result: Result, terminated: Int) {
        let (logger, name) = (self.logger, self.name)
        return try await makeClient().whileRunning { killer in
            try await withThrowingTaskGroup(of: Int.self, returning: (Result, Int).self) { group in
                group.addTask {
                    var terminated = 0
                    while !Task.isCancelled {
                        do {
                            terminated += try await killer.query(
                                """
                                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                                WHERE datname = \(name) AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()
                                """, logger: logger
                            ).collect().count
                        } catch  where Task.isCancelled {
                            // Cancelled in the middle of its query: the body is done, and so is this.
                            break
                        }
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    return terminated
                }
                let result = try await body()
                group.cancelAll()
                return (result, try await group.next() ?? 0)
            }
        }
    }
}

extension DatabaseDeadlines {
    /// Deadlines for tests that do not test them. The whole suite runs at once on two cores and one
    /// PostgreSQL: a connection, or a task's turn on the two threads Swift's concurrency runs on, can
    /// take longer than the server's 10 s queue deadline to come, without anything being wrong.
    public static let patient = DatabaseDeadlines(connect: .seconds(10), queue: .seconds(60), work: .seconds(60))
}
