import Foundation
import Metrics
import PostgresNIO
import Synchronization

/// A dataset's state row, by the dataset and its `valid_from` (the position of the event that opened it).
struct StateRowKey: Hashable, Sendable {
    var dataset: UUID
    var stateFrom: Int64
}

/// State rows named by their keys, whatever their snapshot: a row says the same in every one that holds
/// it. Each answers ``CatalogSnapshot/listedColumns``, from which a list's row and a dataset's document
/// are both rendered. Documents arrive in pieces, so this runs unprepared, through
/// ``PostgresNIO/PostgresConnection/gatheredRows(of:logger:)``.
struct StateRowsByKey: PostgresPreparedStatement {
    static let sql = """
        SELECT \(CatalogSnapshot.listedColumns), s.valid_from
        FROM unnest($1::uuid[], $2::bigint[]) AS k(dataset_id, valid_from)
        JOIN dataset_states s ON s.dataset_id = k.dataset_id AND s.valid_from = k.valid_from
        JOIN dataset_identities i ON i.dataset_id = s.dataset_id
        \(CatalogSnapshot.documentDetails)
        """

    typealias Row = (key: StateRowKey, cells: PostgresRandomAccessRow)

    var datasets: [UUID]
    var stateFroms: [Int64]

    init(_ keys: [StateRowKey]) {
        datasets = keys.map(\.dataset)
        stateFroms = keys.map(\.stateFrom)
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(datasets)
        bindings.append(stateFroms)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let cells = row.makeRandomAccess()
        let key = StateRowKey(
            dataset: try cells[0].decode(UUID.self),
            stateFrom: try cells[CatalogSnapshot.documentColumnCount + 2].decode(Int64.self))
        return (key, cells)
    }
}

/// Datasets' documents as rendered from their state rows, kept for the next read of the same row.
///
/// A state row, named by its dataset and its `valid_from`, says the same thing for as long as the log
/// exists: every event of a dataset opens a new row, and everything its document shows (its identity,
/// its current version's words and draft, who created and last changed it, its usage up to the row)
/// comes from events at or before the row's position, which the log never changes. So a document
/// rendered from a row answers every later read of that row — at the head or as of a position, from
/// the primary or a replica, before or after a rebuild, which makes the same rows — and is never
/// invalidated: a change opens a row with a new key. What a page costs then is finding which rows it
/// shows, not joining and rendering what they say.
///
/// Bounded by the bytes it holds, in two generations: documents go into the recent one, and when that is
/// full it becomes the older one and the older one is dropped; a document read from the older one moves
/// back to the recent one. Documents read often stay; one read once leaves within two generations.
final class RenderedDocuments<Document: Sendable>: Sendable {
    typealias Key = StateRowKey

    private struct Generations {
        var recent: [Key: Document] = [:]
        var recentBytes = 0
        var older: [Key: Document] = [:]
        /// The generation just dropped, freed after the lock is released: freeing thousands of documents
        /// under it would hold up every read meanwhile.
        var dropped: [Key: Document] = [:]
    }

    /// The bytes of documents one generation holds; twice this is the most the cache holds.
    let generationBytes: Int
    private let bytes: @Sendable (Document) -> Int
    private let generations = Mutex(Generations())
    private let hits: Counter
    private let misses: Counter

    /// 16 MiB a generation keeps some 20,000 documents of average width: every page of a catalog of
    /// that size, or the pages most read of a larger one, for at most 32 MiB. `kind` names the documents
    /// in the metrics.
    init(kind: String, generationBytes: Int = 16 << 20, bytes: @escaping @Sendable (Document) -> Int) {
        self.generationBytes = generationBytes
        self.bytes = bytes
        hits = Counter(label: "strata_rendered_documents_total", dimensions: [("kind", kind), ("rendered", "before")])
        misses = Counter(label: "strata_rendered_documents_total", dimensions: [("kind", kind), ("rendered", "now")])
    }

    /// The documents held for `keys`, by key; the others are missing.
    func documents(for keys: some Collection<Key>) -> [Key: Document] {
        var found: [Key: Document] = [:]
        found.reserveCapacity(keys.count)
        withGenerations { generations in
            for key in keys { found[key] = lookUp(key, in: &generations) }
        }
        hits.increment(by: found.count)
        misses.increment(by: keys.count - found.count)
        return found
    }

    /// The document held for `key`, if any.
    func document(for key: Key) -> Document? {
        let found = withGenerations { lookUp(key, in: &$0) }
        (found == nil ? misses : hits).increment()
        return found
    }

    /// Keeps documents rendered just now.
    func keep(_ rendered: [Key: Document]) {
        withGenerations { generations in
            for (key, document) in rendered { keep(document, for: key, in: &generations) }
        }
    }

    func keep(_ document: Document, for key: Key) {
        withGenerations { keep(document, for: key, in: &$0) }
    }

    /// The number of documents held, for tests.
    var count: Int { generations.withLock { $0.recent.count + $0.older.count } }

    private func withGenerations<Result>(_ body: (inout Generations) -> Result) -> Result {
        let (result, dropped) = generations.withLock { generations in
            let result = body(&generations)
            defer { generations.dropped = [:] }
            return (result, generations.dropped)
        }
        _ = consume dropped
        return result
    }

    private func lookUp(_ key: Key, in generations: inout Generations) -> Document? {
        if let document = generations.recent[key] { return document }
        guard let document = generations.older.removeValue(forKey: key) else { return nil }
        keep(document, for: key, in: &generations)
        return document
    }

    private func keep(_ document: Document, for key: Key, in generations: inout Generations) {
        let bytes = bytes(document)
        if generations.recentBytes + bytes > generationBytes, !generations.recent.isEmpty {
            generations.dropped = generations.older
            generations.older = generations.recent
            generations.recent = [:]
            generations.recentBytes = 0
        }
        if generations.recent.updateValue(document, forKey: key) == nil { generations.recentBytes += bytes }
    }
}
