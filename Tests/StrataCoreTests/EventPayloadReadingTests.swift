import Foundation
import StrataCore
import StrataTestSupport
import Testing

/// Events come back from their payloads as they went in, whatever form the JSON took on the way:
/// Strata's own, PostgreSQL's `jsonb` output (what a rebuild really reads), or a noisy form; the fields
/// of a version read as their `Decodable` form reads them; payloads that break the rules are refused.
/// Set `STRATA_TEST_SEED` to replay other random events.
@Suite("Reading event payloads")
struct EventPayloadReadingTests {
    static let seed = SplitMix.seed(default: 0x5EED_0003)

    @Test func everyEventComesBackFromItsPayload() throws {
        var random = SplitMix(seed: Self.seed)
        for index in 0..<4_000 {
            let event = random.datasetEvent(ofType: index % DatasetEvent.allTypes.count)
            let data = event.encodedData()
            #expect(try DatasetEvent.decode(type: event.type, data: data) == event, "\(data)")
            #expect(try DatasetEvent.decode(type: event.type, json: Data(data.utf8)) == event)
            let bytes = Array(data.utf8)
            #expect(try bytes.withUnsafeBytes { try DatasetEvent.decode(type: event.type, json: $0) } == event)
        }
    }

    @Test func everyEventComesBackFromItsPayloadAsJSONBPrintsItAndInNoisyForms() throws {
        var random = SplitMix(seed: Self.seed)
        var checked = 0
        for index in 0..<4_000 {
            let event = random.datasetEvent(ofType: index % DatasetEvent.allTypes.count)
            let data = event.encodedData()
            let tree = try JSONDecoder().decode(JSONValue.self, from: Data(data.utf8))
            // A JSONValue holds whole numbers exactly only up to 2^53; events with larger ones are left
            // to the test above.
            guard CanonicalJSON.string(tree) == data else { continue }
            for form in [JSONTextForms.jsonb(tree), JSONTextForms.noisy(tree, using: &random)] {
                #expect(try DatasetEvent.decode(type: event.type, data: form) == event, "\(form)")
            }
            checked += 1
        }
        #expect(checked > 2_000)
    }

    /// Payloads as `SELECT data::text FROM events` prints them, written out by hand.
    @Test(arguments: JSONBSamples.all)
    func payloadsInJSONBsOwnWordsComeBack(sample: JSONBSamples.Sample) throws {
        #expect(try DatasetEvent.decode(type: sample.event.type, data: sample.text) == sample.event)
    }

    @Test func versionFieldsReadAsTheirDecodableFormReadsThem() throws {
        var random = SplitMix(seed: Self.seed)
        var accepted = 0
        for _ in 0..<3_000 {
            let text = try Self.versionObject(using: &random)
            let expected = try? JSONDecoder().decode(VersionFields.self, from: Data(text.utf8))
            let event = try? DatasetEvent.decode(
                type: "DatasetVersionDrafted", data: "{\"changed_fields\": [], \"version\": \(text)}")
            guard case .versionDrafted(let drafted) = event else {
                #expect(expected == nil, "\(text)")
                continue
            }
            #expect(drafted.version.fields == expected, "\(text)")
            accepted += 1
        }
        #expect(accepted > 1_500)
    }

    // MARK: refusals

    @Test(arguments: [
        ("DatasetCreated", #"{"name": "orders"}"#),
        ("DatasetCreated", #"{"name": null, "namespace": "analytics"}"#),
        ("DatasetCreated", #"{"name": "orders", "namespace": "analytics", "cloned_from": {"version": 1}}"#),
        ("DatasetVersionDrafted", #"{"version": {"version": 1}}"#),
        ("DatasetVersionDrafted", #"{"version": {"version": 1}, "changed_fields": null}"#),
        ("DatasetVersionDrafted", #"{"version": {"owner": "a"}, "changed_fields": []}"#),
        ("DatasetVersionDrafted", #"{"version": null, "changed_fields": []}"#),
        ("DatasetVersionDrafted", #"{"version": {"version": 1, "schema": [{"name": "id"}]}, "changed_fields": []}"#),
        ("DatasetPublished", #"{"change_note": "q4"}"#),
        ("DatasetArchived", #"{"reason": "old"}"#),
        ("DatasetRestored", #"{}"#),
        ("DatasetRetired", #"{"reason": null}"#),
        ("LineageRecorded", #"{"inputs": []}"#),
        ("LineageRecorded", #"{"job": {"name": "n"}, "inputs": [], "output": {"version": 1, "dataset_id": "\#(id)"}}"#),
        ("DatasetVersionUsed", #"{"version": 1, "consumer": "c"}"#),
        ("DatasetVersionUsed", #"{"version": 1, "consumer": "c", "properties": null}"#),
    ])
    func payloadsMissingARequiredMemberAreRefused(type: String, text: String) {
        #expect(throws: JSONReadError.self) { try DatasetEvent.decode(type: type, data: text) }
    }

    @Test(arguments: [
        ("DatasetPublished", #"{"version": "2"}"#),
        ("DatasetPublished", #"{"version": 1.5}"#),
        ("DatasetPublished", #"{"version": 2, "previous_published_version": true}"#),
        ("DatasetPublished", #"{"version": 9223372036854775808}"#),
        ("DatasetRetired", #"{"reason": 7}"#),
        ("DatasetRestored", #"{"status": "deleted"}"#),
        ("DatasetArchived", #"{"previous_status": "Published"}"#),
        ("DatasetVersionDrafted", #"{"version": {"version": 1, "row_count": 1.5}, "changed_fields": []}"#),
        ("DatasetVersionDrafted", #"{"version": {"version": 1, "row_count": "10"}, "changed_fields": []}"#),
        ("DatasetVersionDrafted", #"{"version": {"version": 1, "format": "xls"}, "changed_fields": []}"#),
        ("DatasetVersionDrafted", #"{"version": {"version": 1, "tags": [1]}, "changed_fields": []}"#),
        ("DatasetVersionDrafted", #"{"version": {"version": 1, "tags": "a"}, "changed_fields": []}"#),
        ("DatasetVersionDrafted", #"{"version": {"version": 1, "properties": []}, "changed_fields": []}"#),
        ("DatasetVersionDrafted", #"{"version": {"version": 1, "parents": [null]}, "changed_fields": []}"#),
        (
            "DatasetVersionDrafted",
            #"{"version": {"version": 1, "schema": [{"name": "a", "type": "b", "nullable": "yes"}]}, "changed_fields": []}"#
        ),
        ("DatasetVersionDrafted", #"{"version": {"version": 1}, "changed_fields": [null]}"#),
        ("DatasetCreated", #"{"name": "o", "namespace": "a", "cloned_from": {"version": 1, "dataset_id": "x"}}"#),
        (
            "DatasetCreated",
            #"{"name": "o", "namespace": "a", "cloned_from": {"version": 1, "dataset_id": "\#(id.prefix(35))"}}"#
        ),
        ("DatasetCreated", #"{"name": "o", "namespace": "a"} {}"#),
        ("DatasetCreated", #"{"name": "o", "namespace": "a""#),
        ("DatasetCreated", #"["o", "a"]"#),
        ("DatasetCreated", #""#),
        // `JSONDecoder` never looked inside members it ignored; the reader holds them to the grammar too.
        ("DatasetCreated", #"{"name": "o", "namespace": "a", "note": "\x"}"#),
        ("DatasetCreated", #"{"name": "o", "namespace": "a", "note": [1,]}"#),
    ])
    func payloadsOfTheWrongShapeAreRefused(type: String, text: String) {
        #expect(throws: JSONReadError.self) { try DatasetEvent.decode(type: type, data: text) }
    }

    @Test func anUnknownEventTypeIsRefusedAsSuch() {
        let error = #expect(throws: UnknownEventType.self) {
            try DatasetEvent.decode(type: "DatasetRenamed", data: "{}")
        }
        #expect(error?.type == "DatasetRenamed")
    }

    @Test func aMissingMemberIsReportedAtTheEndOfItsObject() {
        #expect(throws: JSONReadError(offset: 17, expected: "a member \"namespace\"")) {
            try DatasetEvent.decode(type: "DatasetCreated", data: #"{"name": "orders"}"#)
        }
    }

    // MARK: what may be left out

    @Test func optionalMembersMayBeAbsentOrNullAndUnknownMembersAreSkipped() throws {
        let bare = try DatasetEvent.decode(
            type: "DatasetVersionDrafted", data: #"{"version": {"version": 3}, "changed_fields": [], "extra": 1}"#)
        let nulls = try DatasetEvent.decode(
            type: "DatasetVersionDrafted",
            data: """
                {"version": {"version": 3, "owner": null, "description": null, "location": null, "format": null,
                "schema": null, "tags": null, "row_count": null, "size_bytes": null, "properties": null,
                "parents": null, "change_note": null, "colour": {"deep": [true, {"x": null}]}}, "changed_fields": []}
                """)
        let empty = DatasetEvent.versionDrafted(.init(version: .init(version: 3, fields: .init()), changedFields: []))
        #expect(bare == empty)
        #expect(nulls == empty)
        #expect(
            try DatasetEvent.decode(type: "DatasetPublished", data: #"{"version": 2}"#)
                == .published(.init(version: 2, previousPublishedVersion: nil, changeNote: nil)))
        #expect(
            try DatasetEvent.decode(type: "LineageRecorded", data: #"{"inputs": [], "output": \#(ref)}"#)
                == .lineageRecorded(
                    .init(
                        job: nil, runID: nil, inputs: [],
                        output: VersionRef(datasetID: UUID(uuidString: id)!, version: 1))
                ))
    }

    @Test func memberNamesMayBeWrittenWithEscapes() throws {
        let created = try DatasetEvent.decode(
            type: "DatasetCreated",
            data: #"{"n\u0061me": "orders", "\u006e\u0061mespace": "analytics", "name\u0000": 1, "é": 2, "n\/a": 3}"#)
        #expect(created == .created(.init(namespace: "analytics", name: "orders")))
    }

    @Test func aRepeatedMemberKeepsItsFirstValueAsWithJSONDecoder() throws {
        let created = try DatasetEvent.decode(
            type: "DatasetCreated",
            data: #"{"name": "first", "namespace": "n", "name": "second", "cloned_from": null, "cloned_from": 5}"#)
        #expect(created == .created(.init(namespace: "n", name: "first")))
        let drafted = try DatasetEvent.decode(
            type: "DatasetVersionDrafted",
            data: #"{"version": {"owner": null, "version": 1, "owner": "b", "version": "x"}, "changed_fields": []}"#)
        #expect(drafted == .versionDrafted(.init(version: .init(version: 1, fields: .init()), changedFields: [])))
    }

    @Test(arguments: [id, id.uppercased(), "0190F3C2-8a4b-7C3D-9e5f-0A1B2C3D4E5F"])
    func aDatasetIDIsWhateverUUIDReadsAsOne(text: String) throws {
        let event = try DatasetEvent.decode(
            type: "LineageRecorded", data: #"{"inputs": [], "output": {"version": 1, "dataset_id": "\#(text)"}}"#)
        #expect(
            event
                == .lineageRecorded(
                    .init(
                        job: nil, runID: nil, inputs: [],
                        output: VersionRef(datasetID: UUID(uuidString: id)!, version: 1))))
    }

    @Test(arguments: ["0190f3c28a4b7c3d9e5f0a1b2c3d4e5f", "{\(id)}", " \(id)", "\(id.dropLast())g", ""])
    func aDatasetIDThatUUIDDoesNotReadIsRefused(text: String) {
        #expect(UUID(uuidString: text) == nil)
        #expect(throws: JSONReadError.self) {
            try DatasetEvent.decode(
                type: "LineageRecorded", data: #"{"inputs": [], "output": {"version": 1, "dataset_id": "\#(text)"}}"#)
        }
    }

    // MARK: helpers

    /// A version's object as other writers might have written it: some fields left out, some `null`,
    /// members the fields do not know, a repeated member first, now and then a value of the wrong type.
    static func versionObject(using random: inout SplitMix) throws -> String {
        let encoded = try JSONEncoder().encode(random.versionFields())
        guard case .object(var members) = try JSONDecoder().decode(JSONValue.self, from: encoded) else {
            return "{}"
        }
        for name in VersionFields.fieldNames {
            switch random.next(below: 12) {
            case 0, 1: members[name] = nil
            case 2: members[name] = .null
            case 3 where random.next(below: 4) == 0:
                members[name] =
                    [.string("x"), .number(1.5), .object([:]), .array([.null]), .bool(true)][
                        random.next(below: 5)]
            default: break
            }
        }
        if random.next(below: 3) == 0 { members["colour"] = random.jsonValue(depth: 2) }
        members["version"] = .number(Double(random.next(below: 100) + 1))
        var text = JSONTextForms.noisy(.object(members), using: &random)
        if random.next(below: 4) == 0 {
            let name = VersionFields.fieldNames[random.next(below: VersionFields.fieldNames.count)]
            let first = ["null", "\"first\"", "7", "[]", "{}"][random.next(below: 5)]
            let brace = text.firstIndex(of: "{")!
            text.insert(
                contentsOf: "\"\(name)\": \(first)" + (members.isEmpty ? "" : ","), at: text.index(after: brace))
        }
        return text
    }
}

private let id = "0190f3c2-8a4b-7c3d-9e5f-0a1b2c3d4e5f"
private let ref = #"{"version": 1, "dataset_id": "\#(id)"}"#

/// Payloads exactly as PostgreSQL prints a `jsonb` value: members ordered by name length, then bytes;
/// a space after ':' and ','; numbers in plain notation.
enum JSONBSamples {
    struct Sample: Sendable, CustomTestStringConvertible {
        var text: String
        var event: DatasetEvent
        var testDescription: String { event.type }
    }

    static let dataset = UUID(uuidString: id)!

    static let all: [Sample] = [
        Sample(
            text: #"{"name": "orders", "namespace": "analytics", "cloned_from": null}"#,
            event: .created(.init(namespace: "analytics", name: "orders"))),
        Sample(
            text:
                #"{"name": "orders-copy", "namespace": "analytics", "cloned_from": {"version": 3, "dataset_id": "\#(id)"}}"#,
            event: .created(
                .init(
                    namespace: "analytics", name: "orders-copy",
                    clonedFrom: VersionRef(datasetID: dataset, version: 3)))),
        Sample(
            text: """
                {"version": {"tags": ["orders", "daily"], "owner": "team-data", "format": "parquet", "schema": \
                [{"name": "id", "type": "bigint", "nullable": false}, {"name": "amount", "type": "numeric(12,2)", \
                "description": "in euros, VAT included"}], "parents": [], "version": 2, "location": \
                "s3://lake/orders/", "row_count": 1500, "properties": {}, "size_bytes": null, "change_note": null, \
                "description": "Cleaned \\"orders\\"\\nsee https://wiki/orders"}, "changed_fields": ["description", \
                "row_count"]}
                """,
            event: .versionDrafted(
                .init(
                    version: VersionSnapshot(
                        version: 2,
                        fields: VersionFields(
                            owner: "team-data", description: "Cleaned \"orders\"\nsee https://wiki/orders",
                            location: "s3://lake/orders/", format: .parquet,
                            schema: [
                                Column(name: "id", type: "bigint", nullable: false),
                                Column(name: "amount", type: "numeric(12,2)", description: "in euros, VAT included"),
                            ],
                            tags: ["orders", "daily"], rowCount: 1500)),
                    changedFields: ["description", "row_count"]))),
        Sample(
            text: #"{"version": 2, "change_note": "first release", "previous_published_version": null}"#,
            event: .published(.init(version: 2, previousPublishedVersion: nil, changeNote: "first release"))),
        Sample(
            text: #"{"reason": null, "previous_status": "published"}"#,
            event: .archived(.init(reason: nil, previousStatus: .published))),
        Sample(text: #"{"status": "published"}"#, event: .restored(.init(status: .published))),
        Sample(text: #"{"reason": "replaced by orders_v2"}"#, event: .retired(.init(reason: "replaced by orders_v2"))),
        Sample(
            text: """
                {"job": {"name": "nightly", "namespace": "airflow"}, "inputs": [{"version": 1, "dataset_id": \
                "\(id)"}], "output": {"version": 4, "dataset_id": "\(id)"}, "run_id": "run-42"}
                """,
            event: .lineageRecorded(
                .init(
                    job: .init(namespace: "airflow", name: "nightly"), runID: "run-42",
                    inputs: [VersionRef(datasetID: dataset, version: 1)],
                    output: VersionRef(datasetID: dataset, version: 4)))),
        Sample(
            text: """
                {"kind": "training", "version": 3, "consumer": "run-7\\tnotebook \\u001f é😀", "properties": \
                {"lr": 0.001, "big": 1000000000000000000000, "tags": ["a"], "steps": 1000000, "nested": {"deep": \
                [1.5, -0.0000002, true, null]}}}
                """,
            event: .versionUsed(
                .init(
                    version: 3, consumer: "run-7\tnotebook \u{1f} é😀", kind: "training",
                    properties: [
                        "lr": .number(0.001), "big": .number(1e21), "tags": .array([.string("a")]),
                        "steps": .number(1_000_000),
                        "nested": .object(["deep": .array([.number(1.5), .number(-2e-7), .bool(true), .null])]),
                    ]))),
    ]
}
