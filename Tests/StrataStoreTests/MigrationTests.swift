import Foundation
import PostgresNIO
import StrataStore
import StrataTestSupport
import Testing

@Suite("Migrations")
struct MigrationTests {
    @Test func migratingAppliesEveryFileOnceAndRecordsIt() async throws {
        try await withTestDatabase(migrated: false) { database in
            let runner = try MigrationRunner.bundled()
            let names = runner.migrations.map(\.script.name)
            #expect(names.first == "0001_events.sql")

            #expect(try await runner.status(database.client, logger: database.logger).pending == names)
            #expect(try await runner.migrate(database.client, logger: database.logger) == names)
            #expect(try await runner.migrate(database.client, logger: database.logger).isEmpty)
            let status = try await runner.status(database.client, logger: database.logger)
            #expect(status.isCurrent && status.applied == names)
        }
    }

    /// A script PostgreSQL refuses names its file; a session PostgreSQL ends under it is an outage, which
    /// the commands answer with "run it again" (exit 10), not as something the script or `verify` found.
    @Test func aScriptCutOffByPostgreSQLIsAnOutageNotARefusal() async throws {
        try await withTestDatabase(migrated: false) { database in
            let client = database.makeClient()
            try await client.whileRunning { client in
                try await client.withConnection { connection in
                    let refused = SQLScript(name: "Projections/broken.sql", sql: "SELECT * FROM no_such_table")
                    await #expect(throws: SQLScriptError.self) {
                        try await refused.run(on: connection, logger: database.logger)
                    }
                }
                try await client.withConnection { connection in
                    let cutOff = SQLScript(
                        name: "Projections/cut.sql", sql: "SELECT pg_terminate_backend(pg_backend_pid())")
                    let error = await #expect(throws: (any Error).self) {
                        try await cutOff.run(on: connection, logger: database.logger)
                    }
                    #expect(error.flatMap(DatabaseUnavailable.init) != nil, "\(String(describing: error))")
                }
            }
        }
    }

    @Test func twoProcessesMigratingAtOnceApplyEachFileOnce() async throws {
        try await withTestDatabase(migrated: false) { database in
            let runner = try MigrationRunner.bundled()
            let second = database.makeClient()
            let applied = try await second.whileRunning { second in
                try await withThrowingTaskGroup(of: [String].self, returning: [String].self) { group in
                    for client in [database.client, second] {
                        group.addTask { try await runner.migrate(client, logger: database.logger) }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
            }
            #expect(applied.sorted() == runner.migrations.map(\.script.name))
        }
    }

    @Test func aChangedAppliedMigrationStopsEveryCommandAndNamesTheFile() async throws {
        try await withTestDatabase { database in
            var runner = try MigrationRunner.bundled()
            let original = runner.migrations[0]
            runner.migrations[0] = .init(name: original.script.name, sql: original.script.sql + "\n-- edited\n")

            await #expect(throws: MigrationError.appliedMigrationChanged("0001_events.sql")) {
                try await runner.status(database.client, logger: database.logger)
            }
            await #expect(throws: MigrationError.appliedMigrationChanged("0001_events.sql")) {
                try await runner.migrate(database.client, logger: database.logger)
            }
        }
    }

    @Test func theBinaryRefusesToStartOnADatabaseWhoseAppliedMigrationChanged() async throws {
        try await withTestDatabase { database in
            // The same situation seen from the other side: the record no longer matches the carried file.
            try await database.client.perform(
                "UPDATE schema_migrations SET checksum = 'edited' WHERE name = '0002_begin_append.sql'",
                logger: database.logger
            )
            for command in ["migrate", "serve", "export", "verify"] {
                let outcome = try StrataBinary.run(
                    [command, "--database-url", database.url, "--port", "0"].filter {
                        command == "serve" || ($0 != "--port" && $0 != "0")
                    })
                #expect(outcome.status != 0)
                #expect(outcome.output.contains("Migrations/0002_begin_append.sql was changed after it was applied"))
            }
        }
    }

    @Test func aMigrationTheBinaryDoesNotKnowIsReported() async throws {
        try await withTestDatabase { database in
            try await database.client.perform(
                "INSERT INTO schema_migrations (name, checksum) VALUES ('9999_future.sql', 'x')",
                logger: database.logger
            )
            await #expect(throws: MigrationError.unknownMigrationApplied("9999_future.sql")) {
                try await MigrationRunner.bundled().status(database.client, logger: database.logger)
            }
        }
    }

    @Test func aFailingMigrationLeavesNothingHalfApplied() async throws {
        try await withTestDatabase(migrated: false) { database in
            let runner = MigrationRunner(migrations: [
                .init(name: "0001_good.sql", sql: "CREATE TABLE good (id int);"),
                .init(name: "0002_bad.sql", sql: "CREATE TABLE bad (id int); SELECT * FROM missing_table;"),
            ])
            let error = await #expect(throws: SQLScriptError.self) {
                try await runner.migrate(database.client, logger: database.logger)
            }
            #expect(error?.script == "0002_bad.sql")
            let tables = try await database.client.query(
                "SELECT count(*) FROM pg_tables WHERE tablename IN ('good', 'bad', 'schema_migrations')",
                logger: database.logger
            ).collect().first?.decode(Int.self)
            #expect(tables == 0)
        }
    }

    /// A catalog from before `0006_event_payloads_as_json.sql`, its payloads in `jsonb`: after the
    /// migration, every event reads, exports and shows in the feed exactly as it did, and new payloads
    /// are kept as written.
    @Test func payloadsWrittenAsJsonbReadTheSameAfterTheyBecomeJson() async throws {
        try await withTestDatabase(migrated: false) { database in
            let bundled = try MigrationRunner.bundled()
            let before = MigrationRunner(migrations: bundled.migrations.filter { $0.script.name < "0006" })
            #expect(before.migrations.count == 5)
            try await before.migrate(database.client, logger: database.logger)

            let store = EventStore(client: database.client, logger: database.logger)
            let archive = LogArchive(client: database.client, logger: database.logger)
            func event(_ data: String) -> NewEvent {
                NewEvent(
                    eventID: UUID(), type: "Noted", schemaVersion: 1, data: data, metadata: #"{"actor": "alice"}"#,
                    occurredAt: Date(timeIntervalSince1970: 1_800_000_000))
            }
            func payloads() async throws -> [String] {
                try await database.client.query("SELECT data::text FROM events ORDER BY global_position")
                    .collect().map { try $0.decode(String.self) }
            }
            func exported() async throws -> [String] {
                var lines: [String] = []
                _ = try await archive.export { lines.append($0) }
                return lines
            }
            let stream = UUID()
            try await store.append(
                [event(#"{"zeta":1,  "a" : [1.50, "x\u00e9"], "nested": {"bb": null, "a": true}}"#)],
                to: stream, expectedVersion: .noStream)
            let (textBefore, feedBefore, exportBefore) = (
                try await payloads(), try await store.readAll(after: 0, limit: 10).map { try $0.document() },
                try await exported()
            )
            #expect(textBefore == [#"{"a": [1.50, "xé"], "zeta": 1, "nested": {"a": true, "bb": null}}"#])

            #expect(
                try await bundled.migrate(database.client, logger: database.logger).first
                    == "0006_event_payloads_as_json.sql")
            let type = try await database.client.query(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'data'"
            ).collect().first?.decode(String.self)
            #expect(type == "json")
            #expect(try await payloads() == textBefore)
            #expect(try await store.readAll(after: 0, limit: 10).map { try $0.document() } == feedBefore)
            #expect(try await exported() == exportBefore)

            let written = #"{"zeta":2,"a":"as written"}"#
            try await store.append([event(written)], to: stream, expectedVersion: .exactly(1))
            #expect(try await payloads() == textBefore + [written])
        }
    }
}
