import Foundation

/// A write to the catalog, as one request asks for it: it may touch several streams (a clone, lineage
/// into several outputs, an OpenLineage event), all or none. Ids come in with the command; the rules
/// draw none.
///
/// The id of a dataset a command creates (a create's, a clone's `newID`, OpenLineage's `newIDs`) must be
/// fresh, drawn for that command (a UUIDv7): the rules take its stream to be empty without looking, so
/// a batch of creates loads no stream at all. Were one not new, the log's unique key on stream and
/// version would refuse the append, whole, rather than let two histories mix.
public enum CatalogCommand: Sendable, Equatable {
    case dataset(UUID, DatasetCommand)
    /// A new dataset (`newID`) whose first version copies the source's current one.
    case clone(source: UUID, newID: UUID, namespace: String?, name: String, changeNote: String?)
    /// A job read the inputs to make the outputs: one `LineageRecorded` per output.
    case lineage(job: DatasetEvent.LineageRecorded.Job?, runID: String?, inputs: [LineageEnd], outputs: [LineageEnd])
    /// An OpenLineage event; `newIDs` holds an id for each dataset it might register, in the order of
    /// its inputs then outputs.
    case openLineage(OpenLineageIngest, newIDs: [UUID])
    case createToken(UUID, name: String, role: Role, namespaces: [String], secretSHA256: String)
    case revokeToken(name: String)

    /// A dataset at a version, or at its current version when `version` is nil.
    public struct LineageEnd: Sendable, Equatable {
        public var datasetID: UUID
        public var version: Int?

        public init(datasetID: UUID, version: Int?) {
            self.datasetID = datasetID
            self.version = version
        }
    }
}

/// Who asks, when, within which namespaces, and with which expectation of the stream (`If-Match`).
public struct CommandContext: Sendable, Equatable {
    public var actor: String
    public var occurredAt: Date
    public var scope: NamespaceScope
    public var expectedStreamVersion: Int64?

    public init(actor: String, occurredAt: Date, scope: NamespaceScope = .all, expectedStreamVersion: Int64? = nil) {
        self.actor = actor
        self.occurredAt = occurredAt
        self.scope = scope
        self.expectedStreamVersion = expectedStreamVersion
    }

    var event: EventContext { EventContext(actor: actor, occurredAt: occurredAt) }
}

/// One event of a decision, and the stream it goes to.
public struct StreamEvent: Sendable, Equatable {
    public var stream: UUID
    public var event: LogEvent

    public init(stream: UUID, event: LogEvent) {
        self.stream = stream
        self.event = event
    }
}

/// Why a write was refused that is not the domain's own rule: the caller's view of the dataset is stale.
public enum CatalogError: Error, Equatable, Sendable {
    case versionConflict(expected: Int64, actual: Int64)
    case idempotencyKeyReused
}
