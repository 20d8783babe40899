import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import PostgresNIO
import StrataStore
import Synchronization

/// `strata bench feed`: many subscribers on `GET /v1/events/stream` of a real `strata serve` — what they
/// cost the database while idle, next to the same server with none, and how soon a new event reaches
/// every one of them.
struct FeedBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feed", abstract: "Time the live feed: idle subscribers' cost, and a new event's delivery.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Subscribers following the feed") var subscribers = 1000
    @Option(help: "Events written, one at a time, while they follow") var events = 20
    @OptionGroup var output: BenchOutput

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let (count, writes, log) = (subscribers, events, !output.json)
        let figures = Box<[String: Any]>([:])
        try await withScratchDatabase(configuration, logger: logger) { client, _, endpoint in
            let server = try await ServerUnderTest.start(databaseURL: endpoint.url, arguments: ["--insecure-no-auth"])
            defer { server.stop() }
            var settings = HTTPClient.Configuration()
            settings.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = count + 16
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
            let received = FeedArrivals()
            var followers: [Task<Void, Never>] = []
            do {
                /// Transactions the database ran in `window`, as its statistics count them.
                func transactions(over window: Duration) async throws -> Int {
                    func total() async throws -> Int {
                        try await client.query(
                            "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
                            logger: logger
                        ).collect().first!.decode(Int.self)
                    }
                    let before = try await total()
                    try await Task.sleep(for: window)
                    return try await total() - before
                }
                let window = Duration.seconds(5)
                try await Task.sleep(for: .seconds(1))
                let alone = try await transactions(over: window)

                for _ in 0..<count {
                    followers.append(
                        Task { [received] in
                            var request = HTTPClientRequest(url: server.baseURL + "/v1/events/stream")
                            request.headers.add(name: "Accept", value: "text/event-stream")
                            guard let response = try? await http.execute(request, timeout: .hours(1)) else { return }
                            received.opened.add(1, ordering: .relaxed)
                            var pending = ""
                            do {
                                for try await buffer in response.body {
                                    let now = ContinuousClock.now
                                    pending += String(buffer: buffer)
                                    while let end = pending.firstIndex(of: "\n") {
                                        if pending.hasPrefix("id: "), let position = Int64(pending[..<end].dropFirst(4))
                                        {
                                            received.times.withLock { $0[position, default: []].append(now) }
                                        }
                                        pending.removeSubrange(...end)
                                    }
                                }
                            } catch {}
                        })
                }
                let deadline = ContinuousClock.now + .seconds(60)
                while received.opened.load(ordering: .relaxed) < count && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
                guard received.opened.load(ordering: .relaxed) == count else {
                    throw BenchError(
                        "only \(received.opened.load(ordering: .relaxed)) of \(count) subscribers connected")
                }
                try await Task.sleep(for: .seconds(1))
                let following = try await transactions(over: window)

                var sent: [Int64: ContinuousClock.Instant] = [:]
                for index in 0..<writes {
                    var request = HTTPClientRequest(url: server.baseURL + "/v1/datasets")
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: #"{"namespace": "feed", "name": "event-\#(index)"}"#))
                    let began = ContinuousClock.now
                    let response = try await http.execute(request, timeout: .seconds(30))
                    _ = try await response.body.collect(upTo: 1 << 20)
                    guard let position = response.headers.first(name: "Strata-Position").flatMap({ Int64($0) }) else {
                        throw BenchError("a create answered \(response.status) without a position")
                    }
                    sent[position] = began
                    try await Task.sleep(for: .milliseconds(200))
                }
                let delivered = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < delivered {
                    let complete = received.times.withLock { arrivals in
                        sent.keys.allSatisfy { arrivals[$0]?.count ?? 0 >= count }
                    }
                    if complete { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                var latencies: [Double] = []
                var missing = 0
                received.times.withLock { arrivals in
                    for (position, began) in sent {
                        let times = arrivals[position] ?? []
                        missing += count - times.count
                        latencies += times.map { began.duration(to: $0).milliseconds }
                    }
                }
                latencies.sort()
                let at = { (q: Double) in latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))] }
                if log {
                    print(
                        "idle database transactions in \(window): \(alone) with no subscriber, \(following) with \(count)"
                    )
                    print(
                        String(
                            format: "a new event reaching %d subscribers (%d events, from the write's request): "
                                + "p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d deliveries missing",
                            count, writes, at(0.5), at(0.99), latencies.last ?? 0, missing))
                    if let rss = server.peakRSSBytes { print("peak RSS of strata serve: \(rss >> 20) MB") }
                }
                figures.value = [
                    "subscribers": count, "events": writes, "idle_window_seconds": window.seconds,
                    "idle_transactions_without_subscribers": alone, "idle_transactions_with_subscribers": following,
                    "delivery_p50_ms": at(0.5), "delivery_p99_ms": at(0.99), "delivery_max_ms": latencies.last ?? 0,
                    "deliveries_missing": missing, "server_peak_rss_bytes": server.peakRSSBytes ?? 0,
                ]
            } catch {
                for follower in followers { follower.cancel() }
                try? await http.shutdown()
                throw error
            }
            for follower in followers { follower.cancel() }
            try? await http.shutdown()
        }
        if output.json { print(try BenchJSON.document(["feed": figures.value])) }
    }
}

/// What the bench's subscribers received: when each position reached each of them.
private final class FeedArrivals: Sendable {
    let times = Mutex<[Int64: [ContinuousClock.Instant]]>([:])
    let opened = Atomic<Int>(0)
}
