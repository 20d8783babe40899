import Foundation

/// The storage formats a dataset version can declare.
public enum DatasetFormat: String, Sendable, Codable, CaseIterable {
    case parquet, csv, json, avro, orc, delta, iceberg, webdataset, table, other
}

/// One column of a version's schema.
public struct Column: Sendable, Equatable, Hashable, Codable {
    public var name: String
    public var type: String
    public var nullable: Bool?
    public var description: String?

    public init(name: String, type: String, nullable: Bool? = nil, description: String? = nil) {
        self.name = name
        self.type = type
        self.nullable = nullable
        self.description = description
    }
}

/// A dataset at one version: an edge end in lineage, a parent of a version, a clone's source.
public struct VersionRef: Sendable, Equatable, Hashable, Codable {
    public var datasetID: UUID
    public var version: Int

    public init(datasetID: UUID, version: Int) {
        self.datasetID = datasetID
        self.version = version
    }

    enum CodingKeys: String, CodingKey {
        case datasetID = "dataset_id"
        case version
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        datasetID = try container.decode(UUID.self, forKey: .datasetID)
        version = try container.decode(Int.self, forKey: .version)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(datasetID.lowercased, forKey: .datasetID)
        try container.encode(version, forKey: .version)
    }
}

/// Everything a version says about its dataset. Each field lives on the version, so changing any
/// of them is an edit that makes a new version.
public struct VersionFields: Sendable, Equatable, Codable {
    public var owner: String?
    public var description: String?
    public var location: String?
    public var format: DatasetFormat?
    public var schema: [Column]
    public var tags: [String]
    public var rowCount: Int64?
    public var sizeBytes: Int64?
    public var properties: [String: JSONValue]
    public var parents: [VersionRef]
    /// Why this version was made; it describes one change, so an edit does not inherit it.
    public var changeNote: String?

    public init(
        owner: String? = nil, description: String? = nil, location: String? = nil, format: DatasetFormat? = nil,
        schema: [Column] = [], tags: [String] = [], rowCount: Int64? = nil, sizeBytes: Int64? = nil,
        properties: [String: JSONValue] = [:], parents: [VersionRef] = [], changeNote: String? = nil
    ) {
        self.owner = owner
        self.description = description
        self.location = location
        self.format = format
        self.schema = schema
        self.tags = tags
        self.rowCount = rowCount
        self.sizeBytes = sizeBytes
        self.properties = properties
        self.parents = parents
        self.changeNote = changeNote
    }

    /// The wire names of the fields, in the order the API lists them.
    public static let fieldNames = [
        "owner", "description", "location", "format", "schema", "tags", "row_count", "size_bytes", "properties",
        "parents", "change_note",
    ]

    enum CodingKeys: String, CodingKey {
        case owner, description, location, format, schema, tags, properties, parents
        case rowCount = "row_count"
        case sizeBytes = "size_bytes"
        case changeNote = "change_note"
    }

    /// Absent and `null` mean the same: no value (empty, for lists and `properties`). Request bodies and
    /// merge patches are decoded so; event payloads are read by `init(reading:)`, which
    /// `EventPayloadReadingTests` holds to this.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        owner = try container.decodeIfPresent(String.self, forKey: .owner)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        location = try container.decodeIfPresent(String.self, forKey: .location)
        format = try container.decodeIfPresent(DatasetFormat.self, forKey: .format)
        schema = try container.decodeIfPresent([Column].self, forKey: .schema) ?? []
        tags = try container.decodeIfPresent([String].self, forKey: .tags) ?? []
        rowCount = try container.decodeIfPresent(Int64.self, forKey: .rowCount)
        sizeBytes = try container.decodeIfPresent(Int64.self, forKey: .sizeBytes)
        properties = try container.decodeIfPresent([String: JSONValue].self, forKey: .properties) ?? [:]
        parents = try container.decodeIfPresent([VersionRef].self, forKey: .parents) ?? []
        changeNote = try container.decodeIfPresent(String.self, forKey: .changeNote)
    }

    /// Every key is written, `null` included: a version snapshot is complete, never a diff.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(owner, forKey: .owner)
        try container.encode(description, forKey: .description)
        try container.encode(location, forKey: .location)
        try container.encode(format, forKey: .format)
        try container.encode(schema, forKey: .schema)
        try container.encode(tags, forKey: .tags)
        try container.encode(rowCount, forKey: .rowCount)
        try container.encode(sizeBytes, forKey: .sizeBytes)
        try container.encode(properties, forKey: .properties)
        try container.encode(parents, forKey: .parents)
        try container.encode(changeNote, forKey: .changeNote)
    }

    /// The names of the fields whose values differ from `other`'s.
    public func changedFields(since other: VersionFields) -> [String] {
        var changed: [String] = []
        if owner != other.owner { changed.append("owner") }
        if description != other.description { changed.append("description") }
        if location != other.location { changed.append("location") }
        if format != other.format { changed.append("format") }
        if schema != other.schema { changed.append("schema") }
        if tags != other.tags { changed.append("tags") }
        if rowCount != other.rowCount { changed.append("row_count") }
        if sizeBytes != other.sizeBytes { changed.append("size_bytes") }
        if properties != other.properties { changed.append("properties") }
        if parents != other.parents { changed.append("parents") }
        if changeNote != other.changeNote { changed.append("change_note") }
        return changed
    }
}

/// One immutable version of a dataset, as its `DatasetVersionDrafted` event recorded it.
public struct VersionSnapshot: Sendable, Equatable, Encodable {
    public var version: Int
    public var fields: VersionFields

    public init(version: Int, fields: VersionFields) {
        self.version = version
        self.fields = fields
    }

    enum CodingKeys: String, CodingKey { case version }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(version, forKey: .version)
        try fields.encode(to: encoder)
    }
}
