import Foundation
import PostgresNIO

/// Why a `DATABASE_URL` could not be understood.
public struct DatabaseURLError: Error, CustomStringConvertible {
    public var description: String
}

extension PostgresClient.Configuration {
    /// Reads a libpq-style URL: `postgres://user:password@host:5432/database?sslmode=require`.
    ///
    /// `sslmode` `disable` turns TLS off, `require`/`verify-ca`/`verify-full` demand it, anything else
    /// (libpq's default `prefer` included) uses it when the server offers it. A `host` query parameter
    /// that starts with `/` names a Unix socket folder, as in libpq.
    public init(databaseURL: String) throws {
        guard let components = URLComponents(string: databaseURL),
            let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme)
        else {
            throw DatabaseURLError(
                description: "DATABASE_URL must look like postgres://user:password@host:5432/database")
        }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last }
        )
        let username = components.user?.removingPercentEncoding ?? query["user"] ?? "postgres"
        let password = components.password?.removingPercentEncoding ?? query["password"]
        let database = components.path.isEmpty ? nil : String(components.path.dropFirst()).removingPercentEncoding
        let port = components.port ?? query["port"].flatMap(Int.init) ?? 5432

        if let socketFolder = query["host"], socketFolder.hasPrefix("/") {
            self.init(
                unixSocketPath: "\(socketFolder)/.s.PGSQL.\(port)", username: username, password: password,
                database: database
            )
            return
        }
        let tls: PostgresClient.Configuration.TLS
        switch query["sslmode"] ?? "prefer" {
        case "disable": tls = .disable
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: tls = .prefer(.makeClientConfiguration())
        }
        guard let host = components.host, !host.isEmpty else {
            throw DatabaseURLError(description: "DATABASE_URL names no host")
        }
        self.init(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }
}
