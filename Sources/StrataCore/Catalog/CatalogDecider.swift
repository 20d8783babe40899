import Foundation

/// The catalog's rules across streams: what a write does to each stream it touches, given the view of
/// the catalog it may see. A dataset's own lifecycle is ``DatasetDecider``'s and a token's
/// ``TokenDecider``'s; here are the rules that reach past one stream — a name held by one dataset at a
/// time, a clone made from its source, lineage only from inputs that can feed it, an OpenLineage event
/// mapped onto all of these — and the caller's namespaces. Pure: no I/O, no clock, no id drawn.
public enum CatalogDecider {
    /// The most lineage edges (inputs × outputs) one write may record: a job reading fifty tables into
    /// five is 250; 1,000 × 1,000 would be a million rows written under the log's append lock, every
    /// other writer waiting.
    public static let mostLineageEdges = 10_000

    /// A decision: the events to append, in order, and the stream the request is about (the one its
    /// answer shows).
    public struct Decision: Sendable, Equatable {
        public var events: [StreamEvent]
        public var subject: UUID?
    }

    /// What `view` lacks to decide `command`. Empty when it has everything; otherwise load it and ask
    /// again (a clone's namespace may be its source's, and a name found leads to the dataset holding it).
    public static func needs(_ command: CatalogCommand, context: CommandContext, in view: CatalogView) -> Needs {
        var needs = Needs()
        func dataset(_ id: UUID) { if !view.knows(dataset: id) { needs.datasets.insert(id) } }
        func everyVersion(of id: UUID) {
            if !view.knows(dataset: id) || !view.dataset(id).holdsEveryVersion { needs.histories.insert(id) }
        }
        func name(_ namespace: String, _ name: String) {
            let key = CatalogView.Name(namespace, name)
            if !view.knows(name: key) {
                needs.names.insert(key)
            } else if let holder = view.holder(of: key) {
                dataset(holder)
            }
        }
        switch command {
        case .dataset(let id, let datasetCommand):
            // A new dataset's id is fresh (see ``CatalogCommand``): there is nothing to load for it.
            if case .create = datasetCommand {} else { dataset(id) }
            switch datasetCommand {
            case .create(let namespace, let datasetName, let fields, _):
                name(namespace, datasetName)
                for parent in fields.parents { dataset(parent.datasetID) }
            case .edit(let patch):
                // The parents the patch names are checked as inputs; those the new draft carries over were
                // checked when they were named.
                for case .object(let parent) in patch["parents"]?.arrayValue ?? [] {
                    if let id = parent["dataset_id"]?.stringValue.flatMap(UUID.init(uuidString:)) { dataset(id) }
                }
            case .publish(.some(let number), _):
                // A draft older than the latest is held only when asked for.
                let state = view.dataset(id)
                if view.knows(dataset: id), state.hasDrafted(number), state.version(number) == nil {
                    everyVersion(of: id)
                }
            default: break
            }
        case .clone(let source, _, let namespace, let cloneName, _):
            dataset(source)
            if let namespace {
                name(namespace, cloneName)
            } else if view.knows(dataset: source) {
                let state = view.dataset(source)
                if state.exists { name(state.namespace, cloneName) }
            }
        case .lineage(_, _, let inputs, let outputs):
            for end in inputs + outputs { dataset(end.datasetID) }
        case .openLineage(let ingest, _):
            for reported in ingest.inputs + ingest.outputs { name(reported.namespace, reported.name) }
            // An input's `datasetVersion` is looked for among all the versions of the dataset holding it.
            for input in ingest.inputs where input.datasetVersion != nil {
                if let holder = view.holder(of: CatalogView.Name(input.namespace, input.name)) {
                    everyVersion(of: holder)
                }
            }
        case .createToken(let id, let tokenName, _, _, _):
            if !view.knows(tokenName: tokenName) { needs.tokenNames.insert(tokenName) }
            needs.tokenStreams.insert(id)
        case .revokeToken(let tokenName):
            if !view.knows(tokenName: tokenName) {
                needs.tokenNames.insert(tokenName)
            } else if let id = view.tokenStream(named: tokenName) {
                needs.tokenStreams.insert(id)
            }
        }
        needs.tokenStreams = needs.tokenStreams.filter { view.tokenStreams[$0] == nil }
        return needs
    }

    /// What a view must load before a command can be decided.
    public struct Needs: Sendable, Equatable {
        public var datasets: Set<UUID> = []
        /// Datasets whose every version the command reads, not only the latest and the published one.
        public var histories: Set<UUID> = []
        public var names: Set<CatalogView.Name> = []
        public var tokenNames: Set<String> = []
        public var tokenStreams: Set<UUID> = []

        public init() {}

        public var isEmpty: Bool {
            datasets.isEmpty && histories.isEmpty && names.isEmpty && tokenNames.isEmpty && tokenStreams.isEmpty
        }

        public mutating func formUnion(_ other: Needs) {
            datasets.formUnion(other.datasets)
            histories.formUnion(other.histories)
            names.formUnion(other.names)
            tokenNames.formUnion(other.tokenNames)
            tokenStreams.formUnion(other.tokenStreams)
        }
    }

    /// Decides `command` against `view` and, if it is accepted, applies its events to `view`; a refused
    /// command leaves `view` as it was.
    public static func decide(_ command: CatalogCommand, context: CommandContext, in view: inout CatalogView) throws
        -> Decision
    {
        // The trial works on the view itself and puts back what it changed if the command is refused. On a
        // copy, the first change would copy the view's every dictionary, for each command of a batch.
        var trial = Trial(view: CatalogView(), context: context)
        swap(&trial.view, &view)
        defer { swap(&trial.view, &view) }
        do {
            let subject = try trial.decide(command)
            return Decision(events: trial.events, subject: subject)
        } catch {
            trial.view.revert(trial.undo)
            throw error
        }
    }
}

/// One command being decided: the view as its own events leave it, and those events.
private struct Trial {
    var view: CatalogView
    let context: CommandContext
    var events: [StreamEvent] = []
    /// What the events applied so far changed in `view`.
    var undo = CatalogView.Undo()

    init(view: CatalogView, context: CommandContext) {
        self.view = view
        self.context = context
    }

    mutating func decide(_ command: CatalogCommand) throws -> UUID? {
        switch command {
        case .dataset(let id, let datasetCommand):
            try apply(datasetCommand, to: id, expected: context.expectedStreamVersion)
            return id
        case .clone(let source, let newID, let namespace, let name, let changeNote):
            try clone(source, into: newID, namespace: namespace, name: name, changeNote: changeNote)
            return newID
        case .lineage(let job, let runID, let inputs, let outputs):
            return try recordLineage(job: job, runID: runID, inputs: inputs, outputs: outputs)
        case .openLineage(let ingest, let newIDs):
            var ids = newIDs.makeIterator()
            return try ingestOpenLineage(ingest, newIDs: &ids)
        case .createToken(let id, let name, let role, let namespaces, let secret):
            guard view.tokenStream(named: name) == nil else { throw AccessError.tokenNameTaken(name) }
            let created = try TokenDecider.decide(
                .create(name: name, role: role, namespaces: namespaces, secretSHA256: secret), state: view.token(id))
            for event in created { record(.token(event), to: id) }
            return id
        case .revokeToken(let name):
            guard let id = view.tokenStream(named: name) else { throw AccessError.tokenNotFound(name) }
            for event in try TokenDecider.decide(.revoke, state: view.token(id)) { record(.token(event), to: id) }
            return id
        }
    }

    mutating func record(_ event: LogEvent, to stream: UUID) {
        let streamEvent = StreamEvent(stream: stream, event: event)
        view.apply(streamEvent, context: context.event, undo: &undo)
        events.append(streamEvent)
    }

    /// A dataset's own lifecycle, within the caller's namespaces and the catalog's names.
    mutating func apply(_ command: DatasetCommand, to id: UUID, expected: Int64?) throws {
        let before = view.dataset(id)
        if before.exists && !context.scope.includes(before.namespace) { throw DomainError.datasetNotFound }
        if let expected, expected != before.streamVersion {
            // A dataset that does not exist is not found, whatever version the caller expected of it.
            let creates = if case .create = command { true } else { false }
            if !before.exists && !creates { throw DomainError.datasetNotFound }
            throw CatalogError.versionConflict(expected: expected, actual: before.streamVersion)
        }
        let decided = try DatasetDecider.decide(command, state: before)
        if case .create(let namespace, let name, _, _) = command {
            guard context.scope.includes(namespace) else { throw AccessError.namespaceOutOfScope(namespace) }
            if view.holder(of: CatalogView.Name(namespace, name)) != nil {
                throw DomainError.nameTaken(namespace: namespace, name: name)
            }
        }
        // Parents carried over from the version edited were checked when they were named. One retired since,
        // or in a namespace this caller may not see, must not block an edit of the dataset's description.
        let carried = Set(before.version(before.latestVersion)?.snapshot.fields.parents ?? [])
        for case .versionDrafted(let drafted) in decided {
            for (index, parent) in drafted.version.fields.parents.enumerated() where !carried.contains(parent) {
                _ = try resolveInput(index: index, parent.datasetID, parent.version)
            }
        }
        for event in decided { record(.dataset(event), to: id) }
    }

    /// Checks that each input exists (within the caller's namespaces), is not retired and has the
    /// version named (default: its current one), and answers the versions.
    func resolveInputs(_ inputs: [(UUID, Int?)]) throws -> [VersionRef] {
        try inputs.enumerated().map { index, input in try resolveInput(index: index, input.0, input.1) }
    }

    private func resolveInput(index: Int, _ id: UUID, _ version: Int?) throws -> VersionRef {
        let state = view.dataset(id)
        guard state.exists, context.scope.includes(state.namespace), let current = state.currentVersion else {
            throw DomainError.invalidLineageInput(index: index, datasetID: id, reason: .datasetNotFound)
        }
        guard state.status != .retired else {
            throw DomainError.invalidLineageInput(index: index, datasetID: id, reason: .retired)
        }
        let number = version ?? current
        guard state.hasDrafted(number) else {
            throw DomainError.invalidLineageInput(index: index, datasetID: id, reason: .versionNotFound(number))
        }
        return VersionRef(datasetID: id, version: number)
    }

    /// A clone is a create on a new stream, made from the source's current version.
    mutating func clone(_ sourceID: UUID, into newID: UUID, namespace: String?, name: String, changeNote: String?)
        throws
    {
        let source = view.dataset(sourceID)
        guard source.exists, context.scope.includes(source.namespace) else { throw DomainError.datasetNotFound }
        // `If-Match` names the version of the source the caller saw: a clone copies what it read, or nothing.
        if let expected = context.expectedStreamVersion, expected != source.streamVersion {
            throw CatalogError.versionConflict(expected: expected, actual: source.streamVersion)
        }
        guard source.status != .retired else {
            throw DomainError.invalidTransition(action: "clone", status: source.status)
        }
        guard let current = source.currentVersion, var fields = source.version(current)?.snapshot.fields else {
            throw DomainError.datasetNotFound
        }
        let origin = VersionRef(datasetID: sourceID, version: current)
        fields.parents = [origin]
        fields.changeNote = changeNote
        try apply(
            .create(namespace: namespace ?? source.namespace, name: name, fields: fields, clonedFrom: origin),
            to: newID, expected: nil)
    }

    /// One `LineageRecorded` on each output's stream, all or none. A version left out means the
    /// dataset's current one.
    mutating func recordLineage(
        job: DatasetEvent.LineageRecorded.Job?, runID: String?, inputs: [CatalogCommand.LineageEnd],
        outputs: [CatalogCommand.LineageEnd]
    ) throws -> UUID? {
        if inputs.count * outputs.count > CatalogDecider.mostLineageEdges {
            throw DomainError.tooManyLineageEdges(inputs: inputs.count, outputs: outputs.count)
        }
        let resolved = try resolveInputs(inputs.map { ($0.datasetID, $0.version) })
        for output in outputs {
            let state = view.dataset(output.datasetID)
            guard state.exists, context.scope.includes(state.namespace),
                let version = output.version ?? state.currentVersion
            else { throw DomainError.datasetNotFound }
            try apply(
                .recordLineage(version: version, inputs: resolved, job: job, runID: runID), to: output.datasetID,
                expected: nil)
        }
        guard let last = outputs.last else { throw DomainError.datasetNotFound }
        return last.datasetID
    }

    /// An OpenLineage event:
    /// - a dataset first seen is created with its location and facets, and published at once when the
    ///   event carries its schema;
    /// - an output whose schema differs from its current version gets a new, published version (the
    ///   event's `datasetVersion` is kept on it); the same schema adds none;
    /// - an output marked `DROP` is retired;
    /// - lineage goes from each input — at the Strata version that carries the input's `datasetVersion`,
    ///   else its current one — to each output that was not dropped.
    mutating func ingestOpenLineage(_ event: OpenLineageIngest, newIDs: inout IndexingIterator<[UUID]>) throws
        -> UUID?
    {
        guard event.registersDatasets else { return nil }
        if event.recordsLineage && event.inputs.count * event.outputs.count > CatalogDecider.mostLineageEdges {
            throw DomainError.tooManyLineageEdges(inputs: event.inputs.count, outputs: event.outputs.count)
        }
        var subject: UUID?
        var inputRefs: [VersionRef] = []
        for input in event.inputs {
            let id = try register(input, isOutput: false, newIDs: &newIDs)
            let state = view.dataset(id)
            // Edits inherit properties, so the version the event created is the first that carries it.
            let tagged = state.heldVersions.first {
                $0.snapshot.fields.properties["openlineage"]?["datasetVersion"]?.stringValue == input.datasetVersion
            }
            let version = input.datasetVersion == nil ? nil : tagged?.snapshot.version
            inputRefs += try resolveInputs([(id, version)])
            subject = id
        }
        for output in event.outputs {
            let id = try register(output, isOutput: true, newIDs: &newIDs)
            subject = id
            if output.dropped {
                if view.dataset(id).status != .retired {
                    try apply(.retire(reason: "OpenLineage lifecycleStateChange DROP"), to: id, expected: nil)
                }
                continue
            }
            if event.recordsLineage && !inputRefs.isEmpty, let current = view.dataset(id).currentVersion {
                try apply(
                    .recordLineage(
                        version: current, inputs: inputRefs.filter { $0.datasetID != id }, job: event.job,
                        runID: event.runID),
                    to: id, expected: nil)
            }
        }
        return subject
    }

    /// Finds the dataset by its natural key, creating it if new; for an output, drafts and publishes a new
    /// version when the schema changed. Answers its id.
    private mutating func register(
        _ dataset: OpenLineageIngest.Dataset, isOutput: Bool, newIDs: inout IndexingIterator<[UUID]>
    ) throws -> UUID {
        guard context.scope.includes(dataset.namespace) else {
            throw AccessError.namespaceOutOfScope(dataset.namespace)
        }
        var openlineage: [String: JSONValue] = ["facets": .object(dataset.facets)]
        if let version = dataset.datasetVersion { openlineage["datasetVersion"] = .string(version) }
        let properties: [String: JSONValue] = ["openlineage": .object(openlineage)]
        guard let id = view.holder(of: CatalogView.Name(dataset.namespace, dataset.name)) else {
            guard let id = newIDs.next() else {
                preconditionFailure("an OpenLineage command carries an id per dataset")
            }
            let fields = VersionFields(
                location: dataset.location, schema: dataset.schema ?? [], properties: properties,
                changeNote: "registered from OpenLineage")
            try apply(
                .create(namespace: dataset.namespace, name: dataset.name, fields: fields, clonedFrom: nil), to: id,
                expected: nil)
            if dataset.schema?.isEmpty == false {
                try apply(.publish(version: nil, changeNote: nil), to: id, expected: nil)
            }
            return id
        }
        let state = view.dataset(id)
        guard isOutput, let schema = dataset.schema, !schema.isEmpty, state.status != .retired,
            state.status != .archived,
            let current = state.currentVersion.flatMap({ state.version($0)?.snapshot.fields }), current.schema != schema
        else { return id }
        try apply(
            .edit(
                patch: .object([
                    "schema": try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(schema)),
                    "location": .string(dataset.location), "properties": .object(properties),
                    "change_note": .string("schema changed, reported by OpenLineage"),
                ])),
            to: id, expected: nil)
        try apply(.publish(version: nil, changeNote: nil), to: id, expected: nil)
        return id
    }
}
