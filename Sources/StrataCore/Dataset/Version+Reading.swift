import Foundation

// A version's parts read from event payloads with ``JSONReader``, member for member as their `Decodable`
// forms read them (those stay, for request bodies and merge patches): unknown members are skipped, a
// repeated member keeps its first value, as `JSONDecoder` kept it. So each member is held as an optional
// while the object is read, nil until its first occurrence; an optional member twice optional,
// `.some(nil)` for `null`.

extension DatasetFormat {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        self = try reader.string(
            as: DatasetFormat.init(rawValue:),
            expected: "a format: one of \(DatasetFormat.allCases.map(\.rawValue).joined(separator: ", "))")
    }
}

extension Column {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var name: String?
        var type: String?
        var nullable: Bool??
        var description: String??
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "name" where name == nil: name = try reader.string()
            case "type" where type == nil: type = try reader.string()
            case "nullable" where nullable == nil: nullable = .some(try reader.optionalBool())
            case "description" where description == nil: description = .some(try reader.optionalString())
            default: try reader.skipValue()
            }
        }
        self.init(
            name: try reader.required(name, "name"), type: try reader.required(type, "type"),
            nullable: nullable ?? nil, description: description ?? nil)
    }
}

extension VersionRef {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var datasetID: UUID?
        var version: Int?
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "dataset_id" where datasetID == nil: datasetID = try reader.uuid()
            case "version" where version == nil: version = try reader.int()
            default: try reader.skipValue()
            }
        }
        self.init(
            datasetID: try reader.required(datasetID, "dataset_id"), version: try reader.required(version, "version"))
    }
}

extension VersionFields {
    /// The fields an object holds as JSON text (a request's body, an edit's merged patch), as their
    /// `Decodable` form reads them. ``JSONReader`` accepts what `JSONDecoder` accepts, several times
    /// faster; what it refuses is handed to `JSONDecoder`, so that a refusal is worded as it always was.
    public init(json bytes: [UInt8]) throws {
        do {
            self = try JSONReader.read(bytes) { reader throws(JSONReadError) in try VersionFields(reading: &reader) }
        } catch {
            self = try JSONDecoder().decode(VersionFields.self, from: Data(bytes))
        }
    }

    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var members = Members()
        try reader.readObject { key, reader throws(JSONReadError) in
            if try !members.read(key, from: &reader) { try reader.skipValue() }
        }
        self = members.take()
    }

    /// The fields as an object's members are read, for ``VersionSnapshot``, whose object holds them
    /// beside a member of its own. Every member may be absent or `null`, which mean the same: no value
    /// (empty, for lists and `properties`).
    struct Members {
        private var owner: String??
        private var description: String??
        private var location: String??
        private var format: DatasetFormat??
        private var schema: [Column]?
        private var tags: [String]?
        private var rowCount: Int64??
        private var sizeBytes: Int64??
        private var properties: [String: JSONValue]?
        private var parents: [VersionRef]?
        private var changeNote: String??

        /// Reads the member `key`'s value if the member is a field not read yet; answers whether it did.
        mutating func read(_ key: JSONKey, from reader: inout JSONReader) throws(JSONReadError) -> Bool {
            switch key {
            case "owner" where owner == nil: owner = .some(try reader.optionalString())
            case "description" where description == nil: description = .some(try reader.optionalString())
            case "location" where location == nil: location = .some(try reader.optionalString())
            case "format" where format == nil: format = .some(try reader.optional(DatasetFormat.init(reading:)))
            case "schema" where schema == nil: schema = try reader.optionalArray(Column.init(reading:)) ?? []
            case "tags" where tags == nil: tags = try reader.optionalArray(String.init(reading:)) ?? []
            case "row_count" where rowCount == nil: rowCount = .some(try reader.optionalInt64())
            case "size_bytes" where sizeBytes == nil: sizeBytes = .some(try reader.optionalInt64())
            case "properties" where properties == nil:
                properties = try reader.optional { reader throws(JSONReadError) in try reader.object() } ?? [:]
            case "parents" where parents == nil: parents = try reader.optionalArray(VersionRef.init(reading:)) ?? []
            case "change_note" where changeNote == nil: changeNote = .some(try reader.optionalString())
            default: return false
            }
            return true
        }

        /// The fields read, moved out of the members: copying them (the closure reading them holds on to
        /// the members) cost a tenth of a version's decoding.
        mutating func take() -> VersionFields {
            VersionFields(
                owner: owner.take() ?? nil, description: description.take() ?? nil, location: location.take() ?? nil,
                format: format.take() ?? nil, schema: schema.take() ?? [], tags: tags.take() ?? [],
                rowCount: rowCount.take() ?? nil, sizeBytes: sizeBytes.take() ?? nil,
                properties: properties.take() ?? [:], parents: parents.take() ?? [],
                changeNote: changeNote.take() ?? nil)
        }
    }
}

extension VersionSnapshot {
    /// `version` and the fields, all members of one object.
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var version: Int?
        var fields = VersionFields.Members()
        try reader.readObject { key, reader throws(JSONReadError) in
            if key == "version" && version == nil {
                version = try reader.int()
            } else if try !fields.read(key, from: &reader) {
                try reader.skipValue()
            }
        }
        self.init(version: try reader.required(version.take(), "version"), fields: fields.take())
    }
}
