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
    }

    public var root: VersionRef?
    public var rootDataset: UUID
    public var nodes: [Node]
    public var edges: [Edge]

    /// The datasets shown by id only.
    public var concealedDatasets: Set<UUID> {
        Set(nodes.lazy.filter(\.isConcealed).map(\.datasetID))
    }
}

extension CatalogSnapshot {
    /// Walks the graph breadth-first, one indexed query per level, so the cost follows the size of the
    /// answer, not of the catalog. Every node appears once, at its shortest distance; every edge once;
    /// cycles end because a node is expanded only the first time it is reached.
    ///
    /// With `version`, the walk follows versions exactly (what fed *this* version, what was made from
    /// it); without, it follows datasets (any version to any version).
    public func lineage(
        of root: UUID,
        version: Int?,
        direction: LineageGraph.Direction,
        depth: Int
    ) async throws -> LineageGraph {
        var distances: [NodeKey: Int] = [NodeKey(dataset: root, version: version): 0]
        var edges: Set<LineageGraph.Edge> = []
        let directions: [LineageGraph.Direction] = direction == .both ? [.upstream, .downstream] : [direction]
        for walk in directions {
            var frontier = [NodeKey(dataset: root, version: version)]
            var seen: Set<NodeKey> = [frontier[0]]
            var level = 0
            while !frontier.isEmpty && level < depth {
                level += 1
                var next: [NodeKey] = []
                for edge in try await edgesTouching(frontier, walk: walk, exactVersions: version != nil) {
                    edges.insert(edge)
                    let far = walk == .upstream ? edge.from : edge.to
                    let key = NodeKey(dataset: far.datasetID, version: version == nil ? nil : far.version)
                    if seen.insert(key).inserted {
                        next.append(key)
                        distances[key] = min(distances[key] ?? level, level)
                    }
                }
                frontier = next
            }
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
        .sorted {
            ($0.distance, $0.datasetID.uuidString, $0.version ?? 0) < (
                $1.distance, $1.datasetID.uuidString, $1.version ?? 0
            )
        }
        return LineageGraph(
            root: version.map { VersionRef(datasetID: root, version: $0) }, rootDataset: root, nodes: nodes,
            edges: edges.sorted { ($0.position, $0.ordinal) < ($1.position, $1.ordinal) }
        )
    }

    /// Everything downstream of the dataset, however far, with status and shortest distance.
    public func impact(of root: UUID) async throws -> [LineageGraph.Node] {
        try await lineage(of: root, version: nil, direction: .downstream, depth: Int.max).nodes.filter {
            $0.datasetID != root
        }
    }

    private struct NodeKey: Hashable {
        var dataset: UUID
        var version: Int?
    }

    private func edgesTouching(_ frontier: [NodeKey], walk: LineageGraph.Direction, exactVersions: Bool)
        async throws -> [LineageGraph.Edge]
    {
        let ids = frontier.map(\.dataset)
        let versions = frontier.map { $0.version ?? 0 }
        let upstream = walk == .upstream
        let rows = try await connection.query(
            """
            SELECT e.from_dataset, e.from_version, e.to_dataset, e.to_version, e.job_namespace, e.job_name, e.run_id,
                   e.valid_from, e.ordinal
            FROM unnest(\(ids), \(versions)) AS f(dataset, version)
            JOIN lineage_edges e
              ON (CASE WHEN \(upstream) THEN e.to_dataset ELSE e.from_dataset END) = f.dataset
             AND (NOT \(exactVersions) OR (CASE WHEN \(upstream) THEN e.to_version ELSE e.from_version END) = f.version)
            WHERE e.valid_from <= \(position)
            """,
            logger: logger
        )
        var edges: [LineageGraph.Edge] = []
        for try await (fromID, fromVersion, toID, toVersion, jobNamespace, jobName, runID, validFrom, ordinal)
            in rows
            .decode((UUID, Int, UUID, Int, String?, String?, String?, Int64, Int).self)
        {
            let job = jobNamespace.flatMap { namespace in
                jobName.map { DatasetEvent.LineageRecorded.Job(namespace: namespace, name: $0) }
            }
            edges.append(
                LineageGraph.Edge(
                    from: VersionRef(datasetID: fromID, version: fromVersion),
                    to: VersionRef(datasetID: toID, version: toVersion), job: job, runID: runID, position: validFrom,
                    ordinal: ordinal
                )
            )
        }
        return edges
    }

    private struct Summary {
        var namespace: String
        var name: String
        var status: String
        var currentVersion: Int
    }

    private func datasetSummaries(_ ids: Set<UUID>) async throws -> [UUID: Summary] {
        let rows = try await connection.query(
            """
            SELECT s.dataset_id, i.namespace, i.name, s.status, coalesce(s.published_version, s.latest_version)
            FROM dataset_states s JOIN dataset_identities i ON i.dataset_id = s.dataset_id
            WHERE s.dataset_id = ANY(\(Array(ids)))
              AND s.valid_from <= \(position) AND (s.valid_to IS NULL OR s.valid_to > \(position))
            """,
            logger: logger
        )
        var summaries: [UUID: Summary] = [:]
        for try await (id, namespace, name, status, current) in rows.decode((UUID, String, String, String, Int).self) {
            summaries[id] = Summary(namespace: namespace, name: name, status: status, currentVersion: current)
        }
        return summaries
    }
}
