import Foundation
import StrataCore
import StrataTestSupport
import Testing

/// The documents are written by hand, byte by byte, for speed. Catalogs already hold documents that
/// `JSONEncoder` rendered (sorted keys, unescaped slashes), and a rebuild must reproduce those bytes
/// exactly, so the hand-written form is held to the encoder's on random states.
@Suite("Rendering documents")
struct DocumentRenderingTests {
    @Test func jsonValuesAreWrittenAsTheEncoderWritesThem() {
        var random = SplitMix(seed: 7)
        for _ in 0..<2_000 {
            let value = random.jsonValue(depth: 3)
            var writer = CanonicalJSONWriter()
            writer.value(value)
            #expect(writer.string == CanonicalJSON.encoded(value), "\(value)")
        }
    }

    @Test func everyCharacterAndNumberIsWrittenAsTheEncoderWritesIt() {
        var every = ""
        for scalar in (0..<0x80).compactMap(Unicode.Scalar.init) { every.unicodeScalars.append(scalar) }
        every += "é€😀\u{2028}\u{2029}e\u{301}/"
        let numbers: [Double] = [
            0, -0.0, 1, -1, 1.5, 0.1, 1e-7, 1e21, 1e300, -2.5, 123_456.789, 9_007_199_254_740_991,
            9_007_199_254_740_992, -9_007_199_254_740_993, 1e16 + 2, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
        ]
        let value = JSONValue.object([
            "text": .string(every), "numbers": .array(numbers.map(JSONValue.number)), "empty": .object([:]),
            "none": .array([]), "flags": .array([.bool(true), .bool(false), .null]),
        ])
        var writer = CanonicalJSONWriter()
        writer.value(value)
        #expect(writer.string == CanonicalJSON.encoded(value))
    }

    /// The log holds the payloads of every event appended so far as the encoder wrote them; the events
    /// appended from now on must read the same.
    @Test func eventPayloadsAreTheEncodersBytes() {
        var random = SplitMix(seed: 13)
        for index in 0..<4_000 {
            let event = random.datasetEvent(ofType: index % DatasetEvent.allTypes.count)
            let encoded: String =
                switch event {
                case .created(let payload): CanonicalJSON.string(payload)
                case .versionDrafted(let payload): CanonicalJSON.string(payload)
                case .published(let payload): CanonicalJSON.string(payload)
                case .archived(let payload): CanonicalJSON.string(payload)
                case .restored(let payload): CanonicalJSON.string(payload)
                case .retired(let payload): CanonicalJSON.string(payload)
                case .lineageRecorded(let payload): CanonicalJSON.string(payload)
                case .versionUsed(let payload): CanonicalJSON.string(payload)
                }
            #expect(event.encodedData() == encoded)
        }
    }

    @Test func datasetListedVersionAndUsageDocumentsAreTheEncodersBytes() throws {
        var random = SplitMix(seed: 11)
        for _ in 0..<500 {
            let state = random.datasetState()
            #expect(Documents.dataset(state) == CanonicalJSON.string(EncodedDataset(state)))
            // The list's document is the dataset's with two members more, in their sorted places.
            let listed = Documents.Usage(
                count: random.next(below: 50), lastUsedAt: random.next(below: 3) == 0 ? nil : random.date())
            var expected = Documents.dataset(state)
            let lastUsedAt = listed.lastUsedAt.map { "\"\(Timestamp.string(from: $0))\"" } ?? "null"
            let latest = try #require(expected.range(of: ",\"latest_version\":", options: .backwards))
            expected.insert(contentsOf: ",\"last_used_at\":\(lastUsedAt)", at: latest.lowerBound)
            expected.insert(
                contentsOf: ",\"usage_count\":\(listed.count)", at: expected.index(before: expected.endIndex))
            let current = state.currentVersion.map { Documents.version($0, of: state) }
            #expect(Documents.dataset(DatasetSummary(state), currentVersion: current, usage: listed) == expected)
            for number in stride(from: 1, through: state.latestVersion, by: 1) {
                #expect(Documents.version(number, of: state) == CanonicalJSON.string(EncodedVersion(number, of: state)))
            }
            let usage = UsageRecord(
                version: random.next(below: 9) + 1, consumer: random.string(),
                kind: random.next(below: 2) == 0 ? nil : random.string(),
                properties: random.jsonObject(depth: 2), recordedAt: random.date(),
                recordedBy: random.string())
            let position = Int64(random.next(below: 1 << 40))
            #expect(
                Documents.usage(usage, of: state.id, position: position)
                    == CanonicalJSON.string(EncodedUsage(datasetID: state.id, usage: usage, position: position)))
        }
    }
}

// MARK: the documents as `Encodable` rendered them before they were written by hand

private struct EncodedVersion: Encodable {
    let datasetID: UUID
    let number: Int
    let status: VersionStatus
    let record: VersionRecord

    init(_ number: Int, of state: DatasetState) {
        datasetID = state.id
        self.number = number
        status = state.status(ofVersion: number)
        record = state.versions[number]!
    }

    enum CodingKeys: String, CodingKey {
        case datasetID = "dataset_id"
        case version, status
        case createdAt = "created_at"
        case createdBy = "created_by"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(datasetID.uuidString.lowercased(), forKey: .datasetID)
        try container.encode(number, forKey: .version)
        try container.encode(status, forKey: .status)
        try container.encode(Timestamp.string(from: record.createdAt), forKey: .createdAt)
        try container.encode(record.createdBy, forKey: .createdBy)
        try record.snapshot.fields.encode(to: encoder)
    }
}

private struct EncodedDataset: Encodable {
    let state: DatasetState

    init(_ state: DatasetState) { self.state = state }

    enum CodingKeys: String, CodingKey {
        case id, namespace, name, status, owner, current
        case streamVersion = "stream_version"
        case latestVersion = "latest_version"
        case publishedVersion = "published_version"
        case createdAt = "created_at"
        case createdBy = "created_by"
        case updatedAt = "updated_at"
        case updatedBy = "updated_by"
        case retiredReason = "retired_reason"
        case clonedFrom = "cloned_from"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(state.id.uuidString.lowercased(), forKey: .id)
        try container.encode(state.namespace, forKey: .namespace)
        try container.encode(state.name, forKey: .name)
        try container.encode(state.status, forKey: .status)
        try container.encode(state.streamVersion, forKey: .streamVersion)
        try container.encode(state.latestVersion, forKey: .latestVersion)
        try container.encode(state.publishedVersion, forKey: .publishedVersion)
        let current = state.currentVersion
        try container.encode(current.flatMap { state.version($0)?.snapshot.fields.owner }, forKey: .owner)
        try container.encode(Timestamp.string(from: state.createdAt), forKey: .createdAt)
        try container.encode(state.createdBy, forKey: .createdBy)
        try container.encode(Timestamp.string(from: state.updatedAt), forKey: .updatedAt)
        try container.encode(state.updatedBy, forKey: .updatedBy)
        try container.encode(state.retiredReason, forKey: .retiredReason)
        try container.encode(state.clonedFrom, forKey: .clonedFrom)
        try container.encode(current.map { EncodedVersion($0, of: state) }, forKey: .current)
    }
}

private struct EncodedUsage: Encodable {
    let datasetID: UUID
    let usage: UsageRecord
    let position: Int64

    enum CodingKeys: String, CodingKey {
        case datasetID = "dataset_id"
        case version, consumer, kind, properties, position
        case recordedAt = "recorded_at"
        case recordedBy = "recorded_by"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(datasetID.uuidString.lowercased(), forKey: .datasetID)
        try container.encode(usage.version, forKey: .version)
        try container.encode(usage.consumer, forKey: .consumer)
        try container.encode(usage.kind, forKey: .kind)
        try container.encode(usage.properties, forKey: .properties)
        try container.encode(position, forKey: .position)
        try container.encode(Timestamp.string(from: usage.recordedAt), forKey: .recordedAt)
        try container.encode(usage.recordedBy, forKey: .recordedBy)
    }
}
