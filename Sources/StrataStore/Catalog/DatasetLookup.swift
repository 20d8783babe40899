import Foundation
import Metrics
import PostgresNIO
import StrataCore
import Synchronization

extension CatalogReader {
    /// One dataset by id, the read every client makes most: one prepared statement, which answers the
    /// document and the position its snapshot reflects together (one statement, one snapshot), instead
    /// of a transaction's four round trips and a fresh plan for its join each time.
    public func dataset(_ id: UUID, asOf: AsOf, scope: NamespaceScope, atLeast minimum: Int64? = nil) async throws
        -> (document: CatalogSnapshot.DatasetDocument?, position: Int64)
    {
        let namespaces = scope.namespaces
        let logger = logger
        /// The one statement on `pool`, and the log's head in the same snapshot.
        @Sendable func lookUp(on pool: BoundedPool) async throws -> (CatalogSnapshot.DatasetDocument, Int64)? {
            // PostgresNIO keeps a statement that failed to prepare failed on its connection for good: a
            // replica is sent these only once it holds the tables they name (a new one may not yet).
            if pool !== self.pool, try await !currentReads(on: pool).holdsTheCatalog() { return nil }
            switch asOf {
            case .head:
                guard let (document, head) = try await currentReads(on: pool).lookUp(id),
                    scope.includes(document.namespace)
                else { return nil }
                return (document, head)
            case .position(let position):
                return try await pool.reading { connection in
                    try await connection.rows(
                        of: DatasetAsOf(
                            id: id, namespaces: namespaces, position: max(0, position), documents: rendered.datasets),
                        logger: logger
                    ).first
                }
            case .time:
                return nil
            }
        }
        var needed = minimum ?? 0
        if case .position(let position) = asOf { needed = max(needed, position) }
        // A replica answers if its snapshot has replayed as far as the read needs; one that does not
        // hold the dataset leaves the answer to the general read below, which knows how far it is.
        let onReplica: (CatalogSnapshot.DatasetDocument, Int64)?? = try await fromReplica { replica in
            guard let row = try await lookUp(on: replica) else { return .some(nil) }
            return row.1 >= needed ? .some(row) : nil
        }
        let found: (CatalogSnapshot.DatasetDocument, Int64)?
        if let onReplica {
            found = onReplica
        } else {
            found = try await lookUp(on: pool)
            if let (_, head) = found { try Self.primary(atHead: head, holds: minimum) }
        }
        if let (document, head) = found {
            if case .position(let position) = asOf {
                // A snapshot that has not reached the position asked for cannot answer it.
                if position > head { throw ReadError.asOfBeyondHead(requested: position, head: head) }
                return (document, position)
            }
            return (document, head)
        }
        // Not found, or as of a time: the general read says which, and from which position.
        let (document, position) = try await read(asOf: asOf, scope: scope, atLeast: minimum) {
            try await $0.dataset(id)
        }
        return (document, position)
    }
}

/// The current state rows of datasets by id, and the log's head: one statement for a whole batch of
/// reads (see ``CurrentDatasetReads``), all answered from its one snapshot. It answers keys, not
/// documents: those are mostly rendered before (see ``RenderedDocuments``), and the rest are rendered
/// from ``StateRowsByKey``. A batch's keys (at most ``CurrentDatasetReads/largestBatch`` rows of 51
/// bytes) fit in one piece of PostgreSQL's answer, so the statement can be prepared (see
/// ``PostgresNIO/PostgresConnection/rows(of:logger:)``).
private struct CurrentStateKeys: PostgresPreparedStatement {
    static let sql = """
        SELECT dataset_id, valid_from, (SELECT coalesce(max(global_position), 0) FROM events)
        FROM dataset_states WHERE dataset_id = ANY($1::uuid[]) AND valid_to IS NULL
        """

    typealias Row = (key: StateRowKey, head: Int64)

    var ids: [UUID]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(ids)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (dataset, stateFrom, head) = try row.decode((UUID, Int64, Int64).self)
        return (StateRowKey(dataset: dataset, stateFrom: stateFrom), head)
    }
}

/// One current dataset and the log's head, for a read that goes alone: one round trip, where a batch's
/// keys and documents take two, and planned once per connection, where PostgreSQL plans a statement over
/// an array of ids anew for every array (its generic plan, made for arrays of any length, looks dearer
/// than a custom one). Its one row arrives in one piece.
private struct CurrentDataset: PostgresPreparedStatement {
    static let sql = """
        SELECT \(CatalogSnapshot.documentColumns), (SELECT coalesce(max(global_position), 0) FROM events),
               s.valid_from
        FROM dataset_states s \(CatalogSnapshot.documentJoins)
        WHERE s.dataset_id = $1 AND s.valid_to IS NULL
        """

    typealias Row = CurrentDatasetReads.Answer

    var id: UUID
    let documents: RenderedDocuments<CatalogSnapshot.DatasetDocument>

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(id)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try decodeDocumentAndHead(row.makeRandomAccess(), documents: documents)
    }
}

/// Reads of current datasets by id that arrive together share one statement. The first read of a quiet
/// moment goes at once, on its own; reads arriving while ``concurrentStatements`` batches are already at the
/// database wait for one of them to finish and then go together, in the next. So a batch costs one
/// round trip, one snapshot and one connection lease however many reads it carries, and a read never
/// waits for a timer. Every read in a batch arrived before its statement started, so it sees every write
/// acknowledged before it was asked: a client still reads its own writes.
final class CurrentDatasetReads: Sendable {
    typealias Answer = (document: CatalogSnapshot.DatasetDocument, head: Int64)
    private typealias Waiter = (id: UUID, continuation: CheckedContinuation<Answer?, any Error>)

    /// Enough batches at the database to keep it busy while the server decodes the previous ones, few
    /// enough that reads under load gather into batches rather than spread over connections.
    static let concurrentStatements = 3
    /// An upper bound on one statement's ids: its keys then arrive in one piece (see ``CurrentStateKeys``),
    /// and its documents stay a modest allocation.
    static let largestBatch = 128

    private let pool: BoundedPool
    private let documents: RenderedDocuments<CatalogSnapshot.DatasetDocument>
    private let logger: Logger
    private let batchSizes = Recorder(label: "strata_reads_by_id_batch_size")
    private let state = Mutex<(waiting: [Waiter], running: Int)>(([], 0))
    private let catalogSeen = Mutex(false)

    init(pool: BoundedPool, documents: RenderedDocuments<CatalogSnapshot.DatasetDocument>, logger: Logger) {
        self.pool = pool
        self.documents = documents
        self.logger = logger
    }

    func lookUp(_ id: UUID) async throws -> Answer? {
        // With a statement free and no one waiting, the read goes alone, in its caller's task, with the
        // statement for one id (see ``CurrentDataset``).
        let alone = state.withLock { state in
            guard state.running < Self.concurrentStatements, state.waiting.isEmpty else { return false }
            state.running += 1
            return true
        }
        if alone {
            defer { handOver() }
            batchSizes.record(1)
            return try await pool.reading { [logger, documents] connection in
                try await connection.rows(of: CurrentDataset(id: id, documents: documents), logger: logger).first
            }
        }
        return try await withCheckedThrowingContinuation { continuation in
            let batch: [Waiter]? = state.withLock { state in
                state.waiting.append((id, continuation))
                guard state.running < Self.concurrentStatements else { return nil }
                state.running += 1
                return Self.take(&state.waiting)
            }
            if let batch { Task { await self.run(batch) } }
        }
    }

    /// The statement a read ran alone has finished: the reads that gathered meanwhile go as a batch, in
    /// a task of their own, so that the caller is answered now.
    private func handOver() {
        let next: [Waiter]? = state.withLock { state in
            guard !state.waiting.isEmpty else {
                state.running -= 1
                return nil
            }
            return Self.take(&state.waiting)
        }
        if let next { Task { await self.run(next) } }
    }

    /// Whether the database holds the tables the statements here read; once it does, it always will.
    func holdsTheCatalog() async throws -> Bool {
        if catalogSeen.withLock({ $0 }) { return true }
        let found = try await pool.reading { [logger] connection in
            try await connection.rows(
                """
                SELECT to_regclass('dataset_states') IS NOT NULL AND to_regclass('dataset_identities') IS NOT NULL
                   AND to_regclass('versions') IS NOT NULL AND to_regclass('dataset_words') IS NOT NULL
                   AND to_regclass('events') IS NOT NULL
                """, logger: logger
            ).first?.decode(Bool.self) ?? false
        }
        if found { catalogSeen.withLock { $0 = true } }
        return found
    }

    /// The answers for `ids`: their state rows' keys in one statement, and the documents not rendered
    /// before in a second, for all of them. A row gone by the time its document is asked for (projections
    /// being rebuilt) leaves its read to the general read, as a dataset not found does.
    private func fetch(_ ids: [UUID]) async throws -> [UUID: Answer] {
        batchSizes.record(ids.count)
        return try await pool.reading { [logger, documents] connection in
            let rows = try await connection.rows(of: CurrentStateKeys(ids: ids), logger: logger)
            var found = documents.documents(for: rows.map(\.key))
            if found.count < rows.count {
                let missing = rows.map(\.key).filter { found[$0] == nil }
                let rendered = Dictionary(
                    try await connection.gatheredRows(of: StateRowsByKey(missing), logger: logger).map {
                        ($0.key, try CatalogSnapshot.datasetDocument($0.cells))
                    },
                    uniquingKeysWith: { first, _ in first })
                documents.keep(rendered)
                found.merge(rendered, uniquingKeysWith: { first, _ in first })
            }
            var answers: [UUID: Answer] = [:]
            answers.reserveCapacity(rows.count)
            for row in rows {
                guard let document = found[row.key] else { continue }
                answers[row.key.dataset] = (document, row.head)
            }
            return answers
        }
    }

    private static func take(_ waiting: inout [Waiter]) -> [Waiter] {
        let batch = Array(waiting.prefix(largestBatch))
        waiting.removeFirst(batch.count)
        return batch
    }

    /// Runs `batch`, then whatever gathered meanwhile, until nothing waits.
    private func run(_ first: [Waiter]) async {
        var batch = first
        while true {
            do {
                let byID = try await fetch(batch.map(\.id))
                for waiter in batch { waiter.continuation.resume(returning: byID[waiter.id]) }
            } catch {
                for waiter in batch { waiter.continuation.resume(throwing: error) }
            }
            let next: [Waiter]? = state.withLock { state in
                guard !state.waiting.isEmpty else {
                    state.running -= 1
                    return nil
                }
                return Self.take(&state.waiting)
            }
            guard let next else { return }
            batch = next
        }
    }
}

/// A dataset's document as of a position, and the log's head, in one statement.
private struct DatasetAsOf: PostgresPreparedStatement {
    static let sql = """
        SELECT \(CatalogSnapshot.documentColumns), (SELECT coalesce(max(global_position), 0) FROM events), s.valid_from
        FROM dataset_states s \(CatalogSnapshot.documentJoins)
        WHERE s.dataset_id = $1 AND s.valid_from <= $3 AND (s.valid_to IS NULL OR s.valid_to > $3)
          AND ($2::text[] IS NULL OR i.namespace = ANY($2::text[]))
        """

    typealias Row = (CatalogSnapshot.DatasetDocument, Int64)

    var id: UUID
    var namespaces: [String]?
    var position: Int64
    let documents: RenderedDocuments<CatalogSnapshot.DatasetDocument>

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(id)
        bindings.append(namespaces)
        bindings.append(position)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try decodeDocumentAndHead(row.makeRandomAccess(), documents: documents)
    }
}

/// The document of ``CatalogSnapshot/documentColumns``, and the head and the state row's `valid_from`
/// after them: a document rendered from the same row before is reused, not decoded and rendered again.
private func decodeDocumentAndHead(
    _ cells: PostgresRandomAccessRow, documents: RenderedDocuments<CatalogSnapshot.DatasetDocument>
) throws -> (CatalogSnapshot.DatasetDocument, Int64) {
    let head = try cells[CatalogSnapshot.documentColumnCount].decode(Int64.self)
    let row = StateRowKey(
        dataset: try cells[0].decode(UUID.self),
        stateFrom: try cells[CatalogSnapshot.documentColumnCount + 1].decode(Int64.self))
    if let document = documents.document(for: row) { return (document, head) }
    let document = try CatalogSnapshot.datasetDocument(cells)
    documents.keep(document, for: row)
    return (document, head)
}

extension PostgresConnection {
    /// Runs a prepared statement and collects its rows, which stream to this task, a hop to it for each
    /// piece: for statements that answer one row or a few short ones (a page of keys). Statements that
    /// answer many documents use ``gatheredRows(of:logger:)``.
    func rows<Statement: PostgresPreparedStatement>(of statement: Statement, logger: Logger)
        async throws -> [Statement.Row]
    {
        try await ensureUsable(logger: logger)
        var rows: [Statement.Row] = []
        for try await row in try await execute(statement, logger: logger) { rows.append(row) }
        return rows
    }

    /// A statement's rows, run unprepared and gathered on the event loop: for statements that answer many
    /// documents, which arrive in pieces (see ``rows(_:logger:file:line:)``). They lose only their parse:
    /// PostgreSQL plans them anew for each array of ids anyway.
    func gatheredRows<Statement: PostgresPreparedStatement>(of statement: Statement, logger: Logger)
        async throws -> [Statement.Row]
    {
        try await rows(PostgresQuery(unsafeSQL: Statement.sql, binds: try statement.makeBindings()), logger: logger)
            .map(statement.decodeRow)
    }
}
