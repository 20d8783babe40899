import Foundation

/// What a user asks of one dataset. Ids and times are decided by the caller and come in here; the
/// decider neither reads a clock nor draws an id.
public enum DatasetCommand: Sendable, Equatable {
    /// Register a dataset with its first version (a clone names its source).
    case create(namespace: String, name: String, fields: VersionFields, clonedFrom: VersionRef?)
    /// JSON Merge Patch of the latest version's fields, making a new draft version.
    case edit(patch: JSONValue)
    case publish(version: Int?, changeNote: String?)
    case archive(reason: String?)
    case restore
    case retire(reason: String)
    case recordUsage(version: Int, consumer: String, kind: String?, properties: [String: JSONValue])
    /// Record that a job read `inputs` to make `version` of this dataset (the output). The inputs'
    /// existence and status are checked by the caller, which can see their streams.
    case recordLineage(
        version: Int, inputs: [VersionRef], job: DatasetEvent.LineageRecorded.Job?, runID: String?)

    /// The action's name, as refusals quote it.
    public var action: String {
        switch self {
        case .create: return "create"
        case .edit: return "edit"
        case .publish: return "publish"
        case .archive: return "archive"
        case .restore: return "restore"
        case .retire: return "retire"
        case .recordUsage: return "record a usage of"
        case .recordLineage: return "record lineage into"
        }
    }
}
