import Foundation
import PostgresNIO
import StrataCore

/// Finished projection rows as typed columns, written into the live tables with one
/// `INSERT … SELECT FROM unnest(…)` per table: the append pipeline's inline write. (COPY would be
/// quicker to send, but a COPY cut off by a lost connection stops the process inside PostgresNIO.)
struct InsertRows: ProjectionRows {
    private var tables: [ProjectionTable: [Column]] = [:]
    private(set) var closings = Closings()

    init() {}

    /// One column's values, of the type the table declares.
    enum Column: Sendable {
        case uuid([UUID?])
        case bigint([Int64?])
        case integer([Int32?])
        case text([String?])
        case bytea([ByteBuffer])
        /// `text[]` values, each as a JSON array: an array of arrays cannot be bound as one parameter.
        case textArray([String])
        /// `tsvector` values, each in its text form.
        case tsvector([String])

        /// One row's value of a column, of the column's type.
        enum Field {
            case uuid(UUID?)
            case bigint(Int64?)
            case integer(Int32?)
            case text(String?)
            case bytea(ByteBuffer)
            case textArray(String)
            case tsvector(String)
        }

        /// Appends `field`, which must be of the column's type, in place.
        mutating func append(_ field: Field) {
            switch field {
            case .uuid(let value): grow(value, { if case .uuid(let all) = $0 { all } else { nil } }, Column.uuid)
            case .bigint(let value): grow(value, { if case .bigint(let all) = $0 { all } else { nil } }, Column.bigint)
            case .integer(let value):
                grow(value, { if case .integer(let all) = $0 { all } else { nil } }, Column.integer)
            case .text(let value): grow(value, { if case .text(let all) = $0 { all } else { nil } }, Column.text)
            case .bytea(let value): grow(value, { if case .bytea(let all) = $0 { all } else { nil } }, Column.bytea)
            case .textArray(let value):
                grow(value, { if case .textArray(let all) = $0 { all } else { nil } }, Column.textArray)
            case .tsvector(let value):
                grow(value, { if case .tsvector(let all) = $0 { all } else { nil } }, Column.tsvector)
            }
        }

        /// Appends `value` to the column's array, which `values` takes out and `column` puts back. The column
        /// lets go of its array while it grows, so that the array is held once and grows where it is:
        /// matching it out of the enum alone holds it twice, and then every row would copy the whole column.
        private mutating func grow<Value>(
            _ value: Value, _ values: (Column) -> [Value]?, _ column: ([Value]) -> Column
        ) {
            guard var all = values(self) else { wrongType() }
            self = column([])
            all.append(value)
            self = column(all)
        }

        private func wrongType() -> Never { preconditionFailure("a field of the wrong type for its column") }

        /// The NULL of this column's type.
        var null: Field {
            switch self {
            case .uuid: .uuid(nil)
            case .bigint: .bigint(nil)
            case .integer: .integer(nil)
            case .text: .text(nil)
            case .bytea, .textArray, .tsvector: preconditionFailure("bytea, text[] and tsvector columns are never NULL")
            }
        }
    }

    struct Line: ProjectionRowLine {
        var columns: [Column]
        var index = 0

        /// A row's fields going into `columns`, which are the table's, empty to begin with.
        init(table: ProjectionTable, columns: [Column]?) {
            self.columns =
                columns
                ?? table.schema.map { column in
                    switch column.type {
                    case .uuid: .uuid([])
                    case .bigint: .bigint([])
                    case .integer: .integer([])
                    case .text: .text([])
                    case .bytea: .bytea([])
                    case .textArray: .textArray([])
                    case .tsvector: .tsvector([])
                    }
                }
        }

        private mutating func put(_ field: Column.Field) {
            columns[index].append(field)
            index += 1
        }

        mutating func null() { put(columns[index].null) }
        mutating func text(_ value: String?) { put(.text(value)) }
        mutating func bigint(_ value: Int64?) { put(.bigint(value)) }
        mutating func integer(_ value: Int?) { put(.integer(value.map(Int32.init))) }
        mutating func uuid(_ value: UUID?) { put(.uuid(value)) }
        mutating func bytea(_ value: [UInt8]) { put(.bytea(ByteBuffer(bytes: value))) }
        mutating func textArray(_ values: [String]) {
            // By the writer, not through `Encodable`: the encoder took an eighth of a batch's projecting.
            put(.textArray(CanonicalJSON.string(JSONValue.array(values.map(JSONValue.string)))))
        }
        mutating func tsvector(_ vector: SearchVector) { put(.tsvector(vector.text)) }
    }

    mutating func line(_ table: ProjectionTable, _ body: (inout Line) -> Void) {
        var line = Line(table: table, columns: tables.removeValue(forKey: table))
        body(&line)
        tables[table] = line.columns
    }

    mutating func close(_ table: ProjectionTable, _ key: UUID, at position: Int64) {
        closings.close(table, key, at: position)
    }

    /// Adds one INSERT per table to `statement`, every table's, those without rows too (so that the
    /// statement's text is the same whichever tables a batch writes: see ``BatchRun/BatchWrite``), and
    /// the record that the projections have reached `appliedPosition`, if it is past 0. The closings (see
    /// ``Closings/statement``) must be sent before, in a statement of their own: a table's current row
    /// must end before the next one starts, which parts of one statement could not promise.
    func insert(into statement: inout WithStatement, appliedPosition: Int64) throws {
        let applied = statement.bind(appliedPosition)
        statement.add("UPDATE projections SET applied_position = \(applied) WHERE \(applied) > 0")
        for table in ProjectionTable.allCases {
            let columns = tables[table] ?? Line(table: table, columns: nil).columns
            var selected: [String] = []
            var names: [String] = []
            var parameters: [String] = []
            /// Binds `values` as the next parameter, named `name` among the table's unnested columns.
            func bind<Value: PostgresArrayEncodable>(_ values: [Value], as name: String) throws {
                parameters.append(try statement.bind(values))
                names.append(name)
            }
            // PostgresNIO binds arrays without NULL elements: a nullable column travels with a second array
            // saying which of its values are NULL.
            func nullable<Value: PostgresArrayEncodable>(_ values: [Value?], placeholder: Value, _ name: String)
                throws
            {
                try bind(values.map { $0 ?? placeholder }, as: name)
                try bind(values.map { $0 == nil }, as: "\(name)_null")
                selected.append("CASE WHEN \(name)_null THEN NULL ELSE \(name) END")
            }
            for (index, column) in columns.enumerated() {
                let name = "c\(index)"
                switch column {
                case .uuid(let values): try nullable(values, placeholder: UUID(uuid: UUID_NULL), name)
                case .bigint(let values): try nullable(values, placeholder: 0, name)
                case .integer(let values): try nullable(values, placeholder: 0, name)
                case .text(let values): try nullable(values, placeholder: "", name)
                case .bytea(let values):
                    try bind(values, as: name)
                    selected.append(name)
                case .textArray(let values):
                    try bind(values, as: name)
                    selected.append("ARRAY(SELECT jsonb_array_elements_text(\(name)::jsonb))")
                case .tsvector(let values):
                    try bind(values, as: name)
                    selected.append("\(name)::tsvector")
                }
            }
            // Not an anti-join: under the batch's generic plan, made once per connection from the statistics
            // of that moment, a table that was small then was scanned whole for every batch ever after. The
            // arbiter index is consulted whatever the plan, and it also skips a row this same insert repeats.
            let skipped = table.rewrittenRowKey.map { "ON CONFLICT (\($0.joined(separator: ", "))) DO NOTHING" } ?? ""
            statement.add(
                """
                INSERT INTO \(table.name) (\(table.columns.joined(separator: ", ")))
                SELECT \(selected.joined(separator: ", "))
                FROM unnest(\(parameters.joined(separator: ", "))) AS r(\(names.joined(separator: ", ")))
                \(skipped)
                """)
        }
    }
}

private let UUID_NULL: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
