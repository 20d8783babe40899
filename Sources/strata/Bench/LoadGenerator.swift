import AsyncHTTPClient
import Foundation
import Histogram
import NIOCore
import NIOHTTP1
import Synchronization

/// What one workload measured: how many requests answered as expected in how long, and their latencies.
struct LoadResult: Sendable {
    var name: String
    var requests: Int
    var failures: Int
    var seconds: Double
    var latencies: Latencies
    /// The server's peak resident memory by the end of the run, if a server was measured.
    var peakRSSBytes: Int?

    var rate: Double { Double(requests) / seconds }
    /// Latency at a percentile, in milliseconds.
    func milliseconds(at percentile: Double) -> Double {
        switch latencies {
        case .histogram(let histogram): Double(histogram.valueAtPercentile(percentile)) / 1000
        case .percentiles(let values): Double(values[percentile] ?? 0) / 1000
        }
    }

    /// Latencies in microseconds: our own histogram, or the percentiles an external generator printed.
    enum Latencies: Sendable {
        case histogram(Histogram<UInt64>)
        case percentiles([Double: UInt64])
    }

    var json: [String: Any] {
        var object: [String: Any] = [
            "requests": requests, "failures": failures, "seconds": seconds, "per_second": rate,
            "p50_ms": milliseconds(at: 50), "p99_ms": milliseconds(at: 99),
        ]
        if let peakRSSBytes { object["server_peak_rss_bytes"] = peakRSSBytes }
        return object
    }
}

/// How one operation of a load went.
enum Attempt: Sendable {
    case succeeded, failed
    /// This client has no more work (a workload that consumes what was prepared for it).
    case exhausted
}

/// A closed-loop load: `concurrency` clients, each starting its next operation as soon as its previous
/// one finished, for a fixed time after a warm-up. Latencies go into an HdrHistogram per client (merged
/// at the end), at microsecond resolution up to a minute.
///
/// HTTP loads use AsyncHTTPClient in this process. Whether the generator, rather than the server,
/// limits a figure shows in the health route's rate, measured by the same generator in the same run: a
/// workload well below it is the server's.
struct LoadGenerator: Sendable {
    let concurrency: Int

    /// Runs `operation` (given the client's index and its iteration) for `duration`, or until every
    /// client has exhausted its work.
    func run(
        _ name: String,
        for duration: Duration,
        warmUp: Duration = .seconds(1),
        _ operation: @escaping @Sendable (Int, Int) async -> Attempt
    ) async -> LoadResult {
        let begin = ContinuousClock.now + warmUp
        let end = begin + duration
        let results = await withTaskGroup(of: (Histogram<UInt64>, Int, Int).self) { group in
            for index in 0..<concurrency {
                group.addTask {
                    var histogram = Histogram<UInt64>(
                        highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                    var (done, failed, iteration) = (0, 0, 0)
                    while true {
                        let started = ContinuousClock.now
                        if started >= end { break }
                        let attempt = await operation(index, iteration)
                        iteration += 1
                        let finished = ContinuousClock.now
                        if case .exhausted = attempt { break }
                        guard started >= begin, finished <= end else { continue }
                        if case .succeeded = attempt {
                            done += 1
                            _ = histogram.record(UInt64(max(0, (finished - started).microseconds)))
                        } else {
                            failed += 1
                        }
                    }
                    return (histogram, done, failed)
                }
            }
            var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            var (done, failed) = (0, 0)
            for await (histogram, count, failures) in group {
                merged.add(histogram)
                done += count
                failed += failures
            }
            return (merged, done, failed)
        }
        // A load whose clients ran out of work early is measured over the time it actually ran.
        let seconds = min(duration.seconds, max(0.001, (ContinuousClock.now - begin).seconds))
        return LoadResult(
            name: name, requests: results.1, failures: results.2, seconds: seconds, latencies: .histogram(results.0))
    }
}

extension HTTPClient {
    /// Sends `request` and answers whether it came back with `status` (and a body `answering` accepts, if
    /// given); the body is read and dropped.
    func attempt(
        _ request: HTTPClientRequest, expecting status: HTTPResponseStatus = .ok,
        answering: ((String) -> Bool)? = nil
    ) async -> Attempt {
        do {
            let response = try await execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 64 << 20)
            guard response.status == status else { return .failed }
            return answering.map { $0(String(buffer: body)) } ?? true ? .succeeded : .failed
        } catch {
            return .failed
        }
    }
}

extension Duration {
    var microseconds: Int64 { components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000 }
}
