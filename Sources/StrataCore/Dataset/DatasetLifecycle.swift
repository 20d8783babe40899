import Foundation

/// Where a dataset's lifecycle stands, folded from its events: what its `dataset_states` rows record,
/// and what a replay checks each event against.
///
/// It is the part of ``DatasetState`` the projections need, kept apart so that a replay of the whole
/// log holds a few dozen bytes per dataset, rather than every version's snapshot for every dataset
/// until the end (which was most of a rebuild's memory).
public struct DatasetLifecycle: Sendable, Equatable {
    public var id: UUID
    /// False until the first event: the state of a stream that does not exist.
    public var exists = false
    /// The number of events in the stream.
    public var streamVersion: Int64 = 0
    public var status: DatasetStatus = .draft
    /// The newest version number, drafts included; 0 before the first.
    public var latestVersion = 0
    public var publishedVersion: Int?
    public var retiredReason: String?
    /// The natural key, which every version's search vector carries (a name never changes).
    public var namespace = ""
    public var name = ""
    /// The usage pins recorded so far, and the log position of the latest: what the dataset list shows
    /// and sorts by. (Not part of ``DatasetState``: no rule depends on them.)
    public var usageCount = 0
    public var lastUsed: Int64?

    public init(id: UUID) {
        self.id = id
    }

    /// The same of a dataset's whole state.
    public init(_ state: DatasetState) {
        id = state.id
        exists = state.exists
        streamVersion = state.streamVersion
        status = state.status
        latestVersion = state.latestVersion
        publishedVersion = state.publishedVersion
        retiredReason = state.retiredReason
        namespace = state.namespace
        name = state.name
    }

    /// Moves past `event`, recorded at `position`, as ``DatasetState/apply(_:context:)`` does for the
    /// whole state.
    public mutating func apply(_ event: DatasetEvent, at position: Int64) {
        streamVersion += 1
        switch event {
        case .created(let created):
            exists = true
            status = .draft
            namespace = created.namespace
            name = created.name
        case .versionDrafted(let drafted):
            latestVersion = drafted.version.version
        case .published(let published):
            publishedVersion = published.version
            status = .published
        case .archived:
            status = .archived
        case .restored(let restored):
            status = restored.status
        case .retired(let retired):
            status = .retired
            retiredReason = retired.reason
        case .versionUsed:
            usageCount += 1
            lastUsed = position
        case .lineageRecorded:
            break
        }
    }

    /// Why `event` cannot follow this state in a log, or nil if it can: what folding it (and projecting
    /// it) relies on. The decider never appends such an event; an imported file, or rows written into
    /// the log by hand, might hold one, and a replay refuses it rather than folding nonsense.
    public func inconsistency(of event: DatasetEvent) -> String? {
        func drafted(_ number: Int) -> Bool { number >= 1 && number <= latestVersion }
        // Versions of other datasets cannot be checked here, but the projections store every version
        // number as an `integer`.
        if let reference = event.versionReferences.first(where: { !(1...Int(Int32.max)).contains($0.version) }) {
            return "it refers to version \(reference.version) of \(reference.datasetID.lowercased), "
                + "beyond the versions a catalog holds"
        }
        switch event {
        case .created:
            return exists ? "the dataset is created a second time" : nil
        case _ where !exists:
            return "the stream has no DatasetCreated before its \(event.type)"
        case .versionDrafted(let drafted) where drafted.version.version != latestVersion + 1:
            return "it drafts version \(drafted.version.version), but the next version is \(latestVersion + 1)"
        case .published(let published) where !drafted(published.version):
            return "it publishes version \(published.version), which was never drafted"
        case .versionUsed(let used) where !drafted(used.version):
            return "it records a use of version \(used.version), which was never drafted"
        default:
            return nil
        }
    }
}

extension DatasetEvent {
    /// The versions of datasets (its own or others) the event names.
    var versionReferences: [VersionRef] {
        switch self {
        case .created(let created): return created.clonedFrom.map { [$0] } ?? []
        case .versionDrafted(let drafted): return drafted.version.fields.parents
        case .lineageRecorded(let lineage): return lineage.inputs + [lineage.output]
        case .published, .archived, .restored, .retired, .versionUsed: return []
        }
    }
}
