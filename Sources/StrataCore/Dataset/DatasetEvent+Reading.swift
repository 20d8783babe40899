import Foundation

// Events read back from the log: each payload straight from its JSON with ``JSONReader``, the one way
// payloads are decoded. A rebuild decodes a million of them, and decoding them with `JSONDecoder` was a
// third of its time.
//
// Each payload reads as its synthesized `Decodable` form read it: a missing member that is not optional
// is refused, an optional one may be absent or `null`, unknown members are skipped, and a repeated member
// keeps its first value, as `JSONDecoder` kept it. So each member is held as an optional while the object
// is read, nil until its first occurrence; an optional member twice optional, `.some(nil)` for `null`.

extension DatasetEvent {
    /// Reads an event back from its type name and payload.
    public static func decode(type: String, data: String) throws -> DatasetEvent {
        var data = data
        return try data.withUTF8 { try decode(type: type, json: UnsafeRawBufferPointer($0)) }
    }

    /// Reads an event back from its type name and the payload's UTF-8 bytes.
    public static func decode(type: String, json bytes: Data) throws -> DatasetEvent {
        try bytes.withUnsafeBytes { try decode(type: type, json: $0) }
    }

    /// Reads an event back from its type name and the payload's UTF-8 bytes, wherever they are: a
    /// caller holding them in a buffer of its own need not copy them.
    public static func decode(type: String, json bytes: UnsafeRawBufferPointer) throws -> DatasetEvent {
        switch type {
        case "DatasetCreated": return .created(try JSONReader.read(bytes, Created.init(reading:)))
        case "DatasetVersionDrafted": return .versionDrafted(try JSONReader.read(bytes, VersionDrafted.init(reading:)))
        case "DatasetPublished": return .published(try JSONReader.read(bytes, Published.init(reading:)))
        case "DatasetArchived": return .archived(try JSONReader.read(bytes, Archived.init(reading:)))
        case "DatasetRestored": return .restored(try JSONReader.read(bytes, Restored.init(reading:)))
        case "DatasetRetired": return .retired(try JSONReader.read(bytes, Retired.init(reading:)))
        case "LineageRecorded": return .lineageRecorded(try JSONReader.read(bytes, LineageRecorded.init(reading:)))
        case "DatasetVersionUsed": return .versionUsed(try JSONReader.read(bytes, VersionUsed.init(reading:)))
        default: throw UnknownEventType(type: type)
        }
    }
}

extension DatasetStatus {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        self = try reader.string(
            as: DatasetStatus.init(rawValue:),
            expected: "a status: one of \(DatasetStatus.allCases.map(\.rawValue).joined(separator: ", "))")
    }
}

extension DatasetEvent.Created {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var namespace: String?
        var name: String?
        var clonedFrom: VersionRef??
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "namespace" where namespace == nil: namespace = try reader.string()
            case "name" where name == nil: name = try reader.string()
            case "cloned_from" where clonedFrom == nil:
                clonedFrom = .some(try reader.optional(VersionRef.init(reading:)))
            default: try reader.skipValue()
            }
        }
        self.init(
            namespace: try reader.required(namespace, "namespace"), name: try reader.required(name, "name"),
            clonedFrom: clonedFrom ?? nil)
    }
}

extension DatasetEvent.VersionDrafted {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var version: VersionSnapshot?
        var changedFields: [String]?
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "version" where version == nil: version = try VersionSnapshot(reading: &reader)
            case "changed_fields" where changedFields == nil:
                changedFields = try reader.array(String.init(reading:))
            default: try reader.skipValue()
            }
        }
        // Taken, not copied: see `VersionFields.Members.take()`.
        self.init(
            version: try reader.required(version.take(), "version"),
            changedFields: try reader.required(changedFields.take(), "changed_fields"))
    }
}

extension DatasetEvent.Published {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var version: Int?
        var previousPublishedVersion: Int??
        var changeNote: String??
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "version" where version == nil: version = try reader.int()
            case "previous_published_version" where previousPublishedVersion == nil:
                previousPublishedVersion = .some(try reader.optionalInt())
            case "change_note" where changeNote == nil: changeNote = .some(try reader.optionalString())
            default: try reader.skipValue()
            }
        }
        self.init(
            version: try reader.required(version, "version"), previousPublishedVersion: previousPublishedVersion ?? nil,
            changeNote: changeNote ?? nil)
    }
}

extension DatasetEvent.Archived {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var reason: String??
        var previousStatus: DatasetStatus?
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "reason" where reason == nil: reason = .some(try reader.optionalString())
            case "previous_status" where previousStatus == nil: previousStatus = try DatasetStatus(reading: &reader)
            default: try reader.skipValue()
            }
        }
        self.init(reason: reason ?? nil, previousStatus: try reader.required(previousStatus, "previous_status"))
    }
}

extension DatasetEvent.Restored {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var status: DatasetStatus?
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "status" where status == nil: status = try DatasetStatus(reading: &reader)
            default: try reader.skipValue()
            }
        }
        self.init(status: try reader.required(status, "status"))
    }
}

extension DatasetEvent.Retired {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var reason: String?
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "reason" where reason == nil: reason = try reader.string()
            default: try reader.skipValue()
            }
        }
        self.init(reason: try reader.required(reason, "reason"))
    }
}

extension DatasetEvent.LineageRecorded {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var job: Job??
        var runID: String??
        var inputs: [VersionRef]?
        var output: VersionRef?
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "job" where job == nil: job = .some(try reader.optional(Job.init(reading:)))
            case "run_id" where runID == nil: runID = .some(try reader.optionalString())
            case "inputs" where inputs == nil: inputs = try reader.array(VersionRef.init(reading:))
            case "output" where output == nil: output = try VersionRef(reading: &reader)
            default: try reader.skipValue()
            }
        }
        self.init(
            job: job ?? nil, runID: runID ?? nil, inputs: try reader.required(inputs, "inputs"),
            output: try reader.required(output, "output"))
    }
}

extension DatasetEvent.LineageRecorded.Job {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var namespace: String?
        var name: String?
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "namespace" where namespace == nil: namespace = try reader.string()
            case "name" where name == nil: name = try reader.string()
            default: try reader.skipValue()
            }
        }
        self.init(namespace: try reader.required(namespace, "namespace"), name: try reader.required(name, "name"))
    }
}

extension DatasetEvent.VersionUsed {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var version: Int?
        var consumer: String?
        var kind: String??
        var properties: [String: JSONValue]?
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "version" where version == nil: version = try reader.int()
            case "consumer" where consumer == nil: consumer = try reader.string()
            case "kind" where kind == nil: kind = .some(try reader.optionalString())
            case "properties" where properties == nil: properties = try reader.object()
            default: try reader.skipValue()
            }
        }
        self.init(
            version: try reader.required(version, "version"), consumer: try reader.required(consumer, "consumer"),
            kind: kind ?? nil, properties: try reader.required(properties, "properties"))
    }
}
