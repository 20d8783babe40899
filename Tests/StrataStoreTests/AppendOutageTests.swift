import Foundation
import PostgresNIO
import StrataCore
import StrataStore
import StrataTestSupport
import Testing

/// The append pipeline when its connection dies while a batch commits. A deferred trigger on the log
/// makes COMMIT itself slow, so the test can lose the connection exactly then.
@Suite("The append pipeline losing its connection during COMMIT")
struct AppendOutageTests {
    /// The server finishes the COMMIT after the client gave up on it: the pipeline must find the batch in
    /// the log and answer it as done, not tell a caller that an acknowledged-to-be write failed.
    @Test func aCommitThatLandsAfterItsConnectionClosedIsAnsweredFromTheLog() async throws {
        try await withTestDatabase { database in
            // The batch's work before COMMIT takes milliseconds, but seconds when the rest of the suite
            // keeps the test process's threads busy (with 2 s it once ran out before COMMIT, and with 5 s
            // once in CI, beside the fuzzer and the restarts); its COMMIT outlasts the deadline.
            try await slowCommits(database, seconds: 16)
            let writer = CatalogWriter(
                pool: BoundedPool(
                    client: database.client,
                    // Only the work deadline matters here; connecting may be slow on a busy machine.
                    deadlines: .init(connect: .seconds(10), queue: .seconds(10), work: .seconds(10))),
                logger: database.logger)
            let id = UUIDv7.make()
            let response = try await writer.submit(create(id, "landed"))
            #expect(response.status == 201)
            let events = try await EventStore(client: database.client, logger: database.logger).readStream(id)
            #expect(events.map(\.type) == ["DatasetCreated", "DatasetVersionDrafted"])
        }
    }

    /// The backend dies in the middle of COMMIT: nothing landed, the caller hears that the database was
    /// unavailable, and the pipeline goes on with the next batch on a fresh connection.
    @Test func aCommitKilledWithItsBackendFailsItsBatchAndThePipelineGoesOn() async throws {
        try await withTestDatabase { database in
            // Long enough for the killer to find it sleeping on a machine busy with the rest of the suite
            // (with 3 s, it once did not); the kill ends it at once.
            try await slowCommits(database, seconds: 20)
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let id = UUIDv7.make()
            async let outcome = Result(catching: { try await writer.submit(create(id, "lost")) })
            try await database.makeClient().whileRunning { killer in
                let deadline = ContinuousClock.now + .seconds(15)
                while ContinuousClock.now < deadline {
                    let killed = try await killer.query(
                        """
                        SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                        WHERE datname = current_database() AND wait_event = 'PgSleep'
                        """, logger: database.logger
                    ).collect()
                    if !killed.isEmpty { return }
                    try await Task.sleep(for: .milliseconds(50))
                }
                Issue.record("no COMMIT was seen sleeping")
            }
            guard case .failure(let error) = await outcome else {
                Issue.record("the batch succeeded although its COMMIT was killed")
                return
            }
            #expect(DatabaseUnavailable(error) != nil, "\(error)")
            let store = EventStore(client: database.client, logger: database.logger)
            #expect(try await store.readStream(id).isEmpty)

            try await database.client.perform("DROP TRIGGER strata_test_slow_commit ON events", logger: database.logger)
            let next = UUIDv7.make()
            #expect(try await writer.submit(create(next, "next")).status == 201)
            #expect(try await store.readStream(next).count == 2)
        }
    }
}

/// Makes every COMMIT that appended to the log sleep for `seconds` first.
private func slowCommits(_ database: TestDatabase, seconds: Double) async throws {
    try await database.client.perform(
        """
        CREATE FUNCTION strata_test_sleep() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(\(unescaped: String(seconds))); RETURN NULL; END $$
        """, logger: database.logger)
    try await database.client.perform(
        """
        CREATE CONSTRAINT TRIGGER strata_test_slow_commit AFTER INSERT ON events
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN (NEW.event_type = 'DatasetCreated') EXECUTE FUNCTION strata_test_sleep()
        """, logger: database.logger)
}

private func create(_ id: UUID, _ name: String) -> CatalogWriter.Request {
    CatalogWriter.Request(
        target: .dataset(id, .create(namespace: "ns", name: name, fields: VersionFields(), clonedFrom: nil)),
        metadata: EventMetadata(actor: "test"), occurredAt: Date(),
        respond: { outcome in StoredResponse(status: 201, headers: [:], body: Documents.dataset(outcome.state)) }
    )
}
