import Crypto
import Foundation
import PostgresNIO
import StrataCore
import StrataResources

/// Applies `Migrations/*.sql` — the permanent schema — in name order, and guards what was applied.
///
/// Each applied file is recorded in `schema_migrations` with the SHA-256 of its text. Editing a file
/// after it was applied would leave databases that ran the old text silently different from new ones,
/// so every command checks the record first and refuses to start, naming the file.
public struct MigrationRunner: Sendable {
    public struct Migration: Sendable {
        public var script: SQLScript
        public var checksum: String

        public init(name: String, sql: String) {
            script = SQLScript(name: name, sql: sql)
            checksum = SHA256.hash(data: Data(sql.utf8)).hexadecimal
        }
    }

    public var migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations
    }

    /// The migrations the binary carries.
    public static func bundled() throws -> MigrationRunner {
        MigrationRunner(
            migrations: try StrataResources.files(in: .migrations, withExtension: "sql").map {
                Migration(name: $0.name, sql: $0.contents)
            }
        )
    }

    /// Where a database stands against the migrations this binary carries.
    public struct Status: Sendable, Equatable {
        public var applied: [String]
        public var pending: [String]
        public var isCurrent: Bool { pending.isEmpty }
    }

    /// "STRATAMG": the advisory lock migrations are applied under; the log's append lock is a different key.
    public static let lock: Int64 = 6_004_514_643_731_631_431

    /// Applies every pending migration, all in one transaction under an advisory lock, so two processes
    /// migrating at once apply each file once and a failing file leaves nothing half-done.
    @discardableResult
    public func migrate(_ client: PostgresClient, logger: Logger) async throws -> [String] {
        try await client.transaction(logger: logger) { connection in
            try await connection.perform("SELECT pg_advisory_xact_lock(\(Self.lock))", logger: logger)
            try await connection.perform(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    name       text PRIMARY KEY,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                logger: logger
            )
            let status = try await self.status(on: connection, logger: logger)
            for migration in migrations where status.pending.contains(migration.script.name) {
                logger.info("applying migration", metadata: ["migration": "\(migration.script.name)"])
                try await migration.script.run(on: connection, logger: logger)
                try await connection.perform(
                    "INSERT INTO schema_migrations (name, checksum) VALUES (\(migration.script.name), \(migration.checksum))",
                    logger: logger
                )
            }
            return status.pending
        }
    }

    /// Compares the database's record with the carried files; throws if an applied file changed or is unknown.
    public func status(_ client: PostgresClient, logger: Logger) async throws -> Status {
        try await client.withConnection { try await status(on: $0, logger: logger) }
    }

    public func status(on connection: PostgresConnection, logger: Logger) async throws -> Status {
        let exists =
            try await connection.rows(
                "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger
            ).first?.decode(Bool.self) ?? false
        var recorded: [String: String] = [:]
        if exists {
            let rows = try await connection.rows("SELECT name, checksum FROM schema_migrations", logger: logger)
            for row in rows {
                let (name, checksum) = try row.decode((String, String).self)
                recorded[name] = checksum
            }
        }
        let known = Set(migrations.map(\.script.name))
        if let unknown = recorded.keys.sorted().first(where: { !known.contains($0) }) {
            throw MigrationError.unknownMigrationApplied(unknown)
        }
        for migration in migrations {
            if let checksum = recorded[migration.script.name], checksum != migration.checksum {
                throw MigrationError.appliedMigrationChanged(migration.script.name)
            }
        }
        let names = migrations.map(\.script.name)
        return Status(
            applied: names.filter { recorded[$0] != nil },
            pending: names.filter { recorded[$0] == nil }
        )
    }
}

/// The database's migration record disagrees with the files this binary carries.
public enum MigrationError: Error, CustomStringConvertible, Equatable {
    case appliedMigrationChanged(String)
    case unknownMigrationApplied(String)

    public var description: String {
        switch self {
        case .appliedMigrationChanged(let name):
            return """
                Migrations/\(name) was changed after it was applied to this database. Applied migrations are \
                permanent: restore the file's original text and put the change in a new migration file.
                """
        case .unknownMigrationApplied(let name):
            return """
                this database has migration \(name) applied, which this build of Strata does not have: it was \
                migrated by a newer Strata. Run that version instead.
                """
        }
    }
}
