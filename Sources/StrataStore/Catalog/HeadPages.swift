import Foundation
import PostgresNIO
import StrataCore

extension CatalogReader {
    /// A page of `GET /v1/datasets`, whether there may be more, and the position it reflects.
    ///
    /// The pages users ask for most — the head in id order, of every namespace or of one, with no other
    /// filter — are a prepared statement that finds the page's rows and the log's head in one snapshot,
    /// the way reads by id are, and documents mostly rendered before (see ``HeadPage``). The general read
    /// takes a transaction's five round trips, parses and plans its statement at every call, and joins
    /// and renders every document it shows. Every other list is the general read's.
    public func datasets(
        _ filter: CatalogSnapshot.ListFilter, asOf: AsOf, scope: NamespaceScope, atLeast minimum: Int64? = nil
    ) async throws -> (datasets: [CatalogSnapshot.ListedDataset], more: Bool, position: Int64) {
        if asOf == .head, let page = HeadPage(filter, scope: scope) {
            let (logger, documents) = (logger, rendered.listed)
            /// The page on `pool`; nil when the general read must answer (see ``HeadPage/answer(on:documents:logger:)``),
            /// or the replica does not hold the catalog's tables yet.
            @Sendable func answer(on pool: BoundedPool) async throws -> HeadPage.Answer? {
                // A statement that failed to prepare stays failed on its connection (see `dataset(_:asOf:…)`).
                if pool !== self.pool, try await !currentReads(on: pool).holdsTheCatalog() { return nil }
                return try await pool.reading {
                    try await page.answer(on: $0, documents: documents, logger: logger)
                }
            }
            let needed = minimum ?? 0
            let onReplica: HeadPage.Answer?? = try await fromReplica { replica in
                guard let answer = try await answer(on: replica) else { return .some(nil) }
                return answer.position >= needed ? .some(answer) : nil
            }
            let found: HeadPage.Answer?
            if let onReplica {
                found = onReplica
            } else {
                found = try await answer(on: pool)
                if let found { try Self.primary(atHead: found.position, holds: minimum) }
            }
            if let found { return found }
        }
        let (page, position) = try await read(asOf: asOf, scope: scope, atLeast: minimum) {
            try await $0.datasets(filter)
        }
        return (page.datasets, page.more, position)
    }
}

/// A first or later page of current datasets in id order, of every namespace or of one: the general
/// list's answer to the same filter, from one statement that finds the page's state rows and the log's
/// head, and the documents of those rows, rendered earlier (see ``RenderedDocuments``) or now, by one
/// statement for all that are not.
///
/// Finding the rows walks the datasets' identities in id order and looks up each one's current state
/// (`OFFSET 0` keeps that lookup a nested loop, not a merge join along every state), and stops after a
/// page. Both are prepared once per connection; the page of every namespace once per page size too (the
/// web UI's 25, the API's 50, a CLI's `--limit 100`), since as a parameter its size would be costed as a
/// tenth of the catalog.
struct HeadPage: Sendable {
    typealias Row = (key: StateRowKey, head: Int64)
    typealias Answer = (datasets: [CatalogSnapshot.ListedDataset], more: Bool, position: Int64)

    let size: Int
    private let run: Run

    /// The statement for `filter`, or nil when it asks for anything the general read must answer.
    init?(_ filter: CatalogSnapshot.ListFilter, scope: NamespaceScope) {
        // The filter must be nothing but a namespace, statuses, a size and a cursor.
        var plain = CatalogSnapshot.ListFilter(statuses: filter.statuses, limit: filter.limit, after: filter.after)
        plain.namespace = filter.namespace
        guard filter == plain else { return nil }
        let after = filter.after ?? Self.beforeEveryID
        let statuses = filter.statuses.map(\.rawValue)
        size = filter.limit
        if let namespace = filter.namespace {
            guard scope.includes(namespace) else { return nil }
            run = Self.running(OneNamespace(after: after, statuses: statuses, namespace: namespace, size: size))
            return
        }
        guard scope == .all else { return nil }
        switch size {
        case PageOf25.rows: run = Self.running(AllNamespaces<PageOf25>(after: after, statuses: statuses))
        case PageOf50.rows: run = Self.running(AllNamespaces<PageOf50>(after: after, statuses: statuses))
        case PageOf100.rows: run = Self.running(AllNamespaces<PageOf100>(after: after, statuses: statuses))
        default: return nil
        }
    }

    private typealias Run = @Sendable (PostgresConnection, Logger) async throws -> [Row]

    private static func running<Statement: PostgresPreparedStatement>(_ statement: Statement) -> Run
    where Statement.Row == Row {
        { try await $0.rows(of: statement, logger: $1) }
    }

    /// The nil UUID: the cursor of a first page, below every dataset's id.
    private static let beforeEveryID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    /// The page, whether there are more, and the position it reflects; nil when the general read must
    /// answer: for an empty page, which does not say how far its snapshot reached, and for a page whose
    /// rows were gone by the time their documents were asked for (projections being rebuilt).
    func answer(on connection: PostgresConnection, documents: RenderedDocuments<String>, logger: Logger) async throws
        -> Answer?
    {
        let rows = try await run(connection, logger)
        guard let head = rows.first?.head else { return nil }
        let shown = rows.prefix(size).map(\.key)
        let found = try await CatalogSnapshot.listedDocuments(
            of: shown, on: connection, rendered: documents, logger: logger)
        var page: [CatalogSnapshot.ListedDataset] = []
        page.reserveCapacity(shown.count)
        for key in shown {
            guard let document = found[key] else { return nil }
            page.append(CatalogSnapshot.ListedDataset(id: key.dataset, document: document))
        }
        return (page, rows.count > size, head)
    }

    /// What the page selects: its state rows' keys and the log's head; from `i`, an identity, and `s`,
    /// its current state.
    fileprivate static let selected = """
        SELECT i.dataset_id, s.valid_from, (SELECT coalesce(max(global_position), 0) FROM events)
        FROM dataset_identities i
        CROSS JOIN LATERAL (
            SELECT valid_from FROM dataset_states s
            WHERE s.dataset_id = i.dataset_id AND s.valid_to IS NULL AND s.status = ANY($2::text[])
            OFFSET 0
        ) s
        """

    fileprivate static func decode(_ row: PostgresRow) throws -> Row {
        let (dataset, stateFrom, head) = try row.decode((UUID, Int64, Int64).self)
        return (StateRowKey(dataset: dataset, stateFrom: stateFrom), head)
    }
}

/// The page sizes a head page is prepared for; each size is a statement of its own.
protocol HeadPageSize: Sendable {
    static var rows: Int { get }
}

enum PageOf25: HeadPageSize { static let rows = 25 }
enum PageOf50: HeadPageSize { static let rows = 50 }
enum PageOf100: HeadPageSize { static let rows = 100 }

extension PostgresPreparedStatement where Row == HeadPage.Row {
    func decodeRow(_ row: PostgresRow) throws -> Row { try HeadPage.decode(row) }
}

/// Current datasets of every namespace after a cursor (the nil UUID, below every id, for the first page).
struct AllNamespaces<Size: HeadPageSize>: PostgresPreparedStatement {
    typealias Row = HeadPage.Row

    static var sql: String {
        """
        \(HeadPage.selected)
        WHERE i.dataset_id > $1
        ORDER BY i.dataset_id
        LIMIT \(Size.rows + 1)
        """
    }

    var after: UUID
    var statuses: [String]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(after)
        bindings.append(statuses)
        return bindings
    }
}

/// Current datasets of one namespace after a cursor, prepared once per connection.
///
/// Matched by equality, the namespace has no plan that suits every namespace: PostgreSQL either walks
/// every identity by id and keeps the namespace's, which for a small namespace reads the whole catalog
/// (3,206 rows for a page of 3), or reads the whole namespace and sorts it; and even planned for its
/// namespace it walks identities by id when the namespace is common, not knowing that a namespace's
/// datasets are usually created together (the page of the last of 20 namespaces read 19,000 identities
/// first). The namespace is therefore matched as a range of one value, whose order (namespace, id) only
/// `dataset_identities_by_namespace` gives: whatever the namespace, generic or custom, the plan walks
/// that index from the cursor and stops after a page.
struct OneNamespace: PostgresPreparedStatement {
    typealias Row = HeadPage.Row

    static let sql = """
        \(HeadPage.selected)
        WHERE i.namespace >= $3 AND i.namespace <= $3 AND (i.namespace, i.dataset_id) > ($3, $1)
        ORDER BY i.namespace, i.dataset_id
        LIMIT $4
        """

    var after: UUID
    var statuses: [String]
    var namespace: String
    var size: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(after)
        bindings.append(statuses)
        bindings.append(namespace)
        bindings.append(size + 1)
        return bindings
    }
}
