import ArgumentParser
import AsyncHTTPClient
import EmbeddedPostgres
import Foundation
import PostgresNIO
import StrataStore
import Synchronization

/// `strata bench faults`: PostgreSQL restarted in immediate mode, again and again, under a running
/// `strata serve` that is writing, reading and rebuilding, on a cluster of its own (the bench must be
/// able to stop and start it). Writers create datasets, edit and publish them, each request with an
/// `Idempotency-Key` (and the edit and the publish with `If-Match`), and retry a 503 or a lost answer
/// with the same key, as `docs/operations.md` tells clients to; emitters send batches of OpenLineage
/// runs the same way. Afterwards every dataset whose create was acknowledged must be in the catalog,
/// with its edit if that was acknowledged, published if its publish was, every acknowledged run's
/// lineage must be recorded, and the projections must match the log. A retry of a write that had landed must get its
/// answer again, never a version conflict with itself. Readers ask again for every answer they
/// get, as of the position it carried, and the two must be the same bytes; a dataset once listed must
/// never be missing.
struct FaultBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faults",
        abstract: "PostgreSQL restarted under writes, reads and rebuilds: what was acknowledged against what is kept.")

    @Option(help: "Seconds of load") var seconds = 60
    @Option(help: "Mean seconds between two restarts (each wait is drawn from half to one and a half of it)")
    var restartEvery = 8.0
    @Option(help: "Writers, each creating a dataset, editing and publishing it, one after another") var writers = 8
    @Option(
        help: "Readers, each asking in turn for a list page, a dataset, its lineage, a search and a page of the log")
    var readers = 8
    @Option(help: "OpenLineage emitters, each sending batches of 20 runs") var emitters = 2
    @Option(help: "Events in the synthetic log, which a rebuild replays") var events = 200_000
    @OptionGroup var output: BenchOutput

    func run() async throws {
        let log = !output.json
        let logger = try StrataConfiguration(database: DatabaseOptions.parse([])).makeLogger()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strata-bench-faults-\(getpid())")
            .path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cluster = try EmbeddedPostgres.start(
            .init(dataDirectory: folder + "/cluster", removeWhenProcessExits: true), logger: logger)
        defer { try? cluster.stop() }
        try await PostgresClient(
            configuration: cluster.endpoint(database: "postgres").clientConfiguration, backgroundLogger: logger
        )
        .whileRunning { try await $0.perform("CREATE DATABASE strata", logger: logger) }
        let catalog = cluster.endpoint(database: "strata")
        let generated = try await PostgresClient(configuration: catalog.clientConfiguration, backgroundLogger: logger)
            .whileRunning { client in
                let schema = try CatalogSchema.bundled()
                try await schema.prepare(client, logger: logger)
                let count = try await SyntheticLog(client: client, logger: logger).generate(events: events)
                _ = try await ProjectionMaintenance(client: client, catalog: schema.projections, logger: logger)
                    .rebuild()
                return count
            }
        if log { print("generated \(generated) events") }

        let server = try await ServerUnderTest.start(databaseURL: catalog.url, arguments: ["--insecure-no-auth"])
        defer { server.stop() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let tally = FaultTally()
        let end = ContinuousClock.now + .seconds(seconds)
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask { await Self.write(as: writer, until: end, to: server.baseURL, http: http, tally: tally) }
            }
            for emitter in 0..<emitters {
                group.addTask { await Self.emit(as: emitter, until: end, to: server.baseURL, http: http, tally: tally) }
            }
            for reader in 0..<readers {
                group.addTask {
                    await Self.read(as: reader, until: end, from: server.baseURL, http: http, tally: tally)
                }
            }
            group.addTask {
                while ContinuousClock.now < end {
                    var request = HTTPClientRequest(url: server.baseURL + "/v1/admin/projections/rebuild")
                    request.method = .POST
                    let answered = await Self.answer(to: request, http, timeout: .seconds(300))
                    tally.count("rebuilds", answered.status, why: answered.why)
                    try? await Task.sleep(for: .seconds(2))
                }
            }
            group.addTask {
                while ContinuousClock.now < end {
                    tally.sample(rss: server.currentRSSBytes)
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            group.addTask {
                while true {
                    let wait = restartEvery * Double.random(in: 0.5...1.5)
                    guard ContinuousClock.now + .seconds(wait) < end else { break }
                    try? await Task.sleep(for: .seconds(wait))
                    do {
                        let stopped = ContinuousClock.now
                        try cluster.stopServer(mode: .immediate)
                        try cluster.startServer()
                        tally.restarted(downFor: stopped.duration(to: .now))
                        if log {
                            print("restart \(tally.restarts): server RSS \(Self.megabytes(server.currentRSSBytes))")
                        }
                    } catch {
                        Self.warn("could not restart PostgreSQL: \(error)")
                    }
                }
            }
        }
        try? await http.shutdown()

        // What the catalog holds of the writers' datasets, and whether its projections match its log.
        let (kept, recordedRuns, verified) = try await PostgresClient(
            configuration: catalog.clientConfiguration, backgroundLogger: logger
        ).whileRunning { client in
            // Each dataset's status and its latest version's description.
            let rows = try await client.rows(
                """
                SELECT i.name, s.status, w.description FROM dataset_identities i
                JOIN dataset_states s ON s.dataset_id = i.dataset_id AND s.valid_to IS NULL
                LEFT JOIN versions v ON v.dataset_id = i.dataset_id AND v.version = s.latest_version
                LEFT JOIN dataset_words w ON w.dataset_id = v.dataset_id AND w.words_key = v.words_key
                WHERE i.namespace = \(Self.namespace)
                """, logger: logger)
            let names = try rows.reduce(into: [String: FaultTally.Kept]()) { names, row in
                let (name, status, description) = try row.decode((String, String, String?).self)
                names[name] = FaultTally.Kept(status: status, description: description)
            }
            // The runs whose lineage was recorded: their output exists and has an edge into it.
            let recorded = try await client.rows(
                """
                SELECT i.name FROM dataset_identities i
                WHERE i.namespace = \(Self.openLineageNamespace)
                  AND EXISTS (SELECT 1 FROM lineage_edges e WHERE e.to_dataset = i.dataset_id)
                """, logger: logger
            ).map { try $0.decode(String.self) }
            let report = try await ProjectionMaintenance(
                client: client, catalog: try ProjectionCatalog.bundled(), logger: logger
            ).verify()
            return (names, Set(recorded), report.isClean)
        }
        let serverDied = !isProcessAlive(server.pid)
        let figures = tally.figures(
            kept: kept, recordedRuns: recordedRuns, projectionsMatchTheLog: verified, peakRSS: server.peakRSSBytes)
        let failed =
            serverDied || figures.lost > 0 || figures.lostEdits > 0 || figures.lostPublishes > 0 || figures.lostRuns > 0
            || figures.serverErrors > 0 || figures.conflicts > 0 || !verified || figures.unreproduced > 0
            || figures.vanished > 0
        if failed {
            // The server's log goes with it when it stops: kept, since it says what went wrong.
            let keptLog = FileManager.default.temporaryDirectory.appendingPathComponent(
                "strata-bench-faults-serve-\(server.pid).log"
            ).path
            try? FileManager.default.copyItem(atPath: server.logPath, toPath: keptLog)
            if serverDied {
                let serverLog = (try? String(contentsOfFile: server.logPath, encoding: .utf8)) ?? ""
                let lines = serverLog.split(separator: "\n", omittingEmptySubsequences: false)
                let start =
                    lines.firstIndex { $0.contains("Fatal error") || $0.contains("crashed") }
                    ?? max(0, lines.count - 40)
                Self.warn("strata serve died under the bench (its whole log: \(keptLog)):")
                Self.warn(lines[start...].prefix(40).joined(separator: "\n"))
            } else {
                Self.warn("the server's log: \(keptLog)")
            }
        }
        if log {
            for line in figures.lines { print(line) }
        } else {
            print(try BenchJSON.document(["faults": figures.json]))
        }
        guard !failed else {
            throw BenchError(
                "the server died, acknowledged writes were lost, a 5xx other than 503 was answered, a retried "
                    + "write conflicted with itself, an answer differed as of its own position, a dataset went "
                    + "missing, or the projections drifted")
        }
    }

    static let namespace = "bench-faults"

    /// Creates datasets one after another, edits and publishes each, every request until it is
    /// acknowledged: a 503 or a lost answer is sent again with the same key, so it is applied once
    /// whichever attempt lands. The edit and the publish carry `If-Match` with the stream version the
    /// write before answered: no one else writes the dataset, so a 412 is a retry that conflicted with
    /// its own first attempt.
    private static func write(
        as writer: Int, until end: ContinuousClock.Instant, to baseURL: String, http: HTTPClient, tally: FaultTally
    ) async {
        var number = 0
        while ContinuousClock.now < end {
            number += 1
            let name = "w\(writer)-\(number)"
            var create = HTTPClientRequest(url: baseURL + "/v1/datasets")
            create.method = .POST
            create.headers.add(name: "Content-Type", value: "application/json")
            create.headers.add(name: "Idempotency-Key", value: "bench-faults-\(name)")
            // With a version's fields, so that it has a draft to publish.
            create.body = .bytes(
                ByteBuffer(
                    string:
                        #"{"namespace":"\#(namespace)","name":"\#(name)","owner":"bench","location":"s3://bench/\#(name)/","#
                        + #""schema":[{"name":"id","type":"bigint"}]}"#))
            let created = await untilAcknowledged(create, counted: "writes", until: end, http: http, tally: tally)
            guard created.status == 201 else {
                if created.status != 503 && created.status != nil { tally.refused(name) }
                continue
            }
            tally.acknowledged(name, attempts: created.attempts)
            guard let (id, createdVersion) = Self.idAndVersion(created.body) else { continue }
            var edit = HTTPClientRequest(url: baseURL + "/v1/datasets/\(id)")
            edit.method = .PATCH
            edit.headers.add(name: "Content-Type", value: "application/json")
            edit.headers.add(name: "Idempotency-Key", value: "bench-faults-edit-\(name)")
            edit.headers.add(name: "If-Match", value: "\"\(createdVersion)\"")
            edit.body = .bytes(ByteBuffer(string: #"{"description":"\#(Self.description(of: name))"}"#))
            let edited = await untilAcknowledged(edit, counted: "edits", until: end, http: http, tally: tally)
            if edited.status == 412 { tally.conflicted("PATCH /v1/datasets/\(id) (\(name))") }
            guard edited.status == 200, let (_, editedVersion) = Self.idAndVersion(edited.body) else { continue }
            tally.edited(name)
            var publish = HTTPClientRequest(url: baseURL + "/v1/datasets/\(id)/publish")
            publish.method = .POST
            publish.headers.add(name: "Idempotency-Key", value: "bench-faults-publish-\(name)")
            publish.headers.add(name: "If-Match", value: "\"\(editedVersion)\"")
            let published = await untilAcknowledged(publish, counted: "publishes", until: end, http: http, tally: tally)
            if published.status == 412 { tally.conflicted("POST /v1/datasets/\(id)/publish (\(name))") }
            if let status = published.status, (200..<300).contains(status) { tally.published(name) }
        }
    }

    static let openLineageNamespace = "bench-faults-openlineage"
    static let openLineageBatch = 20

    /// Sends batches of OpenLineage runs, each run writing a dataset of its own, every batch with an
    /// `Idempotency-Key` and sent again until each of its events is acknowledged (a 503 for the batch, no
    /// answer, or events that failed with 503 send it again; the events that landed answer as they did).
    private static func emit(
        as emitter: Int, until end: ContinuousClock.Instant, to baseURL: String, http: HTTPClient, tally: FaultTally
    ) async {
        var number = 0
        while ContinuousClock.now < end {
            number += 1
            let names = (0..<openLineageBatch).map { "e\(emitter)-\(number)-\($0)" }
            let events = names.enumerated().map { index, name in
                #"{"eventTime":"2026-03-14T09:00:00Z","eventType":"COMPLETE","run":{"runId":"\#(name)"},"#
                    + #""job":{"namespace":"bench","name":"emitter-\#(emitter)"},"#
                    + #""inputs":[{"namespace":"\#(openLineageNamespace)","name":"source-\#(index % 5)"}],"#
                    + #""outputs":[{"namespace":"\#(openLineageNamespace)","name":"\#(name)"}]}"#
            }
            var batch = HTTPClientRequest(url: baseURL + "/api/v1/lineage/batch")
            batch.method = .POST
            batch.headers.add(name: "Content-Type", value: "application/json")
            batch.headers.add(name: "Idempotency-Key", value: "bench-faults-openlineage-\(emitter)-\(number)")
            batch.body = .bytes(ByteBuffer(string: "[\(events.joined(separator: ","))]"))
            var attempts = 0
            while ContinuousClock.now < end {
                attempts += 1
                let answered = await Self.answer(to: batch, http)
                tally.count("OpenLineage batches", answered.status, why: answered.why)
                if answered.status == 200, let failures = Self.failedStatuses(answered.body) {
                    if failures.isEmpty {
                        tally.emitted(names, attempts: attempts)
                        break
                    }
                    guard failures.allSatisfy({ $0 == 503 }) else {
                        tally.refused("OpenLineage batch \(emitter)-\(number)")
                        break
                    }
                } else if answered.status != 503 && answered.status != nil {
                    tally.refused("OpenLineage batch \(emitter)-\(number)")
                    break
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// The statuses of the events an OpenLineage batch's summary reports failed.
    private static func failedStatuses(_ body: ByteBuffer?) -> [Int]? {
        guard let body,
            let summary = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
            let failed = summary["failed_events"] as? [[String: Any]]
        else { return nil }
        return failed.map { $0["status"] as? Int ?? 0 }
    }

    /// The description a writer's edit gives its dataset.
    static func description(of name: String) -> String { "edited \(name)" }

    /// A dataset's id and stream version, from a write's answer.
    private static func idAndVersion(_ body: ByteBuffer?) -> (id: String, version: Int)? {
        guard let body,
            let dataset = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
            let id = dataset["id"] as? String, let version = dataset["stream_version"] as? Int
        else { return nil }
        return (id, version)
    }

    /// Sends `request` until it is answered otherwise than with a 503 or not at all, or the load ends;
    /// the last answer, and how many attempts it took.
    private static func untilAcknowledged(
        _ request: HTTPClientRequest, counted kind: String, until end: ContinuousClock.Instant, http: HTTPClient,
        tally: FaultTally
    ) async -> (status: Int?, body: ByteBuffer?, attempts: Int) {
        var attempts = 0
        var answer: (status: Int?, body: ByteBuffer?) = (nil, nil)
        while ContinuousClock.now < end {
            attempts += 1
            let answered = await Self.answer(to: request, http)
            answer = (answered.status, answered.body)
            tally.count(kind, answer.status, why: answered.why)
            guard answer.status == 503 || answer.status == nil else { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return (answer.status, answer.body, attempts)
    }

    /// Reads one kind of answer after another, so that every way the server reads PostgreSQL (a list
    /// page, a dataset by id, a lineage walk, a search, the log) is under way when PostgreSQL goes away.
    private static func read(
        as reader: Int, until end: ContinuousClock.Instant, from baseURL: String, http: HTTPClient, tally: FaultTally
    ) async {
        var ids: [String] = []
        var turn = reader
        while ContinuousClock.now < end {
            turn += 1
            let (kind, path): (ReadKind, String)
            switch (turn % 5, ids.randomElement()) {
            case (1, let id?): (kind, path) = (.dataset, "/v1/datasets/\(id)")
            case (2, let id?): (kind, path) = (.lineage, "/v1/datasets/\(id)/lineage?depth=3")
            case (3, _): (kind, path) = (.search, "/v1/search?q=dataset-\(Int.random(in: 0..<1000))&limit=20")
            case (4, _): (kind, path) = (.log, "/v1/events?after=\(Int.random(in: 0..<100_000))&limit=100")
            default:
                // A third of the pages are of the writers' namespace, which every write changes: an answer
                // that mixed two moments would show there. A third are of the whole catalog, newest or
                // last changed first, walked from the log's index by time.
                let sort = Bool.random() ? "-updated_at" : "-created_at"
                let namespace =
                    switch Int.random(in: 0..<3) {
                    case 0: "&namespace=\(Self.namespace)"
                    case 1: "&namespace=bench\(Int.random(in: 0..<50))"
                    default: ""
                    }
                (kind, path) = (.list, "/v1/datasets?limit=50&status=all&sort=\(sort)\(namespace)")
            }
            let (status, body, position, why) = await Self.answer(to: HTTPClientRequest(url: baseURL + path), http)
            tally.count(kind.rawValue, status, why: why)
            // Datasets are never deleted: one a list page showed is found by id, and has a lineage.
            if status == 404, kind == .dataset || kind == .lineage { tally.vanished(path) }
            if status == 200, kind.takesAsOf, let body, let position {
                let separator = path.contains("?") ? "&" : "?"
                let asOf = "\(path)\(separator)as_of=\(position)"
                let replay = await Self.answer(to: HTTPClientRequest(url: baseURL + asOf), http)
                // A 503 or no answer (PostgreSQL restarting) compares nothing.
                if replay.status == 200 { tally.replayed(asOf, same: replay.body == body) }
            }
            if kind == .list, status == 200, let body,
                let page = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
                let datasets = page["datasets"] as? [[String: Any]]
            {
                ids = datasets.compactMap { $0["id"] as? String }
            }
        }
    }

    /// What a reader asks for, named as the figures name it.
    enum ReadKind: String, CaseIterable {
        case list = "list pages"
        case dataset = "datasets by id"
        case lineage = "lineage walks"
        case search = "searches"
        case log = "log pages"

        /// Whether the answer carries the position it reflects, and can be asked for as of it (the log's
        /// pages are addressed by position already).
        var takesAsOf: Bool { self != .log }
    }

    /// The answer's status, nil if none came (a connection refused, reset or timed out).
    /// The answer's status, body and `Strata-Position`, nil if none came (a connection refused, reset or
    /// timed out); and for a 503 or no answer, why: the problem's detail, or the transport's error.
    private static func answer(to request: HTTPClientRequest, _ http: HTTPClient, timeout: Duration = .seconds(30))
        async -> (status: Int?, body: ByteBuffer?, position: String?, why: String?)
    {
        do {
            let response = try await http.execute(request, timeout: .seconds(Int64(timeout.components.seconds)))
            let body = try await response.body.collect(upTo: 64 << 20)
            let status = Int(response.status.code)
            let why =
                status == 503
                ? (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["detail"] as? String
                : nil
            return (status, body, response.headers.first(name: "Strata-Position"), why)
        } catch {
            return (nil, nil, nil, String(describing: error))
        }
    }

    /// What went wrong, on standard error, so that `--json` keeps standard output one document.
    private static func warn(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func megabytes(_ bytes: Int?) -> String {
        bytes.map { String(format: "%.0f MB", Double($0) / 1_048_576) } ?? "?"
    }
}

/// What the bench saw, from every task at once.
private final class FaultTally: Sendable {
    private struct State {
        var statuses: [String: [String: Int]] = [:]
        var acknowledged: Set<String> = []
        var refused: Set<String> = []
        var edited: Set<String> = []
        var published: Set<String> = []
        /// OpenLineage runs whose batch answered that every event landed.
        var emitted: Set<String> = []
        var emittedRetried = 0
        /// Writes answered 412 though no one else wrote their dataset.
        var conflicts: [String] = []
        var retried = 0
        var restarts = 0
        var restartedAt: [ContinuousClock.Instant] = []
        /// From each stop to PostgreSQL accepting connections again.
        var downFor: [Duration] = []
        var acknowledgedAt: [ContinuousClock.Instant] = []
        var peakSampledRSS = 0
        var replays = 0
        /// The requests, with `as_of`, whose answer differed from the one they repeat.
        var unreproduced: [String] = []
        /// The requests answered 404 for a dataset that had been listed.
        var vanished: [String] = []
    }

    private let state = Mutex(State())

    var restarts: Int { state.withLock { $0.restarts } }

    /// One answer of `kind`, counted by its status, and a 503 or a missing answer also by why.
    func count(_ kind: String, _ status: Int?, why: String?) {
        let key = (status.map(String.init) ?? "no answer") + (why.map { " (\($0))" } ?? "")
        state.withLock { $0.statuses[kind, default: [:]][key, default: 0] += 1 }
    }

    func acknowledged(_ name: String, attempts: Int) {
        state.withLock { state in
            state.acknowledged.insert(name)
            state.retried += attempts > 1 ? 1 : 0
            state.acknowledgedAt.append(.now)
        }
    }

    func emitted(_ runs: [String], attempts: Int) {
        state.withLock { state in
            state.emitted.formUnion(runs)
            state.emittedRetried += attempts > 1 ? 1 : 0
        }
    }

    func edited(_ name: String) {
        _ = state.withLock { $0.edited.insert(name) }
    }

    func conflicted(_ request: String) {
        state.withLock { $0.conflicts.append(request) }
    }

    func published(_ name: String) {
        _ = state.withLock { $0.published.insert(name) }
    }

    func replayed(_ request: String, same: Bool) {
        state.withLock { state in
            state.replays += 1
            if !same { state.unreproduced.append(request) }
        }
    }

    func vanished(_ request: String) {
        state.withLock { $0.vanished.append(request) }
    }

    func refused(_ name: String) {
        _ = state.withLock { $0.refused.insert(name) }
    }

    func restarted(downFor outage: Duration) {
        state.withLock { state in
            state.restarts += 1
            state.restartedAt.append(.now)
            state.downFor.append(outage)
        }
    }

    func sample(rss: Int?) {
        guard let rss else { return }
        state.withLock { $0.peakSampledRSS = max($0.peakSampledRSS, rss) }
    }

    struct Figures {
        var lines: [String]
        var json: [String: Any]
        var lost: Int
        var lostEdits: Int
        var lostPublishes: Int
        var lostRuns: Int
        var conflicts: Int
        var serverErrors: Int
        var unreproduced: Int
        var vanished: Int
    }

    /// What the catalog holds of one of the writers' datasets.
    struct Kept {
        var status: String
        /// Its latest version's.
        var description: String?
    }

    /// `kept`: what the catalog holds of each of the writers' datasets, by name; `recordedRuns`: the
    /// OpenLineage runs whose lineage the catalog holds.
    func figures(kept: [String: Kept], recordedRuns: Set<String>, projectionsMatchTheLog: Bool, peakRSS: Int?)
        -> Figures
    {
        let state = state.withLock { $0 }
        let lost = state.acknowledged.subtracting(kept.keys)
        let lostRuns = state.emitted.subtracting(recordedRuns)
        let lostEdits = state.edited.filter { kept[$0]?.description != FaultBench.description(of: $0) }
        let lostPublishes = state.published.filter { kept[$0]?.status != "published" }
        // From a restart back to PostgreSQL accepting connections to the next write acknowledged.
        let recoveries = state.restartedAt.compactMap { restart in
            state.acknowledgedAt.filter { $0 > restart }.min().map { restart.duration(to: $0) }
        }
        func sortedSeconds(_ durations: [Duration]) -> [Double] {
            durations.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }.sorted()
        }
        func medianAndLongest(_ seconds: [Double]) -> String {
            seconds.isEmpty
                ? "none measured"
                : String(format: "median %.2f s, longest %.2f s", seconds[seconds.count / 2], seconds.last ?? 0)
        }
        let seconds = sortedSeconds(recoveries)
        let downSeconds = sortedSeconds(state.downFor)
        let serverErrors = state.statuses.values.flatMap { $0 }.filter {
            guard let code = Int($0.key.prefix { $0.isNumber }) else { return false }
            return code >= 500 && code != 503
        }.map(\.value).reduce(0, +)
        /// How many answers of these kinds were 503s: what a restart cost the clients that saw it.
        func unavailable(_ kinds: [String]) -> Int {
            kinds.flatMap { (state.statuses[$0] ?? [:]).filter { $0.key.hasPrefix("503") }.map(\.value) }.reduce(0, +)
        }
        let writeKinds = ["writes", "edits", "publishes", "OpenLineage batches"]
        let (writes503, reads503) = (unavailable(writeKinds), unavailable(FaultBench.ReadKind.allCases.map(\.rawValue)))
        let perRestart = { (count: Int) in String(format: "%.2f", Double(count) / Double(max(1, state.restarts))) }
        func answers(_ kind: String) -> String {
            (state.statuses[kind] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.value)× \($0.key)" }
                .joined(separator: ", ")
        }
        let recovery = medianAndLongest(seconds)
        let lines = [
            "PostgreSQL restarts (immediate mode): \(state.restarts); down from the stop to accepting connections "
                + "again: \(medianAndLongest(downSeconds)), \(downSeconds.filter { $0 > 1.5 }.count) of them over the "
                + "1.5 s connect deadline",
            "writes acknowledged: \(state.acknowledged.count) (\(state.retried) after a retry with their key); "
                + "kept: \(state.acknowledged.count - lost.count); lost: \(lost.count); refused: \(state.refused.count)",
            "answers to writes: \(answers("writes"))",
            "edits acknowledged: \(state.edited.count); kept: \(state.edited.count - lostEdits.count); "
                + "lost: \(lostEdits.count)",
            "answers to edits: \(answers("edits"))",
            "publishes acknowledged: \(state.published.count); kept: \(state.published.count - lostPublishes.count); "
                + "lost: \(lostPublishes.count)",
            "answers to publishes: \(answers("publishes"))",
            "OpenLineage runs acknowledged: \(state.emitted.count) (\(state.emittedRetried) batches after a retry "
                + "with their key); kept: \(state.emitted.count - lostRuns.count); lost: \(lostRuns.count)",
            "answers to OpenLineage batches: \(answers("OpenLineage batches"))",
        ]
        let reads = FaultBench.ReadKind.allCases.map { "answers to \($0.rawValue): \(answers($0.rawValue))" }
        let rest = [
            "answers to rebuilds: \(answers("rebuilds"))",
            "answers asked for again as of their position: \(state.replays); differed: \(state.unreproduced.count)"
                + state.unreproduced.prefix(3).map { " (\($0))" }.joined(),
            "datasets listed, then not found: \(state.vanished.count)"
                + state.vanished.prefix(3).map { " (\($0))" }.joined(),
            "5xx other than 503: \(serverErrors)",
            "503s: \(writes503) to writes (\(perRestart(writes503)) a restart), \(reads503) to reads "
                + "(\(perRestart(reads503)) a restart)",
            "retries that conflicted with their own first attempt: \(state.conflicts.count)"
                + state.conflicts.prefix(3).map { " (\($0))" }.joined(),
            "from a restart to the next write acknowledged: \(recovery)",
            "projections match the log: \(projectionsMatchTheLog ? "yes" : "NO")",
            "server RSS: peak \(FaultBench.megabytes(peakRSS)) (sampled each second: \(FaultBench.megabytes(state.peakSampledRSS)))",
        ]
        let json: [String: Any] = [
            "restarts": state.restarts, "acknowledged": state.acknowledged.count, "retried": state.retried,
            "lost": lost.count, "refused": state.refused.count, "server_errors": serverErrors,
            "unavailable_writes": writes503, "unavailable_reads": reads503,
            "publishes": state.published.count, "publishes_lost": lostPublishes.count,
            "edits": state.edited.count, "edits_lost": lostEdits.count, "conflicts": state.conflicts.count,
            "answers": state.statuses, "recovery_seconds": seconds, "down_seconds": downSeconds,
            "projections_match_the_log": projectionsMatchTheLog, "peak_rss_bytes": peakRSS ?? 0,
            "as_of_replays": state.replays, "as_of_differed": state.unreproduced.count,
            "vanished": state.vanished.count, "openlineage_runs": state.emitted.count,
            "openlineage_runs_lost": lostRuns.count,
        ]
        return Figures(
            lines: lines + reads + rest, json: json, lost: lost.count, lostEdits: lostEdits.count,
            lostPublishes: lostPublishes.count, lostRuns: lostRuns.count, conflicts: state.conflicts.count,
            serverErrors: serverErrors, unreproduced: state.unreproduced.count, vanished: state.vanished.count)
    }
}
