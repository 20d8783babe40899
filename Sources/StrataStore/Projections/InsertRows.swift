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
                    }
                }
        }

        private mutating func put(_ value: Column) {
            do {
                switch (columns[index], value) {
                case (.uuid(var all), .uuid(let one)):
                    all += one
                    columns[index] = .uuid(all)
                case (.bigint(var all), .bigint(let one)):
                    all += one
                    columns[index] = .bigint(all)
                case (.integer(var all), .integer(let one)):
                    all += one
                    columns[index] = .integer(all)
                case (.text(var all), .text(let one)):
                    all += one
                    columns[index] = .text(all)
                case (.bytea(var all), .bytea(let one)):
                    all += one
                    columns[index] = .bytea(all)
                case (.textArray(var all), .textArray(let one)):
                    all += one
                    columns[index] = .textArray(all)
                default: preconditionFailure("a field of the wrong type for column \(index)")
                }
            }
            index += 1
        }

        mutating func null() {
            switch columns[index] {
            case .uuid: put(.uuid([nil]))
            case .bigint: put(.bigint([nil]))
            case .integer: put(.integer([nil]))
            case .text: put(.text([nil]))
            case .bytea, .textArray: preconditionFailure("bytea and text[] columns are never NULL")
            }
        }
        mutating func text(_ value: String?) { put(.text([value])) }
        mutating func bigint(_ value: Int64?) { put(.bigint([value])) }
        mutating func integer(_ value: Int?) { put(.integer([value.map(Int32.init)])) }
        mutating func uuid(_ value: UUID?) { put(.uuid([value])) }
        mutating func bytea(_ value: [UInt8]) { put(.bytea([ByteBuffer(bytes: value)])) }
        mutating func textArray(_ values: [String]) {
            put(.textArray([CanonicalJSON.string(values)]))
        }
    }

    mutating func line(_ table: ProjectionTable, _ body: (inout Line) -> Void) {
        var line = Line(table: table, columns: tables.removeValue(forKey: table))
        body(&line)
        tables[table] = line.columns
    }

    mutating func close(_ table: ProjectionTable, _ key: UUID, at position: Int64) {
        closings.close(table, key, at: position)
    }

    /// How many statements ``write(on:logger:)`` runs.
    var statementCount: Int { closings.byTable.count + tables.count }

    /// Ends the rows these close, then adds these: an UPDATE and an INSERT per table at most.
    func write(on connection: PostgresConnection, logger: Logger) async throws {
        try await closings.write(on: connection, logger: logger)
        for (table, columns) in tables.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            var bindings = PostgresBindings()
            var selected: [String] = []
            // PostgresNIO binds arrays without NULL elements: a nullable column travels with a second array
            // saying which of its values are NULL.
            func nullable<Value: PostgresArrayEncodable>(_ values: [Value?], placeholder: Value, _ name: String)
                throws -> String
            {
                try bindings.append(values.map { $0 ?? placeholder })
                try bindings.append(values.map { $0 == nil })
                return "CASE WHEN \(name)_null THEN NULL ELSE \(name) END"
            }
            var names: [String] = []
            for (index, column) in columns.enumerated() {
                let name = "c\(index)"
                switch column {
                case .uuid(let values):
                    selected.append(try nullable(values, placeholder: UUID(uuid: UUID_NULL), name))
                    names += [name, "\(name)_null"]
                case .bigint(let values):
                    selected.append(try nullable(values, placeholder: 0, name))
                    names += [name, "\(name)_null"]
                case .integer(let values):
                    selected.append(try nullable(values, placeholder: 0, name))
                    names += [name, "\(name)_null"]
                case .text(let values):
                    selected.append(try nullable(values, placeholder: "", name))
                    names += [name, "\(name)_null"]
                case .bytea(let values):
                    try bindings.append(values)
                    selected.append(name)
                    names.append(name)
                case .textArray(let values):
                    try bindings.append(values)
                    selected.append("ARRAY(SELECT jsonb_array_elements_text(\(name)::jsonb))")
                    names.append(name)
                }
            }
            let parameters = (1...names.count).map { "$\($0)" }.joined(separator: ", ")
            let sql = """
                INSERT INTO \(table.name) (\(table.columns.joined(separator: ", ")))
                SELECT \(selected.joined(separator: ", ")) FROM unnest(\(parameters)) AS r(\(names.joined(separator: ", ")))
                """
            try await connection.perform(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        }
    }
}

private let UUID_NULL: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
