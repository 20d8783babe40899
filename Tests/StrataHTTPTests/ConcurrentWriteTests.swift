import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataCore
import StrataStore
import StrataTestSupport
import Testing

@Suite("Concurrent writers")
struct ConcurrentWriteTests {
    @Test func thirtyTwoPatchesWithOneIfMatchLeaveOneWinnerAndOneNewVersion() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()
            let etag = try #require(try await client.send(.get, "/v1/datasets/\(id)").headers[.eTag])
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for writer in 0..<32 {
                    group.addTask {
                        try await client.send(
                            .patch, "/v1/datasets/\(id)", json: #"{"description": "writer \#(writer)"}"#,
                            headers: ["If-Match": etag]
                        ).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .ok }.count == 1)
            #expect(statuses.filter { $0 == .preconditionFailed }.count == 31)
            let versions = try await client.send(.get, "/v1/datasets/\(id)/versions").json()["versions"]?.arrayValue
            #expect(versions?.count == 2)
        }
    }

    @Test func sixteenIdenticalPostsWithOneIdempotencyKeyCreateOneDatasetAndGetOneAnswer() async throws {
        try await withTestApp { client, _ in
            let body = #"{"namespace": "analytics", "name": "orders", "owner": "team-data"}"#
            let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        try await client.send(
                            .post, "/v1/datasets", json: body, headers: ["Idempotency-Key": "create-orders-1"])
                    }
                }
                return try await group.reduce(into: [TestResponse]()) { $0.append($1) }
            }
            let first = try #require(responses.first)
            #expect(first.status == .created)
            for response in responses {
                #expect(response.status == first.status)
                #expect(response.text == first.text)
                for header in [HTTPField.Name.eTag, .location, HTTPField.Name("Strata-Position")!] {
                    #expect(response.headers[header] == first.headers[header])
                }
            }
            let list = try await client.send(.get, "/v1/datasets?status=all").json()["datasets"]?.arrayValue
            #expect(list?.count == 1)
            let id = try #require(try first.json()["id"]?.stringValue)
            let events = try await client.send(.get, "/v1/datasets/\(id)/history").json()["events"]?.arrayValue
            #expect(events?.count == 2)

            let other = try await client.send(
                .post, "/v1/datasets", json: #"{"namespace": "analytics", "name": "other"}"#,
                headers: ["Idempotency-Key": "create-orders-1"])
            #expect(other.status == .unprocessableContent)
            #expect(other.problemCode == "idempotency_key_reused")
        }
    }

    /// A refused write is answered again, byte for byte, to a retry with its `Idempotency-Key`, however
    /// the catalog changed in between: the key's request was decided once. Retries racing in one batch
    /// get the same refusal; a new key decides afresh.
    @Test func aRefusalIsTheFirstResponseAgainForItsIdempotencyKey() async throws {
        try await withTestApp { client, _ in
            let holder = try await client.createDataset(namespace: "analytics", name: "orders")
            let body = #"{"namespace": "analytics", "name": "orders"}"#
            let keyed = ["Idempotency-Key": "create-orders-again"]
            let refusals = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await client.send(.post, "/v1/datasets", json: body, headers: keyed) }
                }
                return try await group.reduce(into: [TestResponse]()) { $0.append($1) }
            }
            let first = try #require(refusals.first)
            #expect(first.status == .conflict)
            #expect(first.problemCode == "name_taken")
            #expect(first.headers[.contentType] == "application/problem+json")
            for refusal in refusals { #expect(refusal.status == .conflict && refusal.text == first.text) }

            // The name is free now; the key's request was refused, and is answered so again.
            try await client.send(.post, "/v1/datasets/\(holder)/retire", json: #"{"reason": "freed"}"#)
            let retried = try await client.send(.post, "/v1/datasets", json: body, headers: keyed)
            #expect(retried.status == .conflict)
            #expect(retried.text == first.text)
            #expect(retried.headers[.contentType] == "application/problem+json")
            let other = try await client.send(
                .post, "/v1/datasets", json: #"{"namespace": "analytics", "name": "other"}"#, headers: keyed)
            #expect(other.problemCode == "idempotency_key_reused")
            let fresh = try await client.send(
                .post, "/v1/datasets", json: body, headers: ["Idempotency-Key": "create-orders-afresh"])
            #expect(fresh.status == .created)

            // A stale If-Match stays stale: its 412 is decided again, not kept, so the usual answer to it (the
            // same edit with the version just read, under the same key) goes through, once.
            let edited = try await client.createDataset(namespace: "analytics", name: "edited")
            try await client.send(.patch, "/v1/datasets/\(edited)", json: #"{"owner": "team"}"#)
            let etag = try #require(try await client.send(.get, "/v1/datasets/\(edited)").headers[.eTag])
            let stale = ["If-Match": "\"1\"", "Idempotency-Key": "edit-stale"]
            let patch = #"{"description": "late"}"#
            let conflict = try await client.send(.patch, "/v1/datasets/\(edited)", json: patch, headers: stale)
            #expect(conflict.status == .preconditionFailed)
            #expect(
                try await client.send(.patch, "/v1/datasets/\(edited)", json: patch, headers: stale).status
                    == .preconditionFailed)
            let current = ["If-Match": etag, "Idempotency-Key": "edit-stale"]
            let applied = try await client.send(.patch, "/v1/datasets/\(edited)", json: patch, headers: current)
            #expect(applied.status == .ok, "\(applied.text)")
            let replayed = try await client.send(.patch, "/v1/datasets/\(edited)", json: patch, headers: current)
            #expect(replayed.status == .ok && replayed.text == applied.text, "applied once, answered again")
        }
    }

    @Test func twoCreatorsOfOneNameConcurrentlyGetOneDatasetAndOneNameTaken() async throws {
        try await withTestApp { client, _ in
            let statuses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for owner in ["a", "b"] {
                    group.addTask {
                        try await client.send(
                            .post, "/v1/datasets", json: #"{"namespace": "ns", "name": "same", "owner": "\#(owner)"}"#)
                    }
                }
                return try await group.reduce(into: [TestResponse]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0.status == .created }.count == 1)
            #expect(statuses.filter { $0.problemCode == "name_taken" }.count == 1)
        }
    }

    /// Holding the log's append lock from outside makes the pipeline's next batch wait, so the writes
    /// sent meanwhile must queue up and commit together; the batch-size histogram must show it.
    @Test func writesThatArriveWhileABatchCommitsAreCommittedTogether() async throws {
        try await withTestApp { client, database in
            let before = try await batchHistogram(client)
            try await database.holdingTheAppendLock(for: .milliseconds(500)) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { _ = try await client.createDataset() }  // the first batch: waits for the lock
                    try await Task.sleep(for: .milliseconds(200))
                    for _ in 0..<8 { group.addTask { _ = try await client.createDataset() } }
                    try await group.waitForAll()
                }
            }
            let after = try await batchHistogram(client)
            #expect(after.count - before.count >= 2)
            #expect(
                (after.count - after.ones) - (before.count - before.ones) >= 1,
                "no batch of more than one command was committed")
            let list = try await client.send(.get, "/v1/datasets").json()["datasets"]?.arrayValue
            #expect(list?.count == 9)
        }
    }
}

/// How many append batches the process committed, and how many of those held a single command.
private func batchHistogram(_ client: some TestClientProtocol) async throws -> (count: Int, ones: Int) {
    let text = try await client.send(.get, "/metrics").text
    func value(_ prefix: String) -> Int {
        text.split(separator: "\n").first { $0.hasPrefix(prefix) }
            .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map { Int($0) } ?? 0
    }
    return (value("strata_append_batch_size_count"), value("strata_append_batch_size_bucket{le=\"1.0\"}"))
}
