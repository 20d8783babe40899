import Foundation
import Hummingbird
import StrataCore
import StrataStore

extension DatasetRoutes {
    /// `GET /v1/search`: datasets ranked by how well they match `q`, with what matched and facet counts.
    /// A page's cursor carries the position its first page was answered at, so every page of one search
    /// ranks the same catalog.
    @Sendable func search(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        guard let text = query["q"].map(String.init), !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw invalidParameter("q", "is required: the words to look for")
        }
        guard text.count <= 1024 else { throw invalidParameter("q", "must be at most 1024 characters") }
        var filter = CatalogSnapshot.SearchFilter(text: text)
        guard filter.words.count <= CatalogSnapshot.SearchFilter.mostWords else {
            throw invalidParameter(
                "q", "asks for more than \(CatalogSnapshot.SearchFilter.mostWords) different words; narrow it down")
        }
        filter.namespace = try textParameter("namespace", in: query, maxLength: 1024, allowingControlCharacters: false)
        filter.tag = try textParameter("tag", in: query, maxLength: 256)
        filter.owner = try textParameter("owner", in: query, maxLength: 256)
        filter.format = try formatParameter(query["format"].map(String.init))
        if let statuses = query["status"].map(String.init) { filter.statuses = try parseStatuses(statuses) }
        let provenance = try ProvenanceFilters(query)
        filter.createdBy = provenance.createdBy
        filter.inUse = provenance.inUse
        filter.usedSince = provenance.usedSince
        filter.producedBy = provenance.producedBy
        // The list's page sizes: search takes "the list's filters, limit, cursor" (API.md).
        if let limit = try limitParameter(in: query, maximum: CatalogSnapshot.ListFilter.largestPage) {
            filter.limit = limit
        }
        var asOf = try StrataHTTP.asOf(request)
        var pinned: Int64?
        if let cursor = query["cursor"].map(String.init) {
            guard let (position, offset) = SearchCursor.decode(cursor) else {
                throw invalidParameter("cursor", "is not a cursor")
            }
            (asOf, pinned) = (.position(position), position)
            filter.offset = offset
        }
        let (page, position) = try await pinnedByCursor(pinned) { [filter, asOf] in
            try await reader.read(asOf: asOf, scope: try context.caller().scope, atLeast: context.minPosition) {
                try await $0.search(filter)
            }
        }
        var results: [JSONValue] = []
        for hit in page.hits {
            guard case .object(var dataset) = try JSONValue(parsing: hit.document) else { continue }
            dataset["score"] = .number((hit.score * 10_000).rounded() / 10_000)
            dataset["matched"] = .array(
                hit.matched.map { .object(["field": .string($0.field), "text": .string($0.text)]) })
            results.append(.object(dataset))
        }
        let facets = JSONValue.object(
            page.facets.mapValues { counts in .object(counts.mapValues { .number(Double($0)) }) })
        let next: JSONValue =
            page.more ? .string(SearchCursor.encode(position: position, offset: filter.offset + filter.limit)) : .null
        let body = JSONValue.object(["results": .array(results), "facets": facets, "next_cursor": next])
        return jsonResponse(.ok, body: CanonicalJSON.string(body), position: position)
    }
}

/// `created_by`, `in_use`, `used_since` and `produced_by`: the filters on who created a dataset, its
/// usages and the jobs writing it, which the list and search both take.
struct ProvenanceFilters {
    var createdBy: String?
    var inUse = false
    var usedSince: Date?
    var producedBy: CatalogSnapshot.ListFilter.Job?

    init(_ query: Parameters) throws {
        createdBy = try textParameter("created_by", in: query, maxLength: 256)
        if let inUse = query["in_use"].map(String.init) {
            guard let value = Bool(inUse) else { throw invalidParameter("in_use", "must be true or false") }
            self.inUse = value
        }
        if let since = query["used_since"].map(String.init) {
            guard let date = RFC3339.date(from: since) else {
                throw invalidParameter("used_since", "must be an RFC 3339 time, such as 2026-11-01T00:00:00Z")
            }
            usedSince = date
            inUse = true
        }
        if let job = query["produced_by"].map(String.init) {
            guard let slash = job.lastIndex(of: "/"), slash != job.startIndex, job.index(after: slash) != job.endIndex
            else { throw invalidParameter("produced_by", "must be a job as namespace/name") }
            producedBy = .init(namespace: String(job[..<slash]), name: String(job[job.index(after: slash)...]))
        }
    }
}

/// `format=`: one of the formats a version may declare.
func formatParameter(_ text: String?) throws -> String? {
    guard let text else { return nil }
    guard DatasetFormat(rawValue: text) != nil else {
        throw invalidParameter(
            "format", "must be one of \(DatasetFormat.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return text
}

/// A search page's (or a sorted list page's) place: the position the search was answered at, and how many results came before.
enum SearchCursor {
    static func encode(position: Int64, offset: Int) -> String {
        ListCursor.encode(text: "\(position).\(offset)")
    }

    static func decode(_ cursor: String) -> (Int64, Int)? {
        guard let text = ListCursor.decode(text: cursor) else { return nil }
        let parts = text.split(separator: ".")
        guard parts.count == 2, let position = Int64(parts[0]), let offset = Int(parts[1]), position >= 0,
            (0...100_000).contains(offset)
        else { return nil }
        return (position, offset)
    }
}
