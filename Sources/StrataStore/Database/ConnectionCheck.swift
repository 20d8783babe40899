import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Why PostgreSQL did not take a connection, in words, and whether waiting could change that.
///
/// A pool never says: PostgresNIO retries a failed connect forever and logs each failure at `info`, so
/// a command pointed at a database that does not exist, or with a wrong password, would hang without a
/// word. Commands check first and stop with this; `serve` waits out a PostgreSQL that is not up yet.
public struct ConnectFailure: Error, CustomStringConvertible {
    /// Where, without the password: `user@host:port/database`.
    public var endpoint: String
    public var reason: String
    /// The settings are wrong (no such database or user, a refused password, TLS the server lacks):
    /// trying again will not help.
    public var isLasting: Bool

    public var description: String { "cannot connect to PostgreSQL at \(endpoint): \(reason)" }

    init(_ error: any Error, endpoint: String) {
        self.endpoint = endpoint
        switch error {
        case let error as PSQLError where error.code == .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            reason = error.serverInfo?[.message] ?? "the server refused (SQLSTATE \(state))"
            // 57P03: starting up or shutting down; 53300: too many connections. Everything else the server
            // says while a connection opens is about the settings: the database, the role, the password.
            isLasting = !["57P03", "53300"].contains(state)
        case let error as PSQLError where error.code == .sslUnsupported:
            reason = "the server does not offer TLS, and sslmode asks for it"
            isLasting = true
        case let error as PSQLError where error.code == .connectionError:
            reason = Self.words(for: error.underlying)
            isLasting = false
        case let error as DatabaseUnavailable where error.reason == .timedOut:
            reason = "no answer in time"
            isLasting = false
        default:
            reason = "\(error)"
            isLasting = false
        }
    }

    private static func words(for underlying: (any Error)?) -> String {
        let text = underlying.map { "\($0)" } ?? "the connection failed"
        if text.contains("errno: \(ECONNREFUSED)") { return "nothing listens there (connection refused)" }
        if text.contains("errno: \(ENOENT)") { return "no server socket there (is PostgreSQL running?)" }
        return text
    }
}

extension DatabaseEndpoint {
    /// `user@host:port/database`: where, for messages, never with the password.
    public var place: String {
        let location =
            switch address {
            case .tcp(let host, let port): "\(host):\(port)"
            case .unixSocket(let path): path
            }
        return "\(username)@\(location)/\(database ?? username)"
    }

    /// Opens one connection and closes it; throws a ``ConnectFailure`` saying why it could not.
    public func checkConnects(within limit: Duration = .seconds(5), logger: Logger) async throws {
        let configuration = try connectionConfiguration()
        do {
            let connection = try await withDeadline(limit) {
                try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            } abandoned: { late in
                try? await late.close()
            }
            try? await connection.close()
        } catch {
            throw ConnectFailure(error, endpoint: place)
        }
    }

    /// Returns once PostgreSQL takes a connection: a lasting failure is thrown at once, a passing one
    /// (PostgreSQL not up yet, restarting, full) is said and waited out.
    public func untilConnects(logger: Logger) async throws {
        var lastSaid: ContinuousClock.Instant?
        while true {
            do {
                try await checkConnects(logger: logger)
                if lastSaid != nil { logger.notice("PostgreSQL takes connections", metadata: ["at": "\(place)"]) }
                return
            } catch let failure as ConnectFailure where !failure.isLasting {
                if lastSaid.map({ $0.duration(to: .now) >= .seconds(30) }) ?? true {
                    logger.warning("\(failure); waiting for it")
                    lastSaid = .now
                }
                try await eventLoopSleep(for: .seconds(1))
            }
        }
    }
}
