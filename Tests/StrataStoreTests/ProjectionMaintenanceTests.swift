import EmbeddedPostgres
import Foundation
import PostgresNIO
import StrataCore
import StrataTestSupport
import Synchronization
import Testing

@testable import StrataStore

@Suite("Rebuilding and verifying projections")
struct ProjectionMaintenanceTests {
    @Test func afterThousandsOfRandomCommandsTheProjectionsMatchTheLog() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer).run(commands: 2500)
            let report = try await maintenance(database).verify()
            #expect(report.isClean, "\(report.tables.filter { !$0.matches })")
            #expect(
                report.tables.map(\.table).sorted() == [
                    "api_tokens", "dataset_identities", "dataset_names", "dataset_states", "dataset_usages",
                    "dataset_words", "lineage_edges", "version_publications", "versions",
                ])
            #expect(report.tables.allSatisfy { $0.liveRows > 0 })
        }
    }

    /// Both writers, the rebuild's COPY and the append pipeline's INSERT, give a row's fields in
    /// ``ProjectionTable/schema`` order: it must be the order and the types of the columns that
    /// `Projections/*.sql` creates, for every file.
    @Test func theWritersColumnsAreTheColumnsTheProjectionFilesCreate() async throws {
        try await withTestDatabase { database in
            let files = try ProjectionCatalog.bundled().definitions.map(\.name)
            #expect(files.sorted() == ProjectionTable.allCases.map(\.name).sorted())
            for table in ProjectionTable.allCases {
                let rows = try await database.client.query(
                    """
                    SELECT column_name, udt_name FROM information_schema.columns
                    WHERE table_schema = 'public' AND table_name = \(table.name)
                    ORDER BY ordinal_position
                    """, logger: database.logger
                ).collect()
                let created = try rows.map { try $0.decode((String, String).self) }
                let written = table.schema.map { column in
                    let type =
                        switch column.type {
                        case .uuid: "uuid"
                        case .bigint: "int8"
                        case .integer: "int4"
                        case .text: "text"
                        case .bytea: "bytea"
                        case .textArray: "_text"
                        case .tsvector: "tsvector"
                        }
                    return (column.name, type)
                }
                #expect(created.map { "\($0) \($1)" } == written.map { "\($0) \($1)" }, "\(table.name)")
            }
        }
    }

    /// The writers make the search vectors that `to_tsvector` made before them, word for word, position
    /// for position and weight for weight, for text in ASCII, so ranking is as it was; what PostgreSQL
    /// reads from the text form (the append pipeline's) is what the rebuild's binary form loads.
    @Test func searchVectorsAreWhatToTsvectorMadeOfTheSameWords() async throws {
        try await withTestDatabase { database in
            let rows = [
                DatasetProjector.WordsRow(
                    datasetID: UUID(), namespace: "raw/finance", name: "orders_daily-2919", owner: "Team-ML",
                    description: "Daily orders, deduplicated by session; v1.2 of 'late' data (see s3://lake/orders)",
                    tags: ["pii", "team-7", "orders"], format: "parquet",
                    columnNames: ["customer_id", "ID", "order_total", "orders"], propertyKeys: ["split_seed", "Owner"]),
                DatasetProjector.WordsRow(
                    datasetID: UUID(), namespace: "ml", name: "x", owner: nil, description: nil, tags: [], format: nil,
                    columnNames: [], propertyKeys: []),
            ]
            for row in rows {
                let vector = row.searchVector
                let answer = try await database.client.query(
                    """
                    SELECT \(vector.text)::tsvector::text,
                           (setweight(to_tsvector('simple', strata_words(\([row.namespace, row.name] + row.columnNames))), 'A')
                            || setweight(to_tsvector('simple', strata_words(\(row.tags + [row.owner ?? "", row.format ?? ""]))), 'B')
                            || setweight(to_tsvector('simple', strata_words(ARRAY[\(row.description ?? "")])), 'C')
                            || setweight(to_tsvector('simple', strata_words(\(row.propertyKeys))), 'D'))::text
                    """, logger: database.logger
                ).collect()
                let (ours, theirs) = try #require(answer.first).decode((String, String).self)
                #expect(ours == theirs)
            }
        }
    }

    @Test func aProjectionRowAlteredByHandIsReportedWithTheRow() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 2).run(commands: 60)
            try await database.client.perform(
                """
                UPDATE dataset_words SET owner = 'tampered'
                WHERE (dataset_id, words_key) = (SELECT dataset_id, words_key FROM dataset_words LIMIT 1)
                """,
                logger: database.logger
            )
            let report = try await maintenance(database).verify()
            #expect(!report.isClean)
            let drift = try #require(report.tables.first { !$0.matches })
            #expect(drift.table == "dataset_words")
            #expect(drift.firstDifference?.contains("tampered") == true, "\(drift.firstDifference ?? "no row named")")
            #expect(report.tables.filter { !$0.matches }.count == 1)
        }
    }

    /// A rebuild drops the new tables' indexes for the load and makes them again after it: they come
    /// back as the projection files made them, storage options included (the search index's small
    /// pending list is what keeps its merges short under the append lock).
    @Test func aRebuildMakesEveryIndexAsTheProjectionFilesDefineIt() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 2, seed: 3).run(commands: 120)
            let tables = ProjectionTable.allCases.map(\.name)
            @Sendable func indexes() async throws -> [String] {
                try await database.client.query(
                    """
                    SELECT indexdef FROM pg_indexes
                    WHERE schemaname = 'public' AND tablename = ANY(\(tables)) ORDER BY indexname
                    """, logger: database.logger
                ).collect().map { try $0.decode(String.self) }
            }
            let installed = try await indexes()
            #expect(
                installed.contains {
                    $0.contains("dataset_words_search") && $0.contains("gin_pending_list_limit='256'")
                })
            _ = try await maintenance(database).rebuild()
            #expect(try await indexes() == installed)
        }
    }

    /// A rebuild reads the log in spans of positions, several at once; spans that hold fewer events than
    /// the batch, or none (positions have holes where appends rolled back), must lose and repeat nothing.
    @Test func aRebuildReadsEveryEventAcrossHolesInThePositions() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 2, seed: 1).run(commands: 150)
            for holes in [3, 40] {
                // What a rolled-back append leaves behind: positions drawn and never committed.
                try await database.client.perform(
                    """
                    SELECT nextval(pg_get_serial_sequence('events', 'global_position'))
                    FROM generate_series(1, \(holes))
                    """,
                    logger: database.logger)
                _ = try await RandomWorkload(writer: writer, clients: 2, seed: UInt64(holes)).run(commands: 100)
            }
            var rebuild = try maintenance(database)
            rebuild.batchSize = 7
            let report = try await rebuild.rebuild()
            let head = try await EventStore(client: database.client, logger: database.logger).lastPosition()
            #expect(report.position == head)
            #expect(head > 250)
            let verified = try await maintenance(database).verify()
            #expect(verified.isClean, "\(verified.tables.filter { !$0.matches })")
        }
    }

    /// An event written into the log by hand that its stream cannot hold (here a draft that skips
    /// versions) stops a rebuild with the event named; the live projections stay as they were.
    @Test func aRebuildRefusesAnEventItsStreamCannotHoldAndKeepsTheLiveProjections() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 2).run(commands: 40)
            let (stream, version) = try #require(
                try await database.client.query(
                    "SELECT stream_id, max(stream_version) FROM events GROUP BY stream_id ORDER BY 1 LIMIT 1",
                    logger: database.logger
                ).collect().first?.decode((UUID, Int64).self))
            let before = try await maintenance(database).verify()
            #expect(before.isClean)
            let skipping = DatasetEvent.versionDrafted(
                .init(version: VersionSnapshot(version: 99, fields: VersionFields()), changedFields: []))
            let appended = try await EventStore(client: database.client, logger: database.logger).append(
                [
                    NewEvent(
                        eventID: UUID(), type: skipping.type, data: skipping.encodedData(),
                        metadata: #"{"actor": "hand"}"#, occurredAt: Date())
                ],
                to: stream, expectedVersion: .exactly(version))
            let position = try #require(appended.positions.first)

            let error = await #expect(throws: ProjectionError.self) { try await maintenance(database).rebuild() }
            let message = "\(error.map { "\($0)" } ?? "")"
            #expect(message.contains("position \(position)"), "\(message)")
            #expect(message.contains("it drafts version 99"), "\(message)")
            let live = try await database.client.query(
                "SELECT count(*) FROM dataset_states WHERE valid_from = \(position)", logger: database.logger
            ).collect().first?.decode(Int.self)
            #expect(live == 0)
            #expect(
                try await database.client.query(
                    "SELECT count(*) FROM pg_namespace WHERE nspname = 'strata_rebuild'", logger: database.logger
                ).collect().first?.decode(Int.self) == 0)
        }
    }

    /// Two rebuilds asked for at once (say the admin endpoint while a start-up rebuild runs) share the
    /// scratch schema; they take turns, both succeed, and leave nothing behind.
    @Test func twoRebuildsAtOnceTakeTurnsAndBothSucceed() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 4).run(commands: 300)
            let other = database.makeClient()
            let positions = try await other.whileRunning { other in
                try await withThrowingTaskGroup(of: Int64.self) { group in
                    for client in [database.client, other] {
                        group.addTask {
                            var maintenance = ProjectionMaintenance(
                                client: client, catalog: try .bundled(), logger: database.logger)
                            maintenance.batchSize = 100
                            return try await maintenance.rebuild().position
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            #expect(positions.count == 2)
            #expect(try await maintenance(database).verify().isClean)
            #expect(try await rebuildSchemasLeft(in: database) == 0)
        }
    }

    /// A read that holds one projection table and then asks for another while a rebuild swaps them all,
    /// as a search reads the words and then the states. The swap used to take the states, then wait for
    /// the words; the read waited for the states; PostgreSQL ended one of them as a deadlock, and a
    /// search answered 500 (found by `strata bench faults`). The swap now gives way to the read, which
    /// goes on, and lands once the read is done.
    @Test func aReadHoldingOneTableWhileARebuildSwapsThemAllIsNoDeadlock() async throws {
        try await withTestDatabase { database in
            let logger = database.logger
            let writer = CatalogWriter(pool: database.pool, logger: logger)
            _ = try await RandomWorkload(writer: writer, clients: 2).run(commands: 50)
            let rebuilding = try await database.makeClient().whileRunning { reader in
                try await reader.transaction(logger: logger) { connection in
                    try await connection.perform("SELECT count(*) FROM dataset_words", logger: logger)
                    let rebuilding = Task { try await maintenance(database).rebuild() }
                    // Until the swap waits for this transaction's hold on the words.
                    let deadline = ContinuousClock.now + .seconds(60)
                    var waiting = 0
                    while waiting == 0, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(10))
                        waiting =
                            try await database.client.rows(
                                """
                                SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'
                                AND relation = 'public.dataset_words'::regclass
                                """, logger: logger
                            ).first?.decode(Int.self) ?? 0
                    }
                    try #require(waiting > 0, "the swap was never seen waiting for the words")
                    try await connection.perform("SELECT count(*) FROM dataset_states", logger: logger)
                    return rebuilding
                }
            }
            _ = try await rebuilding.value
            #expect(try await maintenance(database).verify().isClean)
        }
    }

    /// A read's snapshot and the tables it reads are of one moment. A read that took its snapshot, then
    /// found the projections swapped before it first read one, would read the rebuilt tables: their rows
    /// loaded frozen, visible to every snapshot however old, and their last rows caught up by the swap,
    /// visible to none from before it. Here a dataset archived after the read's snapshot must be answered
    /// as it was at the read's position: a draft.
    @Test func aReadThatBeganBeforeASwapAnswersItsOwnPosition() async throws {
        try await withTestDatabase { database in
            let (writer, dataset) = try await catalogWithADraft(database)
            let reader = CatalogReader(pool: database.pool, logger: database.logger)
            let (snapshotTaken, tookSnapshot) = AsyncStream<Void>.makeStream()
            let (mayRead, letRead) = AsyncStream<Void>.makeStream()
            let reading = Task {
                try await reader.read { snapshot in
                    tookSnapshot.yield()
                    for await _ in mayRead { break }
                    return try await snapshot.dataset(dataset)?.document
                }
            }
            for await _ in snapshotTaken { break }
            #expect(try await writer.submit(request(.dataset(dataset, .archive(reason: "later")))).status == 200)
            // Until the rebuild has swapped, or its swap waits for the read.
            let rebuilding = try await rebuild(
                database, untilSwappedOrWaiting: "mode = 'AccessExclusiveLock' AND locktype = 'relation'")
            letRead.yield()
            let (document, position) = try await reading.value
            let answered = try #require(document, "the dataset was not found at position \(position)")
            #expect(answered.contains(#""status":"draft""#), "at position \(position): \(answered)")
            _ = try await rebuilding.value
            #expect(try await maintenance(database).verify().isClean)
        }
    }

    /// A verify compares the live tables with a replay of the log in one snapshot. A rebuild that swapped
    /// in its tables while a verify replayed would show the verify rows its snapshot was never meant to
    /// see, and hide others from it: a clean catalog reported drifted. Here the verify stops once it has
    /// its snapshot, a dataset is archived and a rebuild runs; the verify must find the catalog clean, and
    /// the rebuild finish after it.
    @Test func aVerifyAndARebuildDoNotOverlap() async throws {
        try await withTestDatabase { database in
            let (writer, dataset) = try await catalogWithADraft(database)
            let (replaying, startedReplaying) = AsyncStream<Void>.makeStream()
            let mayGoOn = DispatchSemaphore(value: 0)
            let verifying = Task {
                try await maintenance(database).verify { _ in
                    // Only the first time: the stream is finished after it.
                    if case .terminated = startedReplaying.yield() { return }
                    startedReplaying.finish()
                    // The verify's thread waits here, in the middle of its snapshot, a minute at most.
                    _ = mayGoOn.wait(timeout: .now() + 60)
                }
            }
            for await _ in replaying { break }
            #expect(try await writer.submit(request(.dataset(dataset, .archive(reason: "later")))).status == 200)
            // Until the rebuild has swapped, or waits for the verify to end.
            let rebuilding = try await rebuild(database, untilSwappedOrWaiting: "locktype = 'advisory'")
            mayGoOn.signal()
            let report = try await verifying.value
            #expect(report.isClean, "\(report.tables.filter { !$0.matches })")
            _ = try await rebuilding.value
            #expect(try await maintenance(database).verify().isClean)
        }
    }

    /// A process that stopped right after a swap committed left the replaced tables behind, in their
    /// schema of their own: the next rebuild drops them and swaps as usual.
    @Test func tablesAnEarlierSwapReplacedAreDroppedByTheNextRebuild() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 2).run(commands: 50)
            try await database.client.perform("CREATE SCHEMA strata_replaced", logger: database.logger)
            try await database.client.perform(
                "CREATE TABLE strata_replaced.dataset_states AS SELECT * FROM dataset_states", logger: database.logger)
            try await maintenance(database).rebuild()
            #expect(try await maintenance(database).verify().isClean)
            #expect(try await rebuildSchemasLeft(in: database) == 0)
        }
    }

    /// While eight clients keep writing, a rebuild runs and swaps; every write that was acknowledged,
    /// before, during or after, is in the rebuilt projections, and they match the log.
    @Test func aRebuildWhileClientsWriteLosesNothingAcknowledged() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, seed: 1).run(commands: 400)
            let rebuilder = database.makeClient()
            let acknowledged = try await rebuilder.whileRunning { rebuilder in
                try await withThrowingTaskGroup(of: [RandomWorkload.Acknowledged].self) { group in
                    group.addTask { try await RandomWorkload(writer: writer, seed: 2).run(commands: 800) }
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(100))
                        var maintenance = ProjectionMaintenance(
                            client: rebuilder, catalog: try .bundled(), logger: database.logger)
                        maintenance.batchSize = 300  // many rounds, so writes land in every phase
                        _ = try await maintenance.rebuild()
                        return []
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
            }
            #expect(acknowledged.count > 100)
            let latest = Dictionary(acknowledged.map { ($0.dataset, $0.streamVersion) }, uniquingKeysWith: max)
            for (dataset, version) in latest {
                let rows = try await database.client.query(
                    """
                    SELECT e.stream_version FROM dataset_states s JOIN events e ON e.global_position = s.valid_from
                    WHERE s.dataset_id = \(dataset) AND s.valid_to IS NULL
                    """,
                    logger: database.logger
                ).collect()
                let visible = try rows.first?.decode(Int.self) ?? 0
                #expect(visible >= version, "dataset \(dataset) lost acknowledged version \(version)")
            }
            let report = try await maintenance(database).verify()
            #expect(report.isClean, "\(report.tables.filter { !$0.matches })")
            let status = try await maintenance(database).status()
            #expect(status.allSatisfy { $0.rebuiltAt != nil })
        }
    }

    @Test func aRebuildKilledMidwayLeavesTheLiveProjectionsIntactAndTheNextOneSucceeds() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer).run(commands: 3000)
            for delay in [0.05, 0.3] {
                let replay = try StrataBinary.spawn(["replay", "--database-url", database.url])
                try await Task.sleep(for: .seconds(delay))
                kill(replay, SIGKILL)
                var status: Int32 = 0
                waitpid(replay, &status, 0)
                let report = try await maintenance(database).verify()
                #expect(report.isClean, "after a kill at \(delay) s: \(report.tables.filter { !$0.matches })")
            }
            let rebuilt = try StrataBinary.run(["replay", "--database-url", database.url])
            #expect(rebuilt.status == 0, "\(rebuilt.output)")
            #expect(
                rebuilt.output.contains(
                    "rebuilt api_tokens, dataset_identities, dataset_names, dataset_states, dataset_usages, dataset_words, "
                        + "lineage_edges, version_publications, versions"))
            #expect(try await maintenance(database).verify().isClean)
            let verified = try StrataBinary.run(["verify", "--database-url", database.url])
            #expect(verified.status == 0, "\(verified.output)")
        }
    }

    @Test func aChangedProjectionDefinitionIsRebuiltAtStartUp() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 2).run(commands: 50)
            // As if Projections/versions.sql had been edited since it was built.
            try await database.client.perform(
                "UPDATE projections SET definition_hash = 'old' WHERE name = 'versions'",
                logger: database.logger)
            #expect(try await maintenance(database).outdated() == ["versions"])

            let migrate = try StrataBinary.run(["migrate", "--database-url", database.url])
            #expect(migrate.status == 0, "\(migrate.output)")
            #expect(try await maintenance(database).outdated().isEmpty)
            let rebuiltAt = try await maintenance(database).status().first { $0.name == "versions" }?.rebuiltAt
            #expect(rebuiltAt != nil)
            #expect(try await maintenance(database).verify().isClean)
        }
    }

    /// A read model that changes shape gets a new file name; the old one's table goes once the new
    /// projections are in place, and so does its bookkeeping.
    @Test func aProjectionWhoseFileIsGoneIsDroppedAtStartUp() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 2).run(commands: 30)
            try await database.client.perform(
                "CREATE TABLE datasets (dataset_id uuid PRIMARY KEY, document text)", logger: database.logger)
            try await database.client.perform(
                "INSERT INTO projections (name, definition_hash) VALUES ('datasets', 'a removed file')",
                logger: database.logger)

            let migrate = try StrataBinary.run(["migrate", "--database-url", database.url])
            #expect(migrate.status == 0, "\(migrate.output)")
            let left = try await database.client.query(
                """
                SELECT (SELECT count(*) FROM projections WHERE name = 'datasets')
                     + (SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'datasets')
                """,
                logger: database.logger
            ).collect().first?.decode(Int.self)
            #expect(left == 0)
            #expect(
                try await maintenance(database).status().map(\.name).sorted()
                    == ProjectionCatalog.bundled().definitions.map(\.name).sorted())
            #expect(try await maintenance(database).verify().isClean)
        }
    }

    /// A COPY whose connection dies mid-transfer. PostgresNIO 1.33 leaves such a COPY waiting forever
    /// ("copyFrom leaked its continuation"): a PostgreSQL restart under a rebuild hung it, and `POST
    /// /v1/admin/projections/rebuild` never answered. And it stops the process ("Copy mode is only
    /// supported for extended queries") when the COPY's next step reaches the closed connection before
    /// its handler is gone, which ended this test (then of ten rounds on 30,000 events) within three
    /// rounds in each of two runs. The rebuild
    /// now fails as soon as a connection of its own closes, without that step, and the next one lands.
    @Test func aRebuildWhoseCopyLosesItsConnectionFailsPromptlyAndTheNextLands() async throws {
        try await withTestDatabase { database in
            try await CatalogSchema.bundled().prepare(database.client, logger: database.logger)
            _ = try await SyntheticLog(client: database.client, logger: database.logger).generate(events: 20_000)
            let logger = database.logger
            let copiesUnderWay = """
                FROM pg_stat_activity
                WHERE datname = current_database() AND query LIKE 'COPY %' AND state = 'active'
                  AND pid <> pg_backend_pid()
                """
            // Each round cuts off a COPY at another point of the load: after it was seen under way that
            // many times. A rebuild that ends first (a busy machine sees fewer of its COPYs) is run again.
            for sightingsBeforeCut in [0, 1, 2, 0, 3, 1, 0, 2] {
                var (killed, attempts) = (0, 0)
                while killed == 0 {
                    attempts += 1
                    try #require(attempts <= 5, "no COPY was seen to cut off in five rebuilds")
                    // The rebuild cut off before may still have sessions under way (they are ended by the
                    // watch, which under load takes a while): a COPY of theirs must not be mistaken for one
                    // of the rebuild below.
                    let quiet = ContinuousClock.now + .seconds(60)
                    while ContinuousClock.now < quiet,
                        try await database.client.query(
                            "SELECT count(*) \(unescaped: copiesUnderWay)", logger: logger
                        ).collect().first?.decode(Int.self) ?? 0 > 0
                    {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    var rebuilding = try maintenance(database)
                    rebuilding.batchSize = 1_000
                    // Awaited apart, so that a rebuild that never answers fails the test rather than hangs it.
                    let outcome = Mutex<Result<ProjectionMaintenance.RebuildReport, any Error>?>(nil)
                    Task { [rebuilding] in
                        let result = await Task { try await rebuilding.rebuild() }.result
                        outcome.withLock { $0 = result }
                    }
                    var sightings = 0
                    let deadline = ContinuousClock.now + .seconds(30)
                    while killed == 0, outcome.withLock({ $0 == nil }), ContinuousClock.now < deadline {
                        let statement: PostgresQuery =
                            sightings < sightingsBeforeCut
                            ? "SELECT count(*) \(unescaped: copiesUnderWay)"
                            : "SELECT count(pg_terminate_backend(pid)) \(unescaped: copiesUnderWay)"
                        let count =
                            try await database.client.query(statement, logger: logger).collect().first?
                            .decode(Int.self) ?? 0
                        if sightings < sightingsBeforeCut { sightings += count > 0 ? 1 : 0 } else { killed = count }
                    }
                    guard killed > 0 else { continue }
                    // The failure this guards against is a rebuild that never answers. Under the whole suite
                    // on two cores an answer has taken over 20 s (four times in seven runs on 2026-12-06,
                    // never alone), so the bound is generous and the time taken is printed.
                    let cut = ContinuousClock.now
                    let answerDeadline = cut + .seconds(90)
                    while outcome.withLock({ $0 == nil }), ContinuousClock.now < answerDeadline {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    print("a rebuild whose COPY was cut off answered after \(cut.duration(to: .now))")
                    let answered = try #require(
                        outcome.withLock { $0 }, "the rebuild did not answer within 90 s of losing a connection")
                    #expect(throws: DatabaseUnavailable.self) { try answered.get() }
                    if case .failure(let error) = answered, !(error is DatabaseUnavailable) {
                        Issue.record("the rebuild failed otherwise: \(String(reflecting: error))")
                    }
                }
            }

            try await maintenance(database).rebuild()
            #expect(try await maintenance(database).verify().isClean)
        }
    }
}

/// How many of a rebuild's own schemas (the half-built tables, the replaced ones) are still there.
private func rebuildSchemasLeft(in database: TestDatabase) async throws -> Int? {
    try await database.client.query(
        "SELECT count(*) FROM pg_namespace WHERE nspname IN ('strata_rebuild', 'strata_replaced')",
        logger: database.logger
    ).collect().first?.decode(Int.self)
}

/// A catalog of a random workload's datasets and a draft, "d", which the test goes on to change.
private func catalogWithADraft(_ database: TestDatabase) async throws -> (CatalogWriter, dataset: UUID) {
    let writer = CatalogWriter(pool: database.pool, logger: database.logger)
    _ = try await RandomWorkload(writer: writer, clients: 2).run(commands: 50)
    let dataset = UUIDv7.make()
    let create = DatasetCommand.create(namespace: "ns", name: "d", fields: VersionFields(), clonedFrom: nil)
    #expect(try await writer.submit(request(.dataset(dataset, create))).status == 200)
    return (writer, dataset)
}

/// A command as a client sends it, answered with the dataset's document.
private func request(_ target: CatalogWriter.Request.Target) -> CatalogWriter.Request {
    CatalogWriter.Request(
        target: target,
        metadata: EventMetadata(actor: "test"), occurredAt: Date(),
        respond: { StoredResponse(status: 200, headers: [:], body: Documents.dataset($0.state)) })
}

/// Starts a rebuild and answers it once it has swapped its tables in, or once it waits for a lock that
/// `waiting` (a condition on `pg_locks`) describes; a minute at most.
private func rebuild(_ database: TestDatabase, untilSwappedOrWaiting waiting: String) async throws -> Task<
    ProjectionMaintenance.RebuildReport, any Error
> {
    func lastRebuild() async throws -> Date? {
        try await database.client.rows("SELECT max(rebuilt_at) FROM projections", logger: database.logger).first?
            .decode(Date?.self)
    }
    let rebuiltBefore = try await lastRebuild()
    let rebuilding = Task { try await maintenance(database).rebuild() }
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline, try await lastRebuild() == rebuiltBefore {
        try await Task.sleep(for: .milliseconds(10))
        let waits = try await database.client.rows(
            "SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND \(unescaped: waiting)", logger: database.logger
        ).first?.decode(Bool.self)
        if waits == true { break }
    }
    return rebuilding
}

private func maintenance(_ database: TestDatabase) throws -> ProjectionMaintenance {
    ProjectionMaintenance(client: database.client, catalog: try .bundled(), logger: database.logger)
}
