import Foundation

// Events written into the log: each payload straight into bytes by ``CanonicalJSONWriter``, member by
// member in sorted order — the bytes `CanonicalJSON.string` gives for the payload's `Encodable` form,
// which the log already holds for every event written before. The append pipeline encodes every event
// it appends, in its one serial section, and going through `JSONEncoder` there was a third of that
// section's time. `EventSchemaTests` holds the two forms to each other on random events.

extension DatasetEvent {
    /// The payload as JSON text, keys sorted, as it goes into the log's `data` column.
    public func encodedData() -> String {
        var writer = CanonicalJSONWriter(capacity: 256)
        writer.payload(of: self)
        return writer.string
    }
}

extension CanonicalJSONWriter {
    mutating func payload(of event: DatasetEvent) {
        beginObject()
        switch event {
        case .created(let created):
            key("cloned_from")
            if let source = created.clonedFrom { versionRef(source) } else { null() }
            key("name")
            value(created.name)
            key("namespace")
            value(created.namespace)
        case .versionDrafted(let drafted):
            key("changed_fields")
            beginArray()
            for field in drafted.changedFields { value(field) }
            endArray()
            key("version")
            snapshot(drafted.version)
        case .published(let published):
            key("change_note")
            value(published.changeNote)
            key("previous_published_version")
            value(published.previousPublishedVersion)
            key("version")
            value(published.version)
        case .archived(let archived):
            key("previous_status")
            value(archived.previousStatus.rawValue)
            key("reason")
            value(archived.reason)
        case .restored(let restored):
            key("status")
            value(restored.status.rawValue)
        case .retired(let retired):
            key("reason")
            value(retired.reason)
        case .lineageRecorded(let lineage):
            key("inputs")
            beginArray()
            for input in lineage.inputs { versionRef(input) }
            endArray()
            key("job")
            if let job = lineage.job {
                beginObject()
                key("name")
                value(job.name)
                key("namespace")
                value(job.namespace)
                endObject()
            } else {
                null()
            }
            key("output")
            versionRef(lineage.output)
            key("run_id")
            value(lineage.runID)
        case .versionUsed(let used):
            key("consumer")
            value(used.consumer)
            key("kind")
            value(used.kind)
            key("properties")
            object(used.properties)
            key("version")
            value(used.version)
        }
        endObject()
    }

    /// A version's fields as one object, every member written, `null` included, as their `Encodable`
    /// form writes them.
    mutating func fields(_ fields: VersionFields) {
        beginObject()
        key("change_note")
        value(fields.changeNote)
        describingFields(fields)
        tags(fields.tags)
        endObject()
    }

    /// A version's snapshot as a drafting event holds it: its number and its fields, side by side.
    mutating func snapshot(_ snapshot: VersionSnapshot) {
        let fields = snapshot.fields
        beginObject()
        key("change_note")
        value(fields.changeNote)
        describingFields(fields)
        tags(fields.tags)
        key("version")
        value(snapshot.version)
        endObject()
    }
}
