import Foundation
import PostgresNIO

/// Where a replay's finished rows go: binary COPY data for a rebuild's fresh tables (``CopyRows``), or
/// typed columns for one INSERT per table into the live ones (``InsertRows``, the append pipeline's,
/// since a COPY cut off by a lost connection brings PostgresNIO down). Either way the rows come from
/// the same code, ``ProjectionReplay``, field by field in ``ProjectionTable/columns`` order.
protocol ProjectionRows: Sendable {
    associatedtype Line: ProjectionRowLine
    init()
    /// Appends one row to `table`, its fields written by `body` in the table's column order.
    mutating func line(_ table: ProjectionTable, _ body: (inout Line) -> Void)
    /// Ends the open row of `table` keyed `key` (a dataset's, or a token's) at `position`: a row already
    /// in the table, which an update ends.
    mutating func close(_ table: ProjectionTable, _ key: UUID, at position: Int64)
}

/// One row's fields, written in column order.
protocol ProjectionRowLine {
    mutating func null()
    mutating func text(_ value: String?)
    /// A `bigint` column.
    mutating func bigint(_ value: Int64?)
    /// An `integer` column. (Its values are versions and ordinals, far inside its range.)
    mutating func integer(_ value: Int?)
    mutating func uuid(_ value: UUID?)
    mutating func bytea(_ value: [UInt8])
    /// A `text[]` column, without NULL elements.
    mutating func textArray(_ values: [String])
    mutating func tsvector(_ vector: SearchVector)
}

extension ProjectionRows {
    /// A `dataset_states` row, true from `from` until `to`.
    mutating func state(_ row: DatasetProjector.StateRow, from: Int64, to: Int64?) {
        line(.datasetStates) { line in
            line.uuid(row.datasetID)
            line.bigint(from)
            line.bigint(to)
            line.text(row.status)
            line.integer(row.latestVersion)
            line.integer(row.publishedVersion)
            line.text(row.retiredReason)
            line.integer(row.usageCount)
            line.bigint(row.lastUsed)
        }
    }

    /// An `api_tokens` row, the token valid from `from` until `to`.
    mutating func token(_ row: DatasetProjector.TokenRow, from: Int64, to: Int64?) {
        line(.apiTokens) { line in
            line.uuid(row.tokenID)
            line.bigint(from)
            line.bigint(to)
            line.text(row.name)
            line.text(row.role)
            line.textArray(row.namespaces)
            line.text(row.secretSHA256)
        }
    }

    /// A `dataset_names` row, the name held from `from` until `to`.
    mutating func name(_ key: [UInt8], _ id: UUID, from: Int64, to: Int64?) {
        line(.datasetNames) { line in
            line.bytea(key)
            line.uuid(id)
            line.bigint(from)
            line.bigint(to)
        }
    }
}

/// Rows already in the tables that events ended, and the statement that ends them: one UPDATE per table.
struct Closings: Sendable {
    private(set) var byTable: [ProjectionTable: [(key: UUID, at: Int64)]] = [:]

    var isEmpty: Bool { byTable.isEmpty }

    mutating func close(_ table: ProjectionTable, _ key: UUID, at position: Int64) {
        byTable[table, default: []].append((key, position))
    }

    mutating func formUnion(_ other: Closings) {
        byTable.merge(other.byTable) { $0 + $1 }
    }

    /// Ends every row these close, in every table, with one statement: one UPDATE per table, each a
    /// part of its `WITH`. (Each table's part touches only that table, so their order does not matter.)
    func write(on connection: PostgresConnection, logger: Logger) async throws {
        guard let statement else { return }
        try await connection.perform(statement, logger: logger)
    }

    /// The statement ``write(on:logger:)`` runs; nil when nothing is closed.
    var statement: PostgresQuery? {
        var statement = WithStatement()
        for (table, closings) in byTable.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let (keys, positions) = (statement.bind(closings.map(\.key)), statement.bind(closings.map(\.at)))
            statement.add(
                """
                UPDATE \(table.name) t SET valid_to = c.at
                FROM unnest(\(keys)::uuid[], \(positions)::bigint[]) AS c(key, at)
                WHERE t.\(table.key) = c.key AND t.valid_to IS NULL
                """)
        }
        return statement.query()
    }
}
