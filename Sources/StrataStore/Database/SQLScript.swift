import PostgresNIO

/// A file of SQL statements — a migration or a projection's definition — run as one unit.
///
/// PostgresNIO speaks only the extended query protocol, which takes one statement at a time, and a
/// statement splitter would have to understand dollar quoting, comments and string literals. PL/pgSQL's
/// `EXECUTE` runs a whole multi-statement string, and the script travels as a bound parameter, so no
/// quoting of its text is ever needed.
public struct SQLScript: Sendable {
    public var name: String
    public var sql: String

    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }

    /// Runs the script on `connection`, inside whatever transaction the caller has open.
    public func run(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.perform(
            """
            CREATE OR REPLACE FUNCTION pg_temp.strata_run_script(script text) RETURNS void
            LANGUAGE plpgsql AS $$ BEGIN EXECUTE script; END $$
            """,
            logger: logger
        )
        do {
            try await connection.perform("SELECT pg_temp.strata_run_script(\(sql))", logger: logger)
        } catch let error as PSQLError {
            // PostgreSQL going away under the script is an outage, to be run again, not a script it refused:
            // `verify` would report it as drift.
            if let outage = DatabaseUnavailable(error) { throw outage }
            throw SQLScriptError(script: name, message: error.serverInfo?[.message] ?? String(reflecting: error))
        }
    }
}

/// A script the server refused, with the file it came from.
public struct SQLScriptError: Error, CustomStringConvertible {
    public var script: String
    public var message: String
    public var description: String { "\(script): \(message)" }
}
