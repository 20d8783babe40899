import Foundation
import PostgresNIO

/// A statement prepared with SQL's own `PREPARE` on each connection that runs it, and run by `EXECUTE`
/// with its arguments written as literals: a plain query, whose rows are gathered on the event loop
/// (see ``PostgresNIO/PostgresConnection/rows(_:logger:file:line:)``), yet parsed and planned once per
/// connection as a prepared statement is.
///
/// For statements whose answers can be long. PostgresNIO's own prepared statements stream their rows to
/// the reading task, which used to end the process when PostgreSQL went away between two pieces of an
/// answer (now prevented for every stream by ``UnaskedReadCompleteFilter``); gathered, the rows need no
/// hop to the reading task between pieces. Unprepared, the lineage walk's statements cost it a quarter of
/// its throughput in parsing and planning.
protocol ExecutedStatement: Sendable {
    associatedtype Row
    /// The name it is prepared under, one per text.
    static var name: String { get }
    /// The parameters' types, `$1` first (`uuid[]`, `bigint`).
    static var parameterTypes: [String] { get }
    static var sql: String { get }
    /// The arguments as SQL literals, `$1` first; only values whose text cannot close a literal (ids,
    /// numbers), since they are written into the statement.
    var arguments: [String] { get }
    func decodeRow(_ row: PostgresRow) throws -> Row
}

extension ExecutedStatement {
    /// `EXECUTE` of this statement with its arguments: a plain query, to run alone or among others, on a
    /// connection that has prepared it (see ``PostgresNIO/PostgresConnection/prepare(_:logger:)``).
    var execution: PostgresQuery {
        PostgresQuery(unsafeSQL: "EXECUTE \(Self.name)(\(arguments.joined(separator: ", ")))")
    }

    /// `ids` as a literal array, for ``arguments``.
    static func literal(_ ids: [UUID]) -> String { "'{\(ids.map(\.uuidString).joined(separator: ","))}'" }

    /// `numbers` as a literal array, for ``arguments``.
    static func literal(_ numbers: [some BinaryInteger]) -> String {
        "'{\(numbers.map { "\($0)" }.joined(separator: ","))}'"
    }

    /// `names` as a literal array, for ``arguments``: names of the code's own (event types), made of
    /// letters, digits and underscores only.
    static func literal(names: [String]) -> String {
        precondition(
            names.allSatisfy { name in
                !name.isEmpty && name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
            },
            "only plain names can be written as a literal")
        return "'{\(names.joined(separator: ","))}'"
    }
}

extension PostgresConnection {
    /// Prepares `Statement` on this connection, unless it already is; the first call on a connection
    /// asks `pg_prepared_statements`, in a round trip, and prepares it in another if it must.
    func prepare<Statement: ExecutedStatement>(_: Statement.Type, logger: Logger) async throws {
        if ConnectionRecords.shared.holds(Statement.name, on: self) { return }
        // Asked, not assumed: a PREPARE whose answer was lost may have happened, and a second one would
        // fail (and, in a transaction, fail the transaction).
        let prepared = try await rows(
            "SELECT 1 FROM pg_prepared_statements WHERE name = \(Statement.name)", logger: logger)
        if prepared.isEmpty {
            let parameters = Statement.parameterTypes.joined(separator: ", ")
            try await perform(
                PostgresQuery(unsafeSQL: "PREPARE \(Statement.name)(\(parameters)) AS \(Statement.sql)"),
                logger: logger)
        }
        ConnectionRecords.shared.recordPrepared(Statement.name, on: self)
    }

    /// `statement`'s rows, gathered; prepared on this connection first if it is not yet.
    func rows<Statement: ExecutedStatement>(executing statement: Statement, logger: Logger) async throws
        -> [Statement.Row]
    {
        try await prepare(Statement.self, logger: logger)
        return try await rows(statement.execution, logger: logger).map(statement.decodeRow)
    }
}
