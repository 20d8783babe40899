import Foundation
import PostgresNIO
import StrataCore

extension CatalogSnapshot {
    /// What `GET /v1/search` asks: words, the list's filters, and a page of the ranking.
    public struct SearchFilter: Sendable, Equatable {
        public var text: String
        public var namespace: String?
        public var statuses: [DatasetStatus] = [.draft, .published]
        public var tag: String?
        public var owner: String?
        public var format: String?
        /// The list's filters on who created a dataset, its usages and the jobs writing it, as in
        /// ``CatalogSnapshot/ListFilter``.
        public var createdBy: String?
        public var inUse = false
        public var usedSince: Date?
        public var producedBy: ListFilter.Job?
        public var limit = ListFilter.defaultPage
        public var offset = 0

        public init(text: String) { self.text = text }

        /// The words searched for, lowercased: runs of letters and digits (`customer_id` is `customer`,
        /// `id`), as the search vectors split the texts they index; each once, since a word asked for twice
        /// finds nothing more, and each one asked for costs the whole match again.
        public var words: [String] {
            var seen = Set<[UInt8]>()
            return SearchVector.words(in: text).filter { seen.insert(Array($0.utf8)).inserted }
        }

        /// The most different words one search may ask for.
        public static let mostWords = 32
    }

    /// One dataset found, with its score and what it was found by.
    public struct SearchHit: Sendable {
        public var document: String
        public var score: Double
        /// (field, text) pairs: `name`, `namespace`, `schema` (a column name), `tags`, `owner`, `format`,
        /// `description`, `properties` (a key).
        public var matched: [(field: String, text: String)]
    }

    /// What `facets` counts, every key present even when nothing matched.
    static let facetNames = ["namespace", "status", "tag", "format", "owner"]

    public struct SearchPage: Sendable {
        public var hits: [SearchHit]
        /// Counts over every match, not only this page: facet name → value → datasets.
        public var facets: [String: [String: Int]]
        public var more: Bool
    }

    /// Words shorter than this match whole words only: `7` finds `team-7` but not `team-71`, and `id` a
    /// column `id` but not `identity` — as prefixes they would match most of a catalog, to be ranked and
    /// counted, while telling nothing.
    static let shortestPrefix = 3

    /// Datasets whose current version (as of this snapshot) matches every word (as a prefix, if it has
    /// at least ``shortestPrefix`` characters) in its name, namespace, column names, tags, owner, format,
    /// description or property keys. Ranked: the dataset
    /// named exactly so first, then those with a column named exactly so, then by how well the words
    /// match (a column name weighs most, then a tag, the owner or the format, then the description, then
    /// a property key), then by id.
    public func search(_ filter: SearchFilter) async throws -> SearchPage {
        let words = filter.words
        guard !words.isEmpty else {
            return SearchPage(
                hits: [], facets: Dictionary(uniqueKeysWithValues: Self.facetNames.map { ($0, [:]) }), more: false)
        }
        // Only letters and digits reach to_tsquery, so the query text cannot be malformed.
        let query = words.map { $0.count < Self.shortestPrefix ? $0 : "\($0):*" }.joined(separator: " & ")
        let exact = filter.text.trimmingCharacters(in: .whitespaces).lowercased()
        // One statement ranks the page and counts the facets over the same matches, found once.
        let rows = try await connection.rows(
            """
            WITH matches AS MATERIALIZED (
                SELECT s.dataset_id, s.status, v.namespace, v.name, v.owner, v.tags, v.format, v.description,
                       v.column_names, v.property_keys,
                       (CASE WHEN lower(v.name) = \(exact) OR lower(v.namespace || '/' || v.name) = \(exact) THEN 2
                             ELSE 0 END
                        + CASE WHEN EXISTS (SELECT 1 FROM unnest(v.column_names) c WHERE lower(c) = \(exact)) THEN 1
                               ELSE 0 END
                        + ts_rank_cd(v.search, q, 32))::float8 AS score
                FROM dataset_words v
                CROSS JOIN to_tsquery('simple', \(query)) q
                JOIN dataset_states s ON s.dataset_id = v.dataset_id
                JOIN versions cv
                  ON cv.dataset_id = s.dataset_id AND cv.version = coalesce(s.published_version, nullif(s.latest_version, 0))
                 AND cv.words_key = v.words_key
                WHERE v.search @@ q
                  AND CASE WHEN \(isHead) THEN s.valid_to IS NULL
                      ELSE s.valid_from <= \(position) AND (s.valid_to IS NULL OR s.valid_to > \(position)) END
                  AND s.status = ANY(\(filter.statuses.map(\.rawValue)))
                  AND (\(visibleNamespaces)::text[] IS NULL OR v.namespace = ANY(\(visibleNamespaces)))
                  AND (\(filter.namespace)::text IS NULL OR v.namespace = \(filter.namespace))
                  AND (\(filter.tag)::text IS NULL OR v.tags @> ARRAY[\(filter.tag)::text])
                  AND (\(filter.owner)::text IS NULL OR v.owner = \(filter.owner))
                  AND (\(filter.format)::text IS NULL OR v.format = \(filter.format))
                  AND (\(filter.createdBy)::text IS NULL OR EXISTS (
                       SELECT 1 FROM dataset_identities i JOIN events c ON c.global_position = i.valid_from
                       WHERE i.dataset_id = s.dataset_id AND c.metadata->>'actor' = \(filter.createdBy)))
                  AND (NOT \(filter.inUse) OR (s.usage_count > 0 AND (\(filter.usedSince)::timestamptz IS NULL
                       OR (SELECT recorded_at FROM events WHERE global_position = s.last_used) >= \(filter.usedSince))))
                  AND (\(filter.producedBy?.name)::text IS NULL OR EXISTS (
                       SELECT 1 FROM lineage_edges le
                       WHERE le.to_dataset = s.dataset_id AND le.valid_from <= \(position)
                         AND le.job_namespace = \(filter.producedBy?.namespace)
                         AND le.job_name = \(filter.producedBy?.name)))
            ),
            facets AS (
                SELECT json_build_object(
                    'namespace', (SELECT json_object_agg(namespace, n) FROM (
                        SELECT namespace, count(*) n FROM matches GROUP BY namespace) f),
                    'status', (SELECT json_object_agg(status, n) FROM (
                        SELECT status, count(*) n FROM matches GROUP BY status) f),
                    'tag', (SELECT json_object_agg(tag, n) FROM (
                        SELECT tag, count(*) n FROM matches, unnest(tags) tag GROUP BY tag) f),
                    'format', (SELECT json_object_agg(format, n) FROM (
                        SELECT format, count(*) n FROM matches WHERE format IS NOT NULL GROUP BY format) f),
                    'owner', (SELECT json_object_agg(owner, n) FROM (
                        SELECT owner, count(*) n FROM matches WHERE owner IS NOT NULL GROUP BY owner) f)
                )::text AS counts
            ),
            page AS (
                SELECT * FROM matches ORDER BY score DESC, dataset_id
                LIMIT \(filter.limit + 1) OFFSET \(filter.offset)
            )
            SELECT facets.counts, p.dataset_id, p.score, p.namespace, p.name, p.owner, p.tags, p.format,
                   p.description, p.column_names, p.property_keys
            FROM facets LEFT JOIN page p ON true
            ORDER BY p.score DESC, p.dataset_id
            """, logger: logger)
        var facets: [String: [String: Int]] = [:]
        var found: [(id: UUID, score: Double, matched: [(field: String, text: String)])] = []
        for row in rows {
            let (counts, id, score, namespace, name, owner, tags, format, description, columns, keys) = try row.decode(
                (String, UUID?, Double?, String?, String?, String?, [String]?, String?, String?, [String]?, [String]?)
                    .self)
            if facets.isEmpty {
                // json_object_agg of no rows is null: a facet with no values.
                facets = try JSONDecoder().decode([String: [String: Int]?].self, from: Data(counts.utf8))
                    .mapValues { $0 ?? [:] }
            }
            guard let id, let score, let namespace, let name else { continue }
            var fields: [(String, [String])] = [("name", [name]), ("namespace", [namespace])]
            fields += [("schema", columns ?? []), ("tags", tags ?? []), ("owner", owner.map { [$0] } ?? [])]
            fields += [("format", format.map { [$0] } ?? []), ("description", description.map { [$0] } ?? [])]
            fields.append(("properties", keys ?? []))
            let matched = fields.flatMap { field, texts in
                texts.filter { Self.matches($0, words) }.map { (field: field, text: Self.excerpt($0, words)) }
            }
            found.append((id, score, matched))
        }
        let more = found.count > filter.limit
        let page = found.prefix(filter.limit)

        let documents = try await datasetDocuments(
            connection.rows(
                """
                SELECT \(unescaped: Self.documentColumns) FROM dataset_states s \(unescaped: Self.documentJoins)
                WHERE s.dataset_id = ANY(\(page.map(\.id)))
                  AND CASE WHEN \(isHead) THEN s.valid_to IS NULL
                      ELSE s.valid_from <= \(position) AND (s.valid_to IS NULL OR s.valid_to > \(position)) END
                """,
                logger: logger))
        let byID = Dictionary(documents.map { ($0.id, $0.document) }, uniquingKeysWith: { first, _ in first })
        let hits = page.compactMap { hit in
            byID[hit.id].map { SearchHit(document: $0, score: hit.score, matched: hit.matched) }
        }
        return SearchPage(hits: hits, facets: facets, more: more)
    }

    /// Whether some word of `text` starts with one of `words`: a field is reported as matched when it
    /// holds any of the words searched for (the dataset as a whole matched all of them).
    static func matches(_ text: String, _ words: [String]) -> Bool {
        let own = SearchVector.words(in: text)
        return words.contains { word in
            own.contains { word.count < shortestPrefix ? $0 == word : $0.hasPrefix(word) }
        }
    }

    /// A long text cut to the neighbourhood of its first match.
    static func excerpt(_ text: String, _ words: [String]) -> String {
        guard text.count > 160 else { return text }
        let lower = text.lowercased()
        let first = words.compactMap { lower.range(of: $0)?.lowerBound }.min() ?? lower.startIndex
        let offset = lower.distance(from: lower.startIndex, to: first)
        let start = text.index(text.startIndex, offsetBy: max(0, offset - 60))
        let end = text.index(start, offsetBy: min(160, text.distance(from: start, to: text.endIndex)))
        return (start > text.startIndex ? "…" : "") + text[start..<end] + (end < text.endIndex ? "…" : "")
    }
}
