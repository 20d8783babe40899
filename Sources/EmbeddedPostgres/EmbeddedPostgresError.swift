/// Why the embedded cluster could not be started or reached, worded for the person who has to fix it.
public enum EmbeddedPostgresError: Error, CustomStringConvertible, Equatable {
    case binariesNotFound(searched: [String])
    case clusterUserMissing(String)
    case dataDirectoryUnreachable(path: String, user: String)
    case dataDirectoryNotACluster(String)
    case commandFailed(command: String, status: Int32, output: String)
    case notReady(socketDirectory: String, seconds: Int)

    public var description: String {
        switch self {
        case .binariesNotFound(let searched):
            let places = searched.isEmpty ? "PATH and /usr/lib/postgresql/*/bin" : searched.joined(separator: ", ")
            return """
                PostgreSQL server programs (initdb, pg_ctl, pg_isready) were not found (looked in: \(places)). \
                Install them with `apt-get install postgresql` (Debian/Ubuntu), or set DATABASE_URL to use an \
                existing server.
                """
        case .clusterUserMissing(let user):
            return """
                Strata runs as root, and PostgreSQL refuses to run as root, so the embedded cluster runs as the \
                system user '\(user)' — which does not exist. Install PostgreSQL from your distribution (it creates \
                the user), create the user, or set DATABASE_URL.
                """
        case .dataDirectoryUnreachable(let path, let user):
            return """
                The embedded cluster runs as '\(user)', which cannot reach \(path). Set STRATA_DATA_DIR to a \
                directory every parent of which '\(user)' may enter (for example under /var/lib or /tmp).
                """
        case .dataDirectoryNotACluster(let path):
            return
                "\(path) exists and is not empty, but holds no PostgreSQL cluster (no PG_VERSION); refusing to touch it."
        case .commandFailed(let command, let status, let output):
            return "`\(command)` failed with status \(status):\n\(output)"
        case .notReady(let socketDirectory, let seconds):
            return "the embedded PostgreSQL did not accept connections on \(socketDirectory) within \(seconds) s"
        }
    }
}
