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
            #expect(try await writer.submit(create(id, "landed")).status == 201)
            try await expectCreatedOnce(id, database)
        }
    }

    /// The backend dies in the middle of COMMIT: nothing landed, so the command is decided again in the
    /// next batch, on a fresh connection, and its caller hears only that it was done — once.
    @Test func aCommitKilledWithItsBackendIsDecidedAgainAndLandsOnce() async throws {
        try await withTestDatabase { database in
            // Long enough for the killer to find it sleeping on a machine busy with the rest of the suite;
            // the kill ends it at once. Only the first COMMIT sleeps.
            try await slowCommits(database, seconds: 20, times: 1)
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let id = UUIDv7.make()
            let (response, terminated) = try await database.terminatingSleepers {
                try await writer.submit(create(id, "lost once"))
            }
            #expect(terminated == 1)
            #expect(response.status == 201)
            try await expectCreatedOnce(id, database)
        }
    }

    /// Commands submitted together are promised to be decided in order, so when their batch loses its
    /// connection they are answered, not decided again behind the batch after theirs.
    @Test func commandsSubmittedTogetherWhoseBatchLosesItsConnectionAreAnswered() async throws {
        try await withTestDatabase { database in
            try await slowCommits(database, seconds: 20, times: 1)
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let ids = [UUIDv7.make(), UUIDv7.make()]
            let (outcomes, terminated) = try await database.terminatingSleepers {
                await writer.submit(all: [create(ids[0], "first"), create(ids[1], "second")])
            }
            #expect(terminated == 1)
            for outcome in outcomes {
                expectConnectionLost(outcome, "a command of the killed batch was answered as done")
            }
            let store = EventStore(client: database.client, logger: database.logger)
            for id in ids { #expect(try await store.readStream(id).isEmpty) }
        }
    }

    /// A batch that appended nothing but kept a refusal under its key loses its connection in COMMIT: the
    /// key's row says whether it landed. Here it did not, so the command is decided again and its refusal
    /// kept then; answered as refused without that, a retry with the key would be decided anew.
    @Test func aKeptRefusalWhoseCommitIsKilledIsDecidedAgainAndKept() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            #expect(try await writer.submit(create(UUIDv7.make(), "taken")).status == 201)
            try await slowCommits(database, seconds: 20, times: 1, keptAnswers: true)
            var refused = create(UUIDv7.make(), "taken")
            refused.idempotency = IdempotencyClaim(scope: "test", key: "create-taken", requestHash: "h")
            refused.refusal = { _ in StoredResponse(status: 409, headers: [:], body: "taken") }
            let (outcome, terminated) = try await database.terminatingSleepers { [refused] in
                await Result(catching: { try await writer.submit(refused) })
            }
            #expect(terminated == 1)
            #expect(throws: DomainError.self) { try outcome.get() }
            let kept = try await database.client.rows(
                "SELECT body FROM idempotency_keys WHERE scope = 'test' AND key = 'create-taken'",
                logger: database.logger)
            #expect(try kept.map { try $0.decode(String.self) } == ["taken"])
        }
    }

    /// A batch that loses its connection every time is not decided forever: after its retries the caller
    /// hears that the database was unavailable, nothing of it landed, and the pipeline goes on.
    @Test func aCommandWhoseBatchesAllLoseTheirConnectionFailsAndThePipelineGoesOn() async throws {
        try await withTestDatabase { database in
            try await slowCommits(database, seconds: 20)
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let id = UUIDv7.make()
            let (outcome, terminated) = try await database.terminatingSleepers {
                await Result(catching: { try await writer.submit(create(id, "lost")) })
            }
            // A batch may also be handed a connection whose end the pool has not read yet, and fail before
            // its COMMIT: it counts, but terminates no backend.
            #expect((2...1 + BoundedPool.retriesAfterLostConnection).contains(terminated), "\(terminated) killed")
            expectConnectionLost(outcome, "the batch succeeded although every COMMIT of it was killed")
            let store = EventStore(client: database.client, logger: database.logger)
            #expect(try await store.readStream(id).isEmpty)

            try await database.client.perform("DROP TRIGGER strata_test_slow_commit ON events", logger: database.logger)
            let next = UUIDv7.make()
            #expect(try await writer.submit(create(next, "next")).status == 201)
            try await expectCreatedOnce(next, database)
        }
    }
}

/// Expects `id`'s stream to hold the two events of one create: it landed, and once.
private func expectCreatedOnce(
    _ id: UUID, _ database: TestDatabase, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let events = try await EventStore(client: database.client, logger: database.logger).readStream(id)
    #expect(events.map(\.type) == ["DatasetCreated", "DatasetVersionDrafted"], sourceLocation: sourceLocation)
}

/// Makes every COMMIT that created a dataset (or the first `times` of them) sleep for `seconds` first;
/// with `keptAnswers`, every COMMIT that kept an answer under an `Idempotency-Key` instead.
private func slowCommits(
    _ database: TestDatabase, seconds: Double, times: Int = .max, keptAnswers: Bool = false
) async throws {
    // A sequence counts the COMMITs: it is not rolled back with the transaction whose COMMIT is killed.
    try await database.client.perform("CREATE SEQUENCE strata_test_slow_commits", logger: database.logger)
    try await database.client.perform(
        """
        CREATE FUNCTION strata_test_sleep() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('strata_test_slow_commits') <= \(unescaped: String(times)) THEN
                PERFORM pg_sleep(\(unescaped: String(seconds)));
            END IF;
            RETURN NULL;
        END $$
        """, logger: database.logger)
    try await database.client.perform(
        """
        CREATE CONSTRAINT TRIGGER strata_test_slow_commit AFTER INSERT ON \(unescaped: keptAnswers ? "idempotency_keys" : "events")
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        \(unescaped: keptAnswers ? "" : "WHEN (NEW.event_type = 'DatasetCreated')") EXECUTE FUNCTION strata_test_sleep()
        """, logger: database.logger)
}

private func create(_ id: UUID, _ name: String) -> CatalogWriter.Request {
    CatalogWriter.Request(
        target: .dataset(id, .create(namespace: "ns", name: name, fields: VersionFields(), clonedFrom: nil)),
        metadata: EventMetadata(actor: "test"), occurredAt: Date(),
        respond: { outcome in StoredResponse(status: 201, headers: [:], body: Documents.dataset(outcome.state)) }
    )
}
