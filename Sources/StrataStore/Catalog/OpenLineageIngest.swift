import Foundation
import PostgresNIO
import StrataCore

/// An OpenLineage event, parsed, in the terms Strata maps it to: datasets to register (or update, or
/// retire) and, when the run completed, lineage from the inputs to the outputs.
public struct OpenLineageIngest: Sendable, Equatable {
    public struct Dataset: Sendable, Equatable {
        public var namespace: String
        public var name: String
        /// `dataSource.uri`, else `namespace/name`.
        public var location: String
        /// The `schema` facet's fields, if the event carries the facet.
        public var schema: [Column]?
        /// Every facet as sent, unknown ones included; kept in `properties.openlineage`.
        public var facets: [String: JSONValue]
        /// The `version` facet's `datasetVersion`: opaque, chosen by the producer.
        public var datasetVersion: String?
        /// `lifecycleStateChange: DROP`.
        public var dropped: Bool

        public init(
            namespace: String, name: String, location: String, schema: [Column]?, facets: [String: JSONValue],
            datasetVersion: String?, dropped: Bool
        ) {
            self.namespace = namespace
            self.name = name
            self.location = location
            self.schema = schema
            self.facets = facets
            self.datasetVersion = datasetVersion
            self.dropped = dropped
        }
    }

    public var inputs: [Dataset]
    public var outputs: [Dataset]
    public var job: DatasetEvent.LineageRecorded.Job?
    public var runID: String?
    /// Whether the event records lineage (a completed run, a run still running with outputs, a job's
    /// static lineage); a START, FAIL or ABORT records none.
    public var recordsLineage: Bool
    /// Whether the event touches the catalog at all (a FAIL, ABORT or START registers nothing).
    public var registersDatasets: Bool

    public init(
        inputs: [Dataset], outputs: [Dataset], job: DatasetEvent.LineageRecorded.Job?, runID: String?,
        recordsLineage: Bool, registersDatasets: Bool
    ) {
        self.inputs = inputs
        self.outputs = outputs
        self.job = job
        self.runID = runID
        self.recordsLineage = recordsLineage
        self.registersDatasets = registersDatasets
    }
}

extension Batch {
    /// Applies an OpenLineage event:
    /// - a dataset first seen is created with its location and facets, and published at once when the
    ///   event carries its schema;
    /// - an output whose schema differs from its current version gets a new, published version (the
    ///   event's `datasetVersion` is kept on it); the same schema adds none;
    /// - an output marked `DROP` is retired;
    /// - lineage goes from each input — at the Strata version that carries the input's `datasetVersion`,
    ///   else its current one — to each output that was not dropped.
    mutating func ingest(_ event: OpenLineageIngest, _ request: CatalogWriter.Request) async throws
        -> CatalogWriter.Outcome
    {
        var last: CatalogWriter.Outcome?
        var events: [DatasetEvent] = []
        guard event.registersDatasets else {
            return CatalogWriter.Outcome(state: DatasetState(id: UUID()), events: [], position: 0)
        }
        var inputRefs: [VersionRef] = []
        for input in event.inputs {
            let (id, outcome) = try await register(input, isOutput: false, request)
            if let outcome {
                events += outcome.events
                last = outcome
            }
            let (state, _) = try await state(of: id)
            // Edits inherit properties, so the version the event created is the first that carries it.
            let tagged = state.versions.first {
                $0.snapshot.fields.properties["openlineage"]?["datasetVersion"]?.stringValue == input.datasetVersion
            }
            let version = input.datasetVersion == nil ? nil : tagged?.snapshot.version
            inputRefs += try await resolveInputs([(id, version)], scope: request.scope)
        }
        for output in event.outputs {
            let (id, outcome) = try await register(output, isOutput: true, request)
            if let outcome {
                events += outcome.events
                last = outcome
            }
            if output.dropped {
                let (state, _) = try await state(of: id)
                if state.status != .retired {
                    let retired = try await apply(
                        .retire(reason: "OpenLineage lifecycleStateChange DROP"), to: id, expectedStreamVersion: nil,
                        request)
                    events += retired.events
                    last = retired
                }
                continue
            }
            if event.recordsLineage && !inputRefs.isEmpty {
                let (state, _) = try await state(of: id)
                guard let current = state.currentVersion else { continue }
                let recorded = try await apply(
                    .recordLineage(
                        version: current, inputs: inputRefs.filter { $0.datasetID != id }, job: event.job,
                        runID: event.runID),
                    to: id, expectedStreamVersion: nil, request)
                events += recorded.events
                last = recorded
            }
        }
        guard var outcome = last else {
            return CatalogWriter.Outcome(state: DatasetState(id: UUID()), events: [], position: 0)
        }
        outcome.events = events
        return outcome
    }

    /// Finds the dataset by its natural key, creating it if new; for an output, drafts and publishes a new
    /// version when the schema changed. Answers its id and what was appended, if anything.
    private mutating func register(
        _ dataset: OpenLineageIngest.Dataset, isOutput: Bool, _ request: CatalogWriter.Request
    )
        async throws -> (UUID, CatalogWriter.Outcome?)
    {
        guard request.scope.includes(dataset.namespace) else {
            throw AccessError.namespaceOutOfScope(dataset.namespace)
        }
        var openlineage: [String: JSONValue] = ["facets": .object(dataset.facets)]
        if let version = dataset.datasetVersion { openlineage["datasetVersion"] = .string(version) }
        let properties: [String: JSONValue] = ["openlineage": .object(openlineage)]
        guard let id = try await holder(namespace: dataset.namespace, name: dataset.name) else {
            let id = UUIDv7.make()
            let fields = VersionFields(
                location: dataset.location, schema: dataset.schema ?? [], properties: properties,
                changeNote: "registered from OpenLineage")
            let outcome = try await apply(
                .create(namespace: dataset.namespace, name: dataset.name, fields: fields, clonedFrom: nil), to: id,
                expectedStreamVersion: nil, request)
            guard dataset.schema?.isEmpty == false else { return (id, outcome) }
            return (id, try await publishing(after: outcome, of: id, request))
        }
        let (state, _) = try await state(of: id)
        guard isOutput, let schema = dataset.schema, !schema.isEmpty, state.status != .retired,
            state.status != .archived,
            let current = state.currentVersion.flatMap({ state.version($0)?.snapshot.fields }), current.schema != schema
        else { return (id, nil) }
        let outcome = try await apply(
            .edit(
                patch: .object([
                    "schema": try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(schema)),
                    "location": .string(dataset.location), "properties": .object(properties),
                    "change_note": .string("schema changed, reported by OpenLineage"),
                ])),
            to: id, expectedStreamVersion: nil, request)
        return (id, try await publishing(after: outcome, of: id, request))
    }

    /// Publishes the draft `outcome` made, and answers both as one outcome: a producer's dataset with a
    /// schema is live as soon as it is reported.
    private mutating func publishing(
        after outcome: CatalogWriter.Outcome, of id: UUID, _ request: CatalogWriter.Request
    ) async throws -> CatalogWriter.Outcome {
        let published = try await apply(
            .publish(version: nil, changeNote: nil), to: id, expectedStreamVersion: nil, request)
        var combined = published
        combined.events = outcome.events + published.events
        return combined
    }

    private func holder(namespace: String, name: String) async throws -> UUID? {
        let key = ByteBuffer(bytes: DatasetProjector.nameKey(namespace, name))
        let rows = try await connection.query(
            "SELECT dataset_id FROM dataset_names WHERE name_key = \(key) AND valid_to IS NULL", logger: logger
        ).collect()
        return try rows.first?.decode(UUID.self)
    }
}
