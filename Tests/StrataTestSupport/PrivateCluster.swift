import EmbeddedPostgres
import Foundation
import PostgresNIO

/// A PostgreSQL cluster of one test's own, which the test may stop, restart or crash without
/// disturbing any other test (they share ``TestPostgres``). It keeps `fsync` on: a test that crashes
/// the server checks that nothing acknowledged was lost, which a cluster that skips flushes could not
/// promise. The cluster and its folder go when the test process ends, however it ends.
public final class PrivateCluster: Sendable {
    public static let databaseName = "strata"

    public let cluster: EmbeddedPostgres
    /// Logs of the test's own processes go here too, to be read if the test fails.
    public let folder: String

    private init(cluster: EmbeddedPostgres, folder: String) {
        self.cluster = cluster
        self.folder = folder
    }

    /// Starts a new cluster with an empty `strata` database; `servingReplicas` to copy it into replicas.
    public static func start(servingReplicas: Bool = false) async throws -> PrivateCluster {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("strata-private-\(getpid())-\(UUID().uuidString.prefix(8))").path
        let cluster = try EmbeddedPostgres.start(
            .init(
                dataDirectory: folder, durability: .full, removeWhenProcessExits: true,
                servesReplicas: servingReplicas),
            logger: TestPostgres.logger)
        let private_ = PrivateCluster(cluster: cluster, folder: folder)
        try await private_.client(database: "postgres").whileRunning { client in
            try await client.perform("CREATE DATABASE \(unescaped: databaseName)", logger: TestPostgres.logger)
        }
        return private_
    }

    /// A `DATABASE_URL` for the `strata` database.
    public var databaseURL: String {
        "postgres://\(EmbeddedPostgres.superuser)@localhost/\(Self.databaseName)?host=\(cluster.socketDirectory)"
    }

    /// A new client (not yet running) on `database`.
    public func client(database: String = databaseName) -> PostgresClient {
        PostgresClient(
            configuration: .init(
                unixSocketPath: cluster.unixSocketPath, username: EmbeddedPostgres.superuser, password: nil,
                database: database),
            backgroundLogger: TestPostgres.logger)
    }

    /// Starts a streaming replica of this cluster (started `servingReplicas`) inside its folder, and
    /// answers it with a `DATABASE_URL` for its `strata` database. Stop it before ``remove()``.
    public func startReplica() throws -> (cluster: EmbeddedPostgres, databaseURL: String) {
        let replica = try EmbeddedPostgres.startReplica(
            of: cluster,
            .init(dataDirectory: folder + "/replica", durability: .full, servesReplicas: true),
            logger: TestPostgres.logger)
        let url =
            "postgres://\(EmbeddedPostgres.superuser)@localhost/\(Self.databaseName)?host=\(replica.socketDirectory)"
        return (replica, url)
    }

    /// Stops the server and removes the cluster's folder.
    public func remove() {
        try? cluster.stopServer(mode: .immediate)
        try? FileManager.default.removeItem(atPath: folder)
    }
}
