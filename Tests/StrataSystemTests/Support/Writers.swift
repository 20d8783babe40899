import AsyncHTTPClient
import Foundation
import Synchronization

/// One create a writer sent, and what became of it.
struct CreateOutcome: Sendable {
    var name: String
    var idempotencyKey: String
    var answer: Answer
    /// How many times it was sent: more than once when a writer retries 503s with the same key.
    var attempts: Int

    var id: String? { answer.json["id"] as? String }
    var isAcknowledged: Bool { answer.status == 201 }
    /// A 503 whose COMMIT may have landed: the server could not find out, and said so.
    var outcomeUnknown: Bool { answer.status == 503 && answer.body.contains("Idempotency-Key") }
}

/// Concurrent writers creating datasets, each naming a new one, until told to stop.
final class Writers: Sendable {
    static let namespace = "faults"

    let server: String
    let client: HTTPClient
    let count: Int
    /// Retry a 503 with the same `Idempotency-Key` until it succeeds, as the README tells clients to.
    let retrying: Bool
    let requestTimeout: Duration
    private let outcomes = Mutex<[CreateOutcome]>([])
    private let stopped = Atomic<Bool>(false)

    init(server: String, client: HTTPClient, count: Int, retrying: Bool, requestTimeout: Duration = .seconds(30)) {
        self.server = server
        self.client = client
        self.count = count
        self.retrying = retrying
        self.requestTimeout = requestTimeout
    }

    /// How many creates have been acknowledged so far.
    var acknowledged: Int { outcomes.withLock { $0.count(where: \.isAcknowledged) } }

    /// Waits until `count` creates have been acknowledged (or `limit` has passed): a fault injected then
    /// hits writes that are streaming in, however slow the machine is today.
    func waitUntilAcknowledged(_ count: Int, within limit: Duration = .seconds(30)) async throws {
        let started = ContinuousClock.now
        while acknowledged < count && started.duration(to: .now) < limit {
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Runs the writers while `body` runs, stops them when it ends however it ends, and answers every
    /// create's outcome with what `body` answered.
    func writing<Result: Sendable>(
        while body: @Sendable () async throws -> Result
    ) async throws -> (Result, [CreateOutcome]) {
        let result = await withTaskGroup(of: Void.self, returning: Swift.Result<Result, any Error>.self) { group in
            for writer in 0..<count {
                group.addTask { await self.write(as: writer) }
            }
            let result: Swift.Result<Result, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            stopped.store(true, ordering: .relaxed)
            await group.waitForAll()
            return result
        }
        return (try result.get(), outcomes.withLock { $0 })
    }

    private func write(as writer: Int) async {
        var sequence = 0
        while !stopped.load(ordering: .relaxed) {
            sequence += 1
            let key = "w\(writer)-\(sequence)-\(UUID().uuidString.prefix(8))"
            let name = "ds-\(key)"
            var attempts = 0
            var answer: Answer
            repeat {
                attempts += 1
                answer = await client.send(
                    .POST, server + "/v1/datasets", json: #"{"namespace": "\#(Self.namespace)", "name": "\#(name)"}"#,
                    headers: ["Idempotency-Key": key], timeout: requestTimeout)
                if retrying && answer.status == 503 { try? await Task.sleep(for: .milliseconds(100)) }
            } while retrying && answer.status == 503 && attempts < 200
            let outcome = CreateOutcome(name: name, idempotencyKey: key, answer: answer, attempts: attempts)
            outcomes.withLock { $0.append(outcome) }
            if answer.status != 201 { try? await Task.sleep(for: .milliseconds(50)) }
        }
    }
}
