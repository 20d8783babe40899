import EmbeddedPostgres
import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataCore
import StrataStore
import StrataTestSupport
import Testing

@Suite("The event feed")
struct EventFeedTests {
    @Test func theFeedFiltersByTypeStreamActorAndTime() async throws {
        try await withTestApp { client, _ in
            let bob = try await client.granting("bob", role: "writer")
            let reader = try await client.granting("auditor", role: "reader")
            let first = try await client.createDataset()
            let start = Timestamp.string(from: Date())
            try await Task.sleep(for: .milliseconds(5))
            let second = try await client.createDataset()
            let published = try await bob.send(.post, "/v1/datasets/\(second)/publish")
            let publishedAt = try #require(published.headers[HTTPField.Name("Strata-Position")!].flatMap(Int.init))

            func types(_ query: String, as asker: TokenClient? = nil) async throws -> [String] {
                let response = try await (asker ?? reader).send(.get, "/v1/events?\(query)")
                #expect(response.status == .ok, "\(query)")
                return try response.json()["events"]?.arrayValue?.compactMap { $0["type"]?.stringValue } ?? []
            }
            // Grants are the administrators' business: a reader sees the datasets' events only.
            #expect(try await types("").count == 5)
            #expect(try await types("", as: client).filter { $0 == "TokenCreated" }.count == 3)
            #expect(try await types("type=DatasetCreated").count == 2)
            #expect(try await types("type=TokenCreated").isEmpty)
            #expect(try await types("stream_id=\(first)") == ["DatasetCreated", "DatasetVersionDrafted"])
            #expect(try await types("actor=bob") == ["DatasetPublished"])
            // A misspelt type or an empty actor would page nothing and say nothing: they are refused.
            for (query, parameter) in [("type=DatasetCreate", "type"), ("actor=", "actor")] {
                let refused = try await reader.send(.get, "/v1/events?\(query)")
                #expect(refused.status == .badRequest, "\(query)")
                #expect(try refused.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == parameter)
            }
            #expect(try await types("since=\(start)").count == 3)
            #expect(try await types("after=\(publishedAt - 1)") == ["DatasetPublished"])
            let page = try await reader.send(.get, "/v1/events?limit=2").json()
            #expect(page["next_after"]?.intValue == publishedAt - 3, "a full page continues after its last event")
            let tail = try await reader.send(.get, "/v1/events?after=2&type=DatasetPublished").json()
            #expect(tail["next_after"]?.intValue == publishedAt, "a short page continues after the snapshot's position")
            let bad = try await reader.send(.get, "/v1/events?limit=0")
            #expect(bad.status == .badRequest && bad.problemCode == "invalid_parameter")
        }
    }

    /// A page of the log and the token list, asked `as_of` a position, answer what they answered then,
    /// byte for byte, however the log has grown since.
    @Test func aPageOfTheLogAndTheTokenListAnswerAsOfAPosition() async throws {
        try await withTestApp { client, _ in
            _ = try await client.createDataset()
            _ = try await client.granting("early", role: "reader")
            let then = try await client.send(.get, "/v1/events")
            let position = try #require(then.headers[HTTPField.Name("Strata-Position")!])
            let tokensThen = try await client.send(.get, "/v1/admin/tokens")
            _ = try await client.createDataset()
            _ = try await client.granting("late", role: "reader")

            let page = try await client.send(.get, "/v1/events?as_of=\(position)")
            #expect(page.status == .ok && page.text == then.text)
            #expect(try page.json()["next_after"]?.intValue == Int(position))
            #expect(try await client.send(.get, "/v1/events").text != then.text, "the log did grow")
            let tokens = try await client.send(.get, "/v1/admin/tokens?as_of=\(position)")
            #expect(tokens.status == .ok && tokens.text == tokensThen.text)
            #expect(tokens.text.contains("early") && !tokens.text.contains("late"))
            for path in ["/v1/events?as_of=soon", "/v1/admin/tokens?as_of=-1"] {
                let bad = try await client.send(.get, path)
                #expect(bad.status == .badRequest && bad.problemCode == "invalid_parameter", "\(path)")
            }

            // A poller at the head is answered the head again; one past it was never answered there, and a
            // next_after of its own would have it skip whatever is appended up to it.
            let head = try #require(
                try await client.send(.get, "/v1/events?limit=1").headers[HTTPField.Name("Strata-Position")!])
            let atHead = try await client.send(.get, "/v1/events?after=\(head)")
            #expect(try atHead.json()["next_after"]?.intValue == Int(head))
            let past = try await client.send(.get, "/v1/events?after=\(Int(head)! + 1000)")
            #expect(past.status == .badRequest && past.problemCode == "invalid_parameter", "\(past.text)")
            #expect(try past.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == "after")
        }
    }

    /// Writers in two connection pools with their own append pipelines (as two server processes would
    /// be) write while a poller follows `after` and an SSE client reads, disconnects and resumes with
    /// `Last-Event-ID`. Both must see every event exactly once, in log order.
    @Test func aPollerAndAResumingStreamSeeEveryEventOnceInOrder() async throws {
        try await withLiveApp { client, database in
            let port = try #require(client.port)
            let pools = [database.makeClient(), database.makeClient()]
            let writesPerPool = 30
            let (polled, streamed) = try await withThrowingTaskGroup(of: [Int].self) { group in
                for pool in pools {
                    group.addTask {
                        await pool.run()
                        return []
                    }
                }
                for pool in pools {
                    group.addTask {
                        let writer = CatalogWriter(
                            pool: BoundedPool(client: pool, deadlines: .patient), logger: database.logger)
                        for index in 0..<writesPerPool {
                            _ = try await writer.submit(
                                CatalogWriter.Request(
                                    target: .dataset(
                                        UUIDv7.make(),
                                        .create(
                                            namespace: "n", name: "\(UUID())-\(index)", fields: .init(), clonedFrom: nil
                                        )),
                                    metadata: EventMetadata(actor: "writer"), occurredAt: Date(),
                                    respond: { _ in StoredResponse(status: 201, headers: [:], body: "") }
                                )
                            )
                            try await Task.sleep(for: .milliseconds(25))
                        }
                        return []
                    }
                }
                // The bootstrap token's grant, which an admin sees, and two events per create.
                let total = 1 + pools.count * writesPerPool * 2
                async let polled = poll(client, until: total)
                async let streamed = streamWithOneDisconnect(port: port, token: testAdminSecret, until: total)
                let result = try await (polled, streamed)
                group.cancelAll()
                return result
            }
            let expected = Array(1...(1 + pools.count * writesPerPool * 2))
            #expect(polled == expected)
            #expect(streamed == expected)
        }
    }
}

/// Follows `/v1/events` with `after` until `total` events were seen; answers their positions.
extension EventFeedTests {
    /// A revoked token's next request is refused within a second; so is its open live tail, which ends
    /// before it sends anything appended after the revocation.
    @Test func aRevokedTokensLiveTailEndsAndSendsNothingAfterTheRevocation() async throws {
        try await withLiveApp { admin, _ in
            let port = try #require(admin.port)
            let watcher = try await admin.granting("watcher", role: "reader")
            let before = try await admin.createDataset(name: "before-revocation")
            let received = FileManager.default.temporaryDirectory.appendingPathComponent("tail-\(UUID()).txt").path
            defer { try? FileManager.default.removeItem(atPath: received) }
            let tail = Task.detached {
                try ProcessRunner.run(
                    [
                        "/usr/bin/curl", "-s", "-N", "--max-time", "60", "-o", received, "-H",
                        "Authorization: Bearer \(watcher.token ?? "")", "http://127.0.0.1:\(port)/v1/events/stream",
                    ]
                )
            }
            // Revoked only once the tail is open and has sent what came before.
            let opened = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < opened,
                (try? String(contentsOfFile: received, encoding: .utf8))?.contains(before) != true
            {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try String(contentsOfFile: received, encoding: .utf8).contains(before), "the tail never opened")
            #expect(try await admin.send(.delete, "/v1/admin/tokens/watcher").status == .noContent)
            let revoked = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(1500))
            let after = try await admin.createDataset(name: "after-revocation")
            _ = try await tail.value
            let output = try String(contentsOfFile: received, encoding: .utf8)
            // Left open, the tail would run to curl's minute; it ends once woken by the revocation's event.
            #expect(ContinuousClock.now - revoked < .seconds(30), "the tail stayed open after the revocation")
            #expect(!output.contains(after), "a revoked token's tail sent an event appended after the revocation")
        }
    }
}

private func poll(_ client: some TestClientProtocol, until total: Int) async throws -> [Int] {
    var seen: [Int] = []
    var after = 0
    let deadline = ContinuousClock.now + .seconds(150)
    while seen.count < total && ContinuousClock.now < deadline {
        let page = try await client.send(.get, "/v1/events?after=\(after)&limit=7").json()
        seen += page["events"]?.arrayValue?.compactMap { $0["position"]?.intValue } ?? []
        after = page["next_after"]?.intValue ?? after
    }
    return seen
}

/// Reads the SSE tail with curl for a moment, drops the connection, and resumes from the last id.
private func streamWithOneDisconnect(port: Int, token: String, until total: Int) async throws -> [Int] {
    var seen: [Int] = []
    var lastID: Int?
    let deadline = ContinuousClock.now + .seconds(150)
    var roundsWithEvents = 0
    while seen.count < total && ContinuousClock.now < deadline {
        let resume = lastID.map { ["-H", "Last-Event-ID: \($0)"] } ?? []
        let output = try await Task.detached {
            try ProcessRunner.run(
                ["/usr/bin/curl", "-s", "-N", "--max-time", "0.6", "-H", "Authorization: Bearer \(token)"] + resume
                    + ["http://127.0.0.1:\(port)/v1/events/stream"]
            ).output
        }.value
        let ids = output.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
        seen += ids
        lastID = ids.last ?? lastID
        if !ids.isEmpty { roundsWithEvents += 1 }
    }
    #expect(roundsWithEvents >= 2, "the stream was never resumed mid-way")
    return seen
}
