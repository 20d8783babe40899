import AsyncHTTPClient
import Foundation
import PostgresNIO
import StrataTestSupport
import Testing

/// The longest any request may take while the database fails under it: the connect deadline, the work
/// deadline of a batch, and a margin for a slow machine.
let requestBound: Duration = .seconds(14)

/// Checks what every writer was told against what the database holds, after the faults are over:
/// no request hung or failed with anything but a 503 that says when to retry; every acknowledged
/// create is in the log and the projections; every create answered 503 is in neither, unless the
/// server said it could not tell; and `strata verify` finds the projections equal to the log.
///
/// A server killed under its writers cannot answer the requests it was in the middle of:
/// `unanswered` allows those (whether they landed, nobody was told).
func expectNothingAcknowledgedWasLost(
    _ outcomes: [CreateOutcome],
    cluster: PrivateCluster,
    server: ServerProcess,
    unansweredAllowed: Bool = false,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    #expect(!outcomes.isEmpty, sourceLocation: sourceLocation)
    for outcome in outcomes {
        let answer = outcome.answer
        #expect(
            unansweredAllowed || answer.failure == nil, "no answer for \(outcome.name): \(answer.failure ?? "")",
            sourceLocation: sourceLocation)
        #expect(
            answer.elapsed <= requestBound, "\(outcome.name) took \(answer.elapsed)", sourceLocation: sourceLocation)
        guard let status = answer.status else { continue }
        #expect(
            [201, 503].contains(status), "\(outcome.name): \(status) \(answer.body)", sourceLocation: sourceLocation)
        if status == 503 {
            #expect(answer.headers.first(name: "Retry-After") != nil, sourceLocation: sourceLocation)
            #expect(answer.json["code"] as? String == "database_unavailable", sourceLocation: sourceLocation)
        }
    }

    let (identities, created) = try await cluster.client().whileRunning { client in
        var identities: [String: String] = [:]
        let rows = try await client.query(
            "SELECT name, dataset_id FROM dataset_identities WHERE namespace = \(Writers.namespace)",
            logger: TestPostgres.logger)
        for try await (name, id) in rows.decode((String, UUID).self) { identities[name] = id.uuidString.lowercased() }
        var created: Set<String> = []
        let events = try await client.query(
            "SELECT stream_id FROM events WHERE event_type = 'DatasetCreated'", logger: TestPostgres.logger)
        for try await id in events.decode(UUID.self) { created.insert(id.uuidString.lowercased()) }
        return (identities, created)
    }
    for outcome in outcomes where outcome.isAcknowledged {
        let id = try #require(outcome.id, sourceLocation: sourceLocation)
        #expect(created.contains(id), "acknowledged \(outcome.name) is not in the log", sourceLocation: sourceLocation)
        #expect(
            identities[outcome.name] == id, "acknowledged \(outcome.name) is not projected",
            sourceLocation: sourceLocation)
    }
    for outcome in outcomes where outcome.answer.status == 503 && !outcome.outcomeUnknown {
        #expect(
            identities[outcome.name] == nil, "\(outcome.name) was refused, yet it landed",
            sourceLocation: sourceLocation)
    }

    let verify = try await blocking {
        try StrataBinary.run(["verify"], environment: ["DATABASE_URL": cluster.databaseURL])
    }
    #expect(verify.status == 0, "strata verify: \(verify.output)", sourceLocation: sourceLocation)
}

/// Creates datasets until one succeeds; answers how long that took.
func timeUntilWritesSucceed(_ client: HTTPClient, server: ServerProcess, within limit: Duration) async throws
    -> Duration
{
    let started = ContinuousClock.now
    while started.duration(to: .now) < limit {
        let answer = await client.send(
            .POST, server.baseURL + "/v1/datasets",
            json: #"{"namespace": "probe", "name": "probe-\#(UUID().uuidString)"}"#, timeout: .seconds(5))
        if answer.status == 201 { return started.duration(to: .now) }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw ServerProcessError(message: "writes did not succeed again within \(limit):\n\(server.logExcerpt)")
}

/// Polls `/readyz` until it answers 200, as a load balancer does; answers how long that took. A server
/// that has just started, or lost its database, is ready within a few probe intervals even on a machine
/// loaded by the rest of the suite; what it said last and its log are in the failure.
@discardableResult
func timeUntilReady(
    _ client: HTTPClient, server: ServerProcess, within limit: Duration = .seconds(15),
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> Duration {
    let started = ContinuousClock.now
    var answer = await client.send(.GET, server.baseURL + "/readyz")
    while answer.status != 200 && started.duration(to: .now) < limit {
        try await Task.sleep(for: .milliseconds(200))
        answer = await client.send(.GET, server.baseURL + "/readyz")
    }
    #expect(
        answer.status == 200,
        "not ready within \(limit): \(answer.status.map(String.init) ?? "no answer") \(answer.body)\n\(server.logExcerpt)",
        sourceLocation: sourceLocation)
    return started.duration(to: .now)
}

/// Counts the answers by status, for the test's own output.
func summary(_ outcomes: [CreateOutcome]) -> String {
    var counts: [String: Int] = [:]
    for outcome in outcomes { counts[outcome.answer.status.map(String.init) ?? "no answer", default: 0] += 1 }
    let slowest = outcomes.map(\.answer.elapsed).max() ?? .zero
    return counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        + "; slowest \(slowest)"
}
