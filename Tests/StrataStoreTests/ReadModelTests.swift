import Foundation
import PostgresNIO
import StrataCore
import StrataTestSupport
import Testing

@testable import StrataStore

/// The projections store what the log does not already say, and reads put the API documents back
/// together; what they assemble must be exactly what the dataset's own events fold to.
@Suite("Reading documents back from the projections")
struct ReadModelTests {
    @Test func everyDatasetAndVersionReadsAsItsEventsFoldToAtTheHeadAndAsOfEarlierPositions() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let written = try await RandomWorkload(writer: writer, clients: 4).run(commands: 400)
            let reader = CatalogReader(pool: database.pool, logger: database.logger)
            let log = try await EventStore(client: database.client, logger: database.logger).readAll(
                after: 0, limit: 100_000)
            let head = try #require(log.last?.position)
            var random = SplitMix(seed: 3)
            let positions = [head] + (0..<6).map { _ in Int64(random.next(below: Int(head))) + 1 }
            var compared = 0
            for position in positions {
                let asOf: CatalogReader.AsOf = position == head ? .head : .position(position)
                for dataset in Set(written.map(\.dataset)) {
                    let events = try log.filter { $0.streamID == dataset && $0.position <= position }
                        .map { try $0.datasetEvent() }
                    let state = events.reduce(into: DatasetState(id: dataset)) { $0.apply($1.0, context: $1.1) }
                    let (read, _) = try await reader.read(asOf: asOf) { snapshot in
                        (try await snapshot.dataset(dataset), try await snapshot.versions(of: dataset).items)
                    }
                    guard state.exists else {
                        #expect(read.0 == nil)
                        continue
                    }
                    #expect(read.0?.document == Documents.dataset(state), "dataset \(dataset) as of \(position)")
                    #expect(read.0?.streamVersion == state.streamVersion)
                    let versions = (1...max(state.latestVersion, 1)).reversed().filter { state.version($0) != nil }
                    #expect(read.1 == versions.map { Documents.version($0, of: state) })
                    compared += 1
                }
            }
            #expect(compared > 200)
        }
    }

    /// Reads by id that arrive together go to the database as one statement; each must still get its
    /// own dataset, within its own caller's namespaces, and the position of the snapshot it was read in.
    @Test func readsByIDArrivingTogetherEachGetTheirOwnAnswer() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let written = try await RandomWorkload(writer: writer, clients: 4, seed: 11).run(commands: 300)
            let reader = CatalogReader(pool: database.pool, logger: database.logger)
            let head = try #require(
                try await EventStore(client: database.client, logger: database.logger)
                    .readAll(after: 0, limit: 100_000).last?.position)
            let datasets = Array(Set(written.map(\.dataset))).sorted { $0.uuidString < $1.uuidString }
            // What each dataset reads as, one read at a time, and the namespace it lives in.
            var expected: [UUID: CatalogSnapshot.DatasetDocument] = [:]
            var namespaces: [UUID: String] = [:]
            for id in datasets {
                let (document, _) = try await reader.read { try await $0.dataset(id) }
                expected[id] = document
                if let document {
                    namespaces[id] =
                        try JSONDecoder().decode(JSONValue.self, from: Data(document.document.utf8))["namespace"]?
                        .stringValue
                }
            }
            #expect(namespaces.count > 20)
            // Every dataset twice, once with every namespace in scope and once with its own namespace
            // out of scope, and ids that name nothing, all at once; twice over, so that the second round
            // answers from documents the first rendered.
            let asked: [(UUID, NamespaceScope)] =
                datasets.flatMap { id in
                    [(id, .all), (id, NamespaceScope(["elsewhere", (namespaces[id] ?? "") + "-not"]))]
                } + (0..<40).map { _ in (UUID(), .all) }
            for round in 1...2 {
                let answers = try await withThrowingTaskGroup(of: (Int, CatalogSnapshot.DatasetDocument?, Int64).self) {
                    group in
                    for (index, (id, scope)) in asked.enumerated() {
                        group.addTask {
                            let (document, position) = try await reader.dataset(id, asOf: .head, scope: scope)
                            return (index, document, position)
                        }
                    }
                    return try await group.reduce(into: [:]) { $0[$1.0] = ($1.1, $1.2) }
                }
                for (index, (id, scope)) in asked.enumerated() {
                    let (document, position) = try #require(answers[index])
                    #expect(position == head)
                    if case .all = scope {
                        #expect(document == expected[id] ?? nil, "dataset \(id), round \(round)")
                    } else {
                        #expect(document == nil, "dataset \(id) is out of the caller's namespaces")
                    }
                }
                #expect(
                    reader.rendered.datasets.count == namespaces.count,
                    "every dataset's document rendered once, round \(round)")
            }
        }
    }

    /// A replica that fails a statement the primary would answer — one that has not yet replayed the
    /// tables, as right after a server's first migration — is passed over, every time: the primary
    /// answers, and no read fails. (PostgresNIO keeps a statement that failed to prepare failed on its
    /// connection, so without care one early failure would fail that connection's reads for good.)
    @Test func aReplicaThatCannotAnswerIsPassedOver() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let written = try await RandomWorkload(writer: writer, clients: 2, seed: 5).run(commands: 60)
            let empty = try await TestPostgres.shared.createDatabase(migrated: false)
            let behind = PostgresClient(
                configuration: try await TestPostgres.shared.configuration(database: empty),
                backgroundLogger: database.logger)
            try await behind.whileRunning { behind in
                let reader = CatalogReader(
                    pool: database.pool, replicas: [BoundedPool(client: behind, deadlines: .patient)],
                    logger: database.logger)
                let primary = CatalogReader(pool: database.pool, logger: database.logger)
                for id in Set(written.map(\.dataset)) {
                    for _ in 0..<2 {
                        let (expected, _) = try await primary.read { try await $0.dataset(id) }
                        let (document, _) = try await reader.dataset(id, asOf: .head, scope: .all)
                        #expect(document == expected)
                        let (versions, _) = try await reader.read { try await $0.versions(of: id).items }
                        #expect(
                            versions.count == (try await primary.read { try await $0.versions(of: id).items }).0.count)
                    }
                }
                // The list's head pages too, for every namespace and for one.
                for namespace in [nil, "ns0"] {
                    let filter = CatalogSnapshot.ListFilter(namespace: namespace)
                    let page = try await reader.datasets(filter, asOf: .head, scope: .all)
                    let expected = try await primary.datasets(filter, asOf: .head, scope: .all)
                    #expect(!page.datasets.isEmpty && page.datasets == expected.datasets)
                    #expect(page.position == expected.position)
                }
            }
            try await TestPostgres.shared.dropDatabase(empty)
        }
    }

    /// A replica that is down is found out by ``ReplicaLag`` and marked unreachable; a replica so marked is
    /// not asked at all, so no read waits for a connection it cannot lend (ten seconds each, before).
    @Test func aReplicaThatIsDownIsLeftOutOfReads() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let written = try await RandomWorkload(writer: writer, clients: 1, seed: 9).run(commands: 10)
            let nowhere = PostgresClient.Configuration(
                host: "127.0.0.1", port: 1, username: "postgres", password: nil, database: "postgres", tls: .disable)
            let down = PostgresClient(configuration: nowhere, backgroundLogger: database.logger)
            try await down.whileRunning { down in
                let found = BoundedPool(client: RenewingClient(fixed: down), deadlines: .standard, readRetries: 0)
                let lag = Task {
                    try await ReplicaLag(primary: database.pool, replicas: [found], logger: database.logger).run()
                }
                defer { lag.cancel() }
                let noticed = ContinuousClock.now + .seconds(30)
                while !found.reachability.isUnreachable && ContinuousClock.now < noticed {
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(found.reachability.isUnreachable, "the replica was not found out")

                // Asked, this replica would hold each read for a minute: none may take half of one.
                let patient = DatabaseDeadlines(connect: .seconds(60), queue: .seconds(60), work: .seconds(60))
                let marked = BoundedPool(client: RenewingClient(fixed: down), deadlines: patient, readRetries: 0)
                marked.reachability.update(.unreachable(.unreachable))
                let reader = CatalogReader(pool: database.pool, replicas: [marked], logger: database.logger)
                let started = ContinuousClock.now
                for id in Set(written.map(\.dataset)) {
                    let (document, _) = try await reader.dataset(id, asOf: .head, scope: .all)
                    #expect(document != nil)
                }
                #expect(ContinuousClock.now - started < .seconds(30), "a read asked the replica marked down")
            }
        }
    }

    /// A replica marked down is passed over while the mark stands, and answers the next read once it is
    /// lifted: a read that found it marked used to rest it for two seconds more, longer than the mark.
    /// Here the "replica" is a database with the catalog's tables and none of its datasets, so an answer
    /// tells which of the two gave it.
    @Test func aReplicaWhoseMarkIsLiftedAnswersTheNextRead() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            let written = try await RandomWorkload(writer: writer, clients: 1, seed: 9).run(commands: 10)
            let id = try #require(written.first?.dataset)
            try await withAnEmptyCatalog(logger: database.logger) { elsewhere in
                let replica = BoundedPool(client: elsewhere, deadlines: .patient)
                let reader = CatalogReader(pool: database.pool, replicas: [replica], logger: database.logger)
                replica.reachability.update(.unreachable(.unreachable))
                for _ in 0..<3 {
                    let (document, _) = try await reader.dataset(id, asOf: .head, scope: .all)
                    #expect(document != nil, "the primary answers")
                }
                replica.reachability.update(.reachable)
                let (document, _) = try await reader.dataset(id, asOf: .head, scope: .all)
                #expect(document == nil, "the replica answers")
            }
        }
    }

    /// A read that needs a position waits its whole `replicaWait` for a replica to replay it, even while
    /// another replica is marked down: passing the marked one over does not count against the wait.
    @Test func aReadWaitsForAReplicaToCatchUpWhileAnotherIsMarkedDown() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 1, seed: 9).run(commands: 10)
            try await withAnEmptyCatalog(logger: database.logger) { elsewhere in
                // One replica down, one that holds the catalog and has replayed none of the log.
                let down = BoundedPool(client: elsewhere, deadlines: .patient)
                down.reachability.update(.unreachable(.unreachable))
                let behind = BoundedPool(client: elsewhere, deadlines: .patient)
                var reader = CatalogReader(pool: database.pool, replicas: [down, behind], logger: database.logger)
                reader.replicaWait = .milliseconds(600)
                let head = try await CatalogReader(pool: database.pool, logger: database.logger).read { $0.position }.0
                let started = ContinuousClock.now
                let (position, _) = try await reader.read(atLeast: head) { $0.position }
                #expect(position == head, "the primary answers in the end")
                #expect(ContinuousClock.now - started >= .milliseconds(500), "it gave up on the replica early")
            }
        }
    }

    /// A read's statements stop at the read's deadline in PostgreSQL too: past it the caller has had its
    /// 503, and a query left running would hold the database's CPU for as long as it takes.
    @Test func aReadsStatementsStopAtItsDeadline() async throws {
        try await withTestDatabase { database in
            let hurried = database.pool.allowing(work: .seconds(1))
            let reader = CatalogReader(pool: hurried, logger: database.logger)
            await #expect(throws: (any Error).self) {
                try await reader.read { snapshot in
                    try await snapshot.connection.rows("SELECT pg_sleep(5)", logger: database.logger)
                }
            }
            // Nothing of it is still running once the read has been answered.
            try await Task.sleep(for: .milliseconds(500))
            let (running, _) = try await CatalogReader(pool: database.pool, logger: database.logger).read { snapshot in
                try await snapshot.connection.rows(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)'", logger: database.logger
                ).first!.decode(Int.self)
            }
            #expect(running == 0, "the statement outlived its read")
        }
    }

    /// The list's head pages go as one statement each (``HeadPage``): every page of every namespace,
    /// status filter, page size and scope they serve must be the general read's page, byte for byte,
    /// with the same position.
    @Test func headPagesAreTheGeneralListsPages() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            _ = try await RandomWorkload(writer: writer, clients: 6, seed: 23).run(commands: 700)
            let reader = CatalogReader(pool: database.pool, logger: database.logger)
            let statusFilters: [[DatasetStatus]] = [
                [.draft, .published], [.retired], [.draft], DatasetStatus.allCases,
            ]
            var pages = 0
            for namespace in [nil, "ns0", "ns1", "ns2", "nowhere"] {
                for scope in [NamespaceScope.all, .only(["ns1"])] {
                    for statuses in statusFilters {
                        for size in [25, 50, 100] {
                            var filter = CatalogSnapshot.ListFilter(
                                namespace: namespace, statuses: statuses, limit: size)
                            let prepared = HeadPage(filter, scope: scope) != nil
                            #expect(prepared == (namespace.map(scope.includes) ?? (scope == .all)))
                            while true {
                                let page = try await reader.datasets(filter, asOf: .head, scope: scope)
                                let (general, position) = try await reader.read(scope: scope) { [filter] in
                                    try await $0.datasets(filter)
                                }
                                #expect(page.datasets == general.datasets, "\(filter) in \(scope)")
                                #expect(page.more == general.more && page.position == position)
                                if prepared && !page.datasets.isEmpty { pages += 1 }
                                guard page.more, let last = page.datasets.last else { break }
                                filter.after = last.id
                            }
                        }
                    }
                }
            }
            #expect(pages > 60, "the head pages' statements answered \(pages) pages")
        }
    }

    /// A document is rendered once for each state row it shows: a page or a dataset read again renders
    /// nothing, and a dataset changed since shows its change (a new row), as the general read does.
    @Test func aDocumentIsRenderedOnceForEachStateItShows() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            func submit(_ target: CatalogCommand) async throws {
                let request = CatalogWriter.Request(
                    target: target, metadata: EventMetadata(actor: "test"), occurredAt: Date(),
                    respond: { StoredResponse(status: 200, headers: [:], body: Documents.dataset($0.state)) })
                #expect(try await writer.submit(request).status == 200)
            }
            let ids = (0..<5).map { _ in UUIDv7.make() }
            for (index, id) in ids.enumerated() {
                try await submit(
                    .dataset(
                        id, .create(namespace: "shelf", name: "set-\(index)", fields: VersionFields(), clonedFrom: nil))
                )
            }
            let reader = CatalogReader(pool: database.pool, logger: database.logger)
            let filter = CatalogSnapshot.ListFilter(namespace: "shelf", statuses: DatasetStatus.allCases)
            func pageMatchesTheGeneralRead() async throws -> [CatalogSnapshot.ListedDataset] {
                let page = try await reader.datasets(filter, asOf: .head, scope: .all)
                let (general, position) = try await reader.read { try await $0.datasets(filter) }
                #expect(page.datasets == general.datasets && page.position == position)
                return page.datasets
            }

            func byIDMatchesTheGeneralRead(_ id: UUID, asOf: CatalogReader.AsOf = .head) async throws -> String? {
                let read = try await reader.dataset(id, asOf: asOf, scope: .all)
                let (general, position) = try await reader.read(asOf: asOf) { try await $0.dataset(id) }
                #expect(read.document == general && read.position == position)
                return read.document?.document
            }

            #expect(try await pageMatchesTheGeneralRead().count == 5)
            #expect(reader.rendered.listed.count == 5)
            #expect(try await pageMatchesTheGeneralRead().count == 5)
            #expect(reader.rendered.listed.count == 5, "a page read again rendered its documents again")
            _ = try await byIDMatchesTheGeneralRead(ids[1])
            let created = try await byIDMatchesTheGeneralRead(ids[1])
            #expect(reader.rendered.datasets.count == 1, "a dataset read again rendered its document again")

            try await submit(.dataset(ids[1], .edit(patch: .object(["description": .string("now described")]))))
            try await submit(.dataset(ids[3], .retire(reason: "replaced")))
            let page = try await pageMatchesTheGeneralRead()
            #expect(reader.rendered.listed.count == 7)
            let documents = Dictionary(uniqueKeysWithValues: page.map { ($0.id, $0.document) })
            #expect(documents[ids[1]]?.contains("now described") == true)
            #expect(documents[ids[3]]?.contains("replaced") == true)
            #expect(try await byIDMatchesTheGeneralRead(ids[1])?.contains("now described") == true)
            #expect(reader.rendered.datasets.count == 2)
            // Before the edit and the retirement, the dataset's state was the row read first.
            let beforeTheChanges = try await reader.read { $0.position }.result - 2
            #expect(try await byIDMatchesTheGeneralRead(ids[1], asOf: .position(beforeTheChanges)) == created)
            #expect(reader.rendered.datasets.count == 2, "the dataset as of an earlier position was rendered again")
        }
    }

    /// The rendered documents kept stay within two generations' bytes, and a document read stays.
    @Test func renderedDocumentsStayWithinTheirBound() {
        let documents = RenderedDocuments<String>(kind: "test", generationBytes: 1_000) { $0.utf8.count }
        func key(_ index: Int) -> StateRowKey { .init(dataset: UUID(), stateFrom: Int64(index)) }
        let often = key(0)
        documents.keep([often: String(repeating: "o", count: 100)])
        for index in 1...100 {
            documents.keep([key(index): String(repeating: "x", count: 100)])
            #expect(documents.documents(for: [often]).count == 1, "a document read at every turn was dropped")
        }
        #expect(documents.count <= 20, "\(documents.count) documents of 100 bytes kept in two generations of 1,000")
        #expect(documents.documents(for: [key(1)]).isEmpty)
    }

    /// A head page reads a page's rows, not the catalog's, whatever its cursor or namespace: the page of
    /// every namespace under the generic plan PostgreSQL settles on for a prepared statement, a page of a
    /// small namespace in a large catalog under the same kind of plan (asserted by the rows the plans read).
    @Test func aHeadPageReadsAPageNotTheCatalog() async throws {
        try await withTestDatabase { database in
            let writer = CatalogWriter(pool: database.pool, logger: database.logger)
            func create(_ namespace: String, _ name: String) async throws -> UUID {
                let id = UUIDv7.make()
                let request = CatalogWriter.Request(
                    target: .dataset(
                        id, .create(namespace: namespace, name: name, fields: VersionFields(), clonedFrom: nil)),
                    metadata: EventMetadata(actor: "test"), occurredAt: Date(),
                    respond: { StoredResponse(status: 201, headers: [:], body: Documents.dataset($0.state)) })
                #expect(try await writer.submit(request).status == 201)
                return id
            }
            let large = try await withThrowingTaskGroup(of: [UUID].self) { group in
                for writer in 0..<16 {
                    group.addTask {
                        var ids: [UUID] = []
                        for index in 0..<200 { ids.append(try await create("large", "set-\(writer)-\(index)")) }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }.sorted { $0.uuidString < $1.uuidString }
            }
            for index in 0..<3 { _ = try await create("small", "set-\(index)") }
            let cursor = large[large.count / 2].uuidString

            let (everyNamespace, small) = try await database.client.withConnection { connection in
                try await connection.perform("ANALYZE", logger: database.logger)
                func rowsRead(_ sql: String, types: String, arguments: String, plan: String) async throws -> Int {
                    try await connection.perform("SET plan_cache_mode = \(unescaped: plan)", logger: database.logger)
                    try await connection.perform(
                        "PREPARE page(\(unescaped: types)) AS \(unescaped: sql)", logger: database.logger)
                    let explained = try await connection.query(
                        "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page(\(unescaped: arguments))", logger: database.logger
                    ).collect().first!.decode(String.self)
                    try await connection.perform("DEALLOCATE page", logger: database.logger)
                    return try Self.rowsRead(from: ["dataset_identities", "dataset_states"], plan: explained)
                }
                return (
                    try await rowsRead(
                        AllNamespaces<PageOf25>.sql, types: "uuid, text[]",
                        arguments: "'\(cursor)', '{draft,published}'", plan: "force_generic_plan"),
                    try await rowsRead(
                        OneNamespace.sql, types: "uuid, text[], text, bigint",
                        arguments: "'00000000-0000-0000-0000-000000000000', '{draft,published}', 'small', 26",
                        plan: "force_generic_plan")
                )
            }
            #expect(everyNamespace <= 60, "a page of 25 from the middle read \(everyNamespace) rows of 3,203 datasets")
            #expect(small <= 12, "a page of 3 datasets read \(small) rows of 3,203 datasets")
        }
    }

    /// The rows the nodes scanning `tables` produced or filtered out, over all their loops, in an
    /// `EXPLAIN (ANALYZE, FORMAT JSON)` plan.
    private static func rowsRead(from tables: Set<String>, plan: String) throws -> Int {
        func walk(_ node: JSONValue) -> Int {
            guard case .object(let fields) = node else { return 0 }
            var rows = 0
            if case .string(let table)? = fields["Relation Name"], tables.contains(table) {
                let loops = fields["Actual Loops"]?.intValue ?? 1
                rows +=
                    ((fields["Actual Rows"]?.intValue ?? 0) + (fields["Rows Removed by Filter"]?.intValue ?? 0)) * loops
            }
            if case .array(let children)? = fields["Plans"] { rows += children.map(walk).reduce(0, +) }
            return rows
        }
        let top = try #require(try JSONValue(parsing: plan).arrayValue?.first?["Plan"], "\(plan)")
        return walk(top)
    }
}

/// Runs `body` with a client of a second database that holds the catalog's tables and none of its
/// events: a "replica" whose answers tell it from the primary. Dropped afterwards.
private func withAnEmptyCatalog(
    logger: Logger, _ body: @Sendable (PostgresClient) async throws -> Void
) async throws {
    let name = try await TestPostgres.shared.createDatabase(migrated: true)
    let client = PostgresClient(
        configuration: try await TestPostgres.shared.configuration(database: name), backgroundLogger: logger)
    try await client.whileRunning { try await body($0) }
    try await TestPostgres.shared.dropDatabase(name)
}
