import Foundation

/// The API's JSON for a dataset, a version and a usage, each rendered from the domain state alone.
///
/// The projector renders these once, when an event changes them, and stores the text; reads return it
/// as stored. Keys are sorted and nothing depends on a clock or on other rows, so a rebuild from the
/// log renders the very same bytes.
public enum Documents {
    public static func dataset(_ state: DatasetState) -> String {
        encode(DatasetDocument(state))
    }

    public static func version(_ number: Int, of state: DatasetState) -> String {
        encode(VersionDocument(number, of: state))
    }

    public static func usage(_ usage: UsageRecord, of datasetID: UUID, position: Int64) -> String {
        encode(UsageDocument(datasetID: datasetID, usage: usage, position: position))
    }

    static func encode(_ value: some Encodable) -> String {
        CanonicalJSON.string(value)
    }
}

struct VersionDocument: Encodable {
    let datasetID: UUID
    let number: Int
    let status: VersionStatus
    let record: VersionRecord

    init(_ number: Int, of state: DatasetState) {
        datasetID = state.id
        self.number = number
        status = state.status(ofVersion: number)
        record = state.versions[number - 1]
    }

    enum CodingKeys: String, CodingKey {
        case datasetID = "dataset_id"
        case version, status
        case createdAt = "created_at"
        case createdBy = "created_by"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(datasetID.lowercased, forKey: .datasetID)
        try container.encode(number, forKey: .version)
        try container.encode(status, forKey: .status)
        try container.encode(Timestamp.string(from: record.createdAt), forKey: .createdAt)
        try container.encode(record.createdBy, forKey: .createdBy)
        try record.snapshot.fields.encode(to: encoder)
    }
}

struct DatasetDocument: Encodable {
    let state: DatasetState

    init(_ state: DatasetState) { self.state = state }

    enum CodingKeys: String, CodingKey {
        case id, namespace, name, status, owner, current
        case streamVersion = "stream_version"
        case latestVersion = "latest_version"
        case publishedVersion = "published_version"
        case createdAt = "created_at"
        case createdBy = "created_by"
        case updatedAt = "updated_at"
        case updatedBy = "updated_by"
        case retiredReason = "retired_reason"
        case clonedFrom = "cloned_from"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(state.id.lowercased, forKey: .id)
        try container.encode(state.namespace, forKey: .namespace)
        try container.encode(state.name, forKey: .name)
        try container.encode(state.status, forKey: .status)
        try container.encode(state.streamVersion, forKey: .streamVersion)
        try container.encode(state.latestVersion, forKey: .latestVersion)
        try container.encode(state.publishedVersion, forKey: .publishedVersion)
        let current = state.currentVersion
        try container.encode(current.flatMap { state.version($0)?.snapshot.fields.owner }, forKey: .owner)
        try container.encode(Timestamp.string(from: state.createdAt), forKey: .createdAt)
        try container.encode(state.createdBy, forKey: .createdBy)
        try container.encode(Timestamp.string(from: state.updatedAt), forKey: .updatedAt)
        try container.encode(state.updatedBy, forKey: .updatedBy)
        try container.encode(state.retiredReason, forKey: .retiredReason)
        try container.encode(state.clonedFrom, forKey: .clonedFrom)
        try container.encode(current.map { VersionDocument($0, of: state) }, forKey: .current)
    }
}

struct UsageDocument: Encodable {
    let datasetID: UUID
    let usage: UsageRecord
    let position: Int64

    enum CodingKeys: String, CodingKey {
        case datasetID = "dataset_id"
        case version, consumer, kind, properties, position
        case recordedAt = "recorded_at"
        case recordedBy = "recorded_by"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(datasetID.lowercased, forKey: .datasetID)
        try container.encode(usage.version, forKey: .version)
        try container.encode(usage.consumer, forKey: .consumer)
        try container.encode(usage.kind, forKey: .kind)
        try container.encode(usage.properties, forKey: .properties)
        try container.encode(position, forKey: .position)
        try container.encode(Timestamp.string(from: usage.recordedAt), forKey: .recordedAt)
        try container.encode(usage.recordedBy, forKey: .recordedBy)
    }
}

extension UUID {
    /// UUIDs are written in lower case on the wire, as RFC 9562 recommends.
    public var lowercased: String { uuidString.lowercased() }
}
