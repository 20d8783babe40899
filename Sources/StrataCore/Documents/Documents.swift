import Foundation

/// The API's JSON for a dataset, a version and a usage, each rendered from the domain state alone.
///
/// The projector renders these once, when an event changes them, and stores the text; reads return it
/// as stored. Keys are sorted and nothing depends on a clock or on other rows, so a rebuild from the
/// log renders the very same bytes.
public enum Documents {
    /// `currentVersionDocument`, when given, must be ``version(_:of:)`` of the current version, already
    /// rendered; it goes in as it is.
    public static func dataset(_ state: DatasetState, currentVersionDocument: String? = nil) -> String {
        var writer = CanonicalJSONWriter(capacity: 1024)
        writer.dataset(state, currentVersionDocument: currentVersionDocument)
        return writer.string
    }

    public static func version(_ number: Int, of state: DatasetState) -> String {
        var writer = CanonicalJSONWriter(capacity: 768)
        writer.version(number, of: state)
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

// The documents' members, written in sorted order (the writer checks it in debug builds). Written by
// hand rather than through `Encodable`: rendering them was most of a rebuild's time.
extension CanonicalJSONWriter {
    mutating func dataset(_ state: DatasetState, currentVersionDocument: String?) {
        let current = state.currentVersion
        beginObject()
        key("cloned_from")
        if let source = state.clonedFrom { versionRef(source) } else { null() }
        key("created_at")
        timestamp(state.createdAt)
        key("created_by")
        value(state.createdBy)
        key("current")
        if let currentVersionDocument {
            rendered(currentVersionDocument)
        } else if let current {
            version(current, of: state)
        } else {
            null()
        }
        key("id")
        value(state.id)
        key("latest_version")
        value(state.latestVersion)
        key("name")
        value(state.name)
        key("namespace")
        value(state.namespace)
        key("owner")
        value(current.flatMap { state.version($0)?.snapshot.fields.owner })
        key("published_version")
        value(state.publishedVersion)
        key("retired_reason")
        value(state.retiredReason)
        key("status")
        value(state.status.rawValue)
        key("stream_version")
        value(state.streamVersion)
        key("updated_at")
        timestamp(state.updatedAt)
        key("updated_by")
        value(state.updatedBy)
        endObject()
    }

    /// A version as the API shows it: its snapshot's fields, its status and who made it when.
    mutating func version(_ number: Int, of state: DatasetState) {
        let record = state.versions[number - 1]
        let fields = record.snapshot.fields
        beginObject()
        key("change_note")
        value(fields.changeNote)
        key("created_at")
        timestamp(record.createdAt)
        key("created_by")
        value(record.createdBy)
        key("dataset_id")
        value(state.id)
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
        key("status")
        value(state.status(ofVersion: number).rawValue)
        key("tags")
        beginArray()
        for tag in fields.tags { value(tag) }
        endArray()
        key("version")
        value(number)
        endObject()
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
