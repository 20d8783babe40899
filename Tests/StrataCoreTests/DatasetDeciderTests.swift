import Foundation
import StrataCore
import Testing

/// Given these events, when this command, then these events (or this refusal).
@Suite("The dataset decider")
struct DatasetDeciderTests {
    static let publishable = VersionFields(
        owner: "team-data", location: "s3://bucket/orders/", format: .parquet,
        schema: [Column(name: "id", type: "bigint", nullable: false)]
    )

    // MARK: the lifecycle table, row by row

    @Test func editingADraftMakesANewDraftVersion() throws {
        let events = try decide(.edit(patch: .object(["description": .string("cleaned orders")])), given: .draft)
        guard case .versionDrafted(let drafted) = events.first, events.count == 1 else {
            Issue.record("expected one DatasetVersionDrafted, got \(events)")
            return
        }
        #expect(drafted.version.version == 2)
        #expect(drafted.version.fields.description == "cleaned orders")
        #expect(drafted.version.fields.location == Self.publishable.location)
        #expect(drafted.changedFields == ["description"])
    }

    @Test func editingAPublishedDatasetDraftsWhileThePublishedVersionStaysLive() throws {
        var state = given(.published)
        let events = try decide(.edit(patch: .object(["row_count": .number(10)])), state: state)
        state = apply(events, to: state)
        #expect(state.latestVersion == 2)
        #expect(state.publishedVersion == 1)
        #expect(state.status == .published)
        #expect(state.status(ofVersion: 2) == .draft)
    }

    @Test func publishingADraftPublishesIt() throws {
        #expect(
            try decide(.publish(version: nil, changeNote: nil), given: .draft) == [
                .published(.init(version: 1, previousPublishedVersion: nil, changeNote: nil))
            ])
    }

    @Test func publishingAPublishedDatasetTakesItsNewestDraft() throws {
        var state = given(.published)
        state = apply(try decide(.edit(patch: .object(["owner": .string("b")])), state: state), to: state)
        state = apply(try decide(.edit(patch: .object(["owner": .string("c")])), state: state), to: state)
        #expect(
            try decide(.publish(version: nil, changeNote: "q4"), state: state) == [
                .published(.init(version: 3, previousPublishedVersion: 1, changeNote: "q4"))
            ])
    }

    @Test func publishingWithNoNewerDraftIsAnInvalidTransition() {
        #expect(
            throws: DomainError.invalidTransition(
                action: "publish", status: .published, detail: "no draft is newer than the published version")
        ) {
            try decide(.publish(version: nil, changeNote: nil), given: .published)
        }
    }

    @Test func publishingAVersionThatIsNotANewerDraftIsAnInvalidTransition() throws {
        var state = given(.published)
        state = apply(try decide(.edit(patch: .object(["owner": .string("b")])), state: state), to: state)
        #expect(throws: DomainError.self) { try decide(.publish(version: 1, changeNote: nil), state: state) }
        #expect(throws: DomainError.versionNotFound(9)) {
            try decide(.publish(version: 9, changeNote: nil), state: state)
        }
    }

    @Test(arguments: [DatasetStatus.draft, .published])
    func archivingRemembersTheStatusToRestore(status: DatasetStatus) throws {
        var state = given(status)
        state = apply(try decide(.archive(reason: "quarterly cleanup"), state: state), to: state)
        #expect(state.status == .archived)
        #expect(try decide(.restore, state: state) == [.restored(.init(status: status))])
    }

    @Test(arguments: [DatasetStatus.draft, .published, .archived])
    func retiringIsAllowedFromEveryStatusButRetired(status: DatasetStatus) throws {
        #expect(try decide(.retire(reason: "replaced"), given: status) == [.retired(.init(reason: "replaced"))])
    }

    /// Every 409 cell of the table.
    @Test(arguments: [
        (DatasetStatus.draft, DatasetCommand.restore),
        (.published, .restore),
        (.archived, .edit(patch: .object(["owner": .string("x")]))),
        (.archived, .publish(version: nil, changeNote: nil)),
        (.archived, .archive(reason: nil)),
        (.retired, .edit(patch: .object(["owner": .string("x")]))),
        (.retired, .publish(version: nil, changeNote: nil)),
        (.retired, .archive(reason: nil)),
        (.retired, .restore),
        (.retired, .retire(reason: "again")),
    ])
    func refusedTransitionsNameTheCurrentStatus(status: DatasetStatus, command: DatasetCommand) {
        #expect(throws: DomainError.invalidTransition(action: command.action, status: status)) {
            try decide(command, given: status)
        }
    }

    // MARK: publish checks, edits, versions

    @Test func publishingNeedsALocationAndASchema() throws {
        let state = apply(
            try decide(
                .create(namespace: "a", name: "b", fields: VersionFields(), clonedFrom: nil), state: .init(id: UUID())),
            to: .init(id: UUID())
        )
        #expect(throws: DomainError.publishCheckFailed(version: 1, missing: ["location", "schema"])) {
            try decide(.publish(version: nil, changeNote: nil), state: state)
        }
    }

    @Test func aPatchThatChangesNothingDecidesNothing() throws {
        #expect(try decide(.edit(patch: .object(["owner": .string("team-data")])), given: .draft).isEmpty)
        #expect(try decide(.edit(patch: .object([:])), given: .draft).isEmpty)
    }

    /// The fields an edit starts from go through JSON and back before the patch is merged in: every kind
    /// of value must come back as it was, or an empty patch would draft a version that changed nothing.
    @Test func anEmptyPatchDraftsNothingWhateverTheFieldsHold() throws {
        let fields = VersionFields(
            owner: "team-data", description: "orders, \"cleaned\"\n\u{1F4E6}", location: "s3://bucket/orders/",
            format: .delta,
            schema: [
                Column(name: "id", type: "bigint", nullable: false, description: "the key"),
                Column(name: "note", type: "text"),
            ],
            tags: ["gold", "pii"], rowCount: 9_007_199_254_740_000, sizeBytes: 0,
            properties: [
                "ratio": .number(0.1), "whole": .number(1500), "negative": .number(-2.5e-8), "flag": .bool(false),
                "none": .null, "list": .array([.number(1), .string("two"), .array([])]),
                "nested": .object(["deeper": .object(["x": .number(3)]), "empty": .object([:])]),
            ],
            parents: [VersionRef(datasetID: UUID(), version: 3)], changeNote: "first")
        let state = apply(
            [
                .created(.init(namespace: "analytics", name: "orders")),
                .versionDrafted(.init(version: .init(version: 1, fields: fields), changedFields: [])),
            ], to: DatasetState(id: UUID()))
        #expect(try decide(.edit(patch: .object([:])), state: state).isEmpty)
        #expect(try decide(.edit(patch: .object(["change_note": .string("again")])), state: state).isEmpty)
    }

    @Test func aPatchOfTheWrongTypeIsRefused() {
        for patch: [String: JSONValue] in [
            ["row_count": .string("many")], ["tags": .number(5)], ["format": .string("xlsx")],
            ["schema": .array([.object(["name": .string("id")])])], ["row_count": .number(1.5)],
        ] {
            #expect(throws: DomainError.self, "\(patch)") { try decide(.edit(patch: .object(patch)), given: .draft) }
            do {
                _ = try decide(.edit(patch: .object(patch)), given: .draft)
            } catch {
                guard case .invalidPatch = error else {
                    Issue.record("\(patch) refused as \(error), not as an invalid patch")
                    continue
                }
            }
        }
    }

    @Test func nullInAPatchRemovesTheField() throws {
        let events = try decide(.edit(patch: .object(["owner": .null, "schema": .null])), given: .draft)
        guard case .versionDrafted(let drafted) = events.first else {
            Issue.record("no draft")
            return
        }
        #expect(drafted.version.fields.owner == nil)
        #expect(drafted.version.fields.schema.isEmpty)
        #expect(drafted.changedFields == ["owner", "schema"])
    }

    @Test func propertiesMergeMemberByMember() throws {
        var state = given(.draft)
        state = apply(
            try decide(
                .edit(patch: .object(["properties": .object(["a": .number(1), "b": .number(2)])])), state: state),
            to: state)
        let events = try decide(
            .edit(patch: .object(["properties": .object(["b": .null, "c": .string("x")])])), state: state)
        guard case .versionDrafted(let drafted) = events.first else {
            Issue.record("no draft")
            return
        }
        #expect(drafted.version.fields.properties == ["a": .number(1), "c": .string("x")])
    }

    @Test func versionStatusesFollowThePublishHistory() throws {
        var state = given(.published)  // v1 published
        for owner in ["b", "c"] {
            state = apply(try decide(.edit(patch: .object(["owner": .string(owner)])), state: state), to: state)
        }  // v2, v3 drafts
        state = apply(try decide(.publish(version: 3, changeNote: nil), state: state), to: state)
        state = apply(try decide(.edit(patch: .object(["owner": .string("d")])), state: state), to: state)  // v4
        #expect((1...4).map(state.status(ofVersion:)) == [.superseded, .discarded, .published, .draft])
        #expect(state.currentVersion == 3)
    }

    @Test func usagesAreRefusedOnArchivedOrRetiredDatasetsAndUnknownVersions() throws {
        let usage = DatasetCommand.recordUsage(
            version: 1, consumer: "training-run-42", kind: "training", properties: [:])
        #expect(try decide(usage, given: .published).count == 1)
        #expect(throws: DomainError.self) { try decide(usage, given: .archived) }
        #expect(throws: DomainError.self) { try decide(usage, given: .retired) }
        #expect(throws: DomainError.versionNotFound(7)) {
            try decide(.recordUsage(version: 7, consumer: "x", kind: nil, properties: [:]), given: .published)
        }
    }

    @Test func commandsOnAStreamThatDoesNotExistAreNotFound() {
        #expect(throws: DomainError.datasetNotFound) { try decide(.restore, state: DatasetState(id: UUID())) }
    }

    @Test func everyEventRoundTripsThroughItsLogEncoding() throws {
        for event in sampleEvents() {
            #expect(try DatasetEvent.decode(type: event.type, data: event.encodedData()) == event)
        }
    }
}

// MARK: - helpers

let context = EventContext(actor: "alice", occurredAt: Date(timeIntervalSince1970: 1_790_000_000))

func decide(_ command: DatasetCommand, state: DatasetState) throws(DomainError) -> [DatasetEvent] {
    try DatasetDecider.decide(command, state: state)
}

func decide(_ command: DatasetCommand, given status: DatasetStatus) throws(DomainError) -> [DatasetEvent] {
    try DatasetDecider.decide(command, state: given(status))
}

func apply(_ events: [DatasetEvent], to state: DatasetState) -> DatasetState {
    events.reduce(state) { $0.evolve($1, context: context) }
}

/// A dataset with one publishable version, brought to `status` through the events that lead there.
func given(_ status: DatasetStatus) -> DatasetState {
    var events: [DatasetEvent] = [
        .created(.init(namespace: "analytics", name: "orders")),
        .versionDrafted(.init(version: .init(version: 1, fields: DatasetDeciderTests.publishable), changedFields: [])),
    ]
    switch status {
    case .draft: break
    case .published: events.append(.published(.init(version: 1, previousPublishedVersion: nil, changeNote: nil)))
    case .archived: events.append(.archived(.init(reason: nil, previousStatus: .draft)))
    case .retired: events.append(.retired(.init(reason: "gone")))
    }
    return apply(events, to: DatasetState(id: UUID()))
}

/// One event of every type, with every optional field set.
func sampleEvents() -> [DatasetEvent] {
    let ref = VersionRef(datasetID: UUID(), version: 2)
    var fields = DatasetDeciderTests.publishable
    fields.properties = ["split": .string("train"), "rows": .number(12), "nested": .object(["ok": .bool(true)])]
    fields.parents = [ref]
    fields.tags = ["production"]
    fields.changeNote = "first cut"
    return [
        .created(.init(namespace: "postgres://db:5432", name: "public.orders", clonedFrom: ref)),
        .created(.init(namespace: "analytics", name: "orders", clonedFrom: nil)),
        .versionDrafted(.init(version: .init(version: 1, fields: fields), changedFields: ["owner", "schema"])),
        .versionDrafted(.init(version: .init(version: 2, fields: VersionFields()), changedFields: [])),
        .published(.init(version: 2, previousPublishedVersion: 1, changeNote: "q4")),
        .published(.init(version: 1, previousPublishedVersion: nil, changeNote: nil)),
        .archived(.init(reason: "cleanup", previousStatus: .published)),
        .archived(.init(reason: nil, previousStatus: .draft)),
        .restored(.init(status: .published)),
        .retired(.init(reason: "replaced by orders_v2")),
        .lineageRecorded(
            .init(job: .init(namespace: "airflow", name: "etl.orders"), runID: "run-1", inputs: [ref], output: ref)),
        .lineageRecorded(.init(job: nil, runID: nil, inputs: [], output: ref)),
        .versionUsed(
            .init(version: 3, consumer: "training-run-42", kind: "training", properties: ["seed": .number(7)])),
        .versionUsed(.init(version: 1, consumer: "report", kind: nil, properties: [:])),
    ]
}
