import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO
import StrataCore
import StrataStore

/// `strata bench http`: the service as users meet it, over real HTTP, against its baselines measured in
/// the same run. A scratch catalog is generated (datasets in layers joined by lineage), `strata serve`
/// runs on it as a separate process — twice: with tokens, and with `--insecure-no-auth` to price
/// authentication — and each workload runs closed-loop with `--connections` clients.
struct HTTPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http", abstract: "Drive the service over HTTP, with the database's own speed as baseline.")

    @OptionGroup var database: DatabaseOptions
    static let (defaultConnections, defaultSeconds, defaultDatasets, defaultAuthRounds) = (64, 10, 20_000, 5)

    @Option(help: "Concurrent clients") var connections = defaultConnections
    @Option(help: "Seconds per workload") var seconds = defaultSeconds
    @Option(help: "Datasets in the generated catalog") var datasets = defaultDatasets
    @Option(help: "Rounds of the one-client GET with and without authentication, alternating")
    var authRounds = defaultAuthRounds
    @Option(
        help:
            "Rounds of the pooled SELECT, GET by id and a list page, one after another; their ratios are the medians of each round's own"
    )
    var readRounds = 1
    @Option(
        help: "Minutes of the mixed workload after the others, sampled every 30 s: a soak (with --only soak, alone)")
    var soakMinutes = 0
    @OptionGroup var output: BenchOutput
    @Option(help: "The HTTP load generator: wrk (when installed, the default) or async-http-client")
    var generator: LoadGeneratorKind?
    @Option(
        help:
            "Only these workloads, comma-separated: health, select, append, get, auth, list, lineage, pipeline, create, edit, publish, openlineage, mixed, soak"
    )
    var only: String?

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let figures = try await Self.measure(
            configuration: configuration, logger: logger, connections: connections, seconds: seconds,
            datasets: datasets, authRounds: authRounds, readRounds: readRounds, soakMinutes: soakMinutes,
            only: only.map { Set($0.split(separator: ",").map(String.init)) },
            generator: generator, log: !output.json)
        if output.json { print(try BenchJSON.document(["http": figures])) }
    }

    static let adminSecret = "strata_bench-admin-secret-0123456789abcdef"
    static let (openLineageClients, openLineageBatch) = (2, 100)
    static let openLineageSingle = "POST /api/v1/lineage, \(openLineageClients) clients"
    static let openLineageBatched = "POST /api/v1/lineage/batch of \(openLineageBatch), \(openLineageClients) clients"

    static func measure(
        configuration: StrataConfiguration, logger: Logger, connections: Int, seconds: Int, datasets: Int,
        authRounds: Int, readRounds: Int = 1, soakMinutes: Int = 0, only: Set<String>? = nil,
        generator: LoadGeneratorKind? = nil,
        log: Bool
    ) async throws -> [String: Any] {
        let result = Box<[String: Any]>([:])
        try await withScratchDatabase(configuration, logger: logger) { client, schema, endpoint in
            let say: @Sendable (String) -> Void = { if log { print($0) } }
            let started = ContinuousClock.now
            let layers = try await SyntheticLog(client: client, logger: logger)
                .generateLineageGraph(datasets: datasets, edges: datasets * 3)
            _ = try await ProjectionMaintenance(client: client, catalog: schema.projections, logger: logger).rebuild()
            try await client.perform("VACUUM (ANALYZE)", logger: logger)
            let ids = layers.flatMap { $0 }
            say("generated \(ids.count) datasets with lineage in \(ContinuousClock.now - started)")

            let served = try await ServerUnderTest.start(
                databaseURL: endpoint.url, environment: ["STRATA_BOOTSTRAP_TOKEN": adminSecret])
            defer { served.stop() }
            let open = try await ServerUnderTest.start(databaseURL: endpoint.url, arguments: ["--insecure-no-auth"])
            defer { open.stop() }

            var httpConfiguration = HTTPClient.Configuration()
            httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
            let load = LoadGenerator(concurrency: connections)
            let wrk = generator == .asyncHTTPClient ? nil : WrkLoad.located(connections: connections)
            if generator == .wrk && wrk == nil { throw BenchError("--generator wrk: wrk is not installed") }
            defer { wrk?.removeFiles() }
            say("HTTP load generator: \(wrk.map { "wrk (\($0.executable))" } ?? "AsyncHTTPClient in this process")")
            let idList = try wrk?.list("ids", ids.map { $0.uuidString.lowercased() })
            let duration = Duration.seconds(seconds)
            var results: [LoadResult] = []
            func report(_ key: String, _ measure: @autoclosure () async throws -> LoadResult) async rethrows {
                guard only?.contains(key) ?? true else { return }
                report(try await measure())
            }
            func report(_ result: LoadResult) {
                results.append(result)
                say(
                    String(
                        format: "%-44@ %9.0f/s  p50 %7.2f ms  p99 %7.2f ms%@", result.name, result.rate,
                        result.milliseconds(at: 50), result.milliseconds(at: 99),
                        result.failures > 0 ? "  (\(result.failures) failed)" : ""))
            }
            @Sendable func request(
                _ server: ServerUnderTest, _ path: String, _ method: HTTPMethod = .GET, json: String? = nil
            ) -> HTTPClientRequest {
                var request = HTTPClientRequest(url: server.baseURL + path)
                request.method = method
                request.headers.add(name: "Authorization", value: "Bearer \(adminSecret)")
                if let json {
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: json))
                }
                return request
            }
            @Sendable func id(_ index: Int, _ iteration: Int) -> UUID {
                ids[(index * 7919 + iteration * 104_729) % ids.count]
            }
            /// One workload on `served` by whichever generator runs: the Lua `request` body for wrk (see
            /// ``WrkLoad``), `operation` for AsyncHTTPClient.
            func drive(
                _ name: String, for duration: Duration = duration, lua: String, prelude: String = "",
                _ operation: @escaping @Sendable (Int, Int) async -> Attempt
            ) async throws -> LoadResult {
                guard let wrk else { return await load.run(name, for: duration, operation) }
                return try await wrk.run(
                    name, baseURL: served.baseURL, for: duration, token: adminSecret, prelude: prelude,
                    requestFunction: lua)
            }
            let idsInLua = idList.map { WrkLoad.readLines($0, into: "ids") } ?? ""
            let randomID = "ids[((n * 7919 + thread_id * 104729) % #ids) + 1]"

            // Baselines: the generator against the cheapest route, and the database alone.
            try await report(
                "health",
                try await drive("baseline: GET /healthz", lua: #"return wrk.format("GET", "/healthz")"#) { _, _ in
                    await http.attempt(request(served, "/healthz"))
                })
            func pooledSelect() async -> LoadResult {
                await Baselines.pooledSelect(client: client, ids: ids, load: load, duration: duration, logger: logger)
            }
            await report("select", await pooledSelect())
            try await report(
                "append",
                try await Baselines.groupCommitAppend(client: client, load: load, duration: duration, logger: logger))

            // Reads.
            func getByID() async throws -> LoadResult {
                try await drive(
                    "GET /v1/datasets/{id}", lua: #"return wrk.format("GET", "/v1/datasets/" .. \#(randomID))"#,
                    prelude: idsInLua
                ) { index, iteration in
                    await http.attempt(request(served, "/v1/datasets/\(id(index, iteration).lowercased)"))
                }
            }
            try await report("get", try await getByID())
            // What authentication costs a read: one client at a time, so latency is service time, not
            // queueing; the two servers alternate, a few rounds each.
            let single = LoadGenerator(concurrency: 1)
            var withAuth: [LoadResult] = []
            var withoutAuth: [LoadResult] = []
            for _ in 0..<((only?.contains("auth") ?? true) ? max(1, authRounds) : 0) {
                withAuth.append(
                    await single.run("GET /v1/datasets/{id}, 1 client", for: duration / 2) { index, iteration in
                        await http.attempt(request(served, "/v1/datasets/\(id(index, iteration).lowercased)"))
                    })
                withoutAuth.append(
                    await single.run("GET /v1/datasets/{id}, 1 client, --insecure-no-auth", for: duration / 2) {
                        index, iteration in
                        await http.attempt(request(open, "/v1/datasets/\(id(index, iteration).lowercased)"))
                    })
            }
            for (authed, unauthed) in zip(withAuth, withoutAuth) {
                report(authed)
                report(unauthed)
            }
            // The first page of one of the generated namespaces (each layer of the graph is one), so that
            // every page holds 50 datasets.
            let namespaces = layers.count
            let sample = try await http.execute(
                request(served, "/v1/datasets?limit=50&namespace=bench%2Flayer-0"), timeout: .seconds(30))
            let page = try JSONSerialization.jsonObject(
                with: Data(buffer: try await sample.body.collect(upTo: 1 << 20)))
            guard let listed = (page as? [String: Any])?["datasets"] as? [Any], listed.count == 50 else {
                throw BenchError("a list page of the generated catalog does not hold 50 datasets")
            }
            func listPage() async throws -> LoadResult {
                try await drive(
                    "GET /v1/datasets?limit=50",
                    lua:
                        #"return wrk.format("GET", "/v1/datasets?limit=50&namespace=bench%2Flayer-" .. (n % \#(namespaces)))"#
                ) { index, iteration in
                    await http.attempt(
                        request(
                            served, "/v1/datasets?limit=50&namespace=bench%2Flayer-\((index + iteration) % namespaces)")
                    )
                }
            }
            try await report("list", try await listPage())
            // More rounds of the reads and their baseline, back to back, so that each ratio can be taken
            // within a round: the machine's speed moves more between workloads minutes apart.
            var readRatios: [(get: Double, list: Double)] = []
            let readsRun = only.map { $0.isSuperset(of: ["select", "get", "list"]) } ?? true
            for _ in 1..<max(1, readRounds) where readsRun {
                let (select, get, list) = (await pooledSelect(), try await getByID(), try await listPage())
                for result in [select, get, list] { report(result) }
                if select.rate > 0 { readRatios.append((get.rate / select.rate, list.rate / select.rate)) }
            }
            let middle = layers[layers.count / 2]
            let middleList = try wrk?.list("middle", middle.map { $0.uuidString.lowercased() })
            try await report(
                "lineage",
                try await drive(
                    "GET lineage, depth 3",
                    lua: #"""
                        return wrk.format("GET", "/v1/datasets/" .. middle[((n * 31 + thread_id * 17) % #middle) + 1]
                          .. "/lineage?depth=3")
                        """#,
                    prelude: middleList.map { WrkLoad.readLines($0, into: "middle") } ?? ""
                ) { index, iteration in
                    let root = middle[(index * 31 + iteration * 17) % middle.count]
                    return await http.attempt(request(served, "/v1/datasets/\(root.lowercased)/lineage?depth=3"))
                })

            // Writes: first the pipeline alone, in this process, then the service's.
            await report(
                "pipeline",
                await Baselines.pipelineCreates(client: client, load: load, duration: duration, logger: logger))
            try await report(
                "create",
                try await drive(
                    "POST /v1/datasets",
                    lua: #"""
                        return wrk.format("POST", "/v1/datasets", nil,
                          '{"namespace": "bench", "name": "c-' .. run_tag .. '-' .. thread_id .. '-' .. n .. '"}')
                        """#
                ) { index, iteration in
                    await http.attempt(
                        request(
                            served, "/v1/datasets", .POST,
                            json:
                                #"{"namespace": "bench", "name": "c-\#(index)-\#(iteration)-\#(UUID().uuidString.prefix(6))"}"#
                        ), expecting: .created)
                })
            try await report(
                "edit",
                try await drive(
                    "PATCH /v1/datasets/{id}",
                    lua: #"""
                        return wrk.format("PATCH", "/v1/datasets/" .. \#(randomID), nil,
                          '{"description": "edit ' .. run_tag .. ' ' .. n .. '"}')
                        """#,
                    prelude: idsInLua
                ) { index, iteration in
                    await http.attempt(
                        request(
                            served, "/v1/datasets/\(id(index, iteration).lowercased)", .PATCH,
                            json: #"{"description": "edit \#(index) \#(iteration)"}"#))
                })
            // Publishing needs a draft newer than the published version. Every dataset gets one first,
            // untimed, so that what is timed is publishes alone; each client then publishes its own
            // share of the catalog, once each.
            let share = ids.count / connections
            if only?.contains("publish") ?? true {
                let drafted = await withTaskGroup(of: Int.self) { group in
                    for index in 0..<connections {
                        group.addTask {
                            var drafted = 0
                            for target in ids[(index * share)..<((index + 1) * share)] {
                                let attempt = await http.attempt(
                                    request(
                                        served, "/v1/datasets/\(target.lowercased)", .PATCH,
                                        json: #"{"description": "before publish"}"#))
                                if case .succeeded = attempt { drafted += 1 }
                            }
                            return drafted
                        }
                    }
                    return await group.reduce(0, +)
                }
                say("drafted a version to publish on \(drafted) datasets")
            }
            await report(
                "publish",
                // No warm-up (the server is warm from the edits): each client's share of the catalog is
                // used up once, and on a small catalog a warm-up would spend all of it uncounted.
                await load.run("POST /v1/datasets/{id}/publish", for: duration, warmUp: .zero) { index, iteration in
                    guard iteration < share else { return .exhausted }
                    let target = ids[index * share + iteration]
                    return await http.attempt(request(served, "/v1/datasets/\(target.lowercased)/publish", .POST))
                })
            // OpenLineage, as a scheduler's emitter sends it: a few clients, each event a run that reads
            // one of 100 inputs and writes a dataset of its own. Singles are the baseline of a batch of
            // 100: the same events, one request each. A batch counts only if every event in it landed.
            if only?.contains("openlineage") ?? true {
                let emitters = LoadGenerator(concurrency: Self.openLineageClients)
                @Sendable func event(_ client: Int, _ iteration: Int, _ index: Int) -> String {
                    let tag = "\(client)-\(iteration)-\(index)-\(UUID().uuidString.prefix(8))"
                    return #"""
                        {"eventTime": "2026-03-14T09:00:00Z", "eventType": "COMPLETE", "run": {"runId": "\#(tag)"}, \#
                        "job": {"namespace": "bench", "name": "job-\#(index % 20)"}, \#
                        "inputs": [{"namespace": "ol", "name": "in-\#(index % 100)"}], \#
                        "outputs": [{"namespace": "ol", "name": "out-\#(tag)"}]}
                        """#
                }
                report(
                    await emitters.run(Self.openLineageSingle, for: duration) { client, iteration in
                        await http.attempt(
                            request(served, "/api/v1/lineage", .POST, json: event(client, iteration, iteration)),
                            expecting: .created)
                    })
                let size = Self.openLineageBatch
                report(
                    await emitters.run(Self.openLineageBatched, for: duration) { client, iteration in
                        let events = (0..<size).map { event(client, iteration, $0) }
                        return await http.attempt(
                            request(
                                served, "/api/v1/lineage/batch", .POST, json: "[\(events.joined(separator: ","))]"),
                            answering: { $0.contains(#""successful":\#(size)"#) })
                    })
            }
            @Sendable func mixed(_ index: Int, _ iteration: Int) async -> Attempt {
                switch (index + iteration) % 20 {
                case 0:
                    return await http.attempt(
                        request(
                            served, "/v1/datasets", .POST,
                            json:
                                #"{"namespace": "mixed", "name": "m-\#(index)-\#(iteration)-\#(UUID().uuidString.prefix(6))"}"#
                        ), expecting: .created)
                case 1:
                    return await http.attempt(
                        request(
                            served, "/v1/datasets/\(id(index, iteration).lowercased)", .PATCH,
                            json: #"{"description": "mixed \#(iteration)"}"#))
                case 2, 3:
                    return await http.attempt(request(served, "/v1/datasets?limit=50"))
                default:
                    return await http.attempt(request(served, "/v1/datasets/\(id(index, iteration).lowercased)"))
                }
            }
            let mixedName = "mixed: 80% GET, 10% list, 5% create, 5% edit"
            let mixedLua = #"""
                local turn = (n + thread_id) % 20
                if turn == 0 then
                  return wrk.format("POST", "/v1/datasets", nil,
                    '{"namespace": "mixed", "name": "m-' .. run_tag .. '-' .. thread_id .. '-' .. n .. '"}')
                elseif turn == 1 then
                  return wrk.format("PATCH", "/v1/datasets/" .. \#(randomID), nil, '{"description": "mixed ' .. n .. '"}')
                elseif turn <= 3 then
                  return wrk.format("GET", "/v1/datasets?limit=50")
                end
                return wrk.format("GET", "/v1/datasets/" .. \#(randomID))
                """#
            try await report("mixed", try await drive(mixedName, lua: mixedLua, prelude: idsInLua, mixed))

            // The soak: the mixed workload for minutes on end, with the server's memory and the
            // database connections sampled after every 30 s. Both must stay flat.
            var soak: [[String: Any]] = []
            if soakMinutes > 0 && (only?.contains("soak") ?? true) {
                let slice = Duration.seconds(30)
                for index in 0..<(soakMinutes * 2) {
                    let result = try await drive(mixedName, for: slice, lua: mixedLua, prelude: idsInLua, mixed)
                    let connections = try await client.query(
                        "SELECT count(*)::bigint FROM pg_stat_activity WHERE datname = current_database()",
                        logger: logger
                    ).collect().first!.decode(Int.self)
                    let rss = served.currentRSSBytes ?? 0
                    soak.append([
                        "after_seconds": (index + 1) * 30, "per_second": result.rate, "failures": result.failures,
                        "p99_ms": result.milliseconds(at: 99), "server_rss_bytes": rss,
                        "database_connections": connections,
                    ])
                    say(
                        String(
                            format:
                                "soak %3d s: %6.0f/s  p99 %7.2f ms  %d failed  server RSS %4.0f MB  %d database connections",
                            (index + 1) * 30, result.rate, result.milliseconds(at: 99), result.failures,
                            Double(rss) / 1_048_576, connections))
                }
            }

            let byName = Dictionary(results.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            // A ratio is printed only when both of its workloads ran (see --only).
            func ratio(_ workload: String, per baseline: String) -> Double? {
                guard let measured = byName[workload]?.rate, let base = byName[baseline]?.rate, base > 0 else {
                    return nil
                }
                return measured / base
            }
            let (get, select, append) = (
                "GET /v1/datasets/{id}", "baseline: pooled primary-key SELECT", "baseline: append SQL with group commit"
            )
            let pipeline = "baseline: append pipeline, creates in process"
            /// The median of the first round's ratio and the later rounds'.
            func medianOfRounds(_ first: Double?, _ later: [Double]) -> Double? {
                guard let first else { return nil }
                let all = ([first] + later).sorted()
                return all.count % 2 == 1 ? all[all.count / 2] : (all[all.count / 2 - 1] + all[all.count / 2]) / 2
            }
            let ratios: [String: Double] = [
                "creates_per_append": ratio("POST /v1/datasets", per: append),
                "pipeline_creates_per_append": ratio(pipeline, per: append),
                "creates_per_pipeline": ratio("POST /v1/datasets", per: pipeline),
                "edits_per_append": ratio("PATCH /v1/datasets/{id}", per: append),
                "publishes_per_append": ratio("POST /v1/datasets/{id}/publish", per: append),
                "get_per_select": medianOfRounds(ratio(get, per: select), readRatios.map(\.get)),
                "list_per_select": medianOfRounds(
                    ratio("GET /v1/datasets?limit=50", per: select), readRatios.map(\.list)),
                "health_per_get": ratio("baseline: GET /healthz", per: get),
                "openlineage_batched_events_per_single": ratio(Self.openLineageBatched, per: Self.openLineageSingle)
                    .map { $0 * Double(Self.openLineageBatch) },
            ].compactMapValues { $0 }
            let median = { (results: [LoadResult]) in
                results.map { $0.milliseconds(at: 50) }.sorted().dropFirst(results.count / 2).first ?? 0
            }
            let authCost = withAuth.isEmpty ? nil : median(withAuth) - median(withoutAuth)
            let rss = served.peakRSSBytes ?? 0
            if let authCost {
                say(
                    String(
                        format: "authentication's cost at p50 (median of %d pairs): %+.3f ms", withAuth.count, authCost
                    ))
            }
            if !readRatios.isEmpty {
                say("get_per_select and list_per_select: medians of \(1 + readRatios.count) rounds")
            }
            for (name, value) in ratios.sorted(by: { $0.key < $1.key }) {
                say(String(format: "%-22@ %.2f", name, value))
            }
            say(String(format: "server peak RSS: %.0f MB", Double(rss) / 1_048_576))
            var figures: [String: Any] = [
                "connections": connections, "seconds_per_workload": seconds, "datasets": ids.count,
                "generator": wrk == nil ? "async-http-client" : "wrk",
                "ratios": ratios, "server_peak_rss_bytes": rss, "read_rounds": 1 + readRatios.count,
            ]
            figures["auth_p50_cost_ms"] = authCost
            if !soak.isEmpty { figures["soak"] = soak }
            figures["workloads"] = results.map { result -> [String: Any] in
                var object = result.json
                object["name"] = result.name
                return object
            }
            result.value = figures
            try await http.shutdown()
        }
        return result.value
    }
}

/// Which program drives the HTTP load.
enum LoadGeneratorKind: String, ExpressibleByArgument, Sendable {
    case wrk
    case asyncHTTPClient = "async-http-client"
}

/// A value set inside a `@Sendable` closure and read after it.
final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// The bench figures as one JSON document, for tracking from run to run.
enum BenchJSON {
    static func document(_ benches: [String: Any]) throws -> String {
        var document = benches
        document["measured_at"] = ISO8601DateFormatter().string(from: Date())
        document["host"] = ProcessInfo.processInfo.hostName
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
