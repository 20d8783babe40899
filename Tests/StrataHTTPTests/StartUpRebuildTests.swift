import Foundation
import Hummingbird
import HummingbirdTesting
import StrataCore
import StrataHTTP
import StrataTestSupport
import Testing

@testable import StrataStore

/// A projection whose SQL file changed is rebuilt after the server starts, while its old tables serve.
@Suite("Rebuilding a changed projection at start-up")
struct StartUpRebuildTests {
    @Test func theServerServesFromTheOldTablesUntilTheRebuiltOnesAreSwappedIn() async throws {
        try await withTestDatabase { database in
            try await CatalogSchema.bundled().prepare(database.client, logger: database.logger)
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let written = try await RandomWorkload(writer: writer, clients: 2).run(commands: 60)
            let dataset = try #require(written.first?.dataset)
            // Granted before the server starts: granting needs the append lock, which is held below.
            try await writer.grantAdmin(secret: testAdminSecret)
            // As if Projections/dataset_states.sql had been edited since the table was built.
            try await database.client.perform(
                "UPDATE projections SET definition_hash = 'old' WHERE name = 'dataset_states'", logger: database.logger)

            // The swap needs the log's append lock; held, it shows the server serving before the swap.
            try await database.holdingTheAppendLock(for: .seconds(5)) {
                let services = try StrataServices(
                    database: .fixed(database.makeClient()), logger: database.logger,
                    access: .tokens(bootstrapSecret: testAdminSecret))
                let app = buildApplication(.init(host: "127.0.0.1", port: 0), services: services)
                try await app.test(.live) { base in
                    try await untilServing(base)
                    let client = TokenClient(base: base, token: testAdminSecret)
                    let read = try await client.send(.get, "/v1/datasets/\(dataset.lowercased)")
                    #expect(read.status == .ok)
                    #expect(try await statesDefinitionIsCurrent(client) == false)
                    // Ready, since the old tables serve; and saying what is catching up.
                    let catchingUp = try await client.send(.get, "/readyz")
                    #expect(catchingUp.status == .ok)
                    #expect(try catchingUp.json()["catching_up"] == .array([.string("dataset_states")]))

                    let deadline = ContinuousClock.now + .seconds(120)
                    while try await !statesDefinitionIsCurrent(client), ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    #expect(try await statesDefinitionIsCurrent(client))
                    #expect(try await client.send(.get, "/v1/datasets/\(dataset.lowercased)").status == .ok)
                    // Swapped in: nothing is catching up any more (said once the rebuild has returned).
                    var caughtUp = try await client.send(.get, "/readyz").json()
                    while caughtUp["catching_up"] != nil, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(50))
                        caughtUp = try await client.send(.get, "/readyz").json()
                    }
                    #expect(caughtUp["status"] == .string("ready") && caughtUp["catching_up"] == nil)
                }
            }
            let maintenance = ProjectionMaintenance(
                client: database.client, catalog: try .bundled(), logger: database.logger)
            #expect(try await maintenance.outdated().isEmpty)
            #expect(try await maintenance.verify().isClean)
        }
    }

    /// A rebuild at start that loses its connection (PostgreSQL restarting, a backend killed) is tried
    /// again, the projection catching up meanwhile, rather than left undone until the next start.
    @Test func aRebuildThatLostItsConnectionIsTriedAgainUntilItLands() async throws {
        try await withTestDatabase { database in
            try await CatalogSchema.bundled().prepare(database.client, logger: database.logger)
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 2).run(commands: 30)
            try await writer.grantAdmin(secret: testAdminSecret)
            try await database.client.perform(
                "UPDATE projections SET definition_hash = 'old' WHERE name = 'dataset_states'", logger: database.logger)
            let logger = database.logger
            /// The backend of the rebuild waiting for the rebuild lock this test holds, once one waits.
            @Sendable func waitingRebuild() async throws -> Int32? {
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline {
                    let rows = try await database.client.query(
                        """
                        SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        """, logger: logger
                    ).collect()
                    if let pid = try rows.first?.decode(Int32.self) { return pid }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return nil
            }

            try await database.makeClient().whileRunning { blocker in
                try await blocker.withConnection { holder in
                    try await holder.perform(
                        "SELECT pg_advisory_lock(\(ProjectionMaintenance.rebuildLock))", logger: logger)
                    let services = try StrataServices(
                        database: .fixed(database.makeClient()), logger: logger,
                        access: .tokens(bootstrapSecret: testAdminSecret))
                    let app = buildApplication(.init(host: "127.0.0.1", port: 0), services: services)
                    try await app.test(.live) { base in
                        try await untilServing(base)
                        let client = TokenClient(base: base, token: testAdminSecret)
                        let first = try #require(try await waitingRebuild(), "no rebuild waits for the lock")
                        try await database.client.perform("SELECT pg_terminate_backend(\(first))", logger: logger)
                        // Tried again on a fresh connection, and catching up meanwhile.
                        let second = try #require(try await waitingRebuild(), "the rebuild was not tried again")
                        #expect(second != first)
                        let catchingUp = try await client.send(.get, "/readyz").json()
                        #expect(catchingUp["catching_up"] == .array([.string("dataset_states")]))

                        try await holder.perform(
                            "SELECT pg_advisory_unlock(\(ProjectionMaintenance.rebuildLock))", logger: logger)
                        let deadline = ContinuousClock.now + .seconds(60)
                        while try await !statesDefinitionIsCurrent(client), ContinuousClock.now < deadline {
                            try await Task.sleep(for: .milliseconds(100))
                        }
                        #expect(try await statesDefinitionIsCurrent(client))
                    }
                }
            }
            let maintenance = ProjectionMaintenance(
                client: database.client, catalog: try .bundled(), logger: database.logger)
            #expect(try await maintenance.verify().isClean)
        }
    }
}

private func statesDefinitionIsCurrent(
    _ client: some TestClientProtocol
) async throws -> Bool {
    let response = try await client.send(.get, "/v1/admin/projections")
    #expect(response.status == .ok)
    let projections = try response.json()["projections"]?.arrayValue ?? []
    let states = projections.first { $0["name"]?.stringValue == "dataset_states" }
    return states?["definition_current"] == .bool(true)
}
