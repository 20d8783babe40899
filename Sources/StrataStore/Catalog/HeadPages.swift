import Foundation
import PostgresNIO
import StrataCore

extension CatalogReader {
    /// A page of `GET /v1/datasets`, whether there may be more, and the position it reflects.
    ///
    /// The pages users ask for most — the head in id order, of every namespace or of one, with no other
    /// filter — are one statement that answers the page and the log's head from one snapshot, the way
    /// reads by id are; the page of every namespace in the page sizes of the web UI (25), the API (50) and
    /// a CLI's `--limit 100` is prepared. The general read takes a transaction's five round trips and
    /// parses and plans its statement at every call, which cost PostgreSQL more than executing it. Every
    /// other list is the general read's.
    public func datasets(
        _ filter: CatalogSnapshot.ListFilter, asOf: AsOf, scope: NamespaceScope, atLeast minimum: Int64? = nil
    ) async throws -> (datasets: [CatalogSnapshot.ListedDataset], more: Bool, position: Int64) {
        if asOf == .head, let page = HeadPage(filter, scope: scope) {
            let logger = logger
            /// The page on `pool`; nil from a replica that does not hold the catalog's tables yet.
            @Sendable func rows(on pool: BoundedPool) async throws -> [HeadPage.Row]? {
                // A statement that failed to prepare stays failed on its connection (see `dataset(_:asOf:…)`).
                if pool !== self.pool, try await !currentReads(on: pool).holdsTheCatalog() { return nil }
                return try await pool.withConnection { try await page.rows(on: $0, logger: logger) }
            }
            let needed = minimum ?? 0
            let onReplica: [HeadPage.Row]? = try await fromReplica { replica in
                guard let rows = try await rows(on: replica) else { return [] }
                return rows.first.map { $0.head >= needed } == false ? nil : rows
            }
            var found = onReplica ?? []
            if onReplica == nil { found = try await rows(on: pool) ?? [] }
            // An empty page does not say how far its snapshot reached: the general read does.
            if let head = found.first?.head {
                return (found.prefix(page.size).map(\.dataset), found.count > page.size, head)
            }
        }
        let (page, position) = try await read(asOf: asOf, scope: scope, atLeast: minimum) {
            try await $0.datasets(filter)
        }
        return (page.datasets, page.more, position)
    }
}

/// A first or later page of current datasets in id order, of every namespace or of one: the general
/// list's answer to the same filter, from one statement that also reads the log's head.
///
/// Both walk the datasets' identities in id order and look up each one's current state (`OFFSET 0`
/// keeps that lookup a nested loop, not a merge join along every state), and stop after a page. The
/// page of every namespace is prepared once per connection and page size: its generic plan has that
/// one shape whatever the cursor. The page size is part of its text, since as a parameter it would be
/// costed as a tenth of the catalog.
struct HeadPage: Sendable {
    typealias Row = (dataset: CatalogSnapshot.ListedDataset, head: Int64)

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

    private static func running(_ page: OneNamespace) -> Run {
        { connection, logger in
            var rows: [Row] = []
            for try await row in try await connection.query(page.query, logger: logger) { rows.append(try decode(row)) }
            return rows
        }
    }

    /// The nil UUID: the cursor of a first page, below every dataset's id.
    private static let beforeEveryID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    /// The page's rows, one more than its size if there are more, each with the log's head.
    func rows(on connection: PostgresConnection, logger: Logger) async throws -> [Row] {
        try await run(connection, logger)
    }

    /// What the page selects, the head last; from `i`, an identity, and `s`, its current state.
    fileprivate static let selected = """
        SELECT \(CatalogSnapshot.listedColumns), (SELECT coalesce(max(global_position), 0) FROM events)
        FROM dataset_identities i
        CROSS JOIN LATERAL (
            SELECT * FROM dataset_states s
            WHERE s.dataset_id = i.dataset_id AND s.valid_to IS NULL AND s.status = ANY($2::text[])
            OFFSET 0
        ) s
        \(CatalogSnapshot.documentDetails)
        """

    fileprivate static func decode(_ row: PostgresRow) throws -> Row {
        let cells = row.makeRandomAccess()
        let dataset = try CatalogSnapshot.listedDataset(cells)
        return (dataset, try cells[CatalogSnapshot.documentColumnCount + 2].decode(Int64.self))
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

/// Current datasets of one namespace after a cursor: planned at every call, for its namespace.
///
/// Planned once for every namespace, the statement has no shape that suits them all: PostgreSQL either
/// walks every identity by id and keeps the namespace's, which for a small namespace reads the whole
/// catalog (3,206 rows for a page of 3), or reads the whole namespace and sorts it (1,000 datasets
/// joined for a page of 50, 140 ms). Planned for its namespace, it still walks identities by id when
/// the namespace is common, not knowing that a namespace's datasets are usually created together: the
/// page of the last of 20 namespaces read 19,000 identities first (3.3 ms, not 1.1). The namespace is
/// therefore matched as a range of one value, whose order (namespace, id) only
/// `dataset_identities_by_namespace` gives: the walk starts at the cursor and stops after a page.
struct OneNamespace: Sendable {
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

    var query: PostgresQuery {
        var bindings = PostgresBindings()
        bindings.append(after)
        bindings.append(statuses)
        bindings.append(namespace)
        bindings.append(size + 1)
        return PostgresQuery(unsafeSQL: Self.sql, binds: bindings)
    }
}
