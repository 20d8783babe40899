import Crypto
import Foundation
import PostgresNIO
import StrataCore
import StrataResources

/// The read models of `Projections/*.sql`, one file each, and their installation.
///
/// A projection whose tables do not exist yet is created from its file and recorded in `projections`
/// with the file's hash. (Rebuilding one whose file changed is the replay machinery's job.)
public struct ProjectionCatalog: Sendable {
    public struct Definition: Sendable {
        public var name: String
        public var script: SQLScript
        public var hash: String
    }

    public var definitions: [Definition]

    public static func bundled() throws -> ProjectionCatalog {
        ProjectionCatalog(
            definitions: try StrataResources.files(in: .projections, withExtension: "sql").map { file in
                let name = String(file.name.dropLast(".sql".count))
                return Definition(
                    name: name, script: SQLScript(name: "Projections/\(file.name)", sql: file.contents),
                    hash: SHA256.hash(data: Data(file.contents.utf8)).hexadecimal
                )
            }
        )
    }

    /// Creates the tables of projections that do not exist yet, under the migration lock so two
    /// starting servers do not both create them. Over an empty log that is all they need; over a log
    /// with events, tables created empty would be wrong, so those are answered for a rebuild instead.
    @discardableResult
    public func install(_ client: PostgresClient, logger: Logger) async throws -> [String] {
        try await client.transaction(logger: logger) { connection in
            try await connection.perform("SELECT pg_advisory_xact_lock(\(MigrationRunner.lock))", logger: logger)
            let installed = try await connection.rows("SELECT name FROM projections", logger: logger)
            var names = Set<String>()
            for row in installed { names.insert(try row.decode(String.self)) }
            let missing = definitions.filter { !names.contains($0.name) }
            guard !missing.isEmpty else { return [] }
            let position =
                try await connection.rows(
                    "SELECT coalesce(max(global_position), 0) FROM events", logger: logger
                ).first?.decode(Int64.self) ?? 0
            guard position == 0 else { return missing.map(\.name) }
            for definition in missing {
                logger.info("creating projection", metadata: ["projection": "\(definition.name)"])
                try await definition.script.run(on: connection, logger: logger)
                try await connection.perform(
                    "INSERT INTO projections (name, definition_hash) VALUES (\(definition.name), \(definition.hash))",
                    logger: logger
                )
            }
            return []
        }
    }
}

extension ProjectionCatalog {
    /// Drops the tables of projections whose file is gone, and forgets them: a read model that changes
    /// shape gets a new name, so the old one can keep serving a running server until the new one is
    /// built, and nothing reads it afterwards. Answers the names dropped.
    @discardableResult
    public func dropRemoved(_ client: PostgresClient, logger: Logger) async throws -> [String] {
        try await client.transaction(logger: logger) { connection in
            try await connection.perform("SELECT pg_advisory_xact_lock(\(MigrationRunner.lock))", logger: logger)
            let rows = try await connection.rows(
                "SELECT name, format('DROP TABLE IF EXISTS public.%I', name) FROM projections ORDER BY name",
                logger: logger
            )
            let defined = Set(definitions.map(\.name))
            var removed: [(name: String, drop: String)] = []
            for row in rows {
                let (name, drop) = try row.decode((String, String).self)
                if !defined.contains(name) { removed.append((name, drop)) }
            }
            for projection in removed {
                logger.notice(
                    "dropping a projection that is no longer defined", metadata: ["projection": "\(projection.name)"])
                try await connection.perform(PostgresQuery(unsafeSQL: projection.drop), logger: logger)
                try await connection.perform("DELETE FROM projections WHERE name = \(projection.name)", logger: logger)
            }
            return removed.map(\.name)
        }
    }
}

public enum ProjectionError: Error, CustomStringConvertible {
    case unknown(String, known: [String])
    /// Verify orders each table by its primary key, so every projection table needs one.
    case noPrimaryKey(String)
    /// An event in the log that cannot follow the ones before it in its stream.
    case inconsistentLog(position: Int64, stream: UUID, reason: String)

    public var description: String {
        switch self {
        case .unknown(let name, let known):
            return "there is no projection \(name); the projections are \(known.joined(separator: ", "))"
        case .noPrimaryKey(let table):
            return "projection table \(table) has no primary key, which verify orders its rows by"
        case .inconsistentLog(let position, let stream, let reason):
            return
                "the event at position \(position) (stream \(stream.lowercased)) cannot follow the ones before it: "
                + "\(reason); the projections were left as they were"
        }
    }
}
