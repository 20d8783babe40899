import Crypto
import Foundation
import PostgresNIO
import StrataCore

/// Which projection rows one event closes and opens — the one place that knows it.
///
/// Every row is a pure function of the event and of where the dataset's lifecycle stands after it
/// (``DatasetLifecycle``), so applying the changes inline, as events are appended, and a rebuild
/// replaying the log produce the same rows, byte for byte. Rows hold only what the log does not already
/// say at the event's position: who acted, when, the stream version, a version's snapshot and a usage's
/// details are read from the event itself.
public enum DatasetProjector {
    /// A dataset's lifecycle state, from one event to its next (`dataset_states`).
    public struct StateRow: Sendable, Equatable {
        public var datasetID: UUID
        public var status: String
        public var latestVersion: Int
        public var publishedVersion: Int?
        public var retiredReason: String?
    }

    /// What a dataset is (`dataset_identities`).
    public struct IdentityRow: Sendable, Equatable {
        public var datasetID: UUID
        public var namespace: String
        public var name: String
        public var nameKey: [UInt8]
        public var clonedFrom: VersionRef?
    }

    /// A version as it was drafted (`dataset_versions`): what the dataset list filters on. The rest
    /// of it is in the drafting event.
    public struct VersionRow: Sendable, Equatable {
        public var datasetID: UUID
        public var version: Int
        public var owner: String?
        public var description: String?
        public var tags: [String]
    }

    /// One edge of the lineage graph: `from` was read to make `to`.
    public struct EdgeRow: Sendable, Equatable {
        public var from: VersionRef
        public var to: VersionRef
        public var job: DatasetEvent.LineageRecorded.Job?
        public var runID: String?
        public var ordinal: Int
    }

    /// A usage pin (`dataset_usages`): what the usages are looked up by. The rest of it is in the
    /// event that recorded it.
    public struct UsageRow: Sendable, Equatable {
        public var datasetID: UUID
        public var version: Int
        public var consumer: String
    }

    /// An API token while it is valid (`api_tokens`). Who granted it and when is the event at
    /// `valid_from`; the secret is nowhere, only its SHA-256.
    public struct TokenRow: Sendable, Equatable {
        public var tokenID: UUID
        public var name: String
        public var role: String
        public var namespaces: [String]
        public var secretSHA256: String
    }

    /// A change to the projections, taking effect at the event's position.
    public enum Change: Sendable, Equatable {
        case addToken(TokenRow)
        case revokeToken(UUID)
        case closeState(UUID)
        case openState(StateRow)
        case addIdentity(IdentityRow)
        case addVersion(VersionRow)
        case addPublication(UUID, version: Int)
        case reserveName(nameKey: [UInt8], datasetID: UUID)
        case releaseName(datasetID: UUID)
        case addUsage(UsageRow)
        case addEdge(EdgeRow)
    }

    /// The changes `event` makes, given where the dataset's lifecycle stands after it.
    public static func changes(after state: DatasetLifecycle, event: DatasetEvent) -> [Change] {
        var changes: [Change] = []
        collectChanges(after: state, event: event, into: &changes)
        return changes
    }

    /// Appends the changes `event` makes to `changes`: a replay reuses one array for millions of events.
    static func collectChanges(after state: DatasetLifecycle, event: DatasetEvent, into changes: inout [Change]) {
        // The state's first event is its DatasetCreated: every later one ends the row before it.
        if state.streamVersion > 1 { changes.append(.closeState(state.id)) }
        changes.append(
            .openState(
                StateRow(
                    datasetID: state.id, status: state.status.rawValue, latestVersion: state.latestVersion,
                    publishedVersion: state.publishedVersion, retiredReason: state.retiredReason
                )
            )
        )
        switch event {
        case .created(let created):
            let key = nameKey(created.namespace, created.name)
            changes.append(
                .addIdentity(
                    IdentityRow(
                        datasetID: state.id, namespace: created.namespace, name: created.name, nameKey: key,
                        clonedFrom: created.clonedFrom)
                )
            )
            changes.append(.reserveName(nameKey: key, datasetID: state.id))
        case .retired:
            changes.append(.releaseName(datasetID: state.id))
        case .versionDrafted(let drafted):
            let number = drafted.version.version
            let fields = drafted.version.fields
            changes.append(
                .addVersion(
                    VersionRow(
                        datasetID: state.id, version: number, owner: fields.owner, description: fields.description,
                        tags: fields.tags
                    )
                )
            )
            let to = VersionRef(datasetID: state.id, version: number)
            for (ordinal, parent) in fields.parents.enumerated() {
                changes.append(.addEdge(EdgeRow(from: parent, to: to, job: nil, runID: nil, ordinal: ordinal)))
            }
        case .published(let published):
            changes.append(.addPublication(state.id, version: published.version))
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
            changes.append(.addUsage(UsageRow(datasetID: state.id, version: used.version, consumer: used.consumer)))
        case .archived, .restored:
            break
        }
    }

    /// The changes a token's event makes.
    public static func changes(ofToken id: UUID, event: TokenEvent) -> [Change] {
        switch event {
        case .created(let created):
            return [
                .addToken(
                    TokenRow(
                        tokenID: id, name: created.name, role: created.role.rawValue, namespaces: created.namespaces,
                        secretSHA256: created.secretSHA256))
            ]
        case .revoked:
            return [.revokeToken(id)]
        }
    }

    /// The key of the (namespace, name) reservation: names may be longer than a btree entry can hold.
    public static func nameKey(_ namespace: String, _ name: String) -> [UInt8] {
        Array(SHA256.hash(data: Data((namespace + "\u{0}" + name).utf8)))
    }

    /// Writes `changes` with ordinary statements, in the transaction that appended the event.
    static func apply(_ changes: [Change], at position: Int64, on connection: PostgresConnection, logger: Logger)
        async throws
    {
        for change in changes {
            switch change {
            case .addToken(let row):
                try await connection.perform(
                    """
                    INSERT INTO api_tokens (token_id, valid_from, name, role, namespaces, secret_sha256)
                    VALUES (\(row.tokenID), \(position), \(row.name), \(row.role), \(row.namespaces),
                            \(row.secretSHA256))
                    """,
                    logger: logger
                )
            case .revokeToken(let id):
                try await connection.perform(
                    "UPDATE api_tokens SET valid_to = \(position) WHERE token_id = \(id) AND valid_to IS NULL",
                    logger: logger
                )
            case .closeState(let id):
                try await connection.perform(
                    "UPDATE dataset_states SET valid_to = \(position) WHERE dataset_id = \(id) AND valid_to IS NULL",
                    logger: logger
                )
            case .openState(let row):
                try await connection.perform(
                    """
                    INSERT INTO dataset_states (dataset_id, valid_from, status, latest_version, published_version,
                        retired_reason)
                    VALUES (\(row.datasetID), \(position), \(row.status), \(row.latestVersion), \(row.publishedVersion),
                        \(row.retiredReason))
                    """,
                    logger: logger
                )
            case .addIdentity(let row):
                try await connection.perform(
                    """
                    INSERT INTO dataset_identities (dataset_id, valid_from, namespace, name, name_key,
                        cloned_from_dataset, cloned_from_version)
                    VALUES (\(row.datasetID), \(position), \(row.namespace), \(row.name), \(ByteBuffer(bytes: row.nameKey)),
                        \(row.clonedFrom?.datasetID), \(row.clonedFrom?.version))
                    """,
                    logger: logger
                )
            case .addVersion(let row):
                try await connection.perform(
                    """
                    INSERT INTO dataset_versions (dataset_id, version, valid_from, owner, description, tags)
                    VALUES (\(row.datasetID), \(row.version), \(position), \(row.owner), \(row.description), \(row.tags))
                    """,
                    logger: logger
                )
            case .addPublication(let id, let version):
                try await connection.perform(
                    """
                    INSERT INTO version_publications (dataset_id, version, valid_from)
                    VALUES (\(id), \(version), \(position))
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
                    INSERT INTO dataset_usages (dataset_id, valid_from, version, consumer)
                    VALUES (\(row.datasetID), \(position), \(row.version), \(row.consumer))
                    """,
                    logger: logger
                )
            }
        }
    }
}
