import Foundation

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
