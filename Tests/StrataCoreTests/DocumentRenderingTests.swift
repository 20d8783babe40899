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
            let value = Self.randomValue(depth: 3, using: &random)
            var writer = CanonicalJSONWriter()
            writer.value(value)
            #expect(writer.string == CanonicalJSON.string(value), "\(value)")
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
        #expect(writer.string == CanonicalJSON.string(value))
    }

    @Test func datasetVersionAndUsageDocumentsAreTheEncodersBytes() throws {
        var random = SplitMix(seed: 11)
        for _ in 0..<500 {
            let state = Self.randomState(using: &random)
            #expect(Documents.dataset(state) == CanonicalJSON.string(EncodedDataset(state)))
            if let current = state.currentVersion {
                // A read puts the dataset's document together from its summary and its current version's
                // stored halves.
                let stored = Documents.versionDocument(current, of: state)
                let assembled = Documents.dataset(
                    DatasetSummary(state), currentVersion: stored.with(status: state.status(ofVersion: current)))
                #expect(assembled == Documents.dataset(state))
            }
            for number in state.versions.indices.map({ $0 + 1 }) {
                #expect(Documents.version(number, of: state) == CanonicalJSON.string(EncodedVersion(number, of: state)))
                // Whatever status a read puts in lands where the encoder puts it.
                let stored = Documents.versionDocument(number, of: state)
                for status in [VersionStatus.draft, .published, .superseded, .discarded] {
                    let rendered = try JSONDecoder().decode(
                        JSONValue.self, from: Data(stored.with(status: status).utf8))
                    let expected = try JSONDecoder().decode(
                        JSONValue.self, from: Data(Documents.version(number, of: state).utf8)
                    ).merging(patch: .object(["status": .string(status.rawValue)]))
                    #expect(rendered == expected)
                }
            }
            let usage = UsageRecord(
                version: random.next(below: 9) + 1, consumer: Self.randomString(using: &random),
                kind: random.next(below: 2) == 0 ? nil : Self.randomString(using: &random),
                properties: Self.randomObject(depth: 2, using: &random), recordedAt: Self.randomDate(using: &random),
                recordedBy: Self.randomString(using: &random))
            let position = Int64(random.next(below: 1 << 40))
            #expect(
                Documents.usage(usage, of: state.id, position: position)
                    == CanonicalJSON.string(EncodedUsage(datasetID: state.id, usage: usage, position: position)))
        }
    }

    // MARK: random inputs

    static let alphabet: [String] = [
        "a", "b", "Z", "_", "0", " ", "/", "\\", "\"", "\n", "\t", "\u{0}", "\u{1f}", "\u{7f}", "é", "e\u{301}", "😀",
        "€", "\u{2028}", "ß", "-", ".",
    ]

    static func randomString(using random: inout SplitMix) -> String {
        (0..<random.next(below: 8)).map { _ in alphabet[random.next(below: alphabet.count)] }.joined()
    }

    static func randomNumber(using random: inout SplitMix) -> Double {
        switch random.next(below: 4) {
        case 0: return Double(Int(random.next() % 2_000_001) - 1_000_000)
        case 1: return Double(random.next() % (1 << 60))
        case 2: return Double(Int(random.next() % 2_000_001) - 1_000_000) / 1_000
        default: return Double(bitPattern: random.next() & 0x7FEF_FFFF_FFFF_FFFF)
        }
    }

    static func randomObject(depth: Int, using random: inout SplitMix) -> [String: JSONValue] {
        var members: [String: JSONValue] = [:]
        for _ in 0..<random.next(below: 5) {
            members[randomString(using: &random)] = randomValue(depth: depth - 1, using: &random)
        }
        return members
    }

    static func randomValue(depth: Int, using random: inout SplitMix) -> JSONValue {
        switch random.next(below: depth > 0 ? 7 : 5) {
        case 0: return .null
        case 1: return .bool(random.next(below: 2) == 0)
        case 2: return .number(randomNumber(using: &random))
        case 3, 4: return .string(randomString(using: &random))
        case 5: return .array((0..<random.next(below: 4)).map { _ in randomValue(depth: depth - 1, using: &random) })
        default: return .object(randomObject(depth: depth, using: &random))
        }
    }

    static func randomDate(using random: inout SplitMix) -> Date {
        Date(timeIntervalSince1970: Double(random.next() % 4_000_000_000_000) / 1000 - 100_000_000)
    }

    static func randomUUID(using random: inout SplitMix) -> UUID {
        let (high, low) = (random.next(), random.next())
        return withUnsafeBytes(of: (high, low)) { UUID(uuid: $0.load(as: uuid_t.self)) }
    }

    static func optional<T>(_ make: @autoclosure () -> T, using random: inout SplitMix) -> T? {
        random.next(below: 3) == 0 ? nil : make()
    }

    static func randomFields(using random: inout SplitMix) -> VersionFields {
        func text(_ random: inout SplitMix) -> String? {
            random.next(below: 3) == 0 ? nil : randomString(using: &random)
        }
        return VersionFields(
            owner: text(&random), description: text(&random), location: text(&random),
            format: random.next(below: 3) == 0 ? nil : DatasetFormat.allCases[random.next(below: 10)],
            schema: (0..<random.next(below: 4)).map { _ in
                Column(
                    name: randomString(using: &random), type: randomString(using: &random),
                    nullable: random.next(below: 3) == 0 ? nil : random.next(below: 2) == 0,
                    description: text(&random))
            },
            tags: (0..<random.next(below: 4)).map { _ in randomString(using: &random) },
            rowCount: random.next(below: 2) == 0 ? nil : Int64(random.next() % (1 << 53)),
            sizeBytes: random.next(below: 2) == 0 ? nil : Int64(random.next() % (1 << 53)),
            properties: randomObject(depth: 2, using: &random),
            parents: (0..<random.next(below: 3)).map { _ in
                VersionRef(datasetID: randomUUID(using: &random), version: random.next(below: 50) + 1)
            },
            changeNote: text(&random))
    }

    static func randomState(using random: inout SplitMix) -> DatasetState {
        var state = DatasetState(id: randomUUID(using: &random))
        state.exists = true
        state.namespace = randomString(using: &random)
        state.name = randomString(using: &random)
        state.status = DatasetStatus.allCases[random.next(below: 4)]
        state.versions = (0..<random.next(below: 5)).map { index in
            VersionRecord(
                snapshot: VersionSnapshot(version: index + 1, fields: randomFields(using: &random)),
                createdAt: randomDate(using: &random), createdBy: randomString(using: &random))
        }
        if !state.versions.isEmpty, random.next(below: 3) > 0 {
            state.publishedVersion = random.next(below: state.versions.count) + 1
            state.everPublished = Set((1...state.publishedVersion!).filter { _ in random.next(below: 2) == 0 })
            state.everPublished.insert(state.publishedVersion!)
        }
        if random.next(below: 3) == 0 {
            state.clonedFrom = VersionRef(datasetID: randomUUID(using: &random), version: random.next(below: 9) + 1)
        }
        state.streamVersion = Int64(random.next(below: 1_000) + 1)
        state.createdAt = randomDate(using: &random)
        state.createdBy = randomString(using: &random)
        state.updatedAt = randomDate(using: &random)
        state.updatedBy = randomString(using: &random)
        state.retiredReason = random.next(below: 3) == 0 ? randomString(using: &random) : nil
        return state
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
        record = state.versions[number - 1]
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
