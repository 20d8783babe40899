import AsyncHTTPClient
import Foundation
import PostgresNIO
import StrataTestSupport
import Testing

/// Tokens across real server processes: how the first one comes to be, revocation honoured by every
/// process sharing the database within a second, and nothing stored that could authenticate.
@Suite("API tokens across processes", .serialized, .timeLimit(.minutes(3)))
struct TokenTests {
    @Test func withoutABootstrapSecretTheFirstStartPrintsANewAdminTokenOnce() async throws {
        let cluster = try await PrivateCluster.start()
        defer { cluster.remove() }
        let first = try await ServerProcess.start(
            databaseURL: cluster.databaseURL, environment: ["STRATA_BOOTSTRAP_TOKEN": ""], logFolder: cluster.folder)
        defer { first.stop() }
        let secret = try #require(Self.printedToken(in: first.log), "no token printed:\n\(first.log)")
        #expect(secret.hasPrefix("strata_") && secret.count >= 40)
        // Migrating a new database while the pools start is a first start going well: no warning of it.
        #expect(!first.log.contains(" warning "), "\(first.log)")
        try await withHTTPClient { http in
            let tokens = await http.send(.GET, first.baseURL + "/v1/admin/tokens", token: secret)
            #expect(tokens.status == 200, "\(tokens.body)")
            #expect(tokens.body.contains(#""name":"bootstrap""#) && tokens.body.contains(#""role":"admin""#))
            #expect(await http.send(.GET, first.baseURL + "/v1/datasets", token: nil).status == 401)
        }
        // A second process on the same database finds a token and prints none.
        let second = try await ServerProcess.start(
            databaseURL: cluster.databaseURL, environment: ["STRATA_BOOTSTRAP_TOKEN": ""], logFolder: cluster.folder)
        defer { second.stop() }
        try await Task.sleep(for: .milliseconds(300))
        #expect(Self.printedToken(in: second.log) == nil)
        try await withHTTPClient { http in
            #expect(await http.send(.GET, second.baseURL + "/v1/datasets", token: secret).status == 200)
        }
    }

    @Test func theBootstrapSecretBecomesTheAdminTokenNamedBootstrap() async throws {
        let (cluster, server) = try await PrivateCluster.startServed()
        defer {
            server.stop()
            cluster.remove()
        }
        #expect(Self.printedToken(in: server.log) == nil, "a secret the operator chose is not printed")
        try await withHTTPClient { http in
            let tokens = await http.send(.GET, server.baseURL + "/v1/admin/tokens")
            #expect(tokens.status == 200)
            #expect(tokens.body.contains(#""name":"bootstrap""#))
        }
    }

    @Test func aRevokedTokenIsRefusedByEveryProcessWithinASecond() async throws {
        let cluster = try await PrivateCluster.start()
        defer { cluster.remove() }
        let granting = try await ServerProcess.start(databaseURL: cluster.databaseURL, logFolder: cluster.folder)
        defer { granting.stop() }
        let other = try await ServerProcess.start(databaseURL: cluster.databaseURL, logFolder: cluster.folder)
        defer { other.stop() }
        try await withHTTPClient { http in
            let created = await http.send(
                .POST, granting.baseURL + "/v1/admin/tokens", json: #"{"name": "ci-pipeline", "role": "writer"}"#)
            #expect(created.status == 201, "\(created.body)")
            let secret = try #require(created.json["token"] as? String)
            // Granted on one process, honoured at once by the other.
            #expect(await http.send(.GET, other.baseURL + "/v1/datasets", token: secret).status == 200)
            try await Task.sleep(for: .milliseconds(500))
            #expect(await http.send(.GET, other.baseURL + "/v1/datasets", token: secret).status == 200)

            let revoked = await http.send(.DELETE, granting.baseURL + "/v1/admin/tokens/ci-pipeline")
            #expect(revoked.status == 204)
            let since = ContinuousClock.now
            #expect(await http.send(.GET, granting.baseURL + "/v1/datasets", token: secret).status == 401)
            // What counts is when a request was sent, not how long a busy machine took to answer it: no
            // request sent more than a second after the revocation may be let through.
            var lastLetThrough: Duration = .zero
            var probeSent = ContinuousClock.now
            var refused = await http.send(.GET, other.baseURL + "/v1/datasets", token: secret)
            while refused.status == 200 && since.duration(to: .now) < .seconds(3) {
                lastLetThrough = since.duration(to: probeSent)
                try await Task.sleep(for: .milliseconds(20))
                probeSent = ContinuousClock.now
                refused = await http.send(.GET, other.baseURL + "/v1/datasets", token: secret)
            }
            if refused.status == 200 { lastLetThrough = since.duration(to: probeSent) }
            print("the other process last let the revoked token through in a request sent after \(lastLetThrough)")
            #expect(refused.status == 401)
            #expect(refused.headers.first(name: "WWW-Authenticate")?.hasPrefix("Bearer") == true)
            #expect(lastLetThrough <= .seconds(1))
            #expect(await http.send(.DELETE, granting.baseURL + "/v1/admin/tokens/ci-pipeline").status == 404)
        }
    }

    @Test func nothingStoredAuthenticates() async throws {
        let (cluster, server) = try await PrivateCluster.startServed()
        defer {
            server.stop()
            cluster.remove()
        }
        try await withHTTPClient { http in
            var secrets = [ServerProcess.adminToken]
            for (name, scope) in [("reader-1", ""), ("writer-1", #", "namespace": ["a", "b"]"#)] {
                let created = await http.send(
                    .POST, server.baseURL + "/v1/admin/tokens",
                    json:
                        #"{"name": "\#(name)", "role": "\#(name.hasPrefix("reader") ? "reader" : "writer")"\#(scope)}"#,
                    headers: ["Idempotency-Key": "grant-\(name)"])
                secrets.append(try #require(created.json["token"] as? String))
            }
            // Everything the database holds, as text.
            let stored = try await cluster.client().whileRunning { client in
                var text = ""
                for query: PostgresQuery in [
                    "SELECT row_to_json(t)::text FROM api_tokens t", "SELECT row_to_json(e)::text FROM events e",
                    "SELECT row_to_json(k)::text FROM idempotency_keys k",
                ] {
                    for try await row in try await client.query(query, logger: TestPostgres.logger).decode(String.self)
                    {
                        text += row + "\n"
                    }
                }
                return text
            }
            let digests = try await cluster.client().whileRunning { client in
                try await client.query("SELECT secret_sha256 FROM api_tokens", logger: TestPostgres.logger)
                    .collect().map { try $0.decode(String.self) }
            }
            #expect(digests.count == 3)
            for secret in secrets {
                #expect(!stored.contains(secret), "a secret is stored in the database")
                #expect(!stored.contains(String(secret.dropFirst("strata_".count))))
            }
            for digest in digests {
                #expect(await http.send(.GET, server.baseURL + "/v1/datasets", token: digest).status == 401)
            }
            let export = try await blocking {
                try StrataBinary.run(["export"], environment: ["DATABASE_URL": cluster.databaseURL])
            }
            #expect(export.status == 0)
            #expect(export.output.contains("TokenCreated"))
            #expect(!secrets.contains { export.output.contains($0) })
        }
    }

    /// The secret in the bootstrap notice on standard error (`STRATA_TOKEN=<secret>`).
    static func printedToken(in log: String) -> String? {
        log.split(separator: "\n").compactMap { line -> String? in
            guard let range = line.range(of: "STRATA_TOKEN=") else { return nil }
            return String(line[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }.first
    }
}
