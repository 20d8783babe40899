import Foundation
import PostgresNIO
import StrataCore
import StrataTestSupport
import Testing

@testable import StrataStore

@Suite("The append pipeline")
struct CatalogWriterTests {
    /// While the log's lock is held from outside, the pipeline's first batch waits; everything submitted
    /// meanwhile forms the next batch. One command in it is refused: the others must still commit, in
    /// one transaction (they share its `recorded_at`), and the refused one must append nothing.
    @Test func aRefusedCommandDoesNotSpoilTheBatchItArrivedIn() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            // Refused by the decider: there is no such dataset to publish.
            let refused = UUID()
            let results = try await database.holdingTheAppendLock(for: .milliseconds(500)) {
                try await withThrowingTaskGroup(of: (String, Result<StoredResponse, any Error>).self) { group in
                    group.addTask { ("first", await Result(catching: { try await writer.submit(create("first")) })) }
                    try await Task.sleep(for: .milliseconds(200))
                    for index in 0..<6 {
                        group.addTask {
                            (
                                "batch-\(index)",
                                await Result(catching: { try await writer.submit(create("batch-\(index)")) })
                            )
                        }
                    }
                    group.addTask {
                        let request = CatalogWriter.Request(
                            target: .dataset(refused, .publish(version: nil, changeNote: nil)),
                            metadata: EventMetadata(actor: "test"), occurredAt: Date(), respond: respondWithDocument)
                        return ("refused", await Result(catching: { try await writer.submit(request) }))
                    }
                    var results: [String: Result<StoredResponse, any Error>] = [:]
                    for try await (name, result) in group { results[name] = result }
                    return results
                }
            }
            guard case .failure(let error) = results["refused"] else {
                Issue.record("the refused command succeeded")
                return
            }
            #expect(error as? DomainError == .datasetNotFound)
            let store = EventStore(client: database.client, logger: database.logger)
            #expect(try await store.readStream(refused).isEmpty)

            let events = try await store.readAll(after: 0, limit: 100)
            #expect(events.count == 14, "seven creates of two events each")
            let created = events.filter { $0.type == "DatasetCreated" && !$0.data.contains("\"first\"") }
            #expect(created.count == 6)
            #expect(Set(created.map(\.recordedAt)).count == 1, "the six creates did not commit in one transaction")
            for index in 0..<6 {
                guard case .success(let response) = results["batch-\(index)"] else {
                    Issue.record("batch-\(index) failed")
                    continue
                }
                #expect(response.status == 201)
            }
        }
    }
}

private func create(_ name: String) -> CatalogWriter.Request {
    CatalogWriter.Request(
        target: .dataset(UUIDv7.make(), .create(namespace: "ns", name: name, fields: VersionFields(), clonedFrom: nil)),
        metadata: EventMetadata(actor: "test"), occurredAt: Date(), respond: respondWithDocument
    )
}

@Sendable private func respondWithDocument(_ outcome: CatalogWriter.Outcome) -> StoredResponse {
    StoredResponse(status: 201, headers: [:], body: Documents.dataset(outcome.state))
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

@Suite("The append pipeline's batches")
struct BatchTests {
    /// Submits every request at once while the log's lock is held from outside and a first batch (one
    /// create of a stream of its own) waits for it, so that they form the next batch; answers each
    /// one's result, in order.
    static func inOneBatch(
        _ database: TestDatabase, _ writer: CatalogWriter, _ requests: [CatalogWriter.Request]
    ) async throws -> [Result<StoredResponse, any Error>] {
        try await database.holdingTheAppendLock(for: .milliseconds(900)) {
            try await withThrowingTaskGroup(of: (Int, Result<StoredResponse, any Error>).self) { group in
                group.addTask {
                    (
                        -1,
                        await Result(catching: {
                            try await writer.submit(request(create(UUIDv7.make(), "first-batch")))
                        })
                    )
                }
                try await Task.sleep(for: .milliseconds(200))
                for (index, request) in requests.enumerated() {
                    group.addTask { (index, await Result(catching: { try await writer.submit(request) })) }
                }
                var results = [Result<StoredResponse, any Error>?](repeating: nil, count: requests.count)
                for try await (index, result) in group where index >= 0 { results[index] = result }
                return results.map { $0! }
            }
        }
    }

    static func request(
        _ target: CatalogWriter.Request.Target, expected: Int64? = nil, key: String? = nil, hash: String = "h"
    ) -> CatalogWriter.Request {
        CatalogWriter.Request(
            target: target, expectedStreamVersion: expected, metadata: EventMetadata(actor: "test"), occurredAt: Date(),
            idempotency: key.map { IdempotencyClaim(scope: "test", key: $0, requestHash: hash) },
            respond: respondWithDocument)
    }

    static func create(_ id: UUID, _ name: String) -> CatalogWriter.Request.Target {
        .dataset(id, .create(namespace: "ns", name: name, fields: VersionFields(), clonedFrom: nil))
    }

    /// A write that appends nothing answers the position its answer reflects: its dataset's last event as
    /// it decided, not an event a later request of the same batch appended to it; about no dataset, the
    /// log's last event, though the sequence ran ahead of the log after a batch that did not commit.
    @Test func aWriteThatAppendsNothingAnswersThePositionItsAnswerReflects() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            @Sendable func position(_ outcome: CatalogWriter.Outcome) -> StoredResponse {
                StoredResponse(status: 200, headers: [:], body: "\(outcome.position)")
            }
            func reported(_ target: CatalogWriter.Request.Target) -> CatalogWriter.Request {
                CatalogWriter.Request(
                    target: target, metadata: EventMetadata(actor: "test"), occurredAt: Date(), respond: position)
            }
            let id = UUIDv7.make()
            _ = try await writer.submit(Self.request(Self.create(id, "edited")))
            let store = EventStore(client: database.client, logger: database.logger)
            let created = try #require(try await store.readStream(id).last?.position)

            let unchanged = JSONValue.object(["owner": .null])
            let changed = JSONValue.object(["owner": .string("team")])
            let both = await writer.submit(all: [
                reported(.dataset(id, .edit(patch: unchanged))), reported(.dataset(id, .edit(patch: changed))),
            ])
            #expect(try both[0].get().body == "\(created)", "the no-op shows the dataset as it was then")
            #expect(try both[1].get().body == "\(try #require(try await store.readStream(id).last?.position))")

            // As a batch that wrote and then did not commit leaves it: the sequence ahead of the log.
            try await database.client.perform(
                "SELECT setval('events_global_position_seq', (SELECT max(global_position) FROM events) + 10)",
                logger: database.logger)
            let head = try #require(try await store.lastPosition())
            let start = OpenLineageIngest(
                inputs: [], outputs: [], job: nil, runID: "r", recordsLineage: false, registersDatasets: false)
            let answer = try await writer.submit(reported(.openLineage(start, newIDs: [])))
            #expect(answer.body == "\(head)", "a position the log holds, which reads can be asked as of")
            // Before events of its own batch, it answers where they begin, less one: within the log once
            // they land, and showing nothing of them.
            let after = UUIDv7.make()
            let together = await writer.submit(all: [
                reported(.openLineage(start, newIDs: [])),
                reported(Self.create(after, "after-the-start")),
            ])
            let first = try #require(try await store.readStream(after).first?.position)
            let startAnswered = try #require(Int64(try together[0].get().body))
            #expect(startAnswered == first - 1)
            #expect(startAnswered <= (try #require(try await store.lastPosition())))
        }
    }

    /// A batch sends COMMIT after its writes. A write PostgreSQL refuses (here a constraint on one
    /// dataset's name row) must still fail the batch whole, leaving no event and no projection row of
    /// it, and the pipeline must go on.
    @Test func aWriteRefusedByPostgreSQLLeavesNothingOfItsBatch() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let (refused, neighbour) = (UUIDv7.make(), UUIDv7.make())
            try await database.client.perform(
                "ALTER TABLE dataset_names ADD CONSTRAINT test_refuses CHECK (dataset_id <> '\(unescaped: refused.uuidString)')",
                logger: database.logger)
            let results = try await Self.inOneBatch(
                database, writer, [Self.request(Self.create(refused, "a")), Self.request(Self.create(neighbour, "b"))])
            for result in results { #expect(throws: PSQLError.self) { try result.get() } }
            try await database.client.perform(
                "ALTER TABLE dataset_names DROP CONSTRAINT test_refuses", logger: database.logger)

            let store = EventStore(client: database.client, logger: database.logger)
            #expect(try await store.readStream(refused).isEmpty)
            #expect(try await store.readStream(neighbour).isEmpty)
            let rows = try await database.client.query(
                "SELECT count(*) FROM dataset_identities WHERE dataset_id IN (\(refused), \(neighbour))",
                logger: database.logger
            ).collect()
            #expect(try rows.first?.decode(Int.self) == 0)
            let response = try await writer.submit(Self.request(Self.create(UUIDv7.make(), "a")))
            #expect(response.status == 201, "the name the failed batch would have taken is free")
        }
    }

    /// A batch gives its events their positions, after where the log goes on: past its last event even
    /// when the log's sequence was set back (say, by hand), never onto a position taken.
    @Test func aBatchAppendsAfterTheLastEventWhereverTheSequenceIs() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await writer.submit(Self.request(Self.create(UUIDv7.make(), "before")))
            try await database.client.perform(
                "SELECT setval('events_global_position_seq', 1)", logger: database.logger)
            let after = UUIDv7.make()
            _ = try await writer.submit(Self.request(Self.create(after, "after")))
            let store = EventStore(client: database.client, logger: database.logger)
            #expect(try await store.readStream(after).map(\.position) == [3, 4])
            // The identity goes on after them too.
            let appended = try await store.append(
                [NewEvent(eventID: UUIDv7.make(), type: "TestNoted", data: "{}", occurredAt: Date())],
                to: UUIDv7.make(), expectedVersion: .noStream)
            #expect(appended.positions == [5])
        }
    }

    /// A create's id is fresh, so a batch of creates reads no stream: its first round is BEGIN, the plan
    /// setting, the lock and the names it takes; then come the write and COMMIT.
    @Test func aBatchOfCreatesLooksUpTheirNamesAndNoStream() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let ids = (0..<4).map { _ in UUIDv7.make() }
            let results = try await Self.inOneBatch(
                database, writer, ids.enumerated().map { Self.request(Self.create($1, "new-\($0)")) })
            #expect(results.map { (try? $0.get())?.status } == [201, 201, 201, 201])
            let statistics = await writer.lastBatch
            #expect(statistics.statements == 6, "\(statistics)")
            let store = EventStore(client: database.client, logger: database.logger)
            for id in ids {
                #expect(try await store.readStream(id).map(\.type) == ["DatasetCreated", "DatasetVersionDrafted"])
            }
        }
    }

    /// A batch's write is one statement, prepared once per connection, so its text must not depend on
    /// what the batch holds: a batch that writes a dataset, a usage of it and an idempotency answer is
    /// written by the text of an empty batch, with as many parameters.
    @Test func everyBatchIsWrittenByTheOnePreparedStatement() throws {
        let id = UUIDv7.make()
        let context = EventContext(actor: "test", occurredAt: Date())
        var state = DatasetState(id: id)
        var events: [DatasetEvent] = []
        let create = DatasetCommand.create(namespace: "ns", name: "a", fields: VersionFields(), clonedFrom: nil)
        for command in [create, .recordUsage(version: 1, consumer: "job", kind: nil, properties: [:])] {
            let decided = try DatasetDecider.decide(command, state: state)
            for event in decided { state = state.evolve(event, context: context) }
            events += decided
        }
        var replay = ProjectionReplay<InsertRows>.continuing()
        replay.continueDataset(from: DatasetLifecycle(DatasetState(id: id)))
        for (index, event) in events.enumerated() { try replay.apply(.dataset(event), of: id, at: Int64(index + 1)) }
        replay.closeOut()
        var rows = BatchRun.EventRows()
        rows.positions = events.indices.map { Int64($0 + 1) }
        rows.streams = events.map { _ in id }
        rows.types = events.map(\.type)
        let answer = (
            IdempotencyClaim(scope: "s", key: "k", requestHash: "h"),
            StoredResponse(status: 201, headers: [:], body: "{}")
        )

        let write = try BatchRun.writeStatement(
            rows, recordedAt: Date(), projected: replay.takePending(), answers: [answer])
        let empty = try BatchRun.writeStatement(
            BatchRun.EventRows(), recordedAt: Date(), projected: InsertRows(), answers: [])
        #expect(write.sql == BatchRun.BatchWrite.sql)
        #expect(empty.sql == BatchRun.BatchWrite.sql)
        #expect(write.binds.count == empty.binds.count)
    }

    /// A connection plans each statement a batch prepares once, from the statistics of that moment, and
    /// keeps the plan for every batch after. Planned on an empty catalog, where every table looks small,
    /// neither the write nor the load of streams may read a table whole: a catalog that starts empty and
    /// grows would pay for its whole size in every batch.
    @Test func theBatchStatementsPlannedOnAnEmptyCatalogReadNoTableWhole() async throws {
        try await withTestDatabase { database in
            let empty = try BatchRun.writeStatement(
                BatchRun.EventRows(), recordedAt: Date(), projected: InsertRows(), answers: [])
            let plans = try await database.client.withConnection { connection in
                let logger = database.logger
                try await connection.perform("SET plan_cache_mode = force_generic_plan", logger: logger)
                defer { Task { try? await connection.perform("RESET plan_cache_mode", logger: logger) } }
                /// The plan the connection keeps for the statement prepared as `name`, after running it once.
                func keptPlan(_ name: String, run: () async throws -> Void) async throws -> String {
                    try await run()
                    let parameters = try #require(
                        try await connection.query(
                            "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = \(name)",
                            logger: logger
                        ).collect().first?.decode(Int.self))
                    let nulls = Array(repeating: "NULL", count: parameters).joined(separator: ", ")
                    return try await connection.query(
                        "EXPLAIN (FORMAT JSON) EXECUTE \(unescaped: "\"\(name)\"")(\(unescaped: nulls))",
                        logger: logger
                    ).collect().first!.decode(String.self)
                }
                let write = BatchRun.BatchWrite(bindings: empty.binds)
                let streams = BatchRun.LoadStreams(lookupStreams: [], lookupTypes: [], whole: [], ids: [])
                return [
                    try await keptPlan(BatchRun.BatchWrite.name) {
                        _ = try await connection.rows(of: write, logger: logger)
                    },
                    try await keptPlan(BatchRun.LoadStreams.name) {
                        _ = try await connection.rows(executing: streams, logger: logger)
                    },
                ]
            }
            let tables = Set(ProjectionTable.allCases.map(\.name) + ["events", "idempotency_keys"])
            for plan in plans {
                #expect(try Self.tablesScannedWhole(in: plan).isDisjoint(with: tables), "\(plan)")
            }
        }
    }

    /// The tables that an `EXPLAIN (FORMAT JSON)` plan reads whole: sequentially, or through an index
    /// without a condition on it.
    private static func tablesScannedWhole(in plan: String) throws -> Set<String> {
        func walk(_ node: JSONValue, table parent: String?) -> Set<String> {
            guard case .object(let fields) = node else { return [] }
            var table = parent
            if case .string(let name)? = fields["Relation Name"] { table = name }
            var tables: Set<String> = []
            switch fields["Node Type"] {
            case .string("Seq Scan")?:
                if let table { tables.insert(table) }
            case .string("Index Scan")?, .string("Index Only Scan")?, .string("Bitmap Index Scan")?:
                if fields["Index Cond"] == nil, let table { tables.insert(table) }
            default: break
            }
            if case .array(let children)? = fields["Plans"] {
                for child in children { tables.formUnion(walk(child, table: table)) }
            }
            return tables
        }
        return walk(try #require(try JSONValue(parsing: plan).arrayValue?.first?["Plan"], "\(plan)"), table: nil)
    }

    @Test func aBatchMixingGoodRefusedAndConflictingCommandsAnswersEachOnItsOwn() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let existing = UUIDv7.make()
            _ = try await writer.submit(Self.request(Self.create(existing, "existing")))
            let (a, b) = (UUIDv7.make(), UUIDv7.make())
            let results = try await Self.inOneBatch(
                database, writer,
                [
                    Self.request(Self.create(a, "a")),
                    Self.request(Self.create(UUIDv7.make(), "a")),  // the name a takes a moment before
                    Self.request(.dataset(UUIDv7.make(), .publish(version: nil, changeNote: nil))),  // no such dataset
                    Self.request(.dataset(existing, .archive(reason: nil)), expected: 1),  // stale
                    Self.request(.dataset(existing, .archive(reason: nil)), expected: 2),
                    Self.request(Self.create(b, "b")),
                    Self.request(.dataset(a, .archive(reason: nil)), expected: 2),  // sees a's create
                ])
            #expect((try? results[0].get())?.status == 201)
            #expect(throws: DomainError.nameTaken(namespace: "ns", name: "a")) { try results[1].get() }
            #expect(throws: DomainError.datasetNotFound) { try results[2].get() }
            #expect(throws: CatalogError.versionConflict(expected: 1, actual: 2)) { try results[3].get() }
            #expect((try? results[4].get())?.status == 201)
            #expect((try? results[5].get())?.status == 201)
            #expect((try? results[6].get())?.status == 201)
            let statistics = await writer.lastBatch
            #expect(statistics.statements <= 16, "\(statistics)")

            let events = try await EventStore(client: database.client, logger: database.logger)
                .readAll(after: 4, limit: 100)
            #expect(
                events.map(\.type) == [
                    "DatasetCreated", "DatasetVersionDrafted", "DatasetArchived", "DatasetCreated",
                    "DatasetVersionDrafted",
                    "DatasetArchived",
                ])
            #expect(Set(events.map(\.recordedAt)).count == 1, "one transaction")
            let report = try await ProjectionMaintenance(
                client: database.client, catalog: try .bundled(), logger: database.logger
            ).verify()
            #expect(report.isClean, "\(report.tables.filter { !$0.matches })")
        }
    }

    @Test func sixtyFourWritersWithOneIfMatchLeaveOneWinner() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let id = UUIDv7.make()
            _ = try await writer.submit(Self.request(Self.create(id, "contested")))
            let results = try await Self.inOneBatch(
                database, writer,
                (0..<64).map { index in
                    Self.request(
                        .dataset(id, .edit(patch: .object(["row_count": .number(Double(index))]))), expected: 2)
                })
            #expect(results.filter { (try? $0.get()) != nil }.count == 1)
            #expect(
                results.filter { if case .failure(CatalogError.versionConflict) = $0 { true } else { false } }.count
                    == 63)
            let stream = try await EventStore(client: database.client, logger: database.logger).readStream(id)
            #expect(stream.count == 3, "one new version")
        }
    }

    @Test func idempotentRetriesRacingInsideOneBatchApplyOnce() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let results = try await Self.inOneBatch(
                database, writer,
                (0..<8).map { _ in Self.request(Self.create(UUIDv7.make(), "once"), key: "k1", hash: "same") }
                    + [Self.request(Self.create(UUIDv7.make(), "other"), key: "k1", hash: "different")])
            let answers = results.prefix(8).compactMap { try? $0.get() }
            #expect(answers.count == 8)
            #expect(Set(answers.map(\.body)).count == 1, "every retry gets the first answer")
            #expect(throws: CatalogError.idempotencyKeyReused) { try results[8].get() }
            let created = try await EventStore(client: database.client, logger: database.logger)
                .readAll(after: 0, limit: 100).filter { $0.type == "DatasetCreated" && $0.data.contains("once") }
            #expect(created.count == 1)
            // And in a later batch, from the stored answer.
            let later = try await writer.submit(
                Self.request(Self.create(UUIDv7.make(), "once"), key: "k1", hash: "same"))
            #expect(later.body == answers[0].body)
        }
    }

    /// The rows of `events` that the nodes of the batch's streams statement produced or filtered out,
    /// over all their loops, loading `dataset`: what PostgreSQL read of the log to fold its state. The
    /// plan is the generic one a batch runs, prepared, not one made for this dataset's id.
    static func eventRowsRead(loading dataset: UUID, in database: TestDatabase) async throws -> Int {
        let statement = try #require(BatchRun.streamsStatement([dataset], histories: [], tokens: []))
        // EXPLAIN EXECUTE takes no bound parameters: the arrays go in as literals (ids and type names).
        func literal<Element>(_ values: [Element], _ type: String) -> String {
            "ARRAY[\(values.map { "'\($0)'" }.joined(separator: ","))]::\(type)[]"
        }
        let arguments = [
            literal(statement.lookupStreams, "uuid"), literal(statement.lookupTypes, "text"),
            literal(statement.whole, "uuid"), literal(statement.ids, "uuid"),
        ]
        let plan = try await database.client.withConnection { connection in
            try await connection.perform(
                PostgresQuery(unsafeSQL: "PREPARE load_streams AS " + BatchRun.LoadStreams.sql),
                logger: database.logger)
            try await connection.perform("SET plan_cache_mode = force_generic_plan", logger: database.logger)
            let plan = try await connection.query(
                PostgresQuery(
                    unsafeSQL:
                        "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE load_streams(\(arguments.joined(separator: ", ")))"),
                logger: database.logger
            ).collect().first?.decode(String.self)
            // The connection goes back to the pool as it came.
            try await connection.perform("DEALLOCATE load_streams", logger: database.logger)
            try await connection.perform("RESET plan_cache_mode", logger: database.logger)
            return plan
        }
        func walk(_ node: JSONValue) -> Int {
            guard case .object(let fields) = node else { return 0 }
            var rows = 0
            if fields["Relation Name"] == .string("events") {
                let produced =
                    (fields["Actual Rows"]?.intValue ?? 0) + (fields["Rows Removed by Filter"]?.intValue ?? 0)
                rows += produced * (fields["Actual Loops"]?.intValue ?? 1)
            }
            if case .array(let children)? = fields["Plans"] { rows += children.map(walk).reduce(0, +) }
            return rows
        }
        let top = try #require(try JSONValue(parsing: plan ?? "").arrayValue?.first?["Plan"])
        return walk(top)
    }

    /// A dataset's history does not weigh on its writes: editing one pinned a thousand times, then
    /// edited, published, archived and restored a hundred times, reads the rows and runs the statements
    /// that editing one that went through those steps once does.
    @Test func aLongHistoryIsEditedAtTheCostOfANewOne() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let (pinned, fresh) = (UUIDv7.make(), UUIDv7.make())
            _ = try await writer.submit(Self.request(Self.create(pinned, "pinned")))
            _ = try await writer.submit(Self.request(Self.create(fresh, "fresh")))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<8 {
                    group.addTask {
                        for pin in 0..<125 {
                            _ = try await writer.submit(
                                Self.request(
                                    .dataset(
                                        pinned,
                                        .recordUsage(
                                            version: 1, consumer: "run-\(client)-\(pin)", kind: nil, properties: [:])
                                    )))
                        }
                    }
                }
                try await group.waitForAll()
            }
            // Pins are refused while the dataset is archived, so the rounds come after them.
            func round(_ id: UUID, _ number: Int) async throws {
                let fields: JSONValue = .object([
                    "location": .string("s3://lake/pinned/\(number)"),
                    "schema": .array([.object(["name": .string("c\(number)"), "type": .string("int")])]),
                ])
                _ = try await writer.submit(Self.request(.dataset(id, .edit(patch: fields))))
                _ = try await writer.submit(Self.request(.dataset(id, .publish(version: nil, changeNote: nil))))
                _ = try await writer.submit(Self.request(.dataset(id, .archive(reason: "\(number)"))))
                _ = try await writer.submit(Self.request(.dataset(id, .restore)))
            }
            for number in 0..<100 { try await round(pinned, number) }
            try await round(fresh, 0)
            _ = try await writer.submit(
                Self.request(.dataset(pinned, .edit(patch: .object(["row_count": .number(1)])))))
            let editingPinned = await writer.lastBatch
            _ = try await writer.submit(Self.request(.dataset(fresh, .edit(patch: .object(["row_count": .number(1)])))))
            let editingFresh = await writer.lastBatch
            #expect(editingPinned == editingFresh, "pinned: \(editingPinned), fresh: \(editingFresh)")
            // And PostgreSQL finds them without reading the history: 1,000 pins, 400 lifecycle events and 101
            // drafts. (The published draft is found by its rank among the drafts: up to 102 index entries.)
            let (readForPinned, readForFresh) = (
                try await Self.eventRowsRead(loading: pinned, in: database),
                try await Self.eventRowsRead(loading: fresh, in: database)
            )
            #expect(readForPinned < 160, "loading the pinned dataset read \(readForPinned) rows of the log")
            #expect(readForFresh < 40, "loading the fresh dataset read \(readForFresh) rows of the log")

            // What the edit was decided from: the latest version (101, from the last round), and the answer
            // shows the published one; a command naming an older draft reads it too.
            let edited = try await EventStore(client: database.client, logger: database.logger).readStream(pinned)
                .last
            #expect(
                edited?.data.contains("s3://lake/pinned/99") == true && edited?.data.contains("\"version\":102") == true
            )
            _ = try await writer.submit(
                Self.request(.dataset(pinned, .edit(patch: .object(["row_count": .number(2)])))))
            let published = try await writer.submit(
                Self.request(.dataset(pinned, .publish(version: 102, changeNote: nil))))
            let current = try JSONDecoder().decode(JSONValue.self, from: Data(published.body.utf8))["current"]
            #expect(current?["version"] == .number(102) && current?["row_count"] == .number(1), "\(published.body)")
            let report = try await ProjectionMaintenance(
                client: database.client, catalog: try .bundled(), logger: database.logger
            ).verify()
            #expect(report.isClean, "\(report.tables.filter { !$0.matches })")
            let stream = try await EventStore(client: database.client, logger: database.logger).readStream(pinned)
            #expect(stream.count == 1_405)
        }
    }
}
