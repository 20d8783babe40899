import AsyncHTTPClient
import EmbeddedPostgres
import Foundation
import StrataTestSupport
import Testing

/// The client verbs of the built `strata` binary, run as a user would against a real `strata serve`:
/// the walk-through's steps, `-o json` byte for byte the API's answer, and an exit code per problem class.
@Suite("strata ds, lineage, impact, events", .timeLimit(.minutes(3)))
struct ClientTests {
    /// Runs `strata <arguments>` against `server`; answers its exit status, its standard output, and
    /// everything it printed (standard error included).
    static func strata(
        _ arguments: [String], on server: ServerProcess, token: String? = ServerProcess.adminToken
    ) throws -> (status: Int32, stdout: String, all: String) {
        let settings = ["STRATA_URL=\(server.baseURL)", "STRATA_TOKEN=\(token ?? "")", "NO_COLOR=1"]
        let quiet = try ProcessRunner.run(
            ["/usr/bin/env"] + settings + ["/bin/sh", "-c", #"exec "$0" "$@" 2>/dev/null"#, StrataBinary.path]
                + arguments)
        let loud = try ProcessRunner.run(["/usr/bin/env"] + settings + [StrataBinary.path] + arguments)
        return (quiet.status, quiet.output, loud.output)
    }

    @Test func theWalkThroughFromTheTerminalWithAnExitCodePerProblemClass() async throws {
        let (cluster, server) = try await PrivateCluster.startServed()
        defer {
            server.stop()
            cluster.remove()
        }
        let schema = cluster.folder + "/schema.json"
        try #"{"schema": [{"name": "order_id", "type": "string"}], "properties": {"source": "kafka"}}"#
            .write(toFile: schema, atomically: true, encoding: .utf8)

        let created = try Self.strata(
            [
                "ds", "create", "raw/orders", "--owner", "team-ingest", "--location", "s3://raw/orders/", "--tag",
                "pii",
                "--file", schema,
            ], on: server)
        #expect(created.status == 0, "\(created.all)")
        #expect(created.stdout.hasPrefix("created raw/orders: "))
        let id = String(created.stdout.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)

        // Refusals: each class its own exit code, and the problem's words on standard error.
        let unpublishable = try Self.strata(["ds", "create", "analytics/draft_only"], on: server)
        #expect(unpublishable.status == 0)
        let refused = try Self.strata(["ds", "publish", "analytics/draft_only"], on: server)
        #expect(refused.status == 9 && refused.all.contains("publish_check_failed"), "\(refused.all)")
        #expect(refused.all.contains("/location") && refused.all.contains("/schema"))
        #expect(try Self.strata(["ds", "publish", "raw/orders"], on: server).status == 0)
        let again = try Self.strata(["ds", "publish", "raw/orders"], on: server)
        #expect(again.status == 7 && again.all.contains("invalid_transition"), "\(again.all)")
        #expect(try Self.strata(["ds", "show", "raw/nothing"], on: server).status == 6)
        #expect(try Self.strata(["ds", "ls"], on: server, token: nil).status == 4)
        #expect(try Self.strata(["ds", "ls"], on: server, token: "strata_not-a-real-token-000000000").status == 4)
        #expect(try Self.strata(["ds", "create", "raw/bad", "--format", "xlsx"], on: server).status == 9)
        // The commands on the database itself refuse with the same codes: 7 for a name taken, 6 for none.
        let onDatabase = ["--database-url", cluster.databaseURL]
        let grant = ["token", "create", "--name", "ci", "--role", "reader"] + onDatabase
        #expect(try StrataBinary.run(grant).status == 0)
        let taken = try StrataBinary.run(grant)
        #expect(taken.status == 7 && taken.output.contains("already named 'ci'"), "\(taken.output)")
        let unknown = try StrataBinary.run(["token", "revoke", "nobody"] + onDatabase)
        #expect(unknown.status == 6 && unknown.output.contains("'nobody'"), "\(unknown.output)")
        let unreachable = try ProcessRunner.run(
            ["/usr/bin/env", "STRATA_URL=http://127.0.0.1:1", StrataBinary.path, "ds", "ls"])
        #expect(unreachable.status == 3, "\(unreachable.output)")
        #expect(unreachable.output.contains("nothing listens there"), "\(unreachable.output)")
        let notAURL = try ProcessRunner.run([
            "/usr/bin/env", "STRATA_URL=localhost:8080", StrataBinary.path, "ds", "ls",
        ])
        #expect(notAURL.status == 64 && notAURL.output.contains("http://host"), "\(notAURL.output)")
        // A port past 65535 is a mistyped command line, not a crash (the client) or another port (serve).
        let pastThePorts = try ProcessRunner.run([
            "/usr/bin/env", "STRATA_URL=http://127.0.0.1:65536", StrataBinary.path, "ds", "ls",
        ])
        #expect(pastThePorts.status == 64 && pastThePorts.output.contains("http://host"), "\(pastThePorts.output)")
        let serveWrapped = try StrataBinary.run(["serve", "--port", "99999", "--database-url", cluster.databaseURL])
        #expect(serveWrapped.status == 64 && serveWrapped.output.contains("--port"), "\(serveWrapped.output)")
        let port = try #require(server.baseURL.split(separator: ":").last.map(String.init))
        let secondServe = try ProcessRunner.run(
            ["/usr/bin/env", "DATABASE_URL=\(cluster.databaseURL)", StrataBinary.path, "serve", "--port", port])
        #expect(
            secondServe.status != 0 && secondServe.output.contains("something else listens there"),
            "\(secondServe.output)")

        // -o json is the API's own bytes.
        try await withHTTPClient { http in
            for (arguments, path) in [
                (["ds", "show", "raw/orders", "-o", "json"], "/v1/datasets/\(id)"),
                (["ds", "ls", "-o", "json"], "/v1/datasets"),
                (["ds", "search", "orders", "-o", "json"], "/v1/search?q=orders"),
                (["ds", "versions", id, "-o", "json"], "/v1/datasets/\(id)/versions"),
                (["impact", id, "-o", "json"], "/v1/datasets/\(id)/impact"),
            ] {
                let printed = try Self.strata(arguments, on: server)
                let api = await http.send(.GET, server.baseURL + path)
                #expect(printed.status == 0)
                #expect(printed.stdout == api.body + "\n", "\(arguments)")
            }
        }

        // Lineage as a tree, a usage, the audit trail and the log, for people.
        let cleaned = try Self.strata(
            ["ds", "create", "analytics/orders_clean", "--file", "-"], on: server)
        #expect(cleaned.status != 0, "no JSON on standard input is refused")
        let parents = cluster.folder + "/parents.json"
        try #"{"parents": [{"dataset_id": "\#(id)", "version": 1}]}"#.write(
            toFile: parents, atomically: true, encoding: .utf8)
        #expect(try Self.strata(["ds", "create", "analytics/orders_clean", "--file", parents], on: server).status == 0)
        let recorded = try Self.strata(
            [
                "ds", "record-lineage", "--from", "raw/orders@1", "--to", "analytics/orders_clean", "--job",
                "spark/clean", "--run-id", "r1",
            ], on: server)
        #expect(recorded.status == 0 && recorded.stdout.contains("recorded 1 edge"), "\(recorded.all)")
        #expect(try Self.strata(["ds", "version", "raw/orders", "1"], on: server).stdout.contains("v1 (published)"))
        #expect(try Self.strata(["whoami"], on: server).stdout.contains("bootstrap (admin)"))
        let tree = try Self.strata(["lineage", "raw/orders"], on: server)
        #expect(tree.stdout.contains("raw/orders v1 (published)") && tree.stdout.contains("└─ analytics/orders_clean"))
        let use = try Self.strata(["ds", "use", "raw/orders", "1", "--consumer", "training-run-42"], on: server)
        #expect(use.status == 0 && use.stdout.contains("training-run-42 used v1"), "\(use.all)")
        let history = try Self.strata(["ds", "history", "raw/orders"], on: server)
        #expect(history.stdout.contains("DatasetPublished") && history.stdout.contains("DatasetVersionUsed"))
        // The audit trail answers who, when, what and why: the fields a version changed, its use.
        #expect(history.stdout.contains("WHAT AND WHY") && !history.stdout.contains("STREAM"), "\(history.stdout)")
        #expect(history.stdout.contains("v1: "), "\(history.stdout)")
        #expect(history.stdout.contains("v1 by training-run-42"), "\(history.stdout)")
        let used = try Self.strata(["ds", "ls", "--in-use", "--sort", "-last_used_at"], on: server)
        #expect(used.status == 0 && used.stdout.contains("raw/orders") && !used.stdout.contains("orders_clean"))
        let listing = try Self.strata(["ds", "ls"], on: server)
        #expect(listing.stdout.contains("raw/orders") && listing.stdout.contains("analytics/orders_clean"))
        // Search pages as the list does: the page says how to get the next.
        let firstHit = try Self.strata(["ds", "search", "orders", "--limit", "1"], on: server)
        let more = try #require(firstHit.stdout.components(separatedBy: "(more: --cursor ").last?.dropLast(2))
        let secondHit = try Self.strata(
            ["ds", "search", "orders", "--limit", "1", "--cursor", String(more)], on: server)
        #expect(secondHit.status == 0 && !secondHit.stdout.contains("(more:"), "\(secondHit.all)")
        #expect(Set([firstHit.stdout, secondHit.stdout].map { $0.contains("raw/orders ") }) == [true, false])
        let retire = try Self.strata(["ds", "retire", "raw/orders", "--reason", "replaced", "--dry-run"], on: server)
        #expect(retire.stdout.contains("affect 1 dataset(s)") && retire.stdout.contains("analytics/orders_clean"))
        #expect(
            try Self.strata(["ds", "archive", "analytics/orders_clean", "--reason", "superseded"], on: server).status
                == 0)
        let why = try Self.strata(["ds", "history", "analytics/orders_clean"], on: server)
        #expect(why.stdout.contains(#"DatasetArchived"#) && why.stdout.contains(#""superseded""#), "\(why.stdout)")
        let tail = try Self.strata(["events", "tail", "--after", "0", "-o", "json"], on: server)
        #expect(tail.stdout.split(separator: "\n").count >= 8, "\(tail.stdout)")

        // --follow streams what is appended after it started.
        let followed = cluster.folder + "/follow.out"
        let follower = try ProcessRunner.start(
            [StrataBinary.path, "events", "tail", "--follow", "-o", "json"], outputPath: followed,
            environment: ["STRATA_URL": server.baseURL, "STRATA_TOKEN": ServerProcess.adminToken])
        defer {
            kill(follower, SIGKILL)
            waitpid(follower, nil, 0)
        }
        try await Task.sleep(for: .milliseconds(500))
        let late = try Self.strata(["ds", "create", "raw/late_arrival"], on: server)
        let lateID = String(late.stdout.split(separator: " ").last ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines)
        let waited = ContinuousClock.now
        var stream = ""
        while !stream.contains(#""stream_id":"\#(lateID)""#) && waited.duration(to: .now) < .seconds(20) {
            try await Task.sleep(for: .milliseconds(100))
            stream = (try? String(contentsOfFile: followed, encoding: .utf8)) ?? ""
        }
        #expect(stream.contains(#""stream_id":"\#(lateID)""#), "the follower printed:\n\(stream)")

        // A reader may look but not change.
        try await withHTTPClient { http in
            let granted = await http.send(
                .POST, server.baseURL + "/v1/admin/tokens", json: #"{"name": "analyst", "role": "reader"}"#)
            let reader = try #require(granted.json["token"] as? String)
            #expect(try Self.strata(["ds", "show", "raw/orders"], on: server, token: reader).status == 0)
            #expect(try Self.strata(["ds", "archive", "raw/orders"], on: server, token: reader).status == 5)
        }
    }

    /// `events tail --follow` outlives a restart of the server it follows: it follows again from the last
    /// event it printed, so what is appended after the restart is printed, and nothing twice.
    @Test func aFollowerFollowsAgainAcrossARestartOfTheServer() async throws {
        let (cluster, first) = try await PrivateCluster.startServed()
        defer {
            first.stop()
            cluster.remove()
        }
        let port = try #require(Int(first.baseURL.split(separator: ":").last ?? ""))
        let followed = cluster.folder + "/follow.out"
        let follower = try ProcessRunner.start(
            [StrataBinary.path, "events", "tail", "--follow", "--after", "0", "-o", "json", "--retry-for", "60"],
            outputPath: followed, environment: ["STRATA_URL": first.baseURL, "STRATA_TOKEN": ServerProcess.adminToken])
        defer {
            kill(follower, SIGKILL)
            waitpid(follower, nil, 0)
        }
        /// What the follower has printed once it printed an event of `id`, or after 20 s.
        @Sendable func printed(_ id: String) async throws -> String {
            let waited = ContinuousClock.now
            var stream = ""
            while !stream.contains(#""stream_id":"\#(id)""#) && waited.duration(to: .now) < .seconds(20) {
                try await Task.sleep(for: .milliseconds(100))
                stream = (try? String(contentsOfFile: followed, encoding: .utf8)) ?? ""
            }
            return stream
        }
        try await withHTTPClient { http in
            let before = await http.send(
                .POST, first.baseURL + "/v1/datasets", json: #"{"namespace": "raw", "name": "before"}"#)
            let beforeID = try #require(before.json["id"] as? String, "\(before.body)")
            #expect(try await printed(beforeID).contains(beforeID))

            first.stop()
            let second = try await ServerProcess.start(
                databaseURL: cluster.databaseURL, port: port, logFolder: cluster.folder)
            defer { second.stop() }
            let after = await http.send(
                .POST, second.baseURL + "/v1/datasets", json: #"{"namespace": "raw", "name": "after"}"#)
            let afterID = try #require(after.json["id"] as? String, "\(after.body)")
            let stream = try await printed(afterID)
            #expect(stream.contains(#""stream_id":"\#(afterID)""#), "the follower printed:\n\(stream)")
            // A create is two events, each printed once.
            let lines = stream.split(separator: "\n")
            #expect(lines.filter { $0.contains(#""stream_id":"\#(beforeID)""#) }.count == 2, "\(stream)")
            #expect(lines.filter { $0.contains(#""stream_id":"\#(afterID)""#) }.count == 2, "\(stream)")
        }
    }

    /// A follower whose server cannot read the log (PostgreSQL down) for longer than `--retry-for` says so
    /// and stops. The server answers a stream before it reads the log, so answering is not following.
    /// (Without tokens, so that the server answers the stream without asking PostgreSQL who calls.)
    @Test func aFollowerGivesUpWhenTheLogStaysUnreadableLongerThanItsRetryWindow() async throws {
        let cluster = try await PrivateCluster.start()
        defer { cluster.remove() }
        let server = try await ServerProcess.start(
            databaseURL: cluster.databaseURL, arguments: ["--insecure-no-auth"], logFolder: cluster.folder)
        defer { server.stop() }
        let followed = cluster.folder + "/follow.out"
        let follower = try ProcessRunner.start(
            [StrataBinary.path, "events", "tail", "--follow", "--after", "0", "-o", "json", "--retry-for", "2"],
            outputPath: followed, environment: ["STRATA_URL": server.baseURL])
        let waited = ContinuousClock.now
        while ((try? String(contentsOfFile: followed, encoding: .utf8)) ?? "").isEmpty,
            waited.duration(to: .now) < .seconds(20)
        {
            try await Task.sleep(for: .milliseconds(100))
        }
        try await blocking { try cluster.cluster.stopServer(mode: .fast) }
        let status = ServerProcess.waitForExit(follower, within: .seconds(30))
        if status == nil {
            kill(follower, SIGKILL)
            waitpid(follower, nil, 0)
        }
        let printed = (try? String(contentsOfFile: followed, encoding: .utf8)) ?? ""
        #expect(status == 3, "the follower printed:\n\(printed)")
        #expect(printed.contains("following again"), "\(printed)")
    }

    /// `--as-of` reads a dataset named by `namespace/name` as the name stood then: the dataset that held
    /// it, though it has since been retired and the name given to another.
    @Test func aNameReadAsOfAPositionIsTheDatasetThatHeldItThen() async throws {
        let (cluster, server) = try await PrivateCluster.startServed()
        defer {
            server.stop()
            cluster.remove()
        }
        try await withHTTPClient { http in
            let dataset = #"{"namespace": "raw", "name": "reused"}"#
            let first = await http.send(.POST, server.baseURL + "/v1/datasets", json: dataset)
            let firstID = try #require(first.json["id"] as? String, "\(first.body)")
            let position = try #require(first.headers.first(name: "Strata-Position"))
            let retired = await http.send(
                .POST, server.baseURL + "/v1/datasets/\(firstID)/retire", json: #"{"reason": "replaced"}"#)
            #expect(retired.status == 200, "\(retired.body)")
            let second = await http.send(.POST, server.baseURL + "/v1/datasets", json: dataset)
            let secondID = try #require(second.json["id"] as? String, "\(second.body)")

            for (arguments, expected) in [
                (["ds", "show", "raw/reused", "--as-of", position, "-o", "json"], firstID),
                (["ds", "versions", "raw/reused", "--as-of", position, "-o", "json"], firstID),
                (["ds", "show", "raw/reused", "-o", "json"], secondID),
            ] {
                let shown = try Self.strata(arguments, on: server)
                #expect(shown.status == 0, "\(arguments): \(shown.all)")
                #expect(shown.stdout.contains(expected), "\(arguments): \(shown.stdout)")
            }
        }
    }

    /// A name may hold `/` as a namespace may (OpenLineage names an S3 object `s3://bucket` and
    /// `path/to/file`): `create --namespace` takes the name whole, and a verb given `namespace/name` finds
    /// the dataset whichever `/` ends the namespace, the longest namespace first.
    @Test func aNameHoldingASlashIsCreatedAndFoundByNamespaceAndName() async throws {
        let (cluster, server) = try await PrivateCluster.startServed()
        defer {
            server.stop()
            cluster.remove()
        }
        let created = try Self.strata(
            ["ds", "create", "features/customers/v3", "--namespace", "s3://ml-bucket"], on: server)
        #expect(created.status == 0, "\(created.all)")
        #expect(created.stdout.hasPrefix("created s3://ml-bucket/features/customers/v3: "), "\(created.stdout)")
        let id = String(created.stdout.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)

        let shown = try Self.strata(["ds", "show", "s3://ml-bucket/features/customers/v3", "-o", "json"], on: server)
        #expect(shown.status == 0, "\(shown.all)")
        #expect(shown.stdout.contains(#""id":"\#(id)""#) && shown.stdout.contains(#""name":"features/customers/v3""#))
        let history = try Self.strata(["ds", "history", "s3://ml-bucket/features/customers/v3"], on: server)
        #expect(history.status == 0, "\(history.all)")

        // Both readings exist: the one with the longer namespace is meant, as `create` without
        // --namespace reads it.
        #expect(try Self.strata(["ds", "create", "s3://ml-bucket/features/customers/v3"], on: server).status == 0)
        let longest = try Self.strata(["ds", "show", "s3://ml-bucket/features/customers/v3", "-o", "json"], on: server)
        #expect(longest.stdout.contains(#""namespace":"s3://ml-bucket/features/customers""#), "\(longest.stdout)")
        #expect(try Self.strata(["ds", "show", "s3://ml-bucket/features/nothing"], on: server).status == 6)
    }

    /// What the API lets a clone and a usage carry, the verbs send: a clone's change note, a usage's
    /// properties (a JSON object, else refused before anything is sent).
    @Test func aCloneCarriesItsChangeNoteAndAUsageItsProperties() async throws {
        let (cluster, server) = try await PrivateCluster.startServed()
        defer {
            server.stop()
            cluster.remove()
        }
        #expect(try Self.strata(["ds", "create", "raw/source"], on: server).status == 0)
        // A file the verb cannot use is the command line's mistake (64), said before anything is sent.
        let broken = cluster.folder + "/broken.json"
        try #"{"owner": "#.write(toFile: broken, atomically: true, encoding: .utf8)
        let notJSON = try Self.strata(["ds", "create", "raw/from-file", "--file", broken], on: server)
        #expect(notJSON.status == 64 && notJSON.all.contains("is not JSON"), "\(notJSON.all)")
        let other = cluster.folder + "/other.json"
        try #"{"name": "elsewhere"}"#.write(toFile: other, atomically: true, encoding: .utf8)
        let mismatch = try Self.strata(["ds", "create", "raw/from-file", "--file", other], on: server)
        #expect(mismatch.status == 64 && mismatch.all.contains("the file's name"), "\(mismatch.all)")
        let unchanged = try Self.strata(["ds", "edit", "raw/source"], on: server)
        #expect(unchanged.status == 0 && unchanged.stdout.contains("unchanged"), "\(unchanged.all)")
        let edited = try Self.strata(["ds", "edit", "raw/source", "--owner", "team-data"], on: server)
        #expect(edited.stdout.hasPrefix("drafted v2 of raw/source"), "\(edited.all)")
        let cloned = try Self.strata(
            ["ds", "clone", "raw/source", "--name", "copy", "--change-note", "for the experiment"], on: server)
        #expect(cloned.status == 0, "\(cloned.all)")
        let version = try Self.strata(["ds", "version", "raw/copy", "1", "-o", "json"], on: server)
        #expect(version.stdout.contains(#""change_note":"for the experiment""#), "\(version.stdout)")

        let used = try Self.strata(
            ["ds", "use", "raw/source", "1", "--consumer", "run-7", "--properties", #"{"model": "v12"}"#], on: server)
        #expect(used.status == 0, "\(used.all)")
        let usages = try Self.strata(["ds", "usages", "raw/source", "-o", "json"], on: server)
        #expect(usages.stdout.contains(#""properties":{"model":"v12"}"#), "\(usages.stdout)")
        let refused = try Self.strata(
            ["ds", "use", "raw/source", "1", "--consumer", "run-8", "--properties", "model=v12"], on: server)
        #expect(refused.status == 9 && refused.all.contains("JSON object"), "\(refused.all)")
    }

    /// Each operation of the served OpenAPI document, and the verb a person or script calls it with; the
    /// few that are not for the terminal say who calls them instead. An operation added to the document
    /// without a line here fails.
    static let verbs: [String: [String]] = [
        "createDataset": ["ds", "create"], "listDatasets": ["ds", "ls"], "searchDatasets": ["ds", "search"],
        "getDataset": ["ds", "show"], "getDatasetByName": ["ds", "show"], "patchDataset": ["ds", "edit"],
        "publishDataset": ["ds", "publish"], "archiveDataset": ["ds", "archive"], "restoreDataset": ["ds", "restore"],
        "retireDataset": ["ds", "retire"], "cloneDataset": ["ds", "clone"], "listVersions": ["ds", "versions"],
        "getVersion": ["ds", "version"], "recordUsage": ["ds", "use"], "listUsages": ["ds", "usages"],
        "getHistory": ["ds", "history"], "recordLineage": ["ds", "record-lineage"], "getLineage": ["lineage"],
        "getImpact": ["impact"], "listEvents": ["events", "tail"], "streamEvents": ["events", "tail"],
        "whoAmI": ["whoami"],
        // The operator's verbs, which work on the database itself (no server needed).
        "createToken": ["token", "create"], "listTokens": ["token", "ls"], "getToken": ["token", "ls"],
        "revokeToken": ["token", "revoke"],
        "listProjections": ["verify"], "rebuildProjections": ["replay"],
    ]
    /// Operations no one calls from a terminal, and who calls them.
    static let notForTheTerminal: [String: String] = [
        "healthz": "load balancers", "readyz": "load balancers", "metrics": "Prometheus",
        "openapi": "API tools", "openapiJson": "API tools", "webUI": "browsers",
        "ingestOpenLineage": "OpenLineage emitters", "ingestOpenLineageBatch": "OpenLineage emitters",
    ]

    @Test func everyOperationOfTheAPIHasAVerb() async throws {
        let (cluster, server) = try await PrivateCluster.startServed()
        defer {
            server.stop()
            cluster.remove()
        }
        let operations = try await withHTTPClient { http in
            let document = await http.send(.GET, server.baseURL + "/openapi.json").json
            var operations: Set<String> = []
            for case let item as [String: Any] in (document["paths"] as? [String: Any] ?? [:]).values {
                for case let operation as [String: Any] in item.values {
                    if let id = operation["operationId"] as? String { operations.insert(id) }
                }
            }
            return operations
        }
        #expect(operations.count > 30)
        let covered = Set(Self.verbs.keys).union(Self.notForTheTerminal.keys)
        #expect(operations == covered, "without a verb: \(operations.subtracting(covered).sorted())")
        for verb in Set(Self.verbs.values) {
            let help = try ProcessRunner.run([StrataBinary.path] + verb + ["--help"])
            #expect(help.status == 0, "strata \(verb.joined(separator: " ")): \(help.output)")
        }
    }
}
