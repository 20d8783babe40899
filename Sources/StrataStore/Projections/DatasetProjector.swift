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
        /// The usage pins recorded up to the row, and the position of the latest.
        public var usageCount: Int
        public var lastUsed: Int64?
    }

    /// What a dataset is (`dataset_identities`).
    public struct IdentityRow: Sendable, Equatable {
        public var datasetID: UUID
        public var namespace: String
        public var name: String
        public var nameKey: [UInt8]
        public var clonedFrom: VersionRef?
    }

    /// A version as it was drafted (`versions`): the rest of it is in the drafting event, and what the
    /// list filters on and search finds it by in its ``WordsRow``.
    public struct VersionRow: Sendable, Equatable {
        public var datasetID: UUID
        public var version: Int
        public var wordsKey: [UInt8]
    }

    /// What the dataset list filters on and search finds a version by (`dataset_words`), under the
    /// SHA-256 of them all: versions with the same words share one row.
    public struct WordsRow: Sendable, Equatable {
        public var datasetID: UUID
        public var key: [UInt8]
        /// The dataset's namespace and name.
        public var namespace: String
        public var name: String
        public var owner: String?
        public var description: String?
        public var tags: [String]
        public var format: String?
        /// The schema's column names and the properties' keys.
        public var columnNames: [String]
        public var propertyKeys: [String]

        init(
            datasetID: UUID, namespace: String, name: String, owner: String?, description: String?, tags: [String],
            format: String?, columnNames: [String], propertyKeys: [String]
        ) {
            (self.datasetID, self.namespace, self.name, self.owner) = (datasetID, namespace, name, owner)
            (self.description, self.tags, self.format) = (description, tags, format)
            (self.columnNames, self.propertyKeys) = (columnNames, propertyKeys)
            // Each field goes in with its length (or a mark for none), so no two different sets of words
            // feed the hash the same bytes.
            var bytes: [UInt8] = []
            func add(_ text: String?) {
                guard let text else { return bytes.append(0) }
                bytes.append(1)
                withUnsafeBytes(of: UInt32(text.utf8.count).bigEndian) { bytes += $0 }
                bytes += text.utf8
            }
            func add(_ texts: [String]) {
                bytes.append(2)
                withUnsafeBytes(of: UInt32(texts.count).bigEndian) { bytes += $0 }
                for text in texts { add(text) }
            }
            add(namespace)
            add(name)
            add(owner)
            add(description)
            add(tags)
            add(format)
            add(columnNames)
            add(propertyKeys)
            key = Array(SHA256.hash(data: bytes))
        }
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
        /// The words of the version just added, which its dataset's earlier versions may have had already.
        case addWords(WordsRow)
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
                    publishedVersion: state.publishedVersion, retiredReason: state.retiredReason,
                    usageCount: state.usageCount, lastUsed: state.lastUsed
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
            let words = WordsRow(
                datasetID: state.id, namespace: state.namespace, name: state.name, owner: fields.owner,
                description: fields.description, tags: fields.tags, format: fields.format?.rawValue,
                columnNames: fields.schema.map(\.name), propertyKeys: fields.properties.keys.sorted())
            changes.append(.addVersion(VersionRow(datasetID: state.id, version: number, wordsKey: words.key)))
            changes.append(.addWords(words))
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
}
