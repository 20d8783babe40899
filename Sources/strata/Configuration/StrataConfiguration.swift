import ArgumentParser
import Foundation
import Logging
import StrataHTTP

/// The options every command that touches the database shares.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"), help: "PostgreSQL URL (default: $DATABASE_URL, else the embedded cluster)")
    var databaseURL: String?

    @Option(name: .customLong("data-dir"), help: "Embedded cluster folder (default: $STRATA_DATA_DIR, else ./.strata)")
    var dataDirectory: String?
}

/// Everything Strata is told at start-up, read once from flags and the environment (flags win) and
/// passed down from there.
struct StrataConfiguration: Sendable {
    /// `nil` means the embedded cluster under `dataDirectory`.
    var databaseURL: String?
    /// Streaming replicas of that database, which serve reads (`STRATA_READ_DATABASE_URL`, comma-separated).
    var readDatabaseURLs: [String]
    var dataDirectory: String
    var logLevel: Logger.Level
    var http: HTTPServerConfiguration

    /// What `--port` and `STRATA_PORT` may be: 0 asks for any free port.
    static let ports = 0...65535

    init(
        database: DatabaseOptions,
        host: String? = nil,
        port: Int? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        databaseURL = database.databaseURL ?? environment["DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        dataDirectory = database.dataDirectory ?? environment["STRATA_DATA_DIR"] ?? "./.strata"
        readDatabaseURLs = (environment["STRATA_READ_DATABASE_URL"] ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let levelName = environment["STRATA_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError(
                "STRATA_LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical")
        }
        logLevel = level
        let environmentPort = try environment["STRATA_PORT"].map { value in
            guard let port = Int(value), Self.ports.contains(port) else {
                throw ValidationError("STRATA_PORT must be a port number, not '\(value)'")
            }
            return port
        }
        // Past 65535 the listener would wrap it to another port and say nothing.
        if let port, !Self.ports.contains(port) {
            throw ValidationError("--port must be a port number from 0 to 65535, not \(port)")
        }
        http = HTTPServerConfiguration(
            host: host ?? environment["STRATA_HOST"] ?? "127.0.0.1",
            port: port ?? environmentPort ?? 8080
        )
    }

    /// Sets up logging once per process, at the configured level.
    func makeLogger(label: String = "strata") -> Logger {
        LoggingBootstrap.once(level: logLevel)
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}

private enum LoggingBootstrap {
    static let lock = NSLock()
    nonisolated(unsafe) static var done = false

    static func once(level: Logger.Level) {
        lock.lock()
        defer { lock.unlock() }
        guard !done else { return }
        done = true
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
