import ArgumentParser
import EmbeddedPostgres
import Foundation
import Logging
import PostgresNIO
import StrataStore

/// The database a command works on: the one `DATABASE_URL` names, or the `strata` database of the
/// embedded cluster, which this opens (starting the cluster if no other Strata process runs it).
struct DatabaseSession {
    static let embeddedDatabaseName = "strata"

    let endpoint: DatabaseEndpoint
    let embedded: EmbeddedPostgres?

    var clientConfiguration: PostgresClient.Configuration { endpoint.clientConfiguration }

    /// A server named by `DATABASE_URL` must take a connection first: a command stops at once, saying
    /// why, if it does not (the pools would retry forever without a word). `serve` waits for it itself
    /// (`waitsItself`), listening meanwhile, and stops only on settings that cannot work (see
    /// ``ConnectFailure``).
    ///
    /// - Parameter existingOnly: refuse to create the embedded cluster, for a command that works on a
    ///   catalog and would otherwise, run from the wrong folder, make a new empty one and act on that.
    static func open(
        _ configuration: StrataConfiguration, logger: Logger, existingOnly: Bool = false, waitsItself: Bool = false
    ) async throws -> DatabaseSession {
        if let url = configuration.databaseURL {
            let endpoint = try DatabaseEndpoint(url: url)
            if !waitsItself { try await endpoint.checkConnects(logger: logger) }
            return DatabaseSession(endpoint: endpoint, embedded: nil)
        }
        if existingOnly && !EmbeddedPostgres.holdsCluster(configuration.dataDirectory) {
            throw NoEmbeddedCatalog(dataDirectory: configuration.dataDirectory)
        }
        let cluster = try EmbeddedPostgres.start(.init(dataDirectory: configuration.dataDirectory), logger: logger)
        do {
            try await createDatabaseIfMissing(on: cluster, logger: logger)
        } catch {
            try? cluster.stop()
            throw error
        }
        return DatabaseSession(
            endpoint: cluster.endpoint(database: embeddedDatabaseName),
            embedded: cluster
        )
    }

    /// Stops the embedded cluster if this process owns it.
    func close() {
        try? embedded?.stop()
    }

    /// Runs `body` with a running client on the session's database, then closes the session whatever happens.
    ///
    /// PostgreSQL going away meanwhile ends the command with exit status 10, a client verb's for a 503, so
    /// that a script can tell an outage (run it again) from what the command found (`verify`'s drift: 1).
    static func with<Result: Sendable>(
        _ configuration: StrataConfiguration,
        logger: Logger,
        existingOnly: Bool = false,
        _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        let session = try await open(configuration, logger: logger, existingOnly: existingOnly)
        defer { session.close() }
        do {
            return try await PostgresClient(configuration: session.clientConfiguration, backgroundLogger: logger)
                .whileRunning(body)
        } catch {
            guard let outage = DatabaseUnavailable(error) else { throw error }
            ProgressLine.finish()
            FileHandle.standardError.write(
                Data("strata: \(outage); run the command again once PostgreSQL is back\n".utf8))
            throw ExitCode(ClientFailure.ExitCode.unavailable.rawValue)
        }
    }

    private static func createDatabaseIfMissing(on cluster: EmbeddedPostgres, logger: Logger) async throws {
        let maintenance = PostgresClient(
            configuration: .init(
                unixSocketPath: cluster.unixSocketPath, username: EmbeddedPostgres.superuser, password: nil,
                database: "postgres"
            ),
            backgroundLogger: logger
        )
        try await maintenance.whileRunning { client in
            let exists =
                try await client.query(
                    "SELECT 1 FROM pg_database WHERE datname = \(embeddedDatabaseName)", logger: logger
                ).collect().isEmpty == false
            guard !exists else { return }
            do {
                try await client.perform("CREATE DATABASE \(unescaped: embeddedDatabaseName)", logger: logger)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P04" {
                // Another Strata process created it between our look and our CREATE: just as good.
            }
        }
    }
}

extension EmbeddedPostgres {
    /// `database` on this cluster, as its superuser, over its socket.
    func endpoint(database: String) -> DatabaseEndpoint {
        DatabaseEndpoint(
            address: .unixSocket(path: unixSocketPath), username: EmbeddedPostgres.superuser, password: nil,
            database: database)
    }
}

/// A command that works on an existing catalog found no embedded cluster where it looked.
struct NoEmbeddedCatalog: Error, CustomStringConvertible {
    let dataDirectory: String

    var description: String {
        """
        no catalog in \(dataDirectory): run this in the folder where `strata serve` keeps its data, or point \
        STRATA_DATA_DIR (--data-dir) or DATABASE_URL (--database-url) at it
        """
    }
}
