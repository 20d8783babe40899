import Foundation
import HTTPTypes
import Hummingbird
import StrataCore
import StrataStore

/// The dataset endpoints of API.md: thin adapters from HTTP to catalog commands and queries.
struct DatasetRoutes {
    let writer: CatalogWriter
    let reader: CatalogReader
    /// The clock and id source of every command, injected so tests can pin them.
    let clock: @Sendable () -> Date
    let makeID: @Sendable () -> UUID

    func register(on router: Router<StrataRequestContext>) {
        router.post("/v1/datasets", use: create)
        router.get("/v1/datasets", use: list)
        router.get("/v1/search", use: search)
        router.get("/v1/datasets/{id}", use: show)
        router.patch("/v1/datasets/{id}", use: edit)
        router.get("/v1/namespaces/{namespace}/datasets/{name}", use: showByName)
        router.post("/v1/datasets/{id}/publish", use: publish)
        router.post("/v1/datasets/{id}/archive", use: archive)
        router.post("/v1/datasets/{id}/restore", use: restore)
        router.post("/v1/datasets/{id}/retire", use: retire)
        router.post("/v1/datasets/{id}/clone", use: clone)
        router.get("/v1/datasets/{id}/versions", use: versions)
        router.get("/v1/datasets/{id}/versions/{n}", use: version)
        router.post("/v1/datasets/{id}/versions/{n}/usages", use: recordUsage)
        router.get("/v1/datasets/{id}/usages", use: usages)
        router.get("/v1/datasets/{id}/history", use: history)
    }

    // MARK: writes

    @Sendable func create(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let body = try await RequestBody.read(request, context: context, rules: RequestSchemas.createDataset)
        let id = makeID()
        let command = DatasetCommand.create(
            namespace: body.string("namespace")!, name: body.string("name")!,
            // The bytes the body came in: they parsed as `body.object`, which has no member twice.
            fields: try VersionFields(json: Array(body.bytes.readableBytesView)),
            clonedFrom: nil
        )
        return try await submit(.dataset(id, command), request, context, body: body, created: true)
    }

    @Sendable func edit(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let id = try datasetID(context)
        let body = try await RequestBody.read(
            request, context: context, rules: RequestSchemas.patchDataset,
            mediaTypes: ["application/merge-patch+json", "application/json"]
        )
        return try await submit(.dataset(id, .edit(patch: .object(body.object))), request, context, body: body)
    }

    @Sendable func publish(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let id = try datasetID(context)
        let body = try await RequestBody.read(
            request, context: context, rules: RequestSchemas.publishDataset, allowEmpty: true
        )
        let command = DatasetCommand.publish(version: body.integer("version"), changeNote: body.string("change_note"))
        return try await submit(.dataset(id, command), request, context, body: body)
    }

    @Sendable func archive(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let id = try datasetID(context)
        let body = try await RequestBody.read(
            request, context: context, rules: RequestSchemas.archiveDataset, allowEmpty: true
        )
        let reason = body.string("reason")
        return try await submit(.dataset(id, .archive(reason: reason)), request, context, body: body, reason: reason)
    }

    @Sendable func restore(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let id = try datasetID(context)
        let body = try await RequestBody.read(
            request, context: context, rules: RequestSchemas.restoreDataset, allowEmpty: true
        )
        return try await submit(.dataset(id, .restore), request, context, body: body)
    }

    @Sendable func retire(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let id = try datasetID(context)
        let body = try await RequestBody.read(request, context: context, rules: RequestSchemas.retireDataset)
        let reason = body.string("reason")!
        let dryRun = body.bool("dry_run") == true
        let expected = dryRun ? try ifMatch(request) : nil
        // The retire itself, and a dry run that checks If-Match, read the primary: a replica behind would
        // leave out of the impact a dataset made downstream a moment ago, which retiring breaks all the
        // same, and call stale the ETag of a write it has not replayed yet.
        let reader = dryRun && expected == nil ? reader : reader.primaryOnly
        // What retiring would break: every dataset downstream that is not retired itself.
        let ((state, downstream), position) = try await reader.read(
            scope: try context.caller().scope, atLeast: context.minPosition
        ) { snapshot in
            (try await snapshot.state(of: id), try await snapshot.impact(of: id))
        }
        // A dataset the caller may not see is kept whatever its status, as /impact keeps it: leaving out the
        // retired ones would tell, against /impact's answer, which of them are.
        let impact = downstream.filter { $0.isConcealed || $0.status != DatasetStatus.retired.rawValue }
            .map(LineageDocuments.node)
        if dryRun {
            // The answer the retire itself would give, appending nothing: a stale If-Match is 412 here too,
            // once the dataset is found.
            guard state.exists else { throw DomainError.datasetNotFound }
            _ = try idempotencyKey(request)
            if let expected, expected != state.streamVersion {
                throw CatalogError.versionConflict(expected: expected, actual: state.streamVersion)
            }
            _ = try DatasetDecider.decide(.retire(reason: reason), state: state)
            return jsonResponse(
                .ok, body: withImpact(Documents.dataset(state), impact),
                headers: [.eTag: quoted(state.streamVersion), .strataPosition: "\(position)"]
            )
        }
        return try await submit(.dataset(id, .retire(reason: reason)), request, context, body: body, reason: reason) {
            withImpact($0, impact)
        }
    }

    @Sendable func clone(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let source = try datasetID(context)
        let body = try await RequestBody.read(request, context: context, rules: RequestSchemas.cloneDataset)
        let target = CatalogWriter.Request.Target.clone(
            source: source, newID: makeID(), namespace: body.string("namespace"), name: body.string("name")!,
            changeNote: body.string("change_note")
        )
        return try await submit(target, request, context, body: body, created: true)
    }

    @Sendable func recordUsage(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let id = try datasetID(context)
        let number = try versionNumber(context)
        let body = try await RequestBody.read(request, context: context, rules: RequestSchemas.recordUsage)
        let command = DatasetCommand.recordUsage(
            version: number, consumer: body.string("consumer")!, kind: body.string("kind"),
            properties: body.object["properties"]?.objectValue ?? [:]
        )
        let writeRequest = try makeRequest(.dataset(id, command), request, context, body: body, reason: nil) {
            outcome in
            var usageDocument = "{}"
            if case .versionUsed(let used) = outcome.events.first {
                usageDocument = Documents.usage(
                    UsageRecord(
                        version: used.version, consumer: used.consumer, kind: used.kind, properties: used.properties,
                        recordedAt: outcome.state.updatedAt, recordedBy: outcome.state.updatedBy
                    ),
                    of: id, position: outcome.position
                )
            }
            return StoredResponse(
                status: 201, headers: Self.writeHeaders(outcome), body: usageDocument
            )
        }
        return storedResponse(try await writer.submit(writeRequest))
    }

    // MARK: reads

    @Sendable func show(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let id = try datasetID(context)
        let (found, position) = try await reader.dataset(
            id, asOf: try asOf(request), scope: try context.caller().scope, atLeast: context.minPosition)
        guard let dataset = found else { throw DomainError.datasetNotFound }
        return jsonResponse(.ok, body: dataset.document, position: position, etag: dataset.streamVersion)
    }

    @Sendable func showByName(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let namespace = try pathText("namespace", context)
        let name = try pathText("name", context)
        let (found, position) = try await reader.read(
            asOf: try asOf(request), scope: try context.caller().scope, atLeast: context.minPosition
        ) {
            try await $0.dataset(namespace: namespace, name: name)
        }
        guard let dataset = found else { throw DomainError.datasetNotFound }
        return jsonResponse(.ok, body: dataset.document, position: position, etag: dataset.streamVersion)
    }

    @Sendable func list(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        var filter = CatalogSnapshot.ListFilter()
        filter.namespace = try textParameter("namespace", in: query, maxLength: 1024, allowingControlCharacters: false)
        filter.tag = try textParameter("tag", in: query, maxLength: 256)
        filter.owner = try textParameter("owner", in: query, maxLength: 256)
        filter.query = try textParameter("q", in: query, maxLength: 1024)
        filter.format = try formatParameter(query["format"].map(String.init))
        if let statuses = query["status"].map(String.init) {
            filter.statuses = try parseStatuses(statuses)
        }
        if let limit = try limitParameter(in: query, maximum: CatalogSnapshot.ListFilter.largestPage) {
            filter.limit = limit
        }
        if let sort = query["sort"].map(String.init) {
            let descending = sort.hasPrefix("-")
            guard let key = CatalogSnapshot.ListFilter.SortKey(rawValue: String(sort.dropFirst(descending ? 1 : 0)))
            else {
                let keys = CatalogSnapshot.ListFilter.SortKey.allCases.map(\.rawValue).joined(separator: ", ")
                throw invalidParameter("sort", "must be one of \(keys), each with - in front for descending")
            }
            filter.sort = .init(key: key, descending: descending)
        }
        let provenance = try ProvenanceFilters(query)
        filter.createdBy = provenance.createdBy
        filter.inUse = provenance.inUse
        filter.usedSince = provenance.usedSince
        filter.producedBy = provenance.producedBy
        var snapshot = try asOf(request)
        var pinned: Int64?
        if let cursor = query["cursor"].map(String.init) {
            // A sorted list pages by offset at the position of its first page; id order pages by id.
            if filter.sort != nil {
                guard let (position, offset) = SearchCursor.decode(cursor) else {
                    throw invalidParameter("cursor", "is not a cursor of this order")
                }
                (snapshot, pinned) = (.position(position), position)
                filter.offset = offset
            } else {
                guard let after = ListCursor.decode(cursor) else { throw invalidParameter("cursor", "is not a cursor") }
                filter.after = after
            }
        }
        let page = try await pinnedByCursor(pinned) { [filter, snapshot] in
            try await reader.datasets(
                filter, asOf: snapshot, scope: try context.caller().scope, atLeast: context.minPosition)
        }
        let position = page.position
        var next = "null"
        if page.more {
            next =
                filter.sort == nil
                ? "\"\(ListCursor.encode(page.datasets.last!.id))\""
                : "\"\(SearchCursor.encode(position: position, offset: filter.offset + filter.limit))\""
        }
        let documents = page.datasets.map(\.document).joined(separator: ",")
        let body = "{\"datasets\":[\(documents)],\"next_cursor\":\(next)}"
        return jsonResponse(.ok, body: body, position: position)
    }

    @Sendable func versions(_ request: Request, context: StrataRequestContext) async throws -> Response {
        try await datasetPage("versions", request, context) { snapshot, id, window in
            try await snapshot.versions(of: id, window)
        }
    }

    @Sendable func version(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let id = try datasetID(context)
        let number = try versionNumber(context)
        let (found, position) = try await reader.read(
            asOf: try asOf(request), scope: try context.caller().scope, atLeast: context.minPosition
        ) {
            snapshot in
            let version = try await snapshot.version(number, of: id)
            // Only a version not found asks whether the dataset is there at all.
            if version != nil { return (version, true) }
            return (nil, try await snapshot.isVisible(id))
        }
        guard let document = found.0 else {
            throw found.1 ? DomainError.versionNotFound(number) : DomainError.datasetNotFound
        }
        return jsonResponse(.ok, body: document, position: position)
    }

    @Sendable func usages(_ request: Request, context: StrataRequestContext) async throws -> Response {
        try await datasetPage("usages", request, context) { snapshot, id, window in
            try await snapshot.usages(of: id, window)
        }
    }

    @Sendable func history(_ request: Request, context: StrataRequestContext) async throws -> Response {
        try await datasetPage("events", request, context) { snapshot, id, window in
            let page = try await snapshot.history(of: id, window)
            return .init(items: try page.items.map { try $0.document() }, nextAfter: page.nextAfter)
        }
    }

    /// One page of a dataset's versions, usages or events: all of them unless `limit` asks for fewer, the
    /// page after `cursor` at the position the first page was read at, else at `as_of`'s.
    private func datasetPage(
        _ collection: String,
        _ request: Request,
        _ context: StrataRequestContext,
        _ read:
            @escaping @Sendable (CatalogSnapshot, UUID, CatalogSnapshot.Window) async throws
            -> CatalogSnapshot.Page<String>
    ) async throws -> Response {
        let id = try datasetID(context)
        let query = request.uri.queryParameters
        var window = CatalogSnapshot.Window(
            limit: try limitParameter(in: query, maximum: CatalogSnapshot.ListFilter.largestPage))
        var snapshot = try asOf(request)
        var pinned: Int64?
        if let cursor = query["cursor"].map(String.init) {
            guard let (position, after) = WindowCursor.decode(cursor) else {
                throw invalidParameter("cursor", "is not a cursor of this collection")
            }
            (snapshot, pinned, window.after) = (.position(position), position, after)
        }
        let (found, position) = try await pinnedByCursor(pinned) { [snapshot, window] in
            try await reader.read(asOf: snapshot, scope: try context.caller().scope, atLeast: context.minPosition) {
                snapshot -> CatalogSnapshot.Page<String>? in
                let page = try await read(snapshot, id, window)
                // Only an empty page asks whether the dataset is there: one with no usage pins has none to
                // page, and a cursor may stand at the end of any of the three.
                if page.items.isEmpty, try await !snapshot.isVisible(id) { return nil }
                return page
            }
        }
        guard let page = found else { throw DomainError.datasetNotFound }
        let next = page.nextAfter.map { "\"\(WindowCursor.encode(position: position, after: $0))\"" } ?? "null"
        let body = "{\"\(collection)\":[\(page.items.joined(separator: ","))],\"next_cursor\":\(next)}"
        return jsonResponse(.ok, body: body, position: position)
    }

    // MARK: plumbing

    /// Sends a command through the append pipeline; the response is the dataset as the command left it.
    private func submit(
        _ target: CatalogWriter.Request.Target,
        _ request: Request,
        _ context: StrataRequestContext,
        body: RequestBody,
        created: Bool = false,
        reason: String? = nil,
        decorate: @escaping @Sendable (String) -> String = { $0 }
    ) async throws -> Response {
        let writeRequest = try makeRequest(target, request, context, body: body, reason: reason) { outcome in
            var headers = Self.writeHeaders(outcome)
            if created { headers["Location"] = "/v1/datasets/\(outcome.state.id.lowercased)" }
            return StoredResponse(
                status: created ? 201 : 200, headers: headers, body: decorate(Documents.dataset(outcome.state))
            )
        }
        return storedResponse(try await writer.submit(writeRequest))
    }

    private func makeRequest(
        _ target: CatalogWriter.Request.Target,
        _ request: Request,
        _ context: StrataRequestContext,
        body: RequestBody,
        reason: String?,
        respond: @escaping @Sendable (CatalogWriter.Outcome) -> StoredResponse
    ) throws -> CatalogWriter.Request {
        try CatalogWriter.Request(
            target, from: request, context: context, body: body, at: clock(), reason: reason, respond: respond)
    }

    private static func writeHeaders(_ outcome: CatalogWriter.Outcome) -> [String: String] {
        [
            "Content-Type": "application/json", "ETag": "\"\(outcome.state.streamVersion)\"",
            "Strata-Position": "\(outcome.position)",
        ]
    }

    func parseStatuses(_ text: String) throws -> [DatasetStatus] {
        if text == "all" { return DatasetStatus.allCases }
        var statuses: [DatasetStatus] = []
        for part in text.split(separator: ",") {
            guard let status = DatasetStatus(rawValue: part.trimmingCharacters(in: .whitespaces)) else {
                throw invalidParameter("status", "must be 'all' or a comma list of draft, published, archived, retired")
            }
            statuses.append(status)
        }
        if statuses.isEmpty { throw invalidParameter("status", "must name at least one status") }
        return statuses
    }

    private func withImpact(_ document: String, _ impact: [JSONValue]) -> String {
        guard case .object(var fields) = try? JSONDecoder().decode(JSONValue.self, from: Data(document.utf8)) else {
            return document
        }
        fields["impact"] = .array(impact)
        return CanonicalJSON.string(JSONValue.object(fields))
    }
}

func invalidParameter(_ name: String, _ message: String) -> Problem {
    Problem(
        status: .badRequest, code: "invalid_parameter", detail: "\(name) \(message)",
        errors: [.init(path: name, message: message)]
    )
}

func quoted(_ version: Int64) -> String { "\"\(version)\"" }

/// A read's answer: its body, the position its snapshot reflects and, for one dataset, its ETag.
func jsonResponse(_ status: HTTPResponse.Status, body: String, position: Int64, etag: Int64? = nil) -> Response {
    var headers: [HTTPField.Name: String] = [.strataPosition: "\(position)"]
    if let etag { headers[.eTag] = quoted(etag) }
    return jsonResponse(status, body: body, headers: headers)
}

/// `as_of`: a log position, or an RFC 3339 time meaning the last position recorded at or before it.
func asOf(_ request: Request) throws -> CatalogReader.AsOf {
    guard let text = request.uri.queryParameters["as_of"].map(String.init) else { return .head }
    if let position = Int64(text), position >= 0 { return .position(position) }
    if let date = RFC3339.date(from: text) { return .time(date) }
    throw invalidParameter("as_of", "must be a log position or an RFC 3339 time, such as 2026-11-22T10:00:00Z")
}

func jsonResponse(_ status: HTTPResponse.Status, body: String, headers: [HTTPField.Name: String] = [:]) -> Response {
    var fields = HTTPFields()
    fields[.contentType] = "application/json"
    for (name, value) in headers { fields[name] = value }
    return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
}

/// Runs a read pinned to the position a cursor carries; a position past the log's end was put in no
/// cursor this service gave, and is refused as the cursor, not as an `as_of` the client never sent.
func pinnedByCursor<Result>(_ position: Int64?, _ read: () async throws -> Result) async throws -> Result {
    do {
        return try await read()
    } catch ReadError.asOfBeyondHead(let requested, _) where requested == position {
        throw invalidParameter("cursor", "is not a cursor this service gave: it names a position past the log's end")
    }
}

/// The `cursor` of a page of one dataset's versions, usages or events: the position its first page was
/// read at, and the key of the last item before it.
enum WindowCursor {
    static func encode(position: Int64, after: Int64) -> String {
        ListCursor.encode(text: "\(position).\(after)")
    }

    static func decode(_ cursor: String) -> (position: Int64, after: Int64)? {
        guard let text = ListCursor.decode(text: cursor) else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let position = Int64(parts[0]), let after = Int64(parts[1]), position >= 0, after >= 0
        else { return nil }
        return (position, after)
    }
}

/// The opaque `cursor` of a dataset list: the last id of the page, base64url-encoded.
enum ListCursor {
    static func encode(_ id: UUID) -> String {
        encode(text: id.lowercased)
    }

    static func decode(_ cursor: String) -> UUID? {
        decode(text: cursor).flatMap(UUID.init(uuidString:))
    }

    /// URL-safe base64 of `text`, without padding: a cursor says nothing a client should parse.
    static func encode(text: String) -> String {
        Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(text cursor: String) -> String? {
        var text = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text).map { String(decoding: $0, as: UTF8.self) }
    }
}
