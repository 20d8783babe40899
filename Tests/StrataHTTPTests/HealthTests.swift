import Foundation
import Hummingbird
import HummingbirdTesting
import StrataHTTP
import StrataStore
import StrataTestSupport
import Testing

@Suite("Health and readiness")
struct HealthTests {
    @Test func aMigratedDatabaseIsReady() async throws {
        try await withTestDatabase { database in
            let router = buildRouter(try StrataServices(database: .fixed(database.client), logger: database.logger))
            try await Application(router: router, logger: database.logger).test(.router) { client in
                let health = try await client.execute(uri: "/healthz", method: .get)
                #expect(health.status == .ok)
                let ready = try await client.execute(uri: "/readyz", method: .get)
                #expect(ready.status == .ok)
                #expect(String(buffer: ready.body) == #"{"status":"ready"}"#)
            }
        }
    }

    @Test func aDatabaseWithPendingMigrationsIsNotReadyAndSaysWhy() async throws {
        try await withTestDatabase(migrated: false) { database in
            let router = buildRouter(try StrataServices(database: .fixed(database.client), logger: database.logger))
            try await Application(router: router, logger: database.logger).test(.router) { client in
                let ready = try await client.execute(uri: "/readyz", method: .get)
                #expect(ready.status == .serviceUnavailable)
                #expect(ready.headers[.contentType] == "application/problem+json")
                #expect(ready.headers[.retryAfter] != nil, "a 503 says when to ask again")
                let problem = try JSONDecoder().decode(Problem.self, from: Data(buffer: ready.body))
                #expect(problem.code == "not_ready")
                #expect(problem.detail.contains("0001_events.sql"))
                #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            }
        }
    }

    /// The server listens before its database is ready, so that an orchestrator's liveness probe finds
    /// it alive while it migrates (or waits for PostgreSQL); until then it is not ready, and a request
    /// that needs the database is a 503 that says when to ask again.
    @Test func theServerAnswersHealthChecksWhileItMigratesAndServesOnceMigrated() async throws {
        try await withTestDatabase(migrated: false) { database in
            let migrations = try MigrationRunner.bundled()
            let app = buildApplication(
                .init(host: "127.0.0.1", port: 0),
                services: try StrataServices(
                    database: .fixed(database.makeClient()), logger: database.logger,
                    access: .tokens(bootstrapSecret: testAdminSecret))
            )
            // The migrations' own lock, held: the server must wait for it.
            try await database.makeClient().whileRunning { blocker in
                try await blocker.withConnection { holder in
                    try await holder.perform(
                        "SELECT pg_advisory_lock(\(MigrationRunner.lock))", logger: database.logger)
                    try await app.test(.live) { base in
                        let client = TokenClient(base: base, token: testAdminSecret)
                        #expect(try await client.send(.get, "/healthz").status == .ok)
                        let ready = try await client.send(.get, "/readyz")
                        #expect(ready.status == .serviceUnavailable && ready.problemCode == "not_ready")
                        #expect(ready.text.contains("starting"), "\(ready.text)")
                        let list = try await client.send(.get, "/v1/datasets")
                        #expect(list.status == .serviceUnavailable && list.problemCode == "database_unavailable")
                        #expect(list.headers[.retryAfter] != nil, "a 503 says when to ask again")
                        #expect(try await client.send(.post, "/v1/datasets", json: "{}").status == .serviceUnavailable)

                        try await holder.perform(
                            "SELECT pg_advisory_unlock(\(MigrationRunner.lock))", logger: database.logger)
                        try await untilServing(client)
                        #expect(try await client.send(.get, "/v1/datasets").status == .ok)
                    }
                }
            }
            #expect(try await migrations.status(database.client, logger: database.logger).isCurrent)
        }
    }
}
