import Foundation
import StrataCore
import StrataTestSupport
import Testing

/// Every event the decider can emit validates against `Schemas/events/<Type>.v1.json`.
///
/// A seeded random walk drives `DatasetDecider` through a few hundred commands whose inputs are what the
/// request rules admit (boundary lengths, unicode names with '/', ':' and spaces, merge patches that null
/// fields, large counts …); every event it emits, plus the hand-written samples of every type, goes to
/// `Tests/validate-json.py` in one call. Set `STRATA_TEST_SEED` to replay another walk.
@Suite("Event schemas")
struct EventSchemaTests {
    static let seed = SplitMix.seed(default: 0x5EED_0001)

    @Test func everyEventTheDeciderCanEmitValidatesAgainstItsSchema() throws {
        var walk = RandomWalk(seed: Self.seed)
        walk.run(commands: 600)
        let emitted = walk.emitted
        let events = emitted + sampleEvents()
        let payloads = events.map { $0.encodedData() }
        let verdicts = try SchemaValidator.validate(
            zip(events, payloads).map { event, data in (schema: "events/\(event.type).v1.json", instance: data) }
        )

        #expect(verdicts.count == events.count, "one verdict per event")
        var invalid = 0
        for (index, verdict) in verdicts.enumerated() where !verdict.isValid {
            invalid += 1
            Issue.record(
                """
                \(events[index].type) does not match its schema (seed \(Self.seed)):
                  data: \(payloads[index])
                  errors: \(verdict.problems.joined(separator: "; "))
                """
            )
        }
        #expect(invalid == 0)

        // The walk must reach every kind of event, not stall on refusals.
        let covered = Set(events.map(\.type))
        #expect(
            covered == Set(DatasetEvent.allTypes),
            "types never validated: \(Set(DatasetEvent.allTypes).subtracting(covered))")
        // LineageRecorded comes from the lineage endpoint, not from a dataset command.
        let fromDecider = Set(DatasetEvent.allTypes).subtracting(["LineageRecorded"])
        #expect(
            Set(emitted.map(\.type)).isSuperset(of: fromDecider),
            "the walk never made \(fromDecider.subtracting(emitted.map(\.type)))"
        )
        #expect(emitted.count >= 300, "the walk emitted only \(emitted.count) events")
        // A patch the request rules admit is never refused as an invalid patch.
        #expect(walk.invalidPatches.isEmpty, "valid patches refused: \(walk.invalidPatches.prefix(3))")
    }

    /// The harness itself: broken events among good ones are reported invalid, each on its own line.
    @Test func theHarnessCatchesABrokenEvent() throws {
        let good = DatasetEvent.retired(.init(reason: "replaced"))
        var drafted = VersionFields()
        drafted.tags = ["a", "a"]
        drafted.rowCount = -1
        let cases: [(event: DatasetEvent, valid: Bool)] = [
            (good, true),
            (.retired(.init(reason: "")), false),
            (.created(.init(namespace: "analytics", name: "line\nbreak")), false),
            (.created(.init(namespace: "", name: "orders")), false),
            (.versionDrafted(.init(version: .init(version: 0, fields: VersionFields()), changedFields: [])), false),
            (.versionDrafted(.init(version: .init(version: 1, fields: drafted), changedFields: ["colour"])), false),
            (.published(.init(version: 1, previousPublishedVersion: 0, changeNote: nil)), false),
            (.archived(.init(reason: nil, previousStatus: .retired)), false),
            (.restored(.init(status: .archived)), false),
            (.versionUsed(.init(version: 1, consumer: "", kind: nil, properties: [:])), false),
            (.created(.init(namespace: String(repeating: "n", count: 1025), name: "orders")), false),
            (good, true),
        ]
        let verdicts = try SchemaValidator.validate(
            cases.map { (schema: "events/\($0.event.type).v1.json", instance: $0.event.encodedData()) }
        )
        #expect(verdicts.map(\.isValid) == cases.map(\.valid))
        for (verdict, testCase) in zip(verdicts, cases) where !testCase.valid {
            #expect(!verdict.problems.isEmpty, "\(testCase.event) was refused without a reason")
        }
    }
}

// MARK: - the walk

extension EventSchemaTests {

    /// Random commands on a handful of datasets, each applied with `evolve` when the decider accepts it.
    struct RandomWalk {
        var random: SplitMix
        var datasets: [DatasetState] = []
        var emitted: [DatasetEvent] = []
        var invalidPatches: [String] = []
        var clock = Date(timeIntervalSince1970: 1_790_000_000)

        init(seed: UInt64) { random = SplitMix(seed: seed) }

        mutating func run(commands: Int) {
            for _ in 0..<commands {
                let live = datasets.indices.filter { datasets[$0].status != .retired }
                if live.count < 3 || chance(0.12) {
                    create()
                } else {
                    step(live.randomElement(using: &random)!)
                }
            }
        }

        mutating func create() {
            var state = DatasetState(id: uuid())
            var clonedFrom: VersionRef?
            if chance(0.2), let source = datasets.randomElement(using: &random), source.latestVersion > 0 {
                clonedFrom = VersionRef(
                    datasetID: source.id, version: Int.random(in: 1...source.latestVersion, using: &random))
            }
            let command = DatasetCommand.create(
                namespace: name(), name: name(), fields: fields(), clonedFrom: clonedFrom
            )
            if apply(command, to: &state) { datasets.append(state) }
        }

        mutating func step(_ index: Int) {
            let state = datasets[index]
            let command: DatasetCommand
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<35:
                command = .edit(patch: patch())
            case 35..<55:
                let version = chance(0.7) ? nil : Int.random(in: 1...(state.latestVersion + 1), using: &random)
                command = .publish(version: version, changeNote: (maybe() ? text(0...80) : nil))
            case 55..<65:
                command = .archive(reason: (maybe() ? text(0...(chance(0.1) ? 4096 : 60)) : nil))
            case 65..<77:
                command = .restore
            case 77..<82:
                command = .retire(reason: text(1...(chance(0.1) ? 4096 : 60)))
            default:
                command = .recordUsage(
                    version: Int.random(in: 1...(state.latestVersion + 1), using: &random),
                    consumer: text(1...(chance(0.1) ? 1024 : 40)),
                    kind: (maybe() ? text(0...(chance(0.1) ? 256 : 20)) : nil),
                    properties: properties(depth: 2)
                )
            }
            var next = state
            _ = apply(command, to: &next)
            datasets[index] = next
        }

        /// Decides `command`, folds what it emits into `state`, and answers whether it was accepted.
        mutating func apply(_ command: DatasetCommand, to state: inout DatasetState) -> Bool {
            do {
                let events = try DatasetDecider.decide(command, state: state)
                clock += 1
                for event in events {
                    state = state.evolve(event, context: EventContext(actor: "walker", occurredAt: clock))
                }
                emitted += events
                return true
            } catch {
                if case .invalidPatch(let reason) = error { invalidPatches.append("\(command): \(reason)") }
                return false
            }
        }

        // MARK: inputs the request rules admit

        mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &random) < probability }

        mutating func maybe() -> Bool { chance(0.5) }

        mutating func uuid() -> UUID {
            let high = random.next()
            let low = random.next()
            return UUID(
                uuid: (
                    UInt8(truncatingIfNeeded: high >> 56), UInt8(truncatingIfNeeded: high >> 48),
                    UInt8(truncatingIfNeeded: high >> 40), UInt8(truncatingIfNeeded: high >> 32),
                    UInt8(truncatingIfNeeded: high >> 24), UInt8(truncatingIfNeeded: high >> 16),
                    0x70 | UInt8(truncatingIfNeeded: high >> 8) & 0x0F, UInt8(truncatingIfNeeded: high),
                    0x80 | UInt8(truncatingIfNeeded: low >> 56) & 0x3F, UInt8(truncatingIfNeeded: low >> 48),
                    UInt8(truncatingIfNeeded: low >> 40), UInt8(truncatingIfNeeded: low >> 32),
                    UInt8(truncatingIfNeeded: low >> 24), UInt8(truncatingIfNeeded: low >> 16),
                    UInt8(truncatingIfNeeded: low >> 8), UInt8(truncatingIfNeeded: low)
                )
            )
        }

        /// Characters text may hold: '/', ':' and spaces, accents, CJK, astral emoji (two UTF-16 units,
        /// one code point), a combining mark, a non-breaking space, U+2028, and the C1 control NEL, which
        /// only a namespace or name excludes (see ``name()``).
        static let alphabet: [Unicode.Scalar] =
            Array("abcxyzABCXYZ0189-_.~/: /:@%?#'\"\\{}[]".unicodeScalars)
            + [
                "\u{E9}", "\u{DF}", "\u{65E5}", "\u{672C}", "\u{3A9}", "\u{1F642}", "\u{1F3F3}", "\u{301}", "\u{A0}",
                "\u{2028}", "\u{85}", "\u{FEFF}",
            ]

        static let nameAlphabet = alphabet.filter { $0.properties.generalCategory != .control }

        mutating func text(_ length: ClosedRange<Int>, from alphabet: [Unicode.Scalar] = alphabet) -> String {
            let count = Int.random(in: length, using: &random)
            var scalars = String.UnicodeScalarView()
            for _ in 0..<count { scalars.append(alphabet.randomElement(using: &random)!) }
            return String(scalars)
        }

        /// A namespace or name: usually short, sometimes exactly at the 1024-code-point limit.
        mutating func name() -> String {
            switch Int.random(in: 0..<10, using: &random) {
            case 0: return text(1024...1024, from: Self.nameAlphabet)
            case 1:
                return
                    "postgres://db-\(Int.random(in: 1...9, using: &random)):5432/\(text(1...12, from: Self.nameAlphabet))"
            case 2: return " "
            default: return text(1...30, from: Self.nameAlphabet)
            }
        }

        mutating func fields() -> VersionFields {
            var fields = VersionFields()
            fields.owner = (maybe() ? text(0...(chance(0.1) ? 256 : 20)) : nil)
            fields.description = (maybe() ? text(0...(chance(0.05) ? 65536 : 100)) : nil)
            fields.location = chance(0.75) ? "s3://bucket/\(text(0...(chance(0.1) ? 4084 : 30)))" : nil
            fields.format = (maybe() ? DatasetFormat.allCases.randomElement(using: &random)! : nil)
            fields.schema = chance(0.75) ? columns() : []
            fields.tags = tags()
            fields.rowCount = (maybe() ? count() : nil)
            fields.sizeBytes = (maybe() ? count() : nil)
            fields.properties = chance(0.6) ? properties(depth: 3) : [:]
            fields.parents = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                VersionRef(datasetID: uuid(), version: Int.random(in: 1...50, using: &random))
            }
            fields.changeNote = (maybe() ? text(0...(chance(0.1) ? 4096 : 40)) : nil)
            return fields
        }

        mutating func columns() -> [Column] {
            (0..<Int.random(in: 1...5, using: &random)).map { _ in
                Column(
                    name: text(1...(chance(0.05) ? 1024 : 20)),
                    type: chance(0.8)
                        ? ["bigint", "string", "double", "timestamp", "array<int>"].randomElement(using: &random)!
                        : text(1...256),
                    nullable: (maybe() ? chance(0.5) : nil),
                    description: (maybe() ? text(0...(chance(0.05) ? 4096 : 40)) : nil)
                )
            }
        }

        mutating func tags() -> [String] {
            let wanted = chance(0.03) ? 256 : Int.random(in: 0...4, using: &random)
            var tags: [String] = []
            var seen: Set<String> = []
            while tags.count < wanted {
                let tag = chance(0.05) ? text(256...256) : "\(text(1...10))-\(tags.count)"
                if seen.insert(tag).inserted { tags.append(tag) }
            }
            return tags
        }

        mutating func count() -> Int64 {
            switch Int.random(in: 0..<5, using: &random) {
            case 0: return 0
            // Up to 2^53 - 1, the API's limit.
            case 1: return Int64.random(in: 0...9_007_199_254_740_991, using: &random)
            default: return Int64.random(in: 1...1_000_000, using: &random)
            }
        }

        mutating func properties(depth: Int) -> [String: JSONValue] {
            var object: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &random) { object[text(0...8)] = json(depth: depth) }
            return object
        }

        mutating func json(depth: Int) -> JSONValue {
            switch Int.random(in: 0..<(depth > 0 ? 8 : 6), using: &random) {
            case 0: return .null
            case 1: return .bool(chance(0.5))
            case 2: return .number(Double(Int.random(in: -1_000_000...1_000_000, using: &random)))
            case 3: return .number(Double.random(in: -1e6...1e6, using: &random))
            case 4, 5: return .string(text(0...20))
            case 6: return .array((0..<Int.random(in: 0...3, using: &random)).map { _ in json(depth: depth - 1) })
            default: return .object(properties(depth: depth - 1))
            }
        }

        /// A merge patch: some fields replaced with new values, some nulled, `properties` merged member-wise.
        mutating func patch() -> JSONValue {
            guard
                let encoded = try? JSONEncoder().encode(fields()),
                case .object(let candidate) = try? JSONDecoder().decode(JSONValue.self, from: encoded)
            else { return .object([:]) }
            var patch: [String: JSONValue] = [:]
            for name in VersionFields.fieldNames where chance(0.3) {
                if chance(0.25) {
                    patch[name] = .null
                } else if name == "properties", chance(0.5) {
                    // Random keys may collide; the later member wins, as in a parsed body.
                    var members: [String: JSONValue] = [:]
                    members[text(0...8)] = .null
                    members[text(0...8)] = json(depth: 1)
                    patch[name] = .object(members)
                } else if name == "row_count" || name == "size_bytes" {
                    patch[name] = .number(Double(Int.random(in: 0...1_000_000_000, using: &random)))
                } else {
                    patch[name] = candidate[name] ?? .null
                }
            }
            return .object(patch)
        }
    }
}
