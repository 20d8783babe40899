import Foundation

/// The API's JSON for a dataset, a version and a usage, each rendered from the domain state alone.
///
/// Keys are sorted and nothing depends on a clock or on other rows, so a rebuild from the log renders
/// the very same bytes. A version's document is rendered when it is read, from the event that drafted
/// it (which holds the whole snapshot) and the status the version has there; a dataset's document is
/// put together from its ``DatasetSummary`` and its current version's document.
public enum Documents {
    public static func dataset(_ state: DatasetState) -> String {
        dataset(
            DatasetSummary(state),
            currentVersion: state.currentVersion.map { version($0, of: state) }
        )
    }

    /// `currentVersion` must be the current version's document, as ``version(_:of:status:)`` renders
    /// it; it goes in as it is. With `usage`, the document is the list's: it also says how often and
    /// when last the dataset was used (`usage_count`, `last_used_at`).
    public static func dataset(_ summary: DatasetSummary, currentVersion: String?, usage: Usage? = nil) -> String {
        var writer = CanonicalJSONWriter(capacity: 1024)
        writer.dataset(summary, currentVersion: currentVersion, usage: usage)
        return writer.string
    }

    /// How often a dataset's versions were pinned as used, and when last.
    public struct Usage: Sendable, Equatable {
        public var count: Int
        public var lastUsedAt: Date?

        public init(count: Int, lastUsedAt: Date?) {
            self.count = count
            self.lastUsedAt = lastUsedAt
        }
    }

    /// Version `number` of `state`, which must hold it (a state always holds its current version).
    public static func version(_ number: Int, of state: DatasetState) -> String {
        guard let record = state.version(number) else {
            preconditionFailure("rendering version \(number), which the state does not hold")
        }
        return version(record, of: state.id, status: state.status(ofVersion: number))
    }

    /// A version's document: what it was drafted with, by whom and when, and `status`, the one thing
    /// about it that changes as its dataset goes on.
    public static func version(_ record: VersionRecord, of datasetID: UUID, status: VersionStatus) -> String {
        var writer = CanonicalJSONWriter(capacity: 768)
        writer.version(record, of: datasetID, status: status)
        return writer.string
    }

    public static func usage(_ usage: UsageRecord, of datasetID: UUID, position: Int64) -> String {
        var writer = CanonicalJSONWriter(capacity: 256)
        writer.beginObject()
        writer.key("consumer")
        writer.value(usage.consumer)
        writer.key("dataset_id")
        writer.value(datasetID)
        writer.key("kind")
        writer.value(usage.kind)
        writer.key("position")
        writer.value(position)
        writer.key("properties")
        writer.object(usage.properties)
        writer.key("recorded_at")
        writer.timestamp(usage.recordedAt)
        writer.key("recorded_by")
        writer.value(usage.recordedBy)
        writer.key("version")
        writer.value(usage.version)
        writer.endObject()
        return writer.string
    }
}

/// Everything a dataset's document says besides its current version.
public struct DatasetSummary: Sendable, Equatable {
    public var id: UUID
    public var namespace: String
    public var name: String
    public var status: DatasetStatus
    public var streamVersion: Int64
    public var latestVersion: Int
    public var publishedVersion: Int?
    /// The current version's owner.
    public var owner: String?
    public var clonedFrom: VersionRef?
    public var createdAt: Date
    public var createdBy: String
    public var updatedAt: Date
    public var updatedBy: String
    public var retiredReason: String?

    public init(
        id: UUID, namespace: String, name: String, status: DatasetStatus, streamVersion: Int64, latestVersion: Int,
        publishedVersion: Int?, owner: String?, clonedFrom: VersionRef?, createdAt: Date, createdBy: String,
        updatedAt: Date, updatedBy: String, retiredReason: String?
    ) {
        self.id = id
        self.namespace = namespace
        self.name = name
        self.status = status
        self.streamVersion = streamVersion
        self.latestVersion = latestVersion
        self.publishedVersion = publishedVersion
        self.owner = owner
        self.clonedFrom = clonedFrom
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
        self.retiredReason = retiredReason
    }

    public init(_ state: DatasetState) {
        self.init(
            id: state.id, namespace: state.namespace, name: state.name, status: state.status,
            streamVersion: state.streamVersion, latestVersion: state.latestVersion,
            publishedVersion: state.publishedVersion,
            owner: state.currentVersion.flatMap { state.version($0)?.snapshot.fields.owner },
            clonedFrom: state.clonedFrom, createdAt: state.createdAt, createdBy: state.createdBy,
            updatedAt: state.updatedAt, updatedBy: state.updatedBy, retiredReason: state.retiredReason
        )
    }
}

// The documents' members, written in sorted order (the writer checks it in debug builds). Written by
// hand rather than through `Encodable`: rendering them was most of a rebuild's time.
extension CanonicalJSONWriter {
    mutating func dataset(_ summary: DatasetSummary, currentVersion: String?, usage: Documents.Usage? = nil) {
        beginObject()
        key("cloned_from")
        if let source = summary.clonedFrom { versionRef(source) } else { null() }
        key("created_at")
        timestamp(summary.createdAt)
        key("created_by")
        value(summary.createdBy)
        key("current")
        if let currentVersion { rendered(currentVersion) } else { null() }
        key("id")
        value(summary.id)
        if let usage {
            key("last_used_at")
            if let lastUsedAt = usage.lastUsedAt { timestamp(lastUsedAt) } else { null() }
        }
        key("latest_version")
        value(summary.latestVersion)
        key("name")
        value(summary.name)
        key("namespace")
        value(summary.namespace)
        key("owner")
        value(summary.owner)
        key("published_version")
        value(summary.publishedVersion)
        key("retired_reason")
        value(summary.retiredReason)
        key("status")
        value(summary.status.rawValue)
        key("stream_version")
        value(summary.streamVersion)
        key("updated_at")
        timestamp(summary.updatedAt)
        key("updated_by")
        value(summary.updatedBy)
        if let usage {
            key("usage_count")
            value(usage.count)
        }
        endObject()
    }

    /// A version as the API shows it: its snapshot's fields, its status and who made it when.
    mutating func version(_ record: VersionRecord, of datasetID: UUID, status: VersionStatus) {
        let fields = record.snapshot.fields
        beginObject()
        key("change_note")
        value(fields.changeNote)
        key("created_at")
        timestamp(record.createdAt)
        key("created_by")
        value(record.createdBy)
        key("dataset_id")
        value(datasetID)
        describingFields(fields)
        key("status")
        value(status.rawValue)
        tags(fields.tags)
        key("version")
        value(record.snapshot.version)
        endObject()
    }

    /// A version's fields from `description` to `size_bytes`, the run of members that a version's
    /// document and a drafting event's snapshot both write, in this order, between others of their own.
    mutating func describingFields(_ fields: VersionFields) {
        key("description")
        value(fields.description)
        key("format")
        value(fields.format?.rawValue)
        key("location")
        value(fields.location)
        key("owner")
        value(fields.owner)
        key("parents")
        beginArray()
        for parent in fields.parents { versionRef(parent) }
        endArray()
        key("properties")
        object(fields.properties)
        key("row_count")
        value(fields.rowCount)
        key("schema")
        beginArray()
        for column in fields.schema { self.column(column) }
        endArray()
        key("size_bytes")
        value(fields.sizeBytes)
    }

    mutating func tags(_ tags: [String]) {
        key("tags")
        beginArray()
        for tag in tags { value(tag) }
        endArray()
    }

    mutating func versionRef(_ reference: VersionRef) {
        beginObject()
        key("dataset_id")
        value(reference.datasetID)
        key("version")
        value(reference.version)
        endObject()
    }

    /// A column leaves out the optional members it does not have, as its `Codable` form does.
    mutating func column(_ column: Column) {
        beginObject()
        if let description = column.description {
            key("description")
            value(description)
        }
        key("name")
        value(column.name)
        if let nullable = column.nullable {
            key("nullable")
            value(nullable)
        }
        key("type")
        value(column.type)
        endObject()
    }
}
