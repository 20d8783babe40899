import Foundation

/// The PostgreSQL server programs the launcher drives (`initdb`, `pg_ctl`, `pg_isready`),
/// found on `PATH`, under `/usr/lib/postgresql/*/bin`, or where `pg_config --bindir` points.
public struct PostgresBinaries: Sendable, Equatable {
    public var directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public var initdb: String { directory + "/initdb" }
    public var pgCtl: String { directory + "/pg_ctl" }
    public var pgIsReady: String { directory + "/pg_isready" }
    /// Copies a running cluster into a new streaming replica (not needed to run a cluster).
    public var pgBasebackup: String { directory + "/pg_basebackup" }

    static let requiredPrograms = ["initdb", "pg_ctl", "pg_isready"]

    /// Finds a directory holding every required program.
    ///
    /// The candidates are searched in order: `PATH`, the Debian layout `/usr/lib/postgresql/<major>/bin`
    /// (newest major first), then `pg_config --bindir`. `searchPath` and `debianRoot` exist so tests can
    /// point the search at an empty place.
    public static func locate(
        searchPath: String? = ProcessInfo.processInfo.environment["PATH"],
        debianRoot: String = "/usr/lib/postgresql"
    ) throws -> PostgresBinaries {
        var candidates: [String] = []
        for entry in (searchPath ?? "").split(separator: ":") where !entry.isEmpty {
            candidates.append(resolvingSymlinkDirectory(of: String(entry) + "/initdb") ?? String(entry))
        }
        let majors = (try? FileManager.default.contentsOfDirectory(atPath: debianRoot)) ?? []
        for major in majors.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            candidates.append("\(debianRoot)/\(major)/bin")
        }
        if let bindir = pgConfigBindir(searchPath: searchPath) {
            candidates.append(bindir)
        }
        for directory in candidates where hasAllPrograms(directory) {
            return PostgresBinaries(directory: directory)
        }
        throw EmbeddedPostgresError.binariesNotFound(searched: candidates)
    }

    private static func hasAllPrograms(_ directory: String) -> Bool {
        requiredPrograms.allSatisfy { FileManager.default.isExecutableFile(atPath: directory + "/" + $0) }
    }

    /// `/usr/local/bin/initdb` is often a symlink into the real `bin` folder, which also holds
    /// `pg_isready`; following it keeps the three programs from one installation.
    private static func resolvingSymlinkDirectory(of path: String) -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) else { return nil }
        let absolute = target.hasPrefix("/") ? target : (path as NSString).deletingLastPathComponent + "/" + target
        return (absolute as NSString).deletingLastPathComponent
    }

    private static func pgConfigBindir(searchPath: String?) -> String? {
        for entry in (searchPath ?? "").split(separator: ":") {
            let pgConfig = String(entry) + "/pg_config"
            guard FileManager.default.isExecutableFile(atPath: pgConfig),
                let result = try? ProcessRunner.run([pgConfig, "--bindir"]), result.status == 0
            else { continue }
            return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return nil
    }
}
