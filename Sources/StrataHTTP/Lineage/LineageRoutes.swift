import Foundation
import HTTPTypes
import Hummingbird
import StrataCore
import StrataStore

/// Recording lineage, and asking what feeds a dataset and what it feeds.
struct LineageRoutes {
    let writer: CatalogWriter
    let reader: CatalogReader
    let clock: @Sendable () -> Date
    let mostEdges: Int

    func register(on router: Router<StrataRequestContext>) {
        router.post("/v1/lineage", use: record)
        router.get("/v1/datasets/{id}/lineage", use: lineage)
        router.get("/v1/datasets/{id}/impact", use: impact)
    }

    static let selector = BodyRules(
        fields: ["dataset_id": .uuid, "version": .integer(minimum: 1)], required: ["dataset_id"]
    )
    static let job = BodyRules(
        fields: ["namespace": .namespaceOrName, "name": .namespaceOrName], required: ["namespace", "name"]
    )
    static let recordLineage = BodyRules(
        fields: [
            "job": .record(job, nullable: true), "run_id": .string(maxLength: 256, nullable: true),
            "inputs": .array(of: .record(selector), maxItems: 1000),
            "outputs": .array(of: .record(selector), maxItems: 1000),
        ],
        required: ["inputs", "outputs"]
    )

    /// One `LineageRecorded` per output, all or none; answers the edges recorded.
    @Sendable func record(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let body = try await RequestBody.read(request, context: context, rules: Self.recordLineage)
        func ends(_ key: String) -> [CatalogWriter.Request.LineageEnd] {
            (body.object[key]?.arrayValue ?? []).compactMap { item in
                item["dataset_id"]?.stringValue.flatMap(UUID.init(uuidString:)).map {
                    CatalogWriter.Request.LineageEnd(datasetID: $0, version: item["version"]?.intValue)
                }
            }
        }
        let outputs = ends("outputs")
        guard !outputs.isEmpty else {
            throw Problem(
                status: .unprocessableContent, code: "validation_failed", detail: "the body does not match the schema",
                errors: [.init(path: "/outputs", message: "must name at least one output")])
        }
        let job = body.object["job"].flatMap { value -> DatasetEvent.LineageRecorded.Job? in
            guard let namespace = value["namespace"]?.stringValue, let name = value["name"]?.stringValue else {
                return nil
            }
            return .init(namespace: namespace, name: name)
        }
        let writeRequest = try CatalogWriter.Request(
            .lineage(job: job, runID: body.string("run_id"), inputs: ends("inputs"), outputs: outputs), from: request,
            context: context, body: body, at: clock()
        ) { outcome in
            let edges: [JSONValue] = outcome.events.flatMap { event -> [JSONValue] in
                guard case .lineageRecorded(let lineage) = event else { return [] }
                return lineage.inputs.map { input in
                    LineageDocuments.edge(from: input, to: lineage.output, job: lineage.job, runID: lineage.runID)
                }
            }
            let outputs: [JSONValue] = outcome.events.compactMap { event in
                guard case .lineageRecorded(let lineage) = event else { return nil }
                return LineageDocuments.ref(lineage.output)
            }
            return StoredResponse(
                status: 201,
                headers: ["Content-Type": "application/json", "Strata-Position": "\(outcome.position)"],
                body: LineageDocuments.encode(.object(["outputs": .array(outputs), "edges": .array(edges)]))
            )
        }
        return storedResponse(try await writer.submit(writeRequest))
    }

    @Sendable func lineage(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let id = try datasetID(context)
        let query = request.uri.queryParameters
        let direction =
            try query["direction"].map { text in
                guard let value = LineageGraph.Direction(rawValue: String(text)) else {
                    throw invalidParameter("direction", "must be upstream, downstream or both")
                }
                return value
            } ?? .both
        let depth =
            try query["depth"].map { text in
                guard let value = Int(text), (1...100).contains(value) else {
                    throw invalidParameter("depth", "must be an integer from 1 to 100")
                }
                return value
            } ?? 5
        let version = try query["version"].map { try versionNumber($0, parameter: "version") }
        let format = query["format"].map(String.init) ?? "json"
        guard ["json", "dot"].contains(format) else { throw invalidParameter("format", "must be json or dot") }

        let (found, position) = try await reader.read(
            asOf: try asOf(request), scope: try context.caller().scope, atLeast: context.minPosition
        ) {
            snapshot -> LineageGraph? in
            guard try await snapshot.isVisible(id) else { return nil }
            if let version, try await snapshot.version(version, of: id) == nil {
                throw DomainError.versionNotFound(version)
            }
            return try await snapshot.lineage(
                of: id, version: version, direction: direction, depth: depth, mostEdges: mostEdges)
        }
        guard let graph = found else { throw DomainError.datasetNotFound }
        if format == "dot" {
            var headers = HTTPFields()
            headers[.contentType] = "text/vnd.graphviz"
            headers[.strataPosition] = "\(position)"
            return Response(
                status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: LineageDocuments.dot(graph))))
        }
        return jsonResponse(.ok, body: LineageDocuments.graph(graph), position: position)
    }

    @Sendable func impact(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let id = try datasetID(context)
        let (found, position) = try await reader.read(
            asOf: try asOf(request), scope: try context.caller().scope, atLeast: context.minPosition
        ) {
            snapshot -> [LineageGraph.Node]? in
            guard try await snapshot.isVisible(id) else { return nil }
            return try await snapshot.impact(of: id)
        }
        guard let nodes = found else { throw DomainError.datasetNotFound }
        let body = LineageDocuments.encode(
            .object(["dataset_id": .string(id.lowercased), "impact": .array(nodes.map(LineageDocuments.node))]))
        return jsonResponse(.ok, body: body, position: position)
    }
}

/// The JSON (and Graphviz) shapes of lineage answers.
enum LineageDocuments {
    static func ref(_ ref: VersionRef) -> JSONValue {
        .object(["dataset_id": .string(ref.datasetID.lowercased), "version": .number(Double(ref.version))])
    }

    static func edge(from: VersionRef, to: VersionRef, job: DatasetEvent.LineageRecorded.Job?, runID: String?)
        -> JSONValue
    {
        .object([
            "from": ref(from), "to": ref(to),
            "job": job.map { .object(["namespace": .string($0.namespace), "name": .string($0.name)]) } ?? .null,
            "run_id": runID.map(JSONValue.string) ?? .null,
        ])
    }

    static func node(_ node: LineageGraph.Node) -> JSONValue {
        if node.isConcealed {
            return .object([
                "dataset_id": .string(node.datasetID.lowercased),
                "version": node.version.map { .number(Double($0)) } ?? .null,
                "distance": .number(Double(node.distance)),
            ])
        }
        return .object([
            "dataset_id": .string(node.datasetID.lowercased), "namespace": .string(node.namespace),
            "name": .string(node.name), "status": .string(node.status),
            "version": node.version.map { .number(Double($0)) } ?? .null, "distance": .number(Double(node.distance)),
        ])
    }

    /// The graph's document, written straight into bytes with its members in sorted order: the bytes
    /// ``edge(from:to:job:runID:)``, ``node(_:)`` and ``ref(_:)`` would give through ``encode(_:)``, without
    /// a dictionary per node and edge sorted on the way out, which was about a seventh of the server's time
    /// answering a lineage walk.
    static func graph(_ graph: LineageGraph) -> String {
        let concealed = graph.concealedDatasets
        var writer = CanonicalJSONWriter(capacity: 256 * (graph.nodes.count + graph.edges.count + 1))
        func write(_ dataset: UUID, version: Int?) {
            writer.beginObject()
            writer.key("dataset_id")
            writer.value(dataset)
            writer.key("version")
            writer.value(version)
            writer.endObject()
        }
        writer.beginObject()
        writer.key("depth")
        writer.value(graph.depth)
        writer.key("edges")
        writer.beginArray()
        for edge in graph.edges {
            // An edge is an event of its output's stream: its job and run are shown with that stream.
            let hidden = concealed.contains(edge.to.datasetID)
            writer.beginObject()
            writer.key("from")
            write(edge.from.datasetID, version: edge.from.version)
            writer.key("job")
            if let job = edge.job, !hidden {
                writer.beginObject()
                writer.key("name")
                writer.value(job.name)
                writer.key("namespace")
                writer.value(job.namespace)
                writer.endObject()
            } else {
                writer.null()
            }
            writer.key("run_id")
            writer.value(hidden ? nil : edge.runID)
            writer.key("to")
            write(edge.to.datasetID, version: edge.to.version)
            writer.endObject()
        }
        writer.endArray()
        writer.key("nodes")
        writer.beginArray()
        for node in graph.nodes {
            writer.beginObject()
            writer.key("dataset_id")
            writer.value(node.datasetID)
            writer.key("distance")
            writer.value(node.distance)
            if !node.isConcealed {
                writer.key("name")
                writer.value(node.name)
                writer.key("namespace")
                writer.value(node.namespace)
                writer.key("status")
                writer.value(node.status)
            }
            writer.key("version")
            writer.value(node.version)
            writer.endObject()
        }
        writer.endArray()
        writer.key("root")
        write(graph.rootDataset, version: graph.root?.version)
        writer.key("truncated")
        writer.value(graph.isTruncated)
        writer.endObject()
        return writer.string
    }

    /// Graphviz text: `curl …/lineage?format=dot | dot -Tsvg > lineage.svg`.
    static func dot(_ graph: LineageGraph) -> String {
        /// A DOT string of `lines`, each on a line of its own: a backslash in the text is escaped, so the
        /// `\n` between lines is written after escaping, or Graphviz shows a backslash and an n.
        func quoted(_ lines: String...) -> String {
            let escaped = lines.map {
                $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            }
            return "\"" + escaped.joined(separator: "\\n") + "\""
        }
        func nodeID(_ dataset: UUID, _ version: Int?) -> String {
            quoted(dataset.lowercased + (graph.root == nil ? "" : "@\(version ?? 0)"))
        }
        var lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box];"]
        if graph.isTruncated {
            lines.insert(
                "// Truncated: depth \(graph.depth) only; the next level has more edges than one answer holds.",
                at: 0)
        }
        let concealed = graph.concealedDatasets
        for node in graph.nodes {
            let label =
                node.isConcealed
                ? quoted(node.datasetID.lowercased, "v\(node.version ?? 0)")
                : quoted("\(node.namespace)/\(node.name)", "v\(node.version ?? 0) (\(node.status))")
            let style = node.distance == 0 ? ", style=bold" : ""
            lines.append("  \(nodeID(node.datasetID, node.version)) [label=\(label)\(style)];")
        }
        for edge in graph.edges {
            let from = nodeID(edge.from.datasetID, edge.from.version)
            let to = nodeID(edge.to.datasetID, edge.to.version)
            let hidden = concealed.contains(edge.to.datasetID)
            let label = (hidden ? nil : edge.job).map { " [label=\(quoted("\($0.namespace).\($0.name)"))]" } ?? ""
            lines.append("  \(from) -> \(to)\(label);")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    static func encode(_ value: JSONValue) -> String {
        CanonicalJSON.string(value)
    }
}
