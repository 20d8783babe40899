import Foundation
import StrataCore
import Testing

/// The events a log cannot hold, whoever wrote it: a replay and an import refuse them instead of
/// folding them into a state that makes no sense (or that the projector cannot render).
@Suite("Which events can follow a dataset's state")
struct EventConsistencyTests {
    static let context = EventContext(actor: "alice", occurredAt: Date(timeIntervalSince1970: 1_800_000_000))
    static let created = DatasetEvent.created(.init(namespace: "sales", name: "orders"))

    static func drafted(_ version: Int) -> DatasetEvent {
        .versionDrafted(.init(version: VersionSnapshot(version: version, fields: VersionFields()), changedFields: []))
    }

    static func state(after events: [DatasetEvent]) -> DatasetLifecycle {
        var state = DatasetLifecycle(id: UUID())
        for (position, event) in zip(Int64(1)..., events) {
            #expect(state.inconsistency(of: event) == nil, "\(event.type) should follow")
            state.apply(event, at: position)
        }
        return state
    }

    @Test func nothingButACreationStartsAStream() {
        let empty = DatasetLifecycle(id: UUID())
        #expect(empty.inconsistency(of: Self.created) == nil)
        for event in [
            Self.drafted(1), .archived(.init(reason: nil, previousStatus: .draft)), .retired(.init(reason: "x")),
        ] {
            #expect(empty.inconsistency(of: event)?.contains("no DatasetCreated") == true, "\(event.type)")
        }
    }

    @Test func aDatasetIsCreatedOnce() {
        let state = Self.state(after: [Self.created])
        #expect(state.inconsistency(of: Self.created)?.contains("second time") == true)
    }

    @Test func versionsAreDraftedOneAfterAnother() {
        let state = Self.state(after: [Self.created, Self.drafted(1), Self.drafted(2)])
        #expect(state.inconsistency(of: Self.drafted(3)) == nil)
        for skipped in [1, 2, 4, 0, -1] {
            #expect(
                state.inconsistency(of: Self.drafted(skipped))
                    == "it drafts version \(skipped), but the next version is 3")
        }
    }

    @Test func onlyADraftedVersionIsPublishedOrPinned() {
        let state = Self.state(after: [Self.created, Self.drafted(1)])
        func published(_ version: Int) -> DatasetEvent {
            .published(.init(version: version, previousPublishedVersion: nil, changeNote: nil))
        }
        func used(_ version: Int) -> DatasetEvent {
            .versionUsed(.init(version: version, consumer: "model-v12", kind: nil, properties: [:]))
        }
        #expect(state.inconsistency(of: published(1)) == nil)
        #expect(state.inconsistency(of: used(1)) == nil)
        for never in [0, 2, -3] {
            #expect(state.inconsistency(of: published(never))?.contains("never drafted") == true)
            #expect(state.inconsistency(of: used(never))?.contains("never drafted") == true)
        }
        let noVersions = Self.state(after: [Self.created])
        #expect(noVersions.inconsistency(of: published(1))?.contains("never drafted") == true)
    }

    @Test func versionsOfOtherDatasetsMustFitTheCatalog() {
        let state = Self.state(after: [Self.created])
        let other = UUID()
        let tooFar = Int(Int32.max) + 1
        let lineage = DatasetEvent.lineageRecorded(
            .init(
                job: nil, runID: nil, inputs: [VersionRef(datasetID: other, version: tooFar)],
                output: VersionRef(datasetID: state.id, version: 1)))
        #expect(state.inconsistency(of: lineage)?.contains("version \(tooFar) of \(other.lowercased)") == true)
        let clone = DatasetEvent.created(
            .init(namespace: "a", name: "b", clonedFrom: VersionRef(datasetID: other, version: 0)))
        #expect(DatasetLifecycle(id: UUID()).inconsistency(of: clone)?.contains("version 0") == true)
        var fields = VersionFields()
        fields.parents = [VersionRef(datasetID: other, version: Int(Int32.max))]
        let drafted = DatasetEvent.versionDrafted(
            .init(version: VersionSnapshot(version: 1, fields: fields), changedFields: []))
        #expect(state.inconsistency(of: drafted) == nil)
    }
}
