import Foundation
import HTTPTypes
import Hummingbird
import StrataCore
import StrataStore

/// OpenLineage ingestion at the path Marquez uses, so OpenLineage clients and integrations work unchanged.
struct OpenLineageRoutes {
    let writer: CatalogWriter
    let clock: @Sendable () -> Date
    let makeID: @Sendable () -> UUID

    func register(on router: Router<StrataRequestContext>) {
        router.post("/api/v1/lineage", use: single)
        router.post("/api/v1/lineage/batch", use: batch)
    }

    /// One `RunEvent`, `DatasetEvent` or `JobEvent`; 201 when applied.
    @Sendable func single(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let body = try await RequestBody.read(request, context: context, rules: BodyRules(fields: [:]), skipRules: true)
        return storedResponse(try await writer.submit(try write(body, request: request, context: context)))
    }

    /// An array of events, each applied on its own, in order: the good ones are appended, each failure is
    /// reported with its index; the answer summarises them. The events go to the append pipeline together,
    /// a pipeline batch's worth at a time, so 100 of them share a commit instead of waiting for 100, one
    /// after another.
    @Sendable func batch(_ request: Request, context: StrataRequestContext) async throws -> Response {
        var request = request
        // The limit of every body: a batch of 8 MiB naming 175,000 datasets took the server to 1.9 GB and
        // every writer's turn for half a minute. A hundred events of a few KiB each fit well within it.
        let bytes = try await RequestBody.collect(&request, upTo: context.maxUploadSize)
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
            throw Problem(
                status: .unsupportedMediaType, code: "unsupported_media_type", detail: "send application/json")
        }
        try RequestBody.refuseContentCoding(of: request)
        // A header of the request, not of an event: refused once, for the whole batch.
        _ = try idempotencyKey(request)
        let value = try RequestBody.parse(bytes)
        guard case .array(let events) = value else {
            throw Problem(
                status: .unprocessableContent, code: "validation_failed", detail: "a batch is a JSON array of events",
                errors: [.init(path: "", message: "must be an array")])
        }
        var failures: [Int: JSONValue] = [:]
        func fail(_ index: Int, _ error: any Error) {
            let problem = ProblemMiddleware.problem(for: error, logger: context.identifiedLogger)
            let fieldErrors: [JSONValue] = (problem.errors ?? []).map { fieldError in
                let path: JSONValue = .string("/\(index)" + fieldError.path)
                return .object(["path": path, "message": .string(fieldError.message)])
            }
            let failure: [String: JSONValue] = [
                "index": .number(Double(index)), "status": .number(Double(problem.status.code)),
                "code": .string(problem.code), "detail": .string(problem.detail), "errors": .array(fieldErrors),
            ]
            failures[index] = .object(failure)
        }
        var writes: [(index: Int, write: CatalogWriter.Request)] = []
        for (index, event) in events.enumerated() {
            do {
                guard case .object(let object) = event else {
                    throw OpenLineageParser.invalid("", "must be a JSON object")
                }
                let body = RequestBody(object: object, bytes: ByteBuffer(string: LineageDocuments.encode(event)))
                writes.append((index, try write(body, request: request, context: context, partOfBatch: index)))
            } catch {
                fail(index, error)
            }
        }
        // The batch answers the position of the last event it appended, so its caller can read its writes.
        var lastPosition: Int64?
        // A pipeline batch's worth at a time: a request of thousands of events lets other writers in
        // between them, rather than holding them until its last event is decided.
        for start in stride(from: 0, to: writes.count, by: writer.maximumBatch) {
            let chunk = writes[start..<min(start + writer.maximumBatch, writes.count)]
            for (index, result) in zip(chunk.map(\.index), await writer.submit(all: chunk.map(\.write))) {
                switch result {
                case .success(let answer):
                    if let position = answer.headers["Strata-Position"].flatMap(Int64.init) {
                        lastPosition = max(lastPosition ?? position, position)
                    }
                case .failure(let error):
                    fail(index, error)
                }
            }
        }
        let succeeded = events.count - failures.count
        let status = failures.isEmpty ? "success" : (succeeded == 0 ? "failure" : "partial")
        let summary = JSONValue.object([
            "status": .string(status), "received": .number(Double(events.count)),
            "successful": .number(Double(succeeded)), "failed": .number(Double(failures.count)),
            "failed_events": .array(failures.sorted { $0.key < $1.key }.map(\.value)),
        ])
        return jsonResponse(
            .ok, body: LineageDocuments.encode(summary),
            headers: lastPosition.map { [.strataPosition: "\($0)"] } ?? [:])
    }

    /// The write that applies one event. `body` is what an `Idempotency-Key` binds: the request's body,
    /// or in a batch the event's own JSON.
    private func write(
        _ body: RequestBody, request: Request, context: StrataRequestContext, partOfBatch index: Int? = nil
    ) throws -> CatalogWriter.Request {
        let (ingest, producer) = try OpenLineageParser.parse(.object(body.object))
        return try CatalogWriter.Request(
            .openLineage(ingest, newIDs: (ingest.inputs + ingest.outputs).map { _ in makeID() }), from: request,
            context: context, body: body, at: clock(), producer: producer,
            runID: ingest.runID, partOfBatch: index
        ) { outcome in
            // An event that changes nothing (START, FAIL, ABORT) reports the log's head it was decided at.
            StoredResponse(
                status: 201, headers: ["Content-Type": "application/json", "Strata-Position": "\(outcome.position)"],
                body: LineageDocuments.encode(
                    .object([
                        "events_appended": .number(Double(outcome.events.count)),
                        "position": .number(Double(outcome.position)),
                    ]))
            )
        }
    }
}

/// Reads an OpenLineage event as the official clients write it: `eventTime` with `Z` or `+00:00`, empty
/// facet objects, unknown facets (kept), no `eventType`. Anything it cannot use is a 422 naming the field.
enum OpenLineageParser {
    static func parse(_ value: JSONValue) throws -> (OpenLineageIngest, producer: String?) {
        guard case .object(let event) = value else { throw invalid("", "must be a JSON object") }
        if let path = RequestBody.firstNul(in: value, at: "") {
            throw invalid(path, "must not contain the character U+0000")
        }
        guard let time = event["eventTime"]?.stringValue else { throw invalid("/eventTime", "is required") }
        guard RFC3339.date(from: time) != nil else {
            throw invalid("/eventTime", "must be an ISO 8601 time with an offset, such as 2026-03-14T09:00:00Z")
        }
        let producer = event["producer"]?.stringValue

        if let dataset = event["dataset"] {  // DatasetEvent
            let parsed = try parseDataset(dataset, at: "/dataset")
            return (
                OpenLineageIngest(
                    inputs: [], outputs: [parsed], job: nil, runID: nil, recordsLineage: false, registersDatasets: true),
                producer
            )
        }
        guard let jobValue = event["job"] else {
            throw invalid("/job", "is required (or /dataset, for a DatasetEvent)")
        }
        let job = try parseJob(jobValue)
        let inputs = try datasets(event["inputs"], at: "/inputs")
        let outputs = try datasets(event["outputs"], at: "/outputs")
        guard let run = event["run"] else {  // JobEvent: static lineage
            return (
                OpenLineageIngest(
                    inputs: inputs, outputs: outputs, job: job, runID: nil, recordsLineage: true,
                    registersDatasets: true),
                producer
            )
        }
        guard let runID = run["runId"]?.stringValue, !runID.isEmpty, runID.count <= 256 else {
            throw invalid("/run/runId", "is required: a string of at most 256 characters")
        }
        let type = event["eventType"]?.stringValue
        if event["eventType"] != nil && event["eventType"] != .null {
            guard let type, ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"].contains(type) else {
                throw invalid("/eventType", "must be one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER")
            }
        }
        let records: Bool
        let registers: Bool
        switch type {
        case "COMPLETE": (records, registers) = (true, true)
        case "START", "FAIL", "ABORT": (records, registers) = (false, false)
        default: (records, registers) = (!outputs.isEmpty, !outputs.isEmpty || !inputs.isEmpty)  // RUNNING, OTHER, none
        }
        return (
            OpenLineageIngest(
                inputs: inputs, outputs: outputs, job: job, runID: runID, recordsLineage: records,
                registersDatasets: registers),
            producer
        )
    }

    private static func parseJob(_ value: JSONValue) throws -> DatasetEvent.LineageRecorded.Job {
        guard case .object = value else { throw invalid("/job", "must be an object") }
        let namespace = try name(value["namespace"], at: "/job/namespace")
        return .init(namespace: namespace, name: try name(value["name"], at: "/job/name"))
    }

    private static func datasets(_ value: JSONValue?, at path: String) throws -> [OpenLineageIngest.Dataset] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value else { throw invalid(path, "must be an array") }
        guard items.count <= 1000 else { throw invalid(path, "must have at most 1000 items") }
        return try items.enumerated().map { try parseDataset($1, at: "\(path)/\($0)") }
    }

    private static func parseDataset(_ value: JSONValue, at path: String) throws -> OpenLineageIngest.Dataset {
        guard case .object = value else { throw invalid(path, "must be an object") }
        let namespace = try name(value["namespace"], at: "\(path)/namespace")
        let datasetName = try name(value["name"], at: "\(path)/name")
        var facets: [String: JSONValue] = [:]
        if let given = value["facets"], given != .null {
            guard case .object(let object) = given else { throw invalid("\(path)/facets", "must be an object") }
            facets = object
        }
        var schema: [Column]?
        if let facet = facets["schema"], facet != .null {
            guard case .array(let fields)? = facet["fields"] else {
                throw invalid("\(path)/facets/schema/fields", "must be an array")
            }
            schema = try fields.enumerated().map { index, field in
                guard let columnName = field["name"]?.stringValue, !columnName.isEmpty else {
                    throw invalid("\(path)/facets/schema/fields/\(index)/name", "is required")
                }
                return Column(
                    name: String(columnName.prefix(1024)),
                    type: String((field["type"]?.stringValue ?? "unknown").prefix(256)),
                    description: field["description"]?.stringValue.map { String($0.prefix(4096)) })
            }
        }
        let location = facets["dataSource"]?["uri"]?.stringValue ?? "\(namespace)/\(datasetName)"
        return OpenLineageIngest.Dataset(
            namespace: namespace, name: datasetName, location: String(location.prefix(4096)), schema: schema,
            facets: facets, datasetVersion: facets["version"]?["datasetVersion"]?.stringValue,
            dropped: facets["lifecycleStateChange"]?["lifecycleStateChange"]?.stringValue == "DROP"
        )
    }

    private static func name(_ value: JSONValue?, at path: String) throws -> String {
        guard let text = value?.stringValue else { throw invalid(path, "is required: a string") }
        let errors = FieldRule.namespaceOrName.check(.string(text), at: path)
        if let error = errors.first { throw invalid(error.path, error.message) }
        return text
    }

    static func invalid(_ path: String, _ message: String) -> Problem {
        Problem(
            status: .unprocessableContent, code: "validation_failed",
            detail: "not an OpenLineage event Strata can use: \(path.isEmpty ? "the body" : path) \(message)",
            errors: [.init(path: path, message: message)])
    }
}
