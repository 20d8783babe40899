import Foundation

/// Why the domain refused a command. The HTTP layer maps each case to a status and a problem code in
/// one table.
public enum DomainError: Error, Sendable, Equatable {
    case datasetNotFound
    case versionNotFound(Int)
    /// The action is not allowed from the dataset's status (the lifecycle table's 409 cells).
    case invalidTransition(action: String, status: DatasetStatus, detail: String? = nil)
    /// A version cannot be published without these fields (`location`, `schema`).
    case publishCheckFailed(version: Int, missing: [String])
    /// Another dataset that is not retired holds this namespace and name.
    case nameTaken(namespace: String, name: String)
    /// The stream already exists: create with an id that is in use.
    case alreadyExists
    /// The patch does not describe a valid version.
    case invalidPatch(String)
    /// Lineage from a dataset into itself.
    case selfLoop
    /// One write joining so many inputs to so many outputs that its edges would hold the log's append
    /// lock, and every other writer, for seconds (``CatalogDecider/mostLineageEdges``).
    case tooManyLineageEdges(inputs: Int, outputs: Int)
    /// A lineage input that cannot feed anything: unknown, or retired.
    case invalidLineageInput(index: Int, datasetID: UUID, reason: LineageInputProblem)

    public enum LineageInputProblem: Sendable, Equatable {
        case datasetNotFound
        case versionNotFound(Int)
        case retired
    }
}
