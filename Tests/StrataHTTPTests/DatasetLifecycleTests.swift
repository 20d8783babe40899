import Foundation
import HTTPTypes
import HummingbirdTesting
import StrataCore
import StrataTestSupport
import Testing

@Suite("The dataset lifecycle over HTTP")
struct DatasetLifecycleTests {
    /// Brings a new dataset to `status` through the API and answers its id.
    static func dataset(in status: DatasetStatus, client: some TestClientProtocol) async throws -> String {
        let id = try await client.createDataset()
        switch status {
        case .draft: break
        case .published: try await client.send(.post, "/v1/datasets/\(id)/publish")
        case .archived: try await client.send(.post, "/v1/datasets/\(id)/archive", json: #"{"reason": "cleanup"}"#)
        case .retired: try await client.send(.post, "/v1/datasets/\(id)/retire", json: #"{"reason": "gone"}"#)
        }
        let shown = try await client.send(.get, "/v1/datasets/\(id)")
        #expect(try shown.json()["status"]?.stringValue == status.rawValue)
        return id
    }

    static let actions: [(name: String, method: HTTPRequest.Method, path: String, body: String?)] = [
        ("edit", .patch, "", #"{"description": "edited"}"#),
        ("publish", .post, "/publish", nil),
        ("archive", .post, "/archive", "{}"),
        ("restore", .post, "/restore", "{}"),
        ("retire", .post, "/retire", #"{"reason": "replaced"}"#),
    ]

    /// API.md's lifecycle table, every cell: what each action does from each status.
    static let table: [DatasetStatus: [String: String]] = [
        .draft: [
            "edit": "draft", "publish": "published", "archive": "archived", "restore": "409", "retire": "retired",
        ],
        .published: [
            "edit": "published", "publish": "409", "archive": "archived", "restore": "409", "retire": "retired",
        ],
        .archived: ["edit": "409", "publish": "409", "archive": "409", "restore": "draft", "retire": "retired"],
        .retired: ["edit": "409", "publish": "409", "archive": "409", "restore": "409", "retire": "409"],
    ]

    @Test(arguments: DatasetStatus.allCases)
    func everyCellOfTheLifecycleTable(from status: DatasetStatus) async throws {
        try await withTestApp { client, _ in
            for action in Self.actions {
                let id = try await Self.dataset(in: status, client: client)
                let before = try await client.send(.get, "/v1/datasets/\(id)/history").json()["events"]?.arrayValue?
                    .count
                let response = try await client.send(
                    action.method, "/v1/datasets/\(id)\(action.path)", json: action.body)
                let expected = Self.table[status]![action.name]!
                let label = "\(action.name) from \(status): \(response.text)"
                if expected == "409" {
                    #expect(response.status == .conflict, "\(label)")
                    #expect(response.problemCode == "invalid_transition", "\(label)")
                    #expect(try response.json()["detail"]?.stringValue?.contains(status.rawValue) == true, "\(label)")
                    let after = try await client.send(.get, "/v1/datasets/\(id)/history").json()["events"]?.arrayValue?
                        .count
                    #expect(after == before, "a refused \(action.name) appended events")
                } else {
                    #expect(response.status == .ok, "\(label)")
                    #expect(try response.json()["status"]?.stringValue == expected, "\(label)")
                }
            }
        }
    }

    @Test func restoringReturnsToTheStatusBeforeTheArchive() async throws {
        try await withTestApp { client, _ in
            let id = try await Self.dataset(in: .published, client: client)
            try await client.send(.post, "/v1/datasets/\(id)/archive", json: "{}")
            let restored = try await client.send(.post, "/v1/datasets/\(id)/restore")
            #expect(try restored.json()["status"]?.stringValue == "published")
        }
    }

    @Test func publishingNeedsALocationAndASchemaAndNamesWhatIsMissing() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset(fields: #""owner": "team-data""#)
            let response = try await client.send(.post, "/v1/datasets/\(id)/publish")
            #expect(response.status == .unprocessableContent)
            #expect(response.problemCode == "publish_check_failed")
            let paths = try response.json()["errors"]?.arrayValue?.compactMap { $0["path"]?.stringValue }
            #expect(paths == ["/location", "/schema"])
            #expect(try await client.send(.get, "/v1/datasets/\(id)").json()["status"]?.stringValue == "draft")
        }
    }

    @Test func publishingAVersionThatIsNotANewerDraftIsRefusedAndAnUnknownOneIsNotFound() async throws {
        try await withTestApp { client, _ in
            let id = try await Self.dataset(in: .published, client: client)
            try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"row_count": 5}"#)
            let old = try await client.send(.post, "/v1/datasets/\(id)/publish", json: #"{"version": 1}"#)
            #expect(old.status == .conflict && old.problemCode == "invalid_transition")
            let unknown = try await client.send(.post, "/v1/datasets/\(id)/publish", json: #"{"version": 9}"#)
            #expect(unknown.status == .notFound)
            let named = try await client.send(.post, "/v1/datasets/\(id)/publish", json: #"{"version": 2}"#)
            #expect(try named.json()["published_version"]?.intValue == 2)
        }
    }

    @Test func versionStatusesAfterSeveralEditAndPublishRounds() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()  // v1 draft
            try await client.send(.post, "/v1/datasets/\(id)/publish")  // v1 published
            try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"row_count": 1}"#)  // v2
            try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"row_count": 2}"#)  // v3
            try await client.send(.post, "/v1/datasets/\(id)/publish")  // v3 published: v1 superseded, v2 discarded
            try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"row_count": 3}"#)  // v4 draft

            let versions =
                try await client.send(.get, "/v1/datasets/\(id)/versions").json()["versions"]?.arrayValue ?? []
            #expect(versions.compactMap { $0["version"]?.intValue } == [4, 3, 2, 1])
            #expect(
                versions.compactMap { $0["status"]?.stringValue } == ["draft", "published", "discarded", "superseded"])
            let dataset = try await client.send(.get, "/v1/datasets/\(id)").json()
            #expect(dataset["latest_version"]?.intValue == 4)
            #expect(dataset["published_version"]?.intValue == 3)
            #expect(dataset["current"]?["version"]?.intValue == 3, "the live version stays the published one")
            let third = try await client.send(.get, "/v1/datasets/\(id)/versions/3").json()
            #expect(third["row_count"]?.intValue == 2)
            let missingVersion = try await client.send(.get, "/v1/datasets/\(id)/versions/9")
            #expect(missingVersion.status == .notFound)
            #expect(try missingVersion.json()["detail"]?.stringValue == "the dataset has no version 9")
            let unknown = UUID().uuidString.lowercased()
            for path in ["/v1/datasets/\(unknown)/versions/1", "/v1/datasets/\(unknown)/usages"] {
                let missingDataset = try await client.send(.get, path)
                #expect(missingDataset.status == .notFound, "\(path)")
                #expect(try missingDataset.json()["detail"]?.stringValue == "no such dataset", "\(path)")
            }
        }
    }

    @Test func aPatchIsAMergePatchAndOneThatChangesNothingAppendsNothing() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()
            let patched = try await client.send(
                .patch, "/v1/datasets/\(id)",
                json: #"{"owner": null, "properties": {"split": "train"}, "tags": ["a"]}"#,
                contentType: "application/merge-patch+json"
            )
            #expect(patched.status == .ok)
            let current = try patched.json()["current"]
            #expect(current?["owner"] == .null)
            #expect(current?["properties"]?["split"]?.stringValue == "train")
            #expect(current?["location"]?.stringValue == "s3://bucket/orders/", "absent fields are kept")
            let etag = patched.headers[.eTag]

            let same = try await client.send(.patch, "/v1/datasets/\(id)", json: #"{"tags": ["a"]}"#)
            #expect(same.status == .ok)
            #expect(same.headers[.eTag] == etag)
            #expect(try same.json()["latest_version"]?.intValue == 2)
        }
    }

    @Test func aStaleIfMatchIsRefusedAndAppendsNothing() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset()
            let fresh = try await client.send(.get, "/v1/datasets/\(id)")
            let etag = try #require(fresh.headers[.eTag])
            let first = try await client.send(
                .patch, "/v1/datasets/\(id)", json: #"{"row_count": 1}"#, headers: ["If-Match": etag])
            #expect(first.status == .ok)
            let stale = try await client.send(
                .patch, "/v1/datasets/\(id)", json: #"{"row_count": 2}"#, headers: ["If-Match": etag])
            #expect(stale.status == .preconditionFailed)
            #expect(stale.problemCode == "version_conflict")
            #expect(try await client.send(.get, "/v1/datasets/\(id)").json()["latest_version"]?.intValue == 2)
        }
    }

    @Test func cloningMakesANewDraftWhoseFirstVersionCopiesTheSourceWithItAsParent() async throws {
        try await withTestApp { client, _ in
            let source = try await Self.dataset(in: .published, client: client)
            let response = try await client.send(
                .post, "/v1/datasets/\(source)/clone", json: #"{"name": "orders_copy", "change_note": "experiment"}"#)
            #expect(response.status == .created)
            let clone = try response.json()
            let cloneID = try #require(clone["id"]?.stringValue)
            #expect(cloneID != source)
            #expect(response.headers[.location] == "/v1/datasets/\(cloneID)")
            #expect(clone["status"]?.stringValue == "draft")
            #expect(clone["namespace"]?.stringValue == "analytics")
            let first = try await client.send(.get, "/v1/datasets/\(cloneID)/versions/1").json()
            let original = try await client.send(.get, "/v1/datasets/\(source)/versions/1").json()
            for field in ["owner", "location", "schema", "format", "tags", "description"] {
                #expect(first[field] == original[field], "\(field) was not copied")
            }
            #expect(first["parents"] == .array([.object(["dataset_id": .string(source), "version": .number(1)])]))
            #expect(first["change_note"]?.stringValue == "experiment")
            let taken = try await client.send(.post, "/v1/datasets/\(source)/clone", json: #"{"name": "orders_copy"}"#)
            #expect(taken.status == .conflict && taken.problemCode == "name_taken")
        }
    }

    /// A clone's `If-Match` is the source's ETag: the clone copies the version the caller read, or the
    /// caller learns the source has moved on and nothing is made.
    @Test func aCloneWithAStaleIfMatchIsRefusedAndMakesNothing() async throws {
        try await withTestApp { client, _ in
            let source = try await Self.dataset(in: .published, client: client)
            let etag = try #require(try await client.send(.get, "/v1/datasets/\(source)").headers[.eTag])
            let edited = try await client.send(.patch, "/v1/datasets/\(source)", json: #"{"row_count": 9}"#)
            #expect(edited.status == .ok)
            let stale = try await client.send(
                .post, "/v1/datasets/\(source)/clone", json: #"{"name": "copy_of_stale"}"#, headers: ["If-Match": etag])
            #expect(stale.status == .preconditionFailed && stale.problemCode == "version_conflict")
            let named = try await client.send(.get, "/v1/namespaces/analytics/datasets/copy_of_stale")
            #expect(named.status == .notFound, "a refused clone made a dataset")
            let malformed = try await client.send(
                .post, "/v1/datasets/\(source)/clone", json: #"{"name": "copy_of_stale"}"#, headers: ["If-Match": "x"])
            #expect(malformed.status == .badRequest)
            let current = try #require(edited.headers[.eTag])
            let cloned = try await client.send(
                .post, "/v1/datasets/\(source)/clone", json: #"{"name": "copy_of_stale"}"#,
                headers: ["If-Match": current])
            #expect(cloned.status == .created)
        }
    }

    @Test func usagesArePinnedToVersionsAndRefusedOnArchivedOrRetiredDatasets() async throws {
        try await withTestApp { client, _ in
            let id = try await Self.dataset(in: .published, client: client)
            let pinned = try await client.send(
                .post, "/v1/datasets/\(id)/versions/1/usages",
                json: #"{"consumer": "training-run-42", "kind": "training", "properties": {"model": "v12"}}"#)
            #expect(pinned.status == .created)
            #expect(try pinned.json()["consumer"]?.stringValue == "training-run-42")
            let unknown = try await client.send(
                .post, "/v1/datasets/\(id)/versions/5/usages", json: #"{"consumer": "x"}"#)
            #expect(unknown.status == .notFound)
            let usages = try await client.send(.get, "/v1/datasets/\(id)/usages").json()["usages"]?.arrayValue ?? []
            #expect(usages.count == 1)
            #expect(usages.first?["version"]?.intValue == 1)
            #expect(usages.first?["properties"]?["model"]?.stringValue == "v12")
            // Read back from the event that recorded it, the pin says what the write answered.
            #expect(usages.first == .object(try pinned.json()))

            for status in [DatasetStatus.archived, .retired] {
                let other = try await Self.dataset(in: status, client: client)
                let refused = try await client.send(
                    .post, "/v1/datasets/\(other)/versions/1/usages", json: #"{"consumer": "x"}"#)
                #expect(refused.status == .conflict, "usage on \(status)")
            }
        }
    }

    @Test func historyIsTheAuditTrailOldestFirstWithWhoAndWhy() async throws {
        try await withTestApp { client, _ in
            let pipeline = try await client.granting("nightly-pipeline", role: "writer")
            let id = try await client.createDataset()
            // Strata-Actor is recorded as whom the token acts for; the actor is always the token.
            try await pipeline.send(.post, "/v1/datasets/\(id)/publish", headers: ["Strata-Actor": "bob"])
            try await client.send(.post, "/v1/datasets/\(id)/archive", json: #"{"reason": "quarterly cleanup"}"#)
            let events = try await client.send(.get, "/v1/datasets/\(id)/history").json()["events"]?.arrayValue ?? []
            #expect(
                events.compactMap { $0["type"]?.stringValue } == [
                    "DatasetCreated", "DatasetVersionDrafted", "DatasetPublished", "DatasetArchived",
                ])
            #expect(events.compactMap { $0["stream_version"]?.intValue } == [1, 2, 3, 4])
            let positions = events.compactMap { $0["position"]?.intValue }
            #expect(positions == positions.sorted())
            #expect(events[2]["metadata"]?["actor"]?.stringValue == "nightly-pipeline")
            #expect(events[2]["metadata"]?["on_behalf_of"]?.stringValue == "bob")
            #expect(events[0]["metadata"]?["actor"]?.stringValue == "bootstrap")
            #expect(events[0]["metadata"]?["on_behalf_of"] == nil)
            #expect(events[3]["metadata"]?["reason"]?.stringValue == "quarterly cleanup")
            #expect(events[3]["data"]?["previous_status"]?.stringValue == "published")
            #expect(events.allSatisfy { $0["metadata"]?["request_id"]?.stringValue?.isEmpty == false })
        }
    }

    @Test func aDatasetIsFoundByItsNaturalKeyEvenWithSlashesAndColonsInIt() async throws {
        try await withTestApp { client, _ in
            let id = try await client.createDataset(namespace: "postgres://db:5432", name: "public.orders / 2024")
            let found = try await client.send(
                .get, "/v1/namespaces/postgres%3A%2F%2Fdb%3A5432/datasets/public.orders%20%2F%202024")
            #expect(found.status == .ok)
            #expect(try found.json()["id"]?.stringValue == id)
            let missing = try await client.send(.get, "/v1/namespaces/postgres%3A%2F%2Fdb%3A5432/datasets/other")
            #expect(missing.status == .notFound && missing.problemCode == "not_found")
        }
    }

    @Test func aTakenNameIsRefusedUntilItsHolderIsRetired() async throws {
        try await withTestApp { client, _ in
            let first = try await client.createDataset(name: "orders")
            let again = try await client.send(
                .post, "/v1/datasets", json: #"{"namespace": "analytics", "name": "orders"}"#)
            #expect(again.status == .conflict && again.problemCode == "name_taken")
            try await client.send(.post, "/v1/datasets/\(first)/retire", json: #"{"reason": "replaced"}"#)
            let reused = try await client.send(
                .post, "/v1/datasets", json: #"{"namespace": "analytics", "name": "orders"}"#)
            #expect(reused.status == .created)
        }
    }

    @Test func retireDryRunAppendsNothingAndAnswersTheImpact() async throws {
        try await withTestApp { client, _ in
            let id = try await Self.dataset(in: .published, client: client)
            let dry = try await client.send(
                .post, "/v1/datasets/\(id)/retire", json: #"{"reason": "x", "dry_run": true}"#)
            #expect(dry.status == .ok)
            #expect(try dry.json()["impact"] == .array([]))
            #expect(try dry.json()["status"]?.stringValue == "published")
            #expect(try await client.send(.get, "/v1/datasets/\(id)").json()["status"]?.stringValue == "published")
            // Its If-Match counts as the retire's own would: stale is 412, malformed 400, current 200 — in
            // each of the forms the document allows, and no other.
            let etag = try #require(dry.headers[.eTag])
            let version = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            let dryRun = #"{"reason": "x", "dry_run": true}"#
            let malformed = [
                "x", "\"\(version)", "+\(version)", "W/\(version)", "\"\"", String(repeating: "9", count: 19),
            ]
            for (ifMatch, status) in [
                ("\"1\"", HTTPResponse.Status.preconditionFailed), (etag, .ok), ("W/\(etag)", .ok), (version, .ok),
                ("*", .ok),
            ] + malformed.map({ ($0, .badRequest) }) {
                let answer = try await client.send(
                    .post, "/v1/datasets/\(id)/retire", json: dryRun, headers: ["If-Match": ifMatch])
                #expect(answer.status == status, "If-Match \(ifMatch): \(answer.text)")
            }
            let missing = try await client.send(
                .post, "/v1/datasets/\(UUID())/retire", json: dryRun, headers: ["If-Match": "\"7\""])
            #expect(missing.status == .notFound, "a dataset that does not exist is not found, whatever the If-Match")
            let emptyKey = try await client.send(
                .post, "/v1/datasets/\(id)/retire", json: dryRun, headers: ["Idempotency-Key": ""])
            #expect(emptyKey.status == .badRequest, "an Idempotency-Key the retire would refuse")
            let retired = try await client.send(.post, "/v1/datasets/\(id)/retire", json: #"{"reason": "x"}"#)
            #expect(try retired.json()["retired_reason"]?.stringValue == "x")
            #expect(try retired.json()["impact"] == .array([]))
        }
    }

    @Test func writesAnswerWithPositionETagAndLocation() async throws {
        try await withTestApp { client, _ in
            let created = try await client.send(.post, "/v1/datasets", json: #"{"namespace": "a", "name": "b"}"#)
            #expect(created.status == .created)
            let id = try #require(try created.json()["id"]?.stringValue)
            #expect(created.headers[.location] == "/v1/datasets/\(id)")
            #expect(created.headers[.eTag] == "\"2\"")
            // Position 1 is the grant of the test's admin token; the create appended 2 and 3.
            #expect(created.headers[HTTPField.Name("Strata-Position")!] == "3")
            let archived = try await client.send(.post, "/v1/datasets/\(id)/archive")
            #expect(archived.headers[.eTag] == "\"3\"")
            #expect(archived.headers[HTTPField.Name("Strata-Position")!] == "4")
        }
    }

    @Test func badIdsAndUnknownIdsGetProblemDocuments() async throws {
        try await withTestApp { client, _ in
            let bad = try await client.send(.get, "/v1/datasets/not-a-uuid")
            #expect(bad.status == .badRequest && bad.problemCode == "invalid_id")
            let unknown = UUID().uuidString.lowercased()
            for (method, path) in [
                (HTTPRequest.Method.get, ""), (.get, "/versions"), (.get, "/history"), (.get, "/usages"),
                (.post, "/publish"), (.post, "/archive"),
            ] {
                let response = try await client.send(method, "/v1/datasets/\(unknown)\(path)")
                #expect(response.status == .notFound, "\(method) \(path)")
                #expect(response.problemCode == "not_found", "\(method) \(path)")
            }
            let page = try await client.send(.get, "/v1/datasets?limit=5000")
            #expect(page.status == .badRequest && page.problemCode == "invalid_parameter")
        }
    }
}
