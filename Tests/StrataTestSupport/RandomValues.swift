import Foundation
import StrataCore

/// Random domain values for property tests, drawn from a seeded ``SplitMix`` so a failure can be
/// replayed: text made of what escaping gets wrong, numbers of every kind JSON carries, JSON trees,
/// version fields, dataset states and events of every type.
extension SplitMix {
    /// Every C0 control character, quotes, backslash, '/', DEL, accents and a combining mark, a
    /// character outside the BMP (a surrogate pair when escaped), U+2028 and U+2029 (line breaks to
    /// JavaScript), a byte order mark.
    public static let alphabet: [String] =
        (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }
        + [
            "a", "b", "Z", "_", "0", " ", "/", "\\", "\"", "\u{7f}", "é", "e\u{301}", "😀", "€", "\u{2028}",
            "\u{2029}", "ß", "-", ".", "\u{FEFF}",
        ]

    public mutating func string(maxLength: Int = 7) -> String {
        (0..<next(below: maxLength + 1)).map { _ in Self.alphabet[next(below: Self.alphabet.count)] }.joined()
    }

    public mutating func optionalString() -> String? { next(below: 3) == 0 ? nil : string() }

    /// Whole numbers small and large (up to 2^60, past what a double holds exactly), thousandths, any finite
    /// double at all, and the edge cases: 0.1, 1e300, -0.0, 2^53 - 1, the extremes.
    public mutating func number() -> Double {
        switch next(below: 5) {
        case 0: return Double(Int(next() % 2_000_001) - 1_000_000)
        case 1: return Double(next() % (1 << 60))
        case 2: return Double(Int(next() % 2_000_001) - 1_000_000) / 1_000
        case 3: return Double(bitPattern: next() & 0x7FEF_FFFF_FFFF_FFFF) * (next(below: 2) == 0 ? 1 : -1)
        default:
            let edges: [Double] = [
                0.1, 1e300, -0.0, 9_007_199_254_740_991, -9_007_199_254_740_991, 1e-7, .leastNonzeroMagnitude, 1e21,
                .greatestFiniteMagnitude, -.leastNormalMagnitude, 0.30000000000000004,
            ]
            return edges[next(below: edges.count)]
        }
    }

    /// An object of up to four members, `depth` levels deep at most.
    public mutating func jsonObject(depth: Int) -> [String: JSONValue] {
        var members: [String: JSONValue] = [:]
        for _ in 0..<next(below: 5) { members[string()] = jsonValue(depth: depth - 1) }
        return members
    }

    public mutating func jsonValue(depth: Int) -> JSONValue {
        switch next(below: depth > 0 ? 7 : 5) {
        case 0: return .null
        case 1: return .bool(next(below: 2) == 0)
        case 2: return .number(number())
        case 3, 4: return .string(string())
        case 5: return .array((0..<next(below: 4)).map { _ in jsonValue(depth: depth - 1) })
        default: return .object(jsonObject(depth: depth))
        }
    }

    public mutating func date() -> Date {
        Date(timeIntervalSince1970: Double(next() % 4_000_000_000_000) / 1000 - 100_000_000)
    }

    public mutating func uuid() -> UUID {
        let (high, low) = (next(), next())
        return withUnsafeBytes(of: (high, low)) { UUID(uuid: $0.load(as: uuid_t.self)) }
    }

    /// A version number: usually small, sometimes at the ends of `Int`.
    public mutating func versionNumber() -> Int {
        switch next(below: 10) {
        case 0: return [Int.max, Int.min, 0, -1, 1 << 53][next(below: 5)]
        default: return next(below: 50) + 1
        }
    }

    public mutating func versionRef() -> VersionRef { VersionRef(datasetID: uuid(), version: versionNumber()) }

    public mutating func versionFields() -> VersionFields {
        VersionFields(
            owner: optionalString(), description: optionalString(), location: optionalString(),
            format: next(below: 3) == 0 ? nil : DatasetFormat.allCases[next(below: DatasetFormat.allCases.count)],
            schema: (0..<next(below: 4)).map { _ in
                Column(
                    name: string(), type: string(), nullable: next(below: 3) == 0 ? nil : next(below: 2) == 0,
                    description: optionalString())
            },
            tags: (0..<next(below: 4)).map { _ in string() },
            rowCount: next(below: 2) == 0 ? nil : Int64(next() % (1 << 53)),
            sizeBytes: next(below: 2) == 0 ? nil : Int64(bitPattern: next()),
            properties: jsonObject(depth: 2),
            parents: (0..<next(below: 3)).map { _ in versionRef() },
            changeNote: optionalString())
    }

    public mutating func datasetState() -> DatasetState {
        var state = DatasetState(id: uuid())
        state.exists = true
        state.namespace = string()
        state.name = string()
        state.status = DatasetStatus.allCases[next(below: 4)]
        state.latestVersion = next(below: 5)
        for number in stride(from: 1, through: state.latestVersion, by: 1) {
            state.versions[number] = VersionRecord(
                snapshot: VersionSnapshot(version: number, fields: versionFields()), createdAt: date(),
                createdBy: string())
        }
        if state.latestVersion > 0, next(below: 3) > 0 {
            state.publishedVersion = next(below: state.latestVersion) + 1
            state.everPublished = Set((1...state.publishedVersion!).filter { _ in next(below: 2) == 0 })
            state.everPublished.insert(state.publishedVersion!)
        }
        if next(below: 3) == 0 {
            state.clonedFrom = VersionRef(datasetID: uuid(), version: next(below: 9) + 1)
        }
        state.streamVersion = Int64(next(below: 1_000) + 1)
        state.createdAt = date()
        state.createdBy = string()
        state.updatedAt = date()
        state.updatedBy = string()
        state.retiredReason = next(below: 3) == 0 ? string() : nil
        return state
    }

    /// An event of the type `DatasetEvent.allTypes[index]` (any type if nil), its payload random.
    public mutating func datasetEvent(ofType index: Int? = nil) -> DatasetEvent {
        let status = { (random: inout SplitMix) in DatasetStatus.allCases[random.next(below: 4)] }
        switch index ?? next(below: DatasetEvent.allTypes.count) {
        case 0:
            return .created(
                .init(namespace: string(), name: string(), clonedFrom: next(below: 2) == 0 ? nil : versionRef()))
        case 1:
            return .versionDrafted(
                .init(
                    version: VersionSnapshot(version: versionNumber(), fields: versionFields()),
                    changedFields: VersionFields.fieldNames.filter { _ in next(below: 3) == 0 }))
        case 2:
            return .published(
                .init(
                    version: versionNumber(), previousPublishedVersion: next(below: 2) == 0 ? nil : versionNumber(),
                    changeNote: optionalString()))
        case 3: return .archived(.init(reason: optionalString(), previousStatus: status(&self)))
        case 4: return .restored(.init(status: status(&self)))
        case 5: return .retired(.init(reason: string()))
        case 6:
            return .lineageRecorded(
                .init(
                    job: next(below: 3) == 0 ? nil : .init(namespace: string(), name: string()),
                    runID: optionalString(), inputs: (0..<next(below: 4)).map { _ in versionRef() },
                    output: versionRef()))
        default:
            return .versionUsed(
                .init(
                    version: versionNumber(), consumer: string(), kind: optionalString(),
                    properties: jsonObject(depth: 3)))
        }
    }
}
