import StrataTestSupport

extension PrivateCluster {
    /// A private cluster with `strata serve` running on it, the setup of most system tests. Stop the
    /// server, then remove the cluster: `defer { server.stop(); cluster.remove() }`.
    static func startServed() async throws -> (cluster: PrivateCluster, server: ServerProcess) {
        let cluster = try await PrivateCluster.start()
        do {
            return (cluster, try await ServerProcess.start(databaseURL: cluster.databaseURL, logFolder: cluster.folder))
        } catch {
            cluster.remove()
            throw error
        }
    }
}
