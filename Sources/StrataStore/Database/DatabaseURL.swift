import Foundation
import PostgresNIO

/// Why a `DATABASE_URL` could not be understood.
public struct DatabaseURLError: Error, CustomStringConvertible {
    public var description: String
}

/// Where PostgreSQL is and whom to be there, as a `DATABASE_URL` or the embedded cluster names it. The
/// pool and single connections (the readiness monitor's) are both configured from it.
public struct DatabaseEndpoint: Sendable {
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    public enum TLSMode: Sendable, Equatable {
        case disable, prefer, require
    }

    public var address: Address
    public var username: String
    public var password: String?
    public var database: String?
    public var tls: TLSMode

    public init(address: Address, username: String, password: String?, database: String?, tls: TLSMode = .disable) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Reads a libpq-style URL: `postgres://user:password@host:5432/database?sslmode=require`.
    ///
    /// `sslmode` `disable` turns TLS off, `require`/`verify-ca`/`verify-full` demand it, anything else
    /// (libpq's default `prefer` included) uses it when the server offers it. A `host` query parameter
    /// that starts with `/` names a Unix socket folder, as in libpq.
    public init(url: String) throws {
        guard let components = URLComponents(string: url),
            let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme)
        else {
            throw DatabaseURLError(
                description: "DATABASE_URL must look like postgres://user:password@host:5432/database")
        }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last }
        )
        username = components.user?.removingPercentEncoding ?? query["user"] ?? "postgres"
        password = components.password?.removingPercentEncoding ?? query["password"]
        database = components.path.isEmpty ? nil : String(components.path.dropFirst()).removingPercentEncoding
        let port = components.port ?? query["port"].flatMap(Int.init) ?? 5432

        if let socketFolder = query["host"], socketFolder.hasPrefix("/") {
            address = .unixSocket(path: "\(socketFolder)/.s.PGSQL.\(port)")
            tls = .disable
            return
        }
        switch query["sslmode"] ?? "prefer" {
        case "disable": tls = .disable
        case "require", "verify-ca", "verify-full": tls = .require
        default: tls = .prefer
        }
        guard let host = components.host, !host.isEmpty else {
            throw DatabaseURLError(description: "DATABASE_URL names no host")
        }
        address = .tcp(host: host, port: port)
    }

    /// The endpoint as a `DATABASE_URL`, for a child process.
    public var url: String {
        let user = username.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? username
        let secret = password.map { ":" + ($0.addingPercentEncoding(withAllowedCharacters: .urlPasswordAllowed) ?? $0) }
        let name = (database ?? "").addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? ""
        switch address {
        case .unixSocket(let path):
            let folder = (path as NSString).deletingLastPathComponent
            let port = path.split(separator: ".").last.flatMap { Int($0) } ?? 5432
            return "postgres://\(user)\(secret ?? "")@localhost/\(name)?host=\(folder)&port=\(port)"
        case .tcp(let host, let port):
            let mode = tls == .disable ? "disable" : tls == .require ? "require" : "prefer"
            return "postgres://\(user)\(secret ?? "")@\(host):\(port)/\(name)?sslmode=\(mode)"
        }
    }

    public var clientConfiguration: PostgresClient.Configuration {
        switch address {
        case .unixSocket(let path):
            return .init(unixSocketPath: path, username: username, password: password, database: database)
        case .tcp(let host, let port):
            let tls: PostgresClient.Configuration.TLS
            switch self.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(.makeClientConfiguration())
            case .require: tls = .require(.makeClientConfiguration())
            }
            return .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
    }

    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        switch address {
        case .unixSocket(let path):
            return .init(unixSocketPath: path, username: username, password: password, database: database)
        case .tcp(let host, let port):
            let tls: PostgresConnection.Configuration.TLS
            switch self.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            return .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
    }
}

extension PostgresClient.Configuration {
    /// The same, for a long-running server: every connection opened up front and kept, and no
    /// keep-alive pings. PostgresNIO arms two timers (keep-alive, idle timeout) each time a connection
    /// goes back to a pool with spare capacity, as sleeping tasks, and on Linux every `Task.sleep`
    /// leaves memory behind: under 4,000 reads/s the server grew by ~200 MB in two minutes (heaptrack).
    /// A fixed pool arms none; a connection that dies is noticed by the readiness monitor and by
    /// ``BoundedPool``'s watch on each connection's close. Serve one only through a ``RenewingClient``:
    /// once it has failed to connect, PostgresNIO's fixed pool can trap on the next request.
    public func servingRequests() -> Self {
        var configuration = self
        configuration.options.minimumConnections = configuration.options.maximumConnections
        configuration.options.keepAliveBehavior = nil
        return configuration
    }
}
