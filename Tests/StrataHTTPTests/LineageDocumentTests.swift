import Foundation
import StrataCore
import Testing

@testable import StrataHTTP
@testable import StrataStore

/// A lineage graph's document is written straight into bytes. It must be, byte for byte, the canonical
/// encoding of the graph built of ``JSONValue``s from the node, edge and reference documents, which is
/// what it was before it was written directly: answers as of a position repeat earlier ones exactly.
@Suite("Lineage documents")
struct LineageDocumentTests {
    @Test func theWrittenGraphIsTheCanonicalEncodingOfItsValue() throws {
        let (a, b, c) = (UUIDv7.make(), UUIDv7.make(), UUIDv7.make())
        let etl = DatasetEvent.LineageRecorded.Job(namespace: "airflow", name: "etl \"nightly\"")
        let nodes = [
            LineageGraph.Node(
                datasetID: a, version: 2, namespace: "ns", name: "orders \"raw\" é", status: "published", distance: 0),
            LineageGraph.Node(
                datasetID: b, version: nil, namespace: "other", name: "hidden", status: "draft", distance: 1,
                isConcealed: true),
            LineageGraph.Node(
                datasetID: c, version: 1, namespace: "ns", name: "line\nbreak", status: "retired", distance: 2),
        ]
        let edges = [
            // Into a concealed dataset: its job and run are not shown.
            LineageGraph.Edge(
                from: VersionRef(datasetID: a, version: 2), to: VersionRef(datasetID: b, version: 1), job: etl,
                runID: "r-1", position: 10, ordinal: 0),
            LineageGraph.Edge(
                from: VersionRef(datasetID: c, version: 1), to: VersionRef(datasetID: a, version: 2), job: etl,
                runID: "run \\ 2", position: 11, ordinal: 0),
            LineageGraph.Edge(
                from: VersionRef(datasetID: c, version: 1), to: VersionRef(datasetID: a, version: 2), job: nil,
                runID: nil, position: 12, ordinal: 1),
        ]
        for root in [VersionRef(datasetID: a, version: 2), nil] {
            for isTruncated in [false, true] {
                let graph = LineageGraph(
                    root: root, rootDataset: a, nodes: nodes, edges: edges, depth: 2, isTruncated: isTruncated)
                #expect(LineageDocuments.graph(graph) == LineageDocuments.encode(Self.value(of: graph)))
            }
        }
        let cut = LineageGraph(root: nil, rootDataset: a, nodes: nodes, edges: edges, depth: 2, isTruncated: true)
        #expect(LineageDocuments.dot(cut).hasPrefix("// Truncated: depth 2 only"))
        #expect(
            !LineageDocuments.dot(LineageGraph(root: nil, rootDataset: a, nodes: nodes, edges: edges, depth: 2))
                .contains("Truncated"))
        let empty = LineageGraph(root: nil, rootDataset: a, nodes: [], edges: [], depth: 5)
        #expect(LineageDocuments.graph(empty) == LineageDocuments.encode(Self.value(of: empty)))
    }

    /// The graph as ``JSONValue``s, made of the documents of its parts.
    static func value(of graph: LineageGraph) -> JSONValue {
        let concealed = graph.concealedDatasets
        return .object([
            "depth": .number(Double(graph.depth)), "truncated": .bool(graph.isTruncated),
            "root": graph.root.map(LineageDocuments.ref)
                ?? .object(["dataset_id": .string(graph.rootDataset.lowercased), "version": .null]),
            "nodes": .array(graph.nodes.map(LineageDocuments.node)),
            "edges": .array(
                graph.edges.map { edge in
                    let hidden = concealed.contains(edge.to.datasetID)
                    return LineageDocuments.edge(
                        from: edge.from, to: edge.to, job: hidden ? nil : edge.job, runID: hidden ? nil : edge.runID)
                }),
        ])
    }
}
