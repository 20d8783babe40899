import Foundation
import StrataCore

/// The tables of `Projections/*.sql`, as the replay writes their rows. (Numbered, so that a replay
/// files each row by index rather than by hashing the table's name.)
enum ProjectionTable: Int, CaseIterable, Sendable {
    case datasetStates, datasetIdentities, datasetNames, versions, datasetWords, versionPublications
    case datasetUsages, lineageEdges, apiTokens

    init?(name: String) {
        guard let table = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = table
    }

    /// The table's name, as its file in `Projections/` is named.
    var name: String {
        switch self {
        case .datasetStates: return "dataset_states"
        case .datasetIdentities: return "dataset_identities"
        case .datasetNames: return "dataset_names"
        case .versions: return "versions"
        case .datasetWords: return "dataset_words"
        case .versionPublications: return "version_publications"
        case .datasetUsages: return "dataset_usages"
        case .lineageEdges: return "lineage_edges"
        case .apiTokens: return "api_tokens"
        }
    }

    /// A column's SQL type, as its projection file declares it.
    enum ColumnType: Sendable {
        case uuid, bigint, integer, text, bytea, textArray, tsvector
    }

    /// The table's columns in the order both writers give their fields (``ProjectionRows``): what the
    /// rebuild's COPY and the append pipeline's INSERT name. A test holds them to the tables
    /// `Projections/*.sql` create.
    var schema: [(name: String, type: ColumnType)] {
        switch self {
        case .datasetStates:
            return [
                ("dataset_id", .uuid), ("valid_from", .bigint), ("valid_to", .bigint), ("status", .text),
                ("latest_version", .integer), ("published_version", .integer), ("retired_reason", .text),
                ("usage_count", .integer), ("last_used", .bigint),
            ]
        case .datasetIdentities:
            return [
                ("dataset_id", .uuid), ("valid_from", .bigint), ("namespace", .text), ("name", .text),
                ("name_key", .bytea), ("cloned_from_dataset", .uuid), ("cloned_from_version", .integer),
            ]
        case .versions:
            return [("dataset_id", .uuid), ("version", .integer), ("valid_from", .bigint), ("words_key", .bytea)]
        case .datasetWords:
            return [
                ("dataset_id", .uuid), ("words_key", .bytea), ("valid_from", .bigint), ("namespace", .text),
                ("name", .text), ("owner", .text), ("description", .text), ("tags", .textArray), ("format", .text),
                ("column_names", .textArray), ("property_keys", .textArray), ("search", .tsvector),
            ]
        case .versionPublications: return [("dataset_id", .uuid), ("version", .integer), ("valid_from", .bigint)]
        case .datasetNames:
            return [("name_key", .bytea), ("dataset_id", .uuid), ("valid_from", .bigint), ("valid_to", .bigint)]
        case .datasetUsages:
            return [
                ("dataset_id", .uuid), ("valid_from", .bigint), ("valid_to", .bigint), ("version", .integer),
                ("consumer", .text),
            ]
        case .lineageEdges:
            return [
                ("to_dataset", .uuid), ("to_version", .integer), ("from_dataset", .uuid), ("from_version", .integer),
                ("valid_from", .bigint), ("valid_to", .bigint), ("job_namespace", .text), ("job_name", .text),
                ("run_id", .text), ("ordinal", .integer),
            ]
        case .apiTokens:
            return [
                ("token_id", .uuid), ("valid_from", .bigint), ("valid_to", .bigint), ("name", .text),
                ("role", .text), ("namespaces", .textArray), ("secret_sha256", .text),
            ]
        }
    }

    var columns: [String] { schema.map(\.name) }

    /// The column that names a row's dataset or token: what an update ending an open row matches on.
    var key: String { self == .apiTokens ? "token_id" : "dataset_id" }

    /// The columns that identify a row which the append pipeline may write again: it replays a batch's
    /// events from each dataset's lifecycle alone, not knowing which sets of words its earlier versions
    /// had, so its insert skips the rows the table already holds. (A rebuild's replay sees every
    /// version, and writes each set once.)
    var rewrittenRowKey: [String]? { self == .datasetWords ? ["dataset_id", "words_key"] : nil }
}

extension DatasetProjector.Change {
    /// The projection table the change writes.
    var table: ProjectionTable {
        switch self {
        case .closeState, .openState: return .datasetStates
        case .addIdentity: return .datasetIdentities
        case .addVersion: return .versions
        case .addWords: return .datasetWords
        case .addPublication: return .versionPublications
        case .reserveName, .releaseName: return .datasetNames
        case .addUsage: return .datasetUsages
        case .addEdge: return .lineageEdges
        case .addToken, .revokeToken: return .apiTokens
        }
    }
}
