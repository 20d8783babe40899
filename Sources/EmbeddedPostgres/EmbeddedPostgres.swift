import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A private PostgreSQL cluster that Strata runs itself when no `DATABASE_URL` is given, and that the
/// test suites use with a temporary data directory.
///
/// The cluster lives in `<dataDirectory>/postgres` and listens only on a Unix socket in a folder that
/// nobody else may enter (plus TCP if asked). Several Strata processes can share one data directory:
/// the first one to find the cluster stopped starts it and becomes its *owner*; the others are guests
/// and leave it running when they exit. A cluster whose owner died is adopted by the next process.
/// Decisions about who owns the cluster are taken under an exclusive `flock` on the data directory.
public final class EmbeddedPostgres: Sendable {
    /// The database role `initdb` creates; local connections are trusted, the socket folder is private.
    public static let superuser = "strata"

    public let configuration: Configuration
    /// The folder holding the server's Unix socket (pass it as `host` to `psql`).
    public let socketDirectory: String
    public let port: Int
    /// Whether this launcher started (or adopted) the cluster and so must stop it.
    public let isOwner: Bool
    /// Who this launcher is in the owner record: its process, and itself within the process.
    private let ownerRecord: OwnerRecord

    /// The path of the socket file, as PostgresNIO wants it.
    public var unixSocketPath: String { "\(socketDirectory)/.s.PGSQL.\(port)" }

    /// How to start the cluster: where it lives and how careful it must be with the data.
    public struct Configuration: Sendable {
        public enum Durability: Sendable {
            /// Every commit reaches the disk: the only sensible choice for data anyone cares about.
            case full
            /// `fsync` off: for throw-away test clusters, where speed matters and a crash loses nothing.
            case none
        }

        public var dataDirectory: String
        /// Also listen on `127.0.0.1:<tcpPort>`; by default the cluster is reachable only through its socket.
        public var tcpPort: Int?
        public var durability: Durability
        /// The system user the server runs as; `nil` means the current user, or `postgres` when that is root.
        public var clusterUser: String?
        /// Stop the cluster and delete the data directory as soon as this process exits, however it exits.
        public var removeWhenProcessExits: Bool
        public var binaries: PostgresBinaries?
        /// Write the WAL a streaming replica needs and accept replication connections (see
        /// ``EmbeddedPostgres/startReplica(of:_:logger:)``); otherwise the minimal WAL, which makes a
        /// projection rebuild cheaper.
        public var servesReplicas: Bool
        /// PostgreSQL's `max_connections`: room for a few servers' pools, or for a test suite's many
        /// databases at once, each with pools of its own.
        public var maximumConnections: Int

        public init(
            dataDirectory: String,
            tcpPort: Int? = nil,
            durability: Durability = .full,
            clusterUser: String? = nil,
            removeWhenProcessExits: Bool = false,
            binaries: PostgresBinaries? = nil,
            servesReplicas: Bool = false,
            maximumConnections: Int = 300
        ) {
            self.dataDirectory = dataDirectory
            self.tcpPort = tcpPort
            self.durability = durability
            self.clusterUser = clusterUser
            self.removeWhenProcessExits = removeWhenProcessExits
            self.binaries = binaries
            self.servesReplicas = servesReplicas
            self.maximumConnections = maximumConnections
        }
    }

    private let layout: Layout
    private let command: CommandPrefix
    private let logger: Logger

    private init(
        configuration: Configuration,
        layout: Layout,
        command: CommandPrefix,
        socketDirectory: String,
        port: Int,
        isOwner: Bool,
        ownerRecord: OwnerRecord,
        logger: Logger
    ) {
        self.configuration = configuration
        self.layout = layout
        self.command = command
        self.socketDirectory = socketDirectory
        self.port = port
        self.isOwner = isOwner
        self.ownerRecord = ownerRecord
        self.logger = logger
    }

    /// Whether `dataDirectory` holds a cluster already: one that ``start(_:logger:)`` starts or joins
    /// rather than creates.
    public static func holdsCluster(_ dataDirectory: String) -> Bool {
        FileManager.default.fileExists(
            atPath: Layout(dataDirectory: absolutePath(dataDirectory)).clusterDirectory + "/PG_VERSION")
    }

    /// Starts the cluster, or joins the one already running on the same data directory, and returns
    /// once it accepts connections.
    public static func start(_ configuration: Configuration, logger: Logger) throws -> EmbeddedPostgres {
        let binaries = try configuration.binaries ?? PostgresBinaries.locate()
        let layout = Layout(dataDirectory: absolutePath(configuration.dataDirectory))
        let command = try CommandPrefix(clusterUser: configuration.clusterUser, binaries: binaries)
        try layout.prepare(for: command)

        let lock = try FileLock(path: layout.lockFile)
        defer { lock.release() }

        if !FileManager.default.fileExists(atPath: layout.clusterDirectory + "/PG_VERSION") {
            try initializeCluster(layout: layout, command: command, logger: logger)
        }
        let cluster: EmbeddedPostgres
        let me = OwnerRecord(pid: getpid(), launcher: UUID())
        if let running = RunningServer.read(clusterDirectory: layout.clusterDirectory) {
            let ownerAlive = OwnerRecord.read(layout.ownerFile).map { isProcessAlive($0.pid) } ?? false
            if !ownerAlive { try me.write(to: layout.ownerFile) }
            logger.info(
                ownerAlive
                    ? "using the embedded PostgreSQL already running" : "adopting an embedded PostgreSQL left running",
                metadata: ["data_dir": "\(layout.dataDirectory)"]
            )
            cluster = EmbeddedPostgres(
                configuration: configuration, layout: layout, command: command,
                socketDirectory: running.socketDirectory, port: running.port, isOwner: !ownerAlive, ownerRecord: me,
                logger: logger
            )
        } else {
            // The owner may be alive with its server down (crashed, about to be started again by the
            // owner's supervisor): this launcher starts it, and leaves it to the owner, as a guest.
            let ownerAlive = OwnerRecord.read(layout.ownerFile).map { isProcessAlive($0.pid) } ?? false
            let port = configuration.tcpPort ?? 5432
            try writeServerSettings(configuration, layout: layout, port: port, command: command)
            logger.info("starting the embedded PostgreSQL", metadata: ["data_dir": "\(layout.dataDirectory)"])
            try startServer(command: command, layout: layout)
            if !ownerAlive { try me.write(to: layout.ownerFile) }
            cluster = EmbeddedPostgres(
                configuration: configuration, layout: layout, command: command,
                socketDirectory: layout.socketDirectory, port: port, isOwner: !ownerAlive, ownerRecord: me,
                logger: logger
            )
        }
        if configuration.removeWhenProcessExits {
            try cluster.startWatchdog()
        }
        try cluster.waitUntilReady(seconds: 30)
        return cluster
    }

    /// Makes a streaming replica of `primary` in `configuration.dataDirectory` (`pg_basebackup -R`: a
    /// copy of the primary that follows its WAL, read-only) and starts it on a socket of its own.
    /// PostgreSQL's own replication, as an operator would set it up; for tests and benchmarks of reads
    /// from replicas. The primary must allow replication connections on its socket, as `initdb`'s
    /// trusted local access does, and serve replicas (``Configuration/servesReplicas``); so does the
    /// replica's configuration.
    public static func startReplica(
        of primary: EmbeddedPostgres, _ configuration: Configuration, logger: Logger
    ) throws -> EmbeddedPostgres {
        let binaries = try configuration.binaries ?? PostgresBinaries.locate()
        let layout = Layout(dataDirectory: absolutePath(configuration.dataDirectory))
        let command = try CommandPrefix(clusterUser: configuration.clusterUser, binaries: binaries)
        try layout.prepare(for: command)
        if !FileManager.default.fileExists(atPath: layout.clusterDirectory + "/PG_VERSION") {
            logger.info("copying the primary into a replica", metadata: ["data_dir": "\(layout.clusterDirectory)"])
            try command.run([
                binaries.pgBasebackup, "-D", layout.clusterDirectory, "-R", "-X", "stream", "-c", "fast",
                "-h", primary.socketDirectory, "-p", "\(primary.port)", "-U", superuser,
            ])
        }
        return try start(configuration, logger: logger)
    }

    /// Stops the cluster if this process owns it; a guest leaves it running for its owner.
    public func stop() throws {
        guard isOwner else { return }
        let lock = try FileLock(path: layout.lockFile)
        defer { lock.release() }
        // Another launcher may have adopted the cluster after deciding we were gone; it stops it then.
        guard OwnerRecord.read(layout.ownerFile) == ownerRecord else { return }
        logger.info("stopping the embedded PostgreSQL", metadata: ["data_dir": "\(layout.dataDirectory)"])
        if RunningServer.read(clusterDirectory: layout.clusterDirectory) != nil {
            try command.run([command.binaries.pgCtl, "stop", "-D", layout.clusterDirectory, "-m", "fast", "-w", "-s"])
        }
        try? FileManager.default.removeItem(atPath: layout.ownerFile)
    }

    /// How `pg_ctl` stops a server: `fast` rolls back open transactions and shuts down cleanly (an
    /// operator's restart); `immediate` kills every backend without a checkpoint, as a crash would, and
    /// the next start recovers from the WAL.
    public enum ShutdownMode: String, Sendable {
        case fast, immediate
    }

    /// Stops the server, whoever owns the cluster, as an operator or a crash would; for fault tests.
    public func stopServer(mode: ShutdownMode) throws {
        try command.run([
            command.binaries.pgCtl, "stop", "-D", layout.clusterDirectory, "-m", mode.rawValue, "-w", "-s",
        ])
    }

    /// Whether the server runs, as its `postmaster.pid` says; the file a killed server left behind, naming
    /// a process that is gone, does not count.
    public var isServerRunning: Bool { RunningServer.read(clusterDirectory: layout.clusterDirectory) != nil }

    /// Starts the server again if this process owns the cluster and the server does not run (it crashed,
    /// or was killed or stopped under us), and returns once it accepts connections; answers whether it
    /// started it. PostgreSQL recovers from its WAL as it starts, so nothing it committed is lost.
    /// Blocks: call it off Swift's cooperative threads.
    public func restartIfDown() throws -> Bool {
        guard isOwner else { return false }
        let lock = try FileLock(path: layout.lockFile)
        defer { lock.release() }
        // A launcher that adopted the cluster when it thought us gone runs it now; and a server may have
        // come back while we waited for the lock.
        guard OwnerRecord.read(layout.ownerFile) == ownerRecord, !isServerRunning else { return false }
        logger.warning(
            "the embedded PostgreSQL is not running; starting it again",
            metadata: ["data_dir": "\(layout.dataDirectory)"])
        try Self.startServer(command: command, layout: layout)
        try waitUntilReady(seconds: 60)
        logger.notice("the embedded PostgreSQL runs again", metadata: ["data_dir": "\(layout.dataDirectory)"])
        return true
    }

    /// Starts the server again after ``stopServer(mode:)``, and returns once it accepts connections.
    public func startServer() throws {
        try Self.startServer(command: command, layout: layout)
        try waitUntilReady(seconds: 30)
    }

    private static func startServer(command: CommandPrefix, layout: Layout) throws {
        try command.run([
            command.binaries.pgCtl, "start", "-D", layout.clusterDirectory, "-l", layout.serverLog, "-w", "-t", "60",
            "-s",
        ])
    }

    private static func initializeCluster(layout: Layout, command: CommandPrefix, logger: Logger) throws {
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: layout.clusterDirectory)) ?? []
        guard contents.isEmpty else { throw EmbeddedPostgresError.dataDirectoryNotACluster(layout.clusterDirectory) }
        logger.info("creating the embedded PostgreSQL cluster", metadata: ["data_dir": "\(layout.clusterDirectory)"])
        try command.run([
            command.binaries.initdb, "-D", layout.clusterDirectory, "-U", superuser, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-instructions",
        ])
        let configFile = layout.clusterDirectory + "/postgresql.conf"
        let include =
            "\n# Written by Strata before every start: socket, port and durability.\ninclude_if_exists = 'strata.conf'\n"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: configFile))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(include.utf8))
    }

    private static func writeServerSettings(
        _ configuration: Configuration,
        layout: Layout,
        port: Int,
        command: CommandPrefix
    ) throws {
        func quoted(_ value: String) -> String { "'" + value.replacingOccurrences(of: "'", with: "''") + "'" }
        var settings = [
            "listen_addresses = \(quoted(configuration.tcpPort == nil ? "" : "127.0.0.1"))",
            "port = \(port)",
            "unix_socket_directories = \(quoted(layout.socketDirectory))",
            "unix_socket_permissions = 0700",
            "max_connections = \(configuration.maximumConnections)",
        ]
        // A private cluster without replicas archives no WAL, so it needs only the minimal WAL; that
        // lets a projection rebuild write its new tables without logging every row twice.
        settings +=
            configuration.servesReplicas
            ? ["wal_level = replica", "max_wal_senders = 10"]
            : ["wal_level = minimal", "max_wal_senders = 0"]
        if configuration.durability == .none {
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        }
        let path = layout.clusterDirectory + "/strata.conf"
        try (settings.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        try command.handOver(path)
    }

    private func waitUntilReady(seconds: Int) throws {
        let deadline = Date().addingTimeInterval(TimeInterval(seconds))
        repeat {
            let probe = try ProcessRunner.run([
                command.binaries.pgIsReady, "-q", "-h", socketDirectory, "-p", "\(port)", "-t", "1",
            ])
            if probe.status == 0 { return }
            Thread.sleep(forTimeInterval: 0.1)
        } while Date() < deadline
        throw EmbeddedPostgresError.notReady(socketDirectory: socketDirectory, seconds: seconds)
    }

    /// A small shell loop outside our process that stops the cluster and removes its folder once we are
    /// gone — also when we crash or are killed, which no `atexit` handler would survive.
    private func startWatchdog() throws {
        let script = """
            while kill -0 "$1" 2>/dev/null; do sleep 1; done
            pid=$1; dir=$2; shift 2
            "$@" stop -D "$dir/postgres" -m immediate -w -s >/dev/null 2>&1
            rm -rf "$dir"
            """
        try ProcessRunner.start(
            ["/usr/bin/setsid", "/bin/sh", "-c", script, "strata-watchdog", "\(getpid())", layout.dataDirectory]
                + command.prefix + [command.binaries.pgCtl]
        )
    }
}

/// Where the launcher keeps its files inside the data directory.
struct Layout {
    var dataDirectory: String
    var clusterDirectory: String { dataDirectory + "/postgres" }
    var logDirectory: String { dataDirectory + "/log" }
    var serverLog: String { logDirectory + "/postgresql.log" }
    var lockFile: String { dataDirectory + "/launcher.lock" }
    var ownerFile: String { dataDirectory + "/owner.pid" }

    /// The socket goes inside the data directory unless the path would exceed the 107 bytes a Unix
    /// socket address can hold; then into a private folder in /tmp named after the data directory.
    var socketDirectory: String {
        let inside = dataDirectory + "/run"
        if (inside + "/.s.PGSQL.65535").utf8.count < 100 { return inside }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in dataDirectory.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "/tmp/strata-" + String(hash, radix: 16)
    }

    /// Creates the folders, owned by the cluster's user and closed to everyone else.
    func prepare(for command: CommandPrefix) throws {
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        try command.checkCanReach(dataDirectory)
        for folder in [clusterDirectory, logDirectory, socketDirectory] {
            try fileManager.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
            )
            try command.handOver(folder)
        }
    }
}

/// How to run a PostgreSQL program as the cluster's user: directly, or through `runuser` when we are root.
struct CommandPrefix {
    var binaries: PostgresBinaries
    var prefix: [String]
    var owner: (uid: uid_t, gid: gid_t)?
    var user: String

    init(clusterUser: String?, binaries: PostgresBinaries) throws {
        self.binaries = binaries
        let currentUser = String(cString: getpwuid(geteuid()).pointee.pw_name)
        let user = clusterUser ?? (geteuid() == 0 ? "postgres" : currentUser)
        self.user = user
        if user == currentUser {
            prefix = []
            owner = nil
        } else {
            guard let entry = getpwnam(user) else { throw EmbeddedPostgresError.clusterUserMissing(user) }
            let runuser = ["/usr/sbin/runuser", "/sbin/runuser"].first {
                FileManager.default.isExecutableFile(atPath: $0)
            }
            prefix = [runuser ?? "/usr/sbin/runuser", "-u", user, "--"]
            owner = (entry.pointee.pw_uid, entry.pointee.pw_gid)
        }
    }

    /// Runs a program as the cluster user in a session of its own, so a Ctrl-C meant for Strata does not
    /// reach the server directly: Strata finishes its requests first, then stops the server itself.
    func run(_ arguments: [String]) throws {
        let result = try ProcessRunner.run(["/usr/bin/setsid", "-w"] + prefix + arguments)
        guard result.status == 0 else {
            throw EmbeddedPostgresError.commandFailed(
                command: arguments.joined(separator: " "), status: result.status, output: result.output
            )
        }
    }

    func handOver(_ path: String) throws {
        guard let owner else { return }
        guard chown(path, owner.uid, owner.gid) == 0 else {
            throw EmbeddedPostgresError.commandFailed(
                command: "chown \(user) \(path)", status: errno, output: String(cString: strerror(errno))
            )
        }
    }

    func checkCanReach(_ directory: String) throws {
        guard !prefix.isEmpty else { return }
        let probe = try ProcessRunner.run(prefix + ["/usr/bin/test", "-x", directory])
        if probe.status != 0 { throw EmbeddedPostgresError.dataDirectoryUnreachable(path: directory, user: user) }
    }
}

/// What `postmaster.pid` says about a live server: its socket folder and port.
struct RunningServer {
    var socketDirectory: String
    var port: Int

    static func read(clusterDirectory: String) -> RunningServer? {
        guard let text = try? String(contentsOfFile: clusterDirectory + "/postmaster.pid", encoding: .utf8) else {
            return nil
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 5, let pid = pid_t(lines[0]), isProcessAlive(pid), let port = Int(lines[3]) else {
            return nil
        }
        let socketDirectory = lines[4].split(separator: ",").first.map(String.init) ?? ""
        return RunningServer(socketDirectory: socketDirectory, port: port)
    }
}

/// Which launcher owns the cluster: its process, whose death frees the cluster for adoption, and the
/// launcher itself, so that two launchers in one process can tell each other apart.
struct OwnerRecord: Equatable {
    var pid: pid_t
    var launcher: UUID

    static func read(_ path: String) -> OwnerRecord? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard let pid = fields.first.flatMap({ pid_t($0) }) else { return nil }
        return OwnerRecord(
            pid: pid, launcher: fields.dropFirst().first.flatMap { UUID(uuidString: String($0)) } ?? UUID())
    }

    func write(to path: String) throws {
        try "\(pid) \(launcher.uuidString)\n".write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// An exclusive advisory lock on a file, held until `release()`; the kernel drops it if we die.
struct FileLock {
    private let descriptor: Int32

    init(path: String) throws {
        descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw EmbeddedPostgresError.commandFailed(
                command: "open \(path)", status: errno, output: String(cString: strerror(errno))
            )
        }
        while flock(descriptor, LOCK_EX) != 0 && errno == EINTR {}
    }

    func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

/// Whether `pid` names a live process. A zombie is dead: in a container whose first process does not
/// reap orphans, a dead owner can linger as one indefinitely.
public func isProcessAlive(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let afterName = stat.range(of: ") ", options: .backwards)
    else { return true }
    return stat[afterName.upperBound...].first != "Z"
}

func absolutePath(_ path: String) -> String {
    let url = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
    return url.standardizedFileURL.path
}
