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

    @Test func theServerMigratesBeforeItAnswers() async throws {
        try await withTestDatabase(migrated: false) { database in
            let migrations = try MigrationRunner.bundled()
            let app = buildApplication(
                .init(host: "127.0.0.1", port: 0),
                services: try StrataServices(database: .fixed(database.makeClient()), logger: database.logger)
            )
            try await app.test(.live) { client in
                let ready = try await client.execute(uri: "/readyz", method: .get)
                #expect(ready.status == .ok)
            }
            #expect(try await migrations.status(database.client, logger: database.logger).isCurrent)
        }
    }
}
