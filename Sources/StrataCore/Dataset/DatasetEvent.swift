import Foundation

/// The lifecycle states of a dataset.
public enum DatasetStatus: String, Sendable, Encodable, CaseIterable {
    case draft, published, archived, retired
}

/// The states of one version: drafts become published; a published one is later superseded; a draft
/// left behind by a newer published version is discarded.
public enum VersionStatus: String, Sendable, Codable {
    case draft, published, superseded, discarded

    /// A version's status follows from the publish history alone: which version is published now, and
    /// whether this one ever was. (A version is published at most once: only a draft newer than the
    /// published version can be.)
    public init(ofVersion number: Int, publishedVersion: Int?, wasPublished: Bool) {
        if number == publishedVersion {
            self = .published
        } else if wasPublished {
            self = .superseded
        } else if let published = publishedVersion, number < published {
            self = .discarded
        } else {
            self = .draft
        }
    }
}

/// Everything that can happen to a dataset. Each case is one event type of the log, with its payload;
/// every payload has a JSON Schema in `Schemas/events/<Type>.v1.json`.
public enum DatasetEvent: Sendable, Equatable {
    case created(Created)
    case versionDrafted(VersionDrafted)
    case published(Published)
    case archived(Archived)
    case restored(Restored)
    case retired(Retired)
    case lineageRecorded(LineageRecorded)
    case versionUsed(VersionUsed)

    public struct Created: Sendable, Equatable, Encodable {
        public var namespace: String
        public var name: String
        public var clonedFrom: VersionRef?

        public init(namespace: String, name: String, clonedFrom: VersionRef? = nil) {
            self.namespace = namespace
            self.name = name
            self.clonedFrom = clonedFrom
        }

        enum CodingKeys: String, CodingKey {
            case namespace, name
            case clonedFrom = "cloned_from"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(namespace, forKey: .namespace)
            try container.encode(name, forKey: .name)
            try container.encode(clonedFrom, forKey: .clonedFrom)
        }
    }

    /// A new version, with its full snapshot (never a diff) and which fields changed.
    public struct VersionDrafted: Sendable, Equatable, Encodable {
        public var version: VersionSnapshot
        public var changedFields: [String]

        public init(version: VersionSnapshot, changedFields: [String]) {
            self.version = version
            self.changedFields = changedFields
        }

        enum CodingKeys: String, CodingKey {
            case version
            case changedFields = "changed_fields"
        }
    }

    public struct Published: Sendable, Equatable, Encodable {
        public var version: Int
        public var previousPublishedVersion: Int?
        public var changeNote: String?

        public init(version: Int, previousPublishedVersion: Int?, changeNote: String?) {
            self.version = version
            self.previousPublishedVersion = previousPublishedVersion
            self.changeNote = changeNote
        }

        enum CodingKeys: String, CodingKey {
            case version
            case previousPublishedVersion = "previous_published_version"
            case changeNote = "change_note"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(version, forKey: .version)
            try container.encode(previousPublishedVersion, forKey: .previousPublishedVersion)
            try container.encode(changeNote, forKey: .changeNote)
        }
    }

    public struct Archived: Sendable, Equatable, Encodable {
        public var reason: String?
        public var previousStatus: DatasetStatus

        public init(reason: String?, previousStatus: DatasetStatus) {
            self.reason = reason
            self.previousStatus = previousStatus
        }

        enum CodingKeys: String, CodingKey {
            case reason
            case previousStatus = "previous_status"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(reason, forKey: .reason)
            try container.encode(previousStatus, forKey: .previousStatus)
        }
    }

    public struct Restored: Sendable, Equatable, Encodable {
        public var status: DatasetStatus

        public init(status: DatasetStatus) { self.status = status }
    }

    public struct Retired: Sendable, Equatable, Encodable {
        public var reason: String

        public init(reason: String) { self.reason = reason }
    }

    /// Lineage into this dataset (the output): the input versions a job read to make one version of it.
    public struct LineageRecorded: Sendable, Equatable, Encodable {
        public struct Job: Sendable, Equatable, Hashable, Encodable {
            public var namespace: String
            public var name: String

            public init(namespace: String, name: String) {
                self.namespace = namespace
                self.name = name
            }
        }

        public var job: Job?
        public var runID: String?
        public var inputs: [VersionRef]
        public var output: VersionRef

        public init(job: Job?, runID: String?, inputs: [VersionRef], output: VersionRef) {
            self.job = job
            self.runID = runID
            self.inputs = inputs
            self.output = output
        }

        enum CodingKeys: String, CodingKey {
            case job, inputs, output
            case runID = "run_id"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(job, forKey: .job)
            try container.encode(runID, forKey: .runID)
            try container.encode(inputs, forKey: .inputs)
            try container.encode(output, forKey: .output)
        }
    }

    /// A pin: this consumer (a training run, a report) used this version.
    public struct VersionUsed: Sendable, Equatable, Encodable {
        public var version: Int
        public var consumer: String
        public var kind: String?
        public var properties: [String: JSONValue]

        public init(version: Int, consumer: String, kind: String?, properties: [String: JSONValue]) {
            self.version = version
            self.consumer = consumer
            self.kind = kind
            self.properties = properties
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(version, forKey: .version)
            try container.encode(consumer, forKey: .consumer)
            try container.encode(kind, forKey: .kind)
            try container.encode(properties, forKey: .properties)
        }

        enum CodingKeys: String, CodingKey { case version, consumer, kind, properties }
    }

    /// The event type's name in the log.
    public var type: String {
        switch self {
        case .created: return "DatasetCreated"
        case .versionDrafted: return "DatasetVersionDrafted"
        case .published: return "DatasetPublished"
        case .archived: return "DatasetArchived"
        case .restored: return "DatasetRestored"
        case .retired: return "DatasetRetired"
        case .lineageRecorded: return "LineageRecorded"
        case .versionUsed: return "DatasetVersionUsed"
        }
    }

    public static let allTypes = [
        "DatasetCreated", "DatasetVersionDrafted", "DatasetPublished", "DatasetArchived", "DatasetRestored",
        "DatasetRetired", "LineageRecorded", "DatasetVersionUsed",
    ]

    /// Every event type is at version 1 of its schema.
    public static let schemaVersion = 1
}

/// The log holds an event type this build does not know.
public struct UnknownEventType: Error, Equatable {
    public var type: String
}
