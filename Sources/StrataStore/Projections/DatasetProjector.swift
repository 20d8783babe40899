import Crypto
import Foundation
import PostgresNIO
import StrataCore

/// Which projection rows one event closes and opens — the one place that knows it.
///
/// Every row is a pure function of the dataset's state after the event (and of the event's position),
/// so applying the changes inline, as events are appended, and a rebuild replaying the log produce the
/// same rows, byte for byte.
public enum DatasetProjector {
    public struct DatasetRow: Sendable, Equatable {
        public var datasetID: UUID
        public var namespace: String
        public var name: String
        public var nameKey: [UInt8]
        public var status: String
        public var streamVersion: Int64
        public var latestVersion: Int
        public var publishedVersion: Int?
        public var owner: String?
        public var description: String?
        public var tags: [String]
        public var createdBy: String
        public var document: String
    }

    public struct VersionRow: Sendable, Equatable {
        public var datasetID: UUID
        public var version: Int
        public var status: String
        public var document: String
    }

    /// One edge of the lineage graph: `from` was read to make `to`.
    public struct EdgeRow: Sendable, Equatable {
        public var from: VersionRef
        public var to: VersionRef
        public var job: DatasetEvent.LineageRecorded.Job?
        public var runID: String?
        public var ordinal: Int
    }

    public struct UsageRow: Sendable, Equatable {
        public var datasetID: UUID
        public var version: Int
        public var consumer: String
        public var document: String
    }

    /// A change to the projections, taking effect at the event's position.
    public enum Change: Sendable, Equatable {
        case closeDataset(UUID)
        case openDataset(DatasetRow)
        case closeVersion(UUID, version: Int)
        case openVersion(VersionRow)
        case reserveName(nameKey: [UInt8], datasetID: UUID)
        case releaseName(datasetID: UUID)
        case addUsage(UsageRow)
        case addEdge(EdgeRow)
    }

    /// The changes `event` makes, given the dataset's state before and after it.
    ///
    /// `renderedVersion` may answer the document of a version as it stood before the event (a replay
    /// has it in the version's open row), which saves rendering it again inside the dataset document
    /// when the event leaves that version as it was.
    public static func changes(
        from before: DatasetState,
        to after: DatasetState,
        event: DatasetEvent,
        context: EventContext,
        position: Int64,
        renderedVersion: (Int) -> String? = { _ in nil }
    ) -> [Change] {
        var versionChanges: [Change] = []
        var rendered: [Int: String] = [:]
        for number in 1...max(after.latestVersion, 1) where after.version(number) != nil {
            let isNew = before.version(number) == nil
            if isNew || before.status(ofVersion: number) != after.status(ofVersion: number) {
                if !isNew { versionChanges.append(.closeVersion(after.id, version: number)) }
                let document = Documents.version(number, of: after)
                rendered[number] = document
                versionChanges.append(
                    .openVersion(
                        VersionRow(
                            datasetID: after.id, version: number, status: after.status(ofVersion: number).rawValue,
                            document: document
                        )
                    )
                )
            }
        }
        var changes: [Change] = []
        if before.exists { changes.append(.closeDataset(after.id)) }
        let current = after.currentVersion.flatMap { rendered[$0] ?? renderedVersion($0) }
        changes.append(.openDataset(datasetRow(after, currentVersionDocument: current)))
        changes += versionChanges
        switch event {
        case .created(let created):
            changes.append(.reserveName(nameKey: nameKey(created.namespace, created.name), datasetID: after.id))
        case .retired:
            changes.append(.releaseName(datasetID: after.id))
        case .versionDrafted(let drafted):
            let to = VersionRef(datasetID: after.id, version: drafted.version.version)
            for (ordinal, parent) in drafted.version.fields.parents.enumerated() {
                changes.append(.addEdge(EdgeRow(from: parent, to: to, job: nil, runID: nil, ordinal: ordinal)))
            }
        case .lineageRecorded(let lineage):
            for (ordinal, input) in lineage.inputs.enumerated() {
                changes.append(
                    .addEdge(
                        EdgeRow(
                            from: input, to: lineage.output, job: lineage.job, runID: lineage.runID, ordinal: ordinal)
                    )
                )
            }
        case .versionUsed(let used):
            let usage = UsageRecord(
                version: used.version, consumer: used.consumer, kind: used.kind, properties: used.properties,
                recordedAt: context.occurredAt, recordedBy: context.actor
            )
            changes.append(
                .addUsage(
                    UsageRow(
                        datasetID: after.id, version: used.version, consumer: used.consumer,
                        document: Documents.usage(usage, of: after.id, position: position)
                    )
                )
            )
        default:
            break
        }
        return changes
    }

    /// The key of the (namespace, name) reservation: names may be longer than a btree entry can hold.
    public static func nameKey(_ namespace: String, _ name: String) -> [UInt8] {
        Array(SHA256.hash(data: Data((namespace + "\u{0}" + name).utf8)))
    }

    static func datasetRow(_ state: DatasetState, currentVersionDocument: String? = nil) -> DatasetRow {
        let current = state.currentVersion.flatMap { state.version($0)?.snapshot.fields }
        return DatasetRow(
            datasetID: state.id, namespace: state.namespace, name: state.name,
            nameKey: nameKey(state.namespace, state.name), status: state.status.rawValue,
            streamVersion: state.streamVersion, latestVersion: state.latestVersion,
            publishedVersion: state.publishedVersion, owner: current?.owner, description: current?.description,
            tags: current?.tags ?? [], createdBy: state.createdBy,
            document: Documents.dataset(state, currentVersionDocument: currentVersionDocument)
        )
    }

    /// Writes `changes` with ordinary statements, in the transaction that appended the event.
    static func apply(_ changes: [Change], at position: Int64, on connection: PostgresConnection, logger: Logger)
        async throws
    {
        for change in changes {
            switch change {
            case .closeDataset(let id):
                try await connection.perform(
                    "UPDATE datasets SET valid_to = \(position) WHERE dataset_id = \(id) AND valid_to IS NULL",
                    logger: logger
                )
            case .openDataset(let row):
                try await connection.perform(
                    """
                    INSERT INTO datasets (dataset_id, valid_from, namespace, name, name_key, status, stream_version,
                        latest_version, published_version, owner, description, tags, created_by, document)
                    VALUES (\(row.datasetID), \(position), \(row.namespace), \(row.name), \(ByteBuffer(bytes: row.nameKey)),
                        \(row.status), \(row.streamVersion), \(row.latestVersion), \(row.publishedVersion), \(row.owner),
                        \(row.description), \(row.tags), \(row.createdBy), \(row.document))
                    """,
                    logger: logger
                )
            case .closeVersion(let id, let version):
                try await connection.perform(
                    """
                    UPDATE dataset_versions SET valid_to = \(position)
                    WHERE dataset_id = \(id) AND version = \(version) AND valid_to IS NULL
                    """,
                    logger: logger
                )
            case .openVersion(let row):
                try await connection.perform(
                    """
                    INSERT INTO dataset_versions (dataset_id, version, valid_from, status, document)
                    VALUES (\(row.datasetID), \(row.version), \(position), \(row.status), \(row.document))
                    """,
                    logger: logger
                )
            case .reserveName(let key, let id):
                try await connection.perform(
                    """
                    INSERT INTO dataset_names (name_key, dataset_id, valid_from)
                    VALUES (\(ByteBuffer(bytes: key)), \(id), \(position))
                    """,
                    logger: logger
                )
            case .releaseName(let id):
                try await connection.perform(
                    "UPDATE dataset_names SET valid_to = \(position) WHERE dataset_id = \(id) AND valid_to IS NULL",
                    logger: logger
                )
            case .addEdge(let edge):
                try await connection.perform(
                    """
                    INSERT INTO lineage_edges (to_dataset, to_version, from_dataset, from_version, valid_from,
                                               job_namespace, job_name, run_id, ordinal)
                    VALUES (\(edge.to.datasetID), \(edge.to.version), \(edge.from.datasetID), \(edge.from.version),
                            \(position), \(edge.job?.namespace), \(edge.job?.name), \(edge.runID), \(edge.ordinal))
                    """,
                    logger: logger
                )
            case .addUsage(let row):
                try await connection.perform(
                    """
                    INSERT INTO dataset_usages (dataset_id, valid_from, version, consumer, document)
                    VALUES (\(row.datasetID), \(position), \(row.version), \(row.consumer), \(row.document))
                    """,
                    logger: logger
                )
            }
        }
    }
}
