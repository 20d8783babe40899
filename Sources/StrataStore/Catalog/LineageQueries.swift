import Foundation
import PostgresNIO
import StrataCore

/// The lineage graph around a dataset (or one version of it), as of a snapshot.
public struct LineageGraph: Sendable, Equatable {
    public enum Direction: String, Sendable, CaseIterable {
        case upstream, downstream, both
    }

    /// A dataset reached by the traversal, at the version the edges name (or its current one, for a
    /// whole-dataset query), with the length of the shortest path from the root.
    public struct Node: Sendable, Equatable {
        public var datasetID: UUID
        public var version: Int?
        public var namespace: String
        public var name: String
        public var status: String
        public var distance: Int
        /// Outside the reader's namespaces: shown as its id and version only, nothing else about it.
        public var isConcealed = false
    }

    public struct Edge: Sendable, Equatable, Hashable {
        public var from: VersionRef
        public var to: VersionRef
        public var job: DatasetEvent.LineageRecorded.Job?
        public var runID: String?
        /// Where the edge was recorded, which orders edges and keeps each one once.
        public var position: Int64
        public var ordinal: Int

        /// What the edge says, whenever it was recorded: from what, to what, by which job and run.
        struct Fact: Hashable {
            var from: VersionRef
            var to: VersionRef
            var job: DatasetEvent.LineageRecorded.Job?
            var runID: String?
        }

        var fact: Fact { Fact(from: from, to: to, job: job, runID: runID) }
    }

    /// The most edges one answer holds: about 12 MB of JSON. A walk to depth 10 both ways in `strata bench
    /// lineage`'s graph of a million edges answers about 20,000.
    public static let mostEdges = 50_000

    public var root: VersionRef?
    public var rootDataset: UUID
    public var nodes: [Node]
    public var edges: [Edge]
    /// How many levels the answer holds whole: the depth asked, or fewer when it is truncated.
    public var depth: Int
    /// The next level would have taken the answer past ``mostEdges``, so it was left out.
    public var isTruncated: Bool

    public init(
        root: VersionRef?, rootDataset: UUID, nodes: [Node], edges: [Edge], depth: Int, isTruncated: Bool = false
    ) {
        (self.root, self.rootDataset, self.nodes, self.edges) = (root, rootDataset, nodes, edges)
        (self.depth, self.isTruncated) = (depth, isTruncated)
    }

    /// The datasets shown by id only.
    public var concealedDatasets: Set<UUID> {
        Set(nodes.lazy.filter(\.isConcealed).map(\.datasetID))
    }
}

extension CatalogSnapshot {
    /// Walks the graph breadth-first, one indexed query per level and direction, so the cost follows the
    /// size of the answer, not of the catalog. Every node appears once, at its shortest distance; every
    /// edge once; cycles end because a node is expanded only the first time it is reached.
    ///
    /// With `version`, the walk follows versions exactly (what fed *this* version, what was made from
    /// it); without, it follows datasets (any version to any version).
    ///
    /// An answer holds at most `mostEdges` edges. When the next level would take it past that, the walk
    /// stops before the level, so that the answer is still the whole graph to a smaller depth, and says so
    /// (``LineageGraph/isTruncated``, ``LineageGraph/depth``): a wide graph once answered 205 MB.
    public func lineage(
        of root: UUID,
        version: Int?,
        direction: LineageGraph.Direction,
        depth: Int,
        mostEdges: Int = LineageGraph.mostEdges
    ) async throws -> LineageGraph {
        struct Walk {
            var direction: LineageGraph.Direction
            var frontier: [NodeKey]
            var seen: Set<NodeKey>
        }
        let start = NodeKey(dataset: root, version: version)
        var walks = (direction == .both ? [.upstream, .downstream] : [direction]).map {
            Walk(direction: $0, frontier: [start], seen: [start])
        }
        var distances: [NodeKey: Int] = [start: 0]
        // One fact recorded again (an OpenLineage emitter sending a run's COMPLETE a second time, with no
        // key to tell it is a retry) is one edge: the first record of it. Every record of a fact arrives at
        // the same node, so all of them come in the level that first reaches it.
        var first: [LineageGraph.Edge.Fact: LineageGraph.Edge] = [:]
        // Records of repeated facts are read but not shown: they are bounded too, so that memory is.
        let mostRecords = mostEdges * 4
        var recordsRead = 0
        var completeDepth = 0
        var isTruncated = false
        levels: while completeDepth < depth, walks.contains(where: { !$0.frontier.isEmpty }) {
            let level = completeDepth + 1
            var found: [[LineageGraph.Edge]] = []
            for walk in walks {
                guard !walk.frontier.isEmpty else {
                    found.append([])
                    continue
                }
                let edges = try await edgesTouching(
                    walk.frontier, walk: walk.direction, exactVersions: version != nil,
                    limit: mostRecords - recordsRead + 1)
                recordsRead += edges.count
                if recordsRead > mostRecords {
                    isTruncated = true
                    break levels
                }
                found.append(edges)
            }
            var added: [LineageGraph.Edge.Fact: LineageGraph.Edge] = [:]
            for edge in found.joined() where first[edge.fact] == nil {
                if let other = added[edge.fact], (other.position, other.ordinal) < (edge.position, edge.ordinal) {
                    continue
                }
                added[edge.fact] = edge
            }
            if first.count + added.count > mostEdges {
                isTruncated = true
                break
            }
            first.merge(added) { earlier, _ in earlier }
            for index in walks.indices {
                var next: [NodeKey] = []
                for edge in found[index] {
                    let far = walks[index].direction == .upstream ? edge.from : edge.to
                    let key = NodeKey(dataset: far.datasetID, version: version == nil ? nil : far.version)
                    if walks[index].seen.insert(key).inserted {
                        next.append(key)
                        distances[key] = min(distances[key] ?? level, level)
                    }
                }
                walks[index].frontier = next
            }
            completeDepth = level
        }
        let summaries = try await datasetSummaries(Set(distances.keys.map(\.dataset)))
        let nodes = distances.compactMap { key, distance -> LineageGraph.Node? in
            guard let summary = summaries[key.dataset] else { return nil }
            return LineageGraph.Node(
                datasetID: key.dataset, version: key.version ?? summary.currentVersion, namespace: summary.namespace,
                name: summary.name, status: summary.status, distance: distance,
                isConcealed: !scope.includes(summary.namespace)
            )
        }
        // UUIDs order as their text does; formatting the text for every comparison cost a tenth of the
        // server's time answering a graph.
        .sorted { ($0.distance, $0.datasetID, $0.version ?? 0) < ($1.distance, $1.datasetID, $1.version ?? 0) }
        return LineageGraph(
            root: version.map { VersionRef(datasetID: root, version: $0) }, rootDataset: root, nodes: nodes,
            edges: first.values.sorted { ($0.position, $0.ordinal) < ($1.position, $1.ordinal) },
            depth: isTruncated ? completeDepth : depth, isTruncated: isTruncated
        )
    }

    /// Everything downstream of the dataset, however far, with status and shortest distance. Unlike a
    /// lineage walk it reads only which datasets each level reaches, not the edges, so what it holds is
    /// bounded by the catalog's datasets however many edges join them.
    public func impact(of root: UUID) async throws -> [LineageGraph.Node] {
        var distances: [UUID: Int] = [:]
        var frontier = [root]
        var seen: Set<UUID> = [root]
        var level = 0
        while !frontier.isEmpty {
            level += 1
            let reached = try await connection.rows(
                executing: DatasetsDownstream(datasets: frontier, position: position), logger: logger)
            frontier = reached.filter { seen.insert($0).inserted }
            for dataset in frontier { distances[dataset] = level }
        }
        let summaries = try await datasetSummaries(Set(distances.keys))
        return distances.compactMap { dataset, distance -> LineageGraph.Node? in
            guard let summary = summaries[dataset] else { return nil }
            return LineageGraph.Node(
                datasetID: dataset, version: summary.currentVersion, namespace: summary.namespace, name: summary.name,
                status: summary.status, distance: distance, isConcealed: !scope.includes(summary.namespace))
        }
        .sorted { ($0.distance, $0.datasetID) < ($1.distance, $1.datasetID) }
    }

    private struct NodeKey: Hashable {
        var dataset: UUID
        var version: Int?
    }

    /// The edges arriving at the frontier, at most `limit` of them (in no particular order).
    private func edgesTouching(
        _ frontier: [NodeKey], walk: LineageGraph.Direction, exactVersions: Bool, limit: Int
    ) async throws -> [LineageGraph.Edge] {
        let (ids, position) = (frontier.map(\.dataset), position)
        let versions = frontier.map { $0.version ?? 0 }
        switch (walk == .upstream, exactVersions) {
        case (true, false):
            return try await connection.rows(
                executing: EdgesOfDatasets<Upstream>(datasets: ids, position: position, limit: limit), logger: logger)
        case (false, false):
            return try await connection.rows(
                executing: EdgesOfDatasets<Downstream>(datasets: ids, position: position, limit: limit),
                logger: logger)
        case (true, true):
            return try await connection.rows(
                executing: EdgesOfVersions<Upstream>(
                    datasets: ids, versions: versions, position: position, limit: limit),
                logger: logger)
        case (false, true):
            return try await connection.rows(
                executing: EdgesOfVersions<Downstream>(
                    datasets: ids, versions: versions, position: position, limit: limit),
                logger: logger)
        }
    }

    fileprivate struct Summary {
        var namespace: String
        var name: String
        var status: String
        var currentVersion: Int
    }

    private func datasetSummaries(_ ids: Set<UUID>) async throws -> [UUID: Summary] {
        let rows =
            isHead
            ? try await connection.rows(
                executing: DatasetSummaries<AtTheHead>(datasets: Array(ids), position: position), logger: logger)
            : try await connection.rows(
                executing: DatasetSummaries<AsOfAPosition>(datasets: Array(ids), position: position), logger: logger)
        return Dictionary(rows, uniquingKeysWith: { first, _ in first })
    }
}

// The walk's statements are prepared: a graph of a few levels runs one per level and direction, and
// parsing and planning each anew cost PostgreSQL more than running it (unprepared, the walk lost a
// quarter of its throughput). Their answers can be long, so they are prepared with SQL's PREPARE and
// their rows gathered (see `ExecutedStatement`), not streamed by PostgresNIO's prepared statements: a
// lineage walk under load ended the server at one PostgreSQL restart in twenty that way. Each direction
// has its own text, so that its generic plan looks every dataset of a level up in that direction's
// index.

private protocol EdgeWalk: Sendable {
    /// The end of an edge the walk arrives by: `from` going downstream, `to` going upstream.
    static var near: String { get }
}

private enum Downstream: EdgeWalk { static var near: String { "from" } }
private enum Upstream: EdgeWalk { static var near: String { "to" } }

private let edgeColumns = """
    e.from_dataset, e.from_version, e.to_dataset, e.to_version, e.job_namespace, e.job_name, e.run_id, e.valid_from,
    e.ordinal
    """

private func decodeEdge(_ row: PostgresRow) throws -> LineageGraph.Edge {
    let (fromID, fromVersion, toID, toVersion, jobNamespace, jobName, runID, validFrom, ordinal) = try row.decode(
        (UUID, Int, UUID, Int, String?, String?, String?, Int64, Int).self)
    let job = jobNamespace.flatMap { namespace in
        jobName.map { DatasetEvent.LineageRecorded.Job(namespace: namespace, name: $0) }
    }
    return LineageGraph.Edge(
        from: VersionRef(datasetID: fromID, version: fromVersion), to: VersionRef(datasetID: toID, version: toVersion),
        job: job, runID: runID, position: validFrom, ordinal: ordinal)
}

/// The edges recorded by `position` that arrive at any version of the datasets.
private struct EdgesOfDatasets<Walk: EdgeWalk>: ExecutedStatement {
    static var name: String { "strata_lineage_edges_\(Walk.near)_datasets_limited" }
    static var parameterTypes: [String] { ["uuid[]", "bigint", "bigint"] }

    static var sql: String {
        """
        SELECT \(edgeColumns)
        FROM unnest($1::uuid[]) AS f(dataset)
        JOIN lineage_edges e ON e.\(Walk.near)_dataset = f.dataset
        WHERE e.valid_from <= $2
        LIMIT $3
        """
    }

    typealias Row = LineageGraph.Edge

    var datasets: [UUID]
    var position: Int64
    var limit: Int

    var arguments: [String] { [Self.literal(datasets), "\(position)", "\(limit)"] }

    func decodeRow(_ row: PostgresRow) throws -> Row { try decodeEdge(row) }
}

/// The edges recorded by `position` that arrive at exactly these versions.
private struct EdgesOfVersions<Walk: EdgeWalk>: ExecutedStatement {
    static var name: String { "strata_lineage_edges_\(Walk.near)_versions_limited" }
    static var parameterTypes: [String] { ["uuid[]", "integer[]", "bigint", "bigint"] }

    static var sql: String {
        """
        SELECT \(edgeColumns)
        FROM unnest($1::uuid[], $2::integer[]) AS f(dataset, version)
        JOIN lineage_edges e ON e.\(Walk.near)_dataset = f.dataset AND e.\(Walk.near)_version = f.version
        WHERE e.valid_from <= $3
        LIMIT $4
        """
    }

    typealias Row = LineageGraph.Edge

    var datasets: [UUID]
    var versions: [Int]
    var position: Int64
    var limit: Int

    var arguments: [String] { [Self.literal(datasets), Self.literal(versions), "\(position)", "\(limit)"] }

    func decodeRow(_ row: PostgresRow) throws -> Row { try decodeEdge(row) }
}

/// The datasets that edges recorded by `position` lead to from any version of these: an impact walk's
/// next level.
private struct DatasetsDownstream: ExecutedStatement {
    static var name: String { "strata_impact_datasets_downstream" }
    static var parameterTypes: [String] { ["uuid[]", "bigint"] }

    static var sql: String {
        """
        SELECT DISTINCT e.to_dataset
        FROM unnest($1::uuid[]) AS f(dataset)
        JOIN lineage_edges e ON e.from_dataset = f.dataset
        WHERE e.valid_from <= $2
        """
    }

    typealias Row = UUID

    var datasets: [UUID]
    var position: Int64

    var arguments: [String] { [Self.literal(datasets), "\(position)"] }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(UUID.self) }
}

/// Which of a dataset's state rows a statement reads: the current one, found in the index of current
/// rows, or the one true at a position (`$2`), found among all of them.
private protocol StateRows: Sendable {
    static var condition: String { get }
    static var readsPosition: Bool { get }
}

private enum AtTheHead: StateRows {
    static var condition: String { "s.valid_to IS NULL" }
    static var readsPosition: Bool { false }
}

private enum AsOfAPosition: StateRows {
    static var condition: String { "s.valid_from <= $2 AND (s.valid_to IS NULL OR s.valid_to > $2)" }
    static var readsPosition: Bool { true }
}

/// What the graph shows of each dataset it reaches.
private struct DatasetSummaries<Rows: StateRows>: ExecutedStatement {
    static var name: String {
        Rows.readsPosition ? "strata_lineage_summaries_as_of" : "strata_lineage_summaries_at_head"
    }
    static var parameterTypes: [String] { Rows.readsPosition ? ["uuid[]", "bigint"] : ["uuid[]"] }

    static var sql: String {
        """
        SELECT s.dataset_id, i.namespace, i.name, s.status, coalesce(s.published_version, s.latest_version)
        FROM dataset_states s JOIN dataset_identities i ON i.dataset_id = s.dataset_id
        WHERE s.dataset_id = ANY($1::uuid[]) AND \(Rows.condition)
        """
    }

    typealias Row = (UUID, CatalogSnapshot.Summary)

    var datasets: [UUID]
    var position: Int64

    var arguments: [String] { [Self.literal(datasets)] + (Rows.readsPosition ? ["\(position)"] : []) }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (id, namespace, name, status, current) = try row.decode((UUID, String, String, String, Int).self)
        return (id, CatalogSnapshot.Summary(namespace: namespace, name: name, status: status, currentVersion: current))
    }
}
