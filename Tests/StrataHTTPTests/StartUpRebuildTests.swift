import Foundation
import Hummingbird
import HummingbirdTesting
import StrataCore
import StrataHTTP
import StrataStore
import StrataTestSupport
import Testing

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
}

private func statesDefinitionIsCurrent(_ client: some TestClientProtocol) async throws -> Bool {
    let response = try await client.send(.get, "/v1/admin/projections")
    #expect(response.status == .ok)
    let projections = try response.json()["projections"]?.arrayValue ?? []
    let states = projections.first { $0["name"]?.stringValue == "dataset_states" }
    return states?["definition_current"] == .bool(true)
}
