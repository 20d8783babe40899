import Foundation

/// The dataset lifecycle: which events a command produces from a state, or why it is refused.
///
/// The lifecycle table of API.md, read down the `switch`:
///
/// | from \ action | edit | publish | archive | restore | retire |
/// |---|---|---|---|---|---|
/// | draft | new draft | → published | → archived | 409 | → retired |
/// | published | new draft | a newer draft → published | → archived | 409 | → retired |
/// | archived | 409 | 409 | 409 | → status before archive | → retired |
/// | retired | 409 | 409 | 409 | 409 | 409 |
public enum DatasetDecider {
    public static func decide(_ command: DatasetCommand, state: DatasetState) throws(DomainError) -> [DatasetEvent] {
        if case .create(let namespace, let name, let fields, let clonedFrom) = command {
            guard !state.exists else { throw .alreadyExists }
            return [
                .created(.init(namespace: namespace, name: name, clonedFrom: clonedFrom)),
                .versionDrafted(
                    .init(
                        version: VersionSnapshot(version: 1, fields: fields),
                        changedFields: fields.changedFields(since: VersionFields())
                    )
                ),
            ]
        }
        guard state.exists else { throw .datasetNotFound }

        switch (command, state.status) {
        case (.edit(let patch), .draft), (.edit(let patch), .published):
            return try edit(state, patch: patch)
        case (.publish(let version, let changeNote), .draft), (.publish(let version, let changeNote), .published):
            return try publish(state, version: version, changeNote: changeNote)
        case (.archive(let reason), .draft), (.archive(let reason), .published):
            return [.archived(.init(reason: reason, previousStatus: state.status))]
        case (.restore, .archived):
            return [.restored(.init(status: state.statusBeforeArchive ?? .draft))]
        case (.retire(let reason), .draft), (.retire(let reason), .published), (.retire(let reason), .archived):
            return [.retired(.init(reason: reason))]
        case (.recordUsage(let version, let consumer, let kind, let properties), .draft),
            (.recordUsage(let version, let consumer, let kind, let properties), .published):
            guard state.hasDrafted(version) else { throw .versionNotFound(version) }
            return [.versionUsed(.init(version: version, consumer: consumer, kind: kind, properties: properties))]
        case (.recordLineage(let version, let inputs, let job, let runID), .draft),
            (.recordLineage(let version, let inputs, let job, let runID), .published):
            guard state.hasDrafted(version) else { throw .versionNotFound(version) }
            if inputs.contains(where: { $0.datasetID == state.id }) { throw .selfLoop }
            let output = VersionRef(datasetID: state.id, version: version)
            return [.lineageRecorded(.init(job: job, runID: runID, inputs: inputs, output: output))]
        default:
            throw .invalidTransition(action: command.action, status: state.status)
        }
    }

    /// Folds a stream's events into its state.
    public static func state(
        of id: UUID,
        from events: some Sequence<(DatasetEvent, EventContext)>
    ) -> DatasetState {
        events.reduce(DatasetState(id: id)) { state, next in state.evolve(next.0, context: next.1) }
    }

    private static func edit(_ state: DatasetState, patch: JSONValue) throws(DomainError) -> [DatasetEvent] {
        guard let latest = state.version(state.latestVersion)?.snapshot.fields else { throw .datasetNotFound }
        var base = latest
        base.changeNote = nil
        let patched: VersionFields
        do {
            // Our own writer and reader, not Foundation's coders: an edit's CPU time is mostly this JSON, and
            // the append pipeline decides its edits one after another while it holds the log's lock.
            var written = CanonicalJSONWriter(capacity: 512)
            written.fields(base)
            let encoded = try JSONReader.read(written.bytes) { reader throws(JSONReadError) in try reader.value() }
            var merged = CanonicalJSONWriter()
            merged.value(encoded.merging(patch: patch))
            patched = try VersionFields(json: merged.bytes)
        } catch {
            throw .invalidPatch("\(error)")
        }
        if patched.parents.contains(where: { $0.datasetID == state.id }) { throw .selfLoop }
        var withoutNote = patched
        withoutNote.changeNote = nil
        guard withoutNote != base else { return [] }
        return [
            .versionDrafted(
                .init(
                    version: VersionSnapshot(version: state.latestVersion + 1, fields: patched),
                    changedFields: patched.changedFields(since: latest).filter { $0 != "change_note" }
                )
            )
        ]
    }

    private static func publish(
        _ state: DatasetState,
        version requested: Int?,
        changeNote: String?
    ) throws(DomainError) -> [DatasetEvent] {
        let candidates = state.publishableDrafts
        let number: Int
        if let requested {
            guard state.hasDrafted(requested) else { throw .versionNotFound(requested) }
            guard candidates.contains(requested) else {
                throw .invalidTransition(
                    action: "publish", status: state.status,
                    detail:
                        "version \(requested) is \(state.status(ofVersion: requested).rawValue), not a draft newer than the published version"
                )
            }
            number = requested
        } else {
            guard let latest = candidates.last else {
                throw .invalidTransition(
                    action: "publish", status: state.status, detail: "no draft is newer than the published version"
                )
            }
            number = latest
        }
        guard let fields = state.version(number)?.snapshot.fields else {
            preconditionFailure("publishing version \(number), which the state does not hold: see CatalogDecider.needs")
        }
        var missing: [String] = []
        if (fields.location ?? "").isEmpty { missing.append("location") }
        if fields.schema.isEmpty { missing.append("schema") }
        guard missing.isEmpty else { throw .publishCheckFailed(version: number, missing: missing) }
        return [
            .published(.init(version: number, previousPublishedVersion: state.publishedVersion, changeNote: changeNote))
        ]
    }
}
