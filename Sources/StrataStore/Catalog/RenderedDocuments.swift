import Foundation
import Metrics
import Synchronization

/// Listed datasets' documents as rendered from their state rows, kept for the next read of the same row.
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
final class RenderedDocuments: Sendable {
    struct Key: Hashable, Sendable {
        var dataset: UUID
        /// The state row's `valid_from`: the position of the event that opened it.
        var stateFrom: Int64
    }

    private struct Generations {
        var recent: [Key: String] = [:]
        var recentBytes = 0
        var older: [Key: String] = [:]
    }

    /// The bytes of documents one generation holds; twice this is the most the cache holds.
    let generationBytes: Int
    private let generations = Mutex(Generations())
    private let hits = Counter(label: "strata_listed_documents_total", dimensions: [("rendered", "before")])
    private let misses = Counter(label: "strata_listed_documents_total", dimensions: [("rendered", "now")])

    /// 16 MiB a generation keeps the documents of some 20,000 datasets of average width: every page of a
    /// catalog of that size, or the pages most read of a larger one, for at most 32 MiB.
    init(generationBytes: Int = 16 << 20) {
        self.generationBytes = generationBytes
    }

    /// The documents held for `keys`, by key; the others are missing.
    func documents(for keys: some Collection<Key>) -> [Key: String] {
        var found: [Key: String] = [:]
        found.reserveCapacity(keys.count)
        generations.withLock { generations in
            for key in keys {
                if let document = generations.recent[key] {
                    found[key] = document
                } else if let document = generations.older.removeValue(forKey: key) {
                    Self.keep(document, for: key, in: &generations, bound: generationBytes)
                    found[key] = document
                }
            }
        }
        hits.increment(by: found.count)
        misses.increment(by: keys.count - found.count)
        return found
    }

    /// Keeps documents rendered just now.
    func keep(_ rendered: [Key: String]) {
        generations.withLock { generations in
            for (key, document) in rendered { Self.keep(document, for: key, in: &generations, bound: generationBytes) }
        }
    }

    /// The number of documents held, for tests.
    var count: Int { generations.withLock { $0.recent.count + $0.older.count } }

    private static func keep(_ document: String, for key: Key, in generations: inout Generations, bound: Int) {
        let bytes = document.utf8.count
        if generations.recentBytes + bytes > bound, !generations.recent.isEmpty {
            generations.older = generations.recent
            generations.recent = [:]
            generations.recentBytes = 0
        }
        if generations.recent.updateValue(document, forKey: key) == nil { generations.recentBytes += bytes }
    }
}
