import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataCore
import StrataTestSupport
import Testing

@Suite("Reading the catalog as of a past position")
struct AsOfTests {
    /// Any response carrying `Strata-Position: P` must come back byte for byte from the same request with
    /// `as_of=P`, however much is written afterwards.
    @Test func everyAnswerIsReproducedByAsOfItsPosition() async throws {
        try await withTestApp { client, _ in
            var random = SplitMix(seed: 42)
            var ids: [String] = []
            var recorded: [(uri: String, position: String, body: String)] = []
            for step in 0..<120 {
                try await randomWrite(client, ids: &ids, random: &random, step: step)
                guard let id = ids.randomElement(using: &random), step % 3 == 0 else { continue }
                for uri in [
                    "/v1/datasets/\(id)", "/v1/datasets?status=all&limit=7", "/v1/datasets/\(id)/versions",
                    "/v1/datasets/\(id)/history", "/v1/datasets/\(id)/usages", "/v1/datasets?tag=gold",
                ] {
                    let response = try await client.send(.get, uri)
                    guard response.status == .ok else { continue }
                    let position = try #require(response.headers[HTTPField.Name("Strata-Position")!])
                    recorded.append((uri, position, response.text))
                }
            }
            #expect(recorded.count > 100)
            for (uri, position, body) in recorded {
                let separator = uri.contains("?") ? "&" : "?"
                let replay = try await client.send(.get, "\(uri)\(separator)as_of=\(position)")
                #expect(replay.status == .ok, "\(uri) as of \(position)")
                #expect(replay.headers[HTTPField.Name("Strata-Position")!] == position)
                #expect(replay.text == body, "\(uri) as of \(position) differs")
            }
        }
    }

    @Test func asOfATimeAnswersTheStateAfterTheLastEventRecordedByThen() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()
            let created = try await client.send(.get, "/v1/datasets/\(id)").json()
            try await Task.sleep(for: .milliseconds(20))
            let between = Timestamp.string(from: Date())
            try await Task.sleep(for: .milliseconds(20))
            try await client.send(.post, "/v1/datasets/\(id)/publish")

            let then = try await client.send(.get, "/v1/datasets/\(id)?as_of=\(between)")
            #expect(then.status == .ok)
            #expect(try then.json() == created)
            let before = try await client.send(.get, "/v1/datasets/\(id)?as_of=2000-01-01T00:00:00Z")
            #expect(before.status == .notFound, "the dataset did not exist yet")
        }
    }

    @Test func anAsOfBeyondTheLogOrMalformedIsRefused() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()
            let future = try await client.send(.get, "/v1/datasets/\(id)?as_of=999999")
            #expect(future.status == .badRequest && future.problemCode == "invalid_parameter")
            let garbage = try await client.send(.get, "/v1/datasets/\(id)?as_of=yesterday")
            #expect(garbage.status == .badRequest && garbage.problemCode == "invalid_parameter")
        }
    }

    /// `Strata-Min-Position` promises an answer that reflects at least that position: one the log has
    /// not reached was answered to no write, and is refused rather than answered from an earlier head.
    @Test func aMinimumPositionPastTheLogIsRefusedOnEveryRead() async throws {
        try await withTestApp { client, _ in
            let written = try await client.send(.post, "/v1/datasets", json: #"{"namespace": "a", "name": "b"}"#)
            let id = try #require(try written.json()["id"]?.stringValue)
            let position = try #require(written.headers[HTTPField.Name("Strata-Position")!])
            let reads = [
                "/v1/datasets/\(id)", "/v1/datasets", "/v1/datasets?namespace=a&sort=name",
                "/v1/datasets/\(id)/history",
                "/v1/search?q=b", "/v1/datasets/\(id)/lineage",
            ]
            for uri in reads {
                let own = try await client.send(.get, uri, headers: ["Strata-Min-Position": position])
                #expect(own.status == .ok, "\(uri): \(own.text)")
                let past = try await client.send(
                    .get, uri, headers: ["Strata-Min-Position": "\(Int(position)! + 1000)"])
                #expect(past.status == .badRequest && past.problemCode == "invalid_parameter", "\(uri): \(past.text)")
                #expect(past.text.contains("Strata-Min-Position"), "\(uri)")
            }
        }
    }
}

/// One random lifecycle step through the API; refusals are part of the workload.
func randomWrite(
    _ client: some TestClientProtocol,
    ids: inout [String],
    random: inout SplitMix,
    step: Int
) async throws {
    if ids.isEmpty || Int.random(in: 0..<5, using: &random) == 0 {
        let tags = Bool.random(using: &random) ? #"["gold"]"# : #"["bronze"]"#
        ids.append(
            try await client.createDataset(
                name: "set-\(step)",
                fields: #""location": "s3://x/\#(step)", "schema": [{"name": "id", "type": "int"}], "tags": \#(tags)"#))
        return
    }
    let id = ids.randomElement(using: &random)!
    switch Int.random(in: 0..<7, using: &random) {
    case 0: try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"row_count": \#(step)}"#)
    case 1: try await client.send(.post, "/v1/datasets/\(id)/publish")
    case 2: try await client.send(.post, "/v1/datasets/\(id)/archive")
    case 3: try await client.send(.post, "/v1/datasets/\(id)/restore")
    case 4: try await client.send(.post, "/v1/datasets/\(id)/versions/1/usages", json: #"{"consumer": "run-\#(step)"}"#)
    case 5: try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"tags": ["gold", "t\#(step)"]}"#)
    default:
        if Int.random(in: 0..<4, using: &random) == 0 {
            try await client.send(.post, "/v1/datasets/\(id)/retire", json: #"{"reason": "step \#(step)"}"#)
        }
    }
}
