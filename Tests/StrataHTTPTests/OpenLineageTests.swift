import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataCore
import StrataTestSupport
import Testing

@Suite("OpenLineage ingestion")
struct OpenLineageTests {
    /// The events the official Python client wrote, from `shared/fixtures/openlineage/`.
    /// They live in `shared/`, beside the repository's clone (as CI lays it out), or where
    /// `STRATA_FIXTURES` points.
    static func fixture(_ name: String) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidates = [
            ProcessInfo.processInfo.environment["STRATA_FIXTURES"].map { URL(fileURLWithPath: $0) },
            root.deletingLastPathComponent().appendingPathComponent("shared/fixtures/openlineage"),
            root.appendingPathComponent("shared/fixtures/openlineage"),
        ].compactMap { $0 }
        let folder = candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent(name).path) }
        let url = (folder ?? candidates[candidates.count - 2]).appendingPathComponent(name)
        return try String(contentsOf: url, encoding: .utf8)
    }

    static func dataset(_ client: some TestClientProtocol, _ namespace: String, _ name: String) async throws
        -> [String: JSONValue]?
    {
        let encoded = [namespace, name].map { $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
        let response = try await client.send(.get, "/v1/namespaces/\(encoded[0])/datasets/\(encoded[1])")
        return response.status == .ok ? try response.json() : nil
    }

    static let warehouse = "postgres://warehouse.internal:5432"

    @Test func aCompletedRunRegistersItsDatasetsAndRecordsVersionedLineage() async throws {
        try await withTestApp { client, _ in
            let position = HTTPField.Name("Strata-Position")!
            let head = try #require(try await client.send(.get, "/v1/events?limit=1").headers[position])
            let start = try await client.send(.post, "/api/v1/lineage", json: try Self.fixture("run-start.json"))
            #expect(start.status == .created)
            #expect(
                try await client.send(.get, "/v1/events?type=DatasetCreated").json()["events"]?.arrayValue?.isEmpty
                    == true,
                "START records nothing")
            #expect(start.headers[position] == head, "a write that appends nothing answers the head it saw")
            #expect(try start.json()["position"]?.intValue == Int(head))

            let complete = try await client.send(.post, "/api/v1/lineage", json: try Self.fixture("run-complete.json"))
            #expect(complete.status == .created, "\(complete.text)")
            let input = try #require(try await Self.dataset(client, Self.warehouse, "shop.public.orders"))
            let output = try #require(try await Self.dataset(client, Self.warehouse, "analytics.public.daily_orders"))
            #expect(input["status"]?.stringValue == "published", "a schema facet publishes at once")
            #expect(output["status"]?.stringValue == "published")
            #expect(input["current"]?["location"]?.stringValue == "postgres://warehouse.internal:5432/shop")
            #expect(input["current"]?["schema"]?.arrayValue?.count == 3)
            let facets = output["current"]?["properties"]?["openlineage"]?["facets"]
            #expect(facets?["columnLineage"] != nil, "facets Strata does not interpret are kept")

            let outputID = try #require(output["id"]?.stringValue)
            let lineage = try await client.send(.get, "/v1/datasets/\(outputID)/lineage?direction=upstream").json()
            let edges = lineage["edges"]?.arrayValue ?? []
            #expect(edges.count == 1)
            #expect(edges.first?["from"]?["dataset_id"] == input["id"])
            #expect(edges.first?["job"]?["name"]?.stringValue == "orders_etl.build_daily_orders")
            #expect(edges.first?["run_id"]?.stringValue == "0195f0a1-7c3e-7a10-9d2e-3b1f4c5d6e7f")
            let history =
                try await client.send(.get, "/v1/datasets/\(outputID)/history").json()["events"]?.arrayValue ?? []
            let recorded = try #require(history.last { $0["type"]?.stringValue == "LineageRecorded" })
            #expect(recorded["metadata"]?["producer"]?.stringValue?.contains("airflow") == true)
            #expect(recorded["metadata"]?["run_id"]?.stringValue == "0195f0a1-7c3e-7a10-9d2e-3b1f4c5d6e7f")

            // The same run again: the same schema adds no version, only another lineage record.
            try await client.send(.post, "/api/v1/lineage", json: try Self.fixture("run-complete.json"))
            let again = try #require(try await Self.dataset(client, Self.warehouse, "analytics.public.daily_orders"))
            #expect(again["latest_version"]?.intValue == 1)
        }
    }

    /// One write may record at most 10,000 lineage edges (inputs × outputs): 1,000 × 1,000 would write a
    /// million rows under the log's append lock while every other writer waits. Beyond it the event is
    /// refused, appends nothing, and says how to send it instead; in a batch, only that event is.
    @Test func anEventJoiningTooManyInputsToTooManyOutputsIsRefusedAlone() async throws {
        try await withTestApp { client, _ in
            let position = HTTPField.Name("Strata-Position")!
            let head = try #require(try await client.send(.get, "/v1/events?limit=1").headers[position])
            func datasets(_ prefix: String, _ count: Int) -> String {
                (0..<count).map { #"{"namespace": "wide", "name": "\#(prefix)\#($0)"}"# }.joined(separator: ",")
            }
            let wide =
                #"{"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z", "producer": "p", "run": {"runId": "r"}, "job": {"namespace": "airflow", "name": "fan"}, "inputs": [\#(datasets("in", 101))], "outputs": [\#(datasets("out", 100))]}"#
            let refused = try await client.send(.post, "/api/v1/lineage", json: wide)
            #expect(refused.status == .unprocessableContent && refused.problemCode == "validation_failed")
            #expect(refused.text.contains("10100 lineage edges"), "\(refused.text)")
            #expect(try await client.send(.get, "/v1/events?limit=1").headers[position] == head, "it appended nothing")

            let narrow =
                #"{"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z", "producer": "p", "run": {"runId": "s"}, "job": {"namespace": "airflow", "name": "one"}, "inputs": [\#(datasets("a", 1))], "outputs": [\#(datasets("b", 1))]}"#
            let batch = try await client.send(.post, "/api/v1/lineage/batch", json: "[\(narrow), \(wide)]")
            #expect(batch.status.code < 500, "\(batch.text.prefix(300))")
            #expect(batch.text.contains("10100 lineage edges"))
            #expect(try await Self.dataset(client, "wide", "b0") != nil, "the batch's other event landed")

            let ids = (0..<101).map { _ in #"{"dataset_id": "\#(UUID().uuidString.lowercased())"}"# }
            let native = try await client.send(
                .post, "/v1/lineage",
                json:
                    #"{"inputs": [\#(ids.joined(separator: ","))], "outputs": [\#(ids.prefix(100).joined(separator: ","))]}"#
            )
            #expect(native.status == .unprocessableContent, "\(native.text.prefix(300))")
        }
    }

    @Test func aChangedOutputSchemaMakesANewPublishedVersionAndInputsResolveTheirDatasetVersion() async throws {
        try await withTestApp { client, _ in
            try await client.send(.post, "/api/v1/lineage", json: try Self.fixture("run-complete.json"))
            var changed = try Self.fixture("run-complete.json")
            changed = changed.replacingOccurrences(of: #""name": "revenue""#, with: #""name": "revenue_eur""#)
            let response = try await client.send(.post, "/api/v1/lineage", json: changed)
            #expect(response.status == .created)
            let output = try #require(try await Self.dataset(client, Self.warehouse, "analytics.public.daily_orders"))
            #expect(output["latest_version"]?.intValue == 2)
            #expect(output["published_version"]?.intValue == 2)

            // The input read was datasetVersion "41", which Strata's version 1 carries; after the input
            // moves on to version 2, lineage still names version 1, the one the job actually read.
            let input = try #require(try await Self.dataset(client, Self.warehouse, "shop.public.orders"))
            let inputID = try #require(input["id"]?.stringValue)
            try await client.send(.patch, "/v1/datasets/\(inputID)", json: #"{"row_count": 7}"#)
            try await client.send(.post, "/v1/datasets/\(inputID)/publish")
            try await client.send(.post, "/api/v1/lineage", json: changed)
            let outputID = try #require(output["id"]?.stringValue)
            let edges =
                try await client.send(.get, "/v1/datasets/\(outputID)/lineage?direction=upstream&version=2")
                .json()["edges"]?.arrayValue ?? []
            #expect(!edges.isEmpty)
            #expect(edges.allSatisfy { $0["from"]?["version"]?.intValue == 1 })
        }
    }

    @Test func aFailedRunRecordsNothingAndADroppedOutputIsRetired() async throws {
        try await withTestApp { client, _ in
            let fail = try await client.send(.post, "/api/v1/lineage", json: try Self.fixture("run-fail.json"))
            #expect(fail.status == .created)
            let reader = try await client.granting("auditor", role: "reader")
            #expect(try await reader.send(.get, "/v1/events").json()["events"]?.arrayValue?.isEmpty == true)

            let drop = try await client.send(.post, "/api/v1/lineage", json: try Self.fixture("run-complete-drop.json"))
            #expect(drop.status == .created, "\(drop.text)")
            let events = try await client.send(.get, "/v1/events?type=DatasetRetired").json()["events"]?.arrayValue
            #expect(events?.count == 1)
        }
    }

    @Test func datasetAndJobEventsRegisterDatasetsAndStaticLineage() async throws {
        try await withTestApp { client, _ in
            let dataset = try await client.send(.post, "/api/v1/lineage", json: try Self.fixture("dataset-event.json"))
            #expect(dataset.status == .created, "\(dataset.text)")
            let features = try await Self.dataset(client, "s3://ml-bucket", "features/customers/v3")
            #expect(features?["status"]?.stringValue == "published")

            let job = try await client.send(.post, "/api/v1/lineage", json: try Self.fixture("job-event.json"))
            #expect(job.status == .created, "\(job.text)")
            let recorded = try await client.send(.get, "/v1/events?type=LineageRecorded").json()["events"]?.arrayValue
            #expect(recorded?.isEmpty == false)
        }
    }

    @Test func eventsWithoutEventTypeWithZuluTimesAndEmptyFacetsAreAccepted() async throws {
        try await withTestApp { client, _ in
            let event = #"""
                {"eventTime": "2026-03-14T09:00:00Z", "producer": "https://example.com/p",
                 "run": {"runId": "r-1", "facets": {}}, "job": {"namespace": "ns", "name": "job"},
                 "inputs": [{"namespace": "db", "name": "in", "facets": {}, "inputFacets": {}}],
                 "outputs": [{"namespace": "db", "name": "out", "facets": {}, "outputFacets": {}}]}
                """#
            let response = try await client.send(.post, "/api/v1/lineage", json: event)
            #expect(response.status == .created, "\(response.text)")
            let output = try await Self.dataset(client, "db", "out")
            #expect(output?["status"]?.stringValue == "draft", "no schema facet: left as a draft")
            #expect(output?["current"]?["location"]?.stringValue == "db/out")
        }
    }

    /// An emitter that retries an event it sent (a timeout, a restart) with its `Idempotency-Key` gets
    /// the first answer again, and the lineage is recorded once; in a batch each event is keyed by its
    /// place, so a retried batch replays them all.
    @Test func aRetriedEventWithItsIdempotencyKeyIsRecordedOnce() async throws {
        try await withTestApp { client, _ in
            let complete = try Self.fixture("run-complete.json")
            let first = try await client.send(
                .post, "/api/v1/lineage", json: complete, headers: ["Idempotency-Key": "run-42"])
            #expect(first.status == .created, "\(first.text)")
            let retried = try await client.send(
                .post, "/api/v1/lineage", json: complete, headers: ["Idempotency-Key": "run-42"])
            #expect(retried.status == .created && retried.text == first.text)
            let recorded = try await client.send(.get, "/v1/events?type=LineageRecorded").json()["events"]
            #expect(recorded?.arrayValue?.count == 1)
            let other = try await client.send(
                .post, "/api/v1/lineage", json: try Self.fixture("dataset-event.json"),
                headers: ["Idempotency-Key": "run-42"])
            #expect(other.status == .unprocessableContent && other.problemCode == "idempotency_key_reused")

            let batch = "[\(try Self.fixture("dataset-event.json")), \(complete)]"
            var positions: Set<String> = []
            for _ in 0..<2 {
                let answer = try await client.send(
                    .post, "/api/v1/lineage/batch", json: batch, headers: ["Idempotency-Key": "batch-7"])
                #expect(try answer.json()["successful"]?.intValue == 2, "\(answer.text)")
                positions.insert(answer.headers[HTTPField.Name("Strata-Position")!] ?? "none")
            }
            #expect(positions.count == 1 && !positions.contains("none"), "the retry answers the first position")
            let after = try await client.send(.get, "/v1/events?type=LineageRecorded").json()["events"]
            #expect(after?.arrayValue?.count == 2, "the batch's run was recorded once, however often it was sent")
        }
    }

    /// An emitter that sends a run's COMPLETE again without a key (OpenLineage clients retry that way)
    /// appends it again, since nothing tells it from a second run that did the same, but a lineage query
    /// shows the edge once; another run between the same datasets is an edge of its own.
    @Test func aRunSentTwiceIsOneEdgeInItsLineage() async throws {
        try await withTestApp { client, _ in
            let complete = try Self.fixture("run-complete.json")
            for _ in 0..<2 {
                #expect(try await client.send(.post, "/api/v1/lineage", json: complete).status == .created)
            }
            let output = try #require(
                try await Self.dataset(client, Self.warehouse, "analytics.public.daily_orders")?["id"]?.stringValue)
            let lineage = "/v1/datasets/\(output)/lineage?direction=upstream"
            #expect(try await client.send(.get, lineage).json()["edges"]?.arrayValue?.count == 1)

            let otherRun = complete.replacingOccurrences(
                of: "0195f0a1-7c3e-7a10-9d2e-3b1f4c5d6e7f", with: "0195f0a1-7c3e-7a10-9d2e-3b1f4c5d6e70")
            #expect(otherRun != complete, "the fixture names its run")
            #expect(try await client.send(.post, "/api/v1/lineage", json: otherRun).status == .created)
            #expect(try await client.send(.get, lineage).json()["edges"]?.arrayValue?.count == 2)
        }
    }

    /// A retried batch answers each event as the first time did, its refused events included, though
    /// what refused one has changed since: each event's answer is kept under the key and its place.
    @Test func aRetriedBatchAnswersItsRefusedEventsAsTheFirstTime() async throws {
        try await withTestApp { client, _ in
            let archived = try await client.createDataset(namespace: "lake", name: "x")
            try await client.send(.post, "/v1/datasets/\(archived)/archive", json: "{}")
            let batch = "[\(Self.run("a", "b")), \(Self.run("b", "x"))]"
            let keyed = ["Idempotency-Key": "batch-with-a-refusal"]
            let first = try await client.send(.post, "/api/v1/lineage/batch", json: batch, headers: keyed)
            #expect(try first.json()["failed"]?.intValue == 1, "\(first.text)")
            #expect(try first.json()["failed_events"]?.arrayValue?.first?["code"]?.stringValue == "invalid_transition")

            try await client.send(.post, "/v1/datasets/\(archived)/restore", json: "{}")
            let retried = try await client.send(.post, "/api/v1/lineage/batch", json: batch, headers: keyed)
            #expect(retried.text == first.text)
            let afresh = try await client.send(
                .post, "/api/v1/lineage/batch", json: batch, headers: ["Idempotency-Key": "batch-afresh"])
            #expect(try afresh.json()["successful"]?.intValue == 2, "\(afresh.text)")
        }
    }

    /// A run reading `input` to write `output`, as a minimal OpenLineage client sends it.
    static func run(_ input: String, _ output: String, outputNamespace: String = "lake") -> String {
        #"{"eventTime": "2026-03-14T09:00:00Z", "eventType": "COMPLETE", "run": {"runId": "\#(UUID())"}, "job": {"namespace": "airflow", "name": "make_\#(output)"}, "inputs": [{"namespace": "lake", "name": "\#(input)"}], "outputs": [{"namespace": "\#(outputNamespace)", "name": "\#(output)"}]}"#
    }

    /// A batch's events go to the pipeline together: they share a commit, yet each is decided after the
    /// ones before it (a dataset an earlier event registered is the one a later event reads), and one
    /// refused changes nothing for the others.
    @Test func aBatchIsAppliedInOrderInOneCommitAndARefusedEventSparesTheOthers() async throws {
        try await withTestApp { admin, _ in
            let client = try await admin.granting("etl", role: "writer", namespaces: ["lake"])
            let position = HTTPField.Name("Strata-Position")!
            let before = try #require(Int(try await admin.send(.get, "/v1/events?limit=1").headers[position] ?? ""))

            let events = [
                Self.run("a", "b"), Self.run("b", "c"), Self.run("b", "x", outputNamespace: "finance"),
                Self.run("c", "d"), Self.run("a", "b"),
            ]
            let summary = try await client.send(
                .post, "/api/v1/lineage/batch", json: "[\(events.joined(separator: ", "))]"
            ).json()
            #expect(summary["successful"]?.intValue == 4, "\(summary)")
            let failed = summary["failed_events"]?.arrayValue ?? []
            #expect(failed.map { $0["index"]?.intValue } == [2])
            #expect(failed.first?["status"]?.intValue == 403, "the token may not write to finance")

            let d = try #require(try await Self.dataset(client, "lake", "d")?["id"]?.stringValue)
            let upstream = try await client.send(.get, "/v1/datasets/\(d)/lineage?direction=upstream&depth=5").json()
            let names = Set((upstream["nodes"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
            #expect(names == ["a", "b", "c", "d"], "each run read the dataset the one before it wrote")
            let created = try await client.send(.get, "/v1/events?type=DatasetCreated&after=\(before)").json()
            let createdNames = (created["events"]?.arrayValue ?? []).compactMap { $0["data"]?["name"]?.stringValue }
            #expect(createdNames.sorted() == ["a", "b", "c", "d"], "b, written twice, is one dataset")

            let appended = try await client.send(.get, "/v1/events?after=\(before)").json()["events"]?.arrayValue ?? []
            let commits = Set(appended.compactMap { $0["recorded_at"]?.stringValue })
            #expect(!appended.isEmpty)
            #expect(commits.count == 1, "the batch's events were recorded at \(commits.count) moments")
        }
    }

    /// A batch of more events than one pipeline batch decides goes in more than one commit, and its
    /// order holds across them: each event reads what the one before it wrote.
    @Test func aBatchLargerThanThePipelinesGoesInTurnsInOrder() async throws {
        try await withTestApp { client, _ in
            let position = HTTPField.Name("Strata-Position")!
            let before = try #require(Int(try await client.send(.get, "/v1/events?limit=1").headers[position] ?? ""))
            let events = (0..<300).map { Self.run("n\($0)", "n\($0 + 1)") }
            let summary = try await client.send(
                .post, "/api/v1/lineage/batch", json: "[\(events.joined(separator: ", "))]"
            ).json()
            #expect(summary["successful"]?.intValue == 300, "\(summary)")
            let recorded =
                try await client.send(
                    .get, "/v1/events?type=LineageRecorded&after=\(before)&limit=1000"
                ).json()["events"]?.arrayValue ?? []
            #expect(recorded.count == 300)
            #expect(Set(recorded.compactMap { $0["recorded_at"]?.stringValue }).count == 2, "256 events, then 44")
            let last = try #require(try await Self.dataset(client, "lake", "n300")?["id"]?.stringValue)
            let upstream =
                try await client.send(.get, "/v1/datasets/\(last)/lineage?direction=upstream&depth=60")
                .json()["nodes"]?.arrayValue ?? []
            #expect(upstream.count == 61, "n240 … n300, one chain across the turns")
        }
    }

    @Test func invalidEventsAreRefusedNamingTheFieldAndABatchReportsEachFailure() async throws {
        try await withTestApp { client, _ in
            let noTime = try await client.send(
                .post, "/api/v1/lineage", json: #"{"run": {"runId": "x"}, "job": {"namespace": "a", "name": "b"}}"#)
            #expect(noTime.status == .unprocessableContent)
            #expect(try noTime.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == "/eventTime")
            let badType = try await client.send(
                .post, "/api/v1/lineage",
                json:
                    #"{"eventTime": "2026-03-14T09:00:00Z", "eventType": "DONE", "run": {"runId": "x"}, "job": {"namespace": "a", "name": "b"}}"#
            )
            #expect(try badType.json()["errors"]?.arrayValue?.first?["path"]?.stringValue == "/eventType")
            #expect(try await client.send(.post, "/api/v1/lineage", json: "{").status == .badRequest)

            let good = try Self.fixture("dataset-event.json")
            let batch = "[\(good), {\"eventTime\": \"yesterday\"}, \(try Self.fixture("run-complete.json"))]"
            let badKey = try await client.send(
                .post, "/api/v1/lineage/batch", json: batch, headers: ["Idempotency-Key": ""])
            #expect(badKey.status == .badRequest, "a header of the request is refused for the whole batch")
            let summary = try await client.send(.post, "/api/v1/lineage/batch", json: batch).json()
            #expect(summary["status"]?.stringValue == "partial")
            #expect(summary["successful"]?.intValue == 2)
            #expect(summary["failed_events"]?.arrayValue?.first?["index"]?.intValue == 1)
            #expect(try await Self.dataset(client, Self.warehouse, "analytics.public.daily_orders") != nil)
        }
    }
}
