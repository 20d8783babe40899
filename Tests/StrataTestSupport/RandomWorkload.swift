import Foundation
import StrataCore
import StrataStore

/// Random lifecycle commands against the append pipeline, from several concurrent clients, for tests
/// that need a realistic log: creates, edits, publishes, archives, restores, retirements and usages,
/// refusals included.
public struct RandomWorkload: Sendable {
    public let writer: CatalogWriter
    public var clients = 8
    public var seed: UInt64 = 7

    public init(writer: CatalogWriter, clients: Int = 8, seed: UInt64 = 7) {
        self.writer = writer
        self.clients = clients
        self.seed = seed
    }

    /// A write the pipeline acknowledged: the dataset and the stream version its response carried.
    public struct Acknowledged: Sendable, Hashable {
        public var dataset: UUID
        public var streamVersion: Int
    }

    /// Runs `commands` commands split over the clients; answers every acknowledged write.
    public func run(commands: Int) async throws -> [Acknowledged] {
        try await withThrowingTaskGroup(of: [Acknowledged].self) { group in
            for client in 0..<clients {
                let share = commands / clients + (client < commands % clients ? 1 : 0)
                group.addTask { try await runClient(client, commands: share) }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    private func runClient(_ client: Int, commands: Int) async throws -> [Acknowledged] {
        var random = SplitMix(seed: seed &+ UInt64(client))
        var mine: [UUID] = []
        var tokens: [String] = []
        var acknowledged: [Acknowledged] = []
        for step in 0..<commands {
            let target: CatalogWriter.Request.Target
            if random.next(below: 40) == 0 {
                // Grants and revocations share the log; their namespaces carry what text[] literals escape.
                if !tokens.isEmpty && random.next(below: 3) == 0 {
                    target = .revokeToken(name: tokens.remove(at: random.next(below: tokens.count)))
                } else {
                    let name = "tok-\(client)-\(step)"
                    tokens.append(name)
                    target = .createToken(
                        UUIDv7.make(), name: name, role: [.reader, .writer, .admin][random.next(below: 3)],
                        namespaces: random.next(below: 2) == 0 ? [] : ["ns\(client % 3)", #"a"b\c, {d}"#],
                        secretSHA256: String(repeating: "\(random.next(below: 10))", count: 64))
                }
            } else if mine.isEmpty || random.next(below: 6) == 0 {
                let id = UUIDv7.make()
                mine.append(id)
                // Tags, descriptions, notes and consumers carry what COPY, text[] literals and JSON escape.
                var fields = VersionFields(
                    owner: "team-\(random.next(below: 3))", tags: ["t\(random.next(below: 4))", #"a"b\c"#, "x,y {z}"])
                if random.next(below: 3) > 0 {
                    fields.location = "s3://lake/\(client)/\(step)"
                    fields.schema = [Column(name: "id", type: "bigint")]
                }
                target = .dataset(
                    id,
                    .create(
                        namespace: "ns\(client % 3)", name: "set-\(client)-\(step)", fields: fields, clonedFrom: nil))
            } else {
                let id = mine[random.next(below: mine.count)]
                let command: DatasetCommand
                switch random.next(below: 8) {
                case 0, 1:
                    command = .edit(
                        patch: .object([
                            "row_count": .number(Double(step)),
                            "description": .string("step \(step)\t\"quoted\" back\\slash\nnext line, é"),
                        ]))
                case 2:
                    command = .edit(
                        patch: .object([
                            "location": .string("s3://x/\(step)"),
                            "schema": .array([.object(["name": .string("c"), "type": .string("int")])]),
                        ]))
                case 3: command = .publish(version: nil, changeNote: "round \(step)\r\n")
                case 4: command = .archive(reason: random.next(below: 2) == 0 ? nil : #"clean\up"#)
                case 5: command = .restore
                case 6:
                    command = .recordUsage(
                        version: 1, consumer: "run-\(step)\tnotebook", kind: "training",
                        properties: ["step": .number(Double(step))])
                default:
                    command =
                        random.next(below: 5) == 0
                        ? .retire(reason: "replaced") : .publish(version: nil, changeNote: nil)
                }
                if random.next(below: 6) == 0 && mine.count > 1 {
                    let input = mine[random.next(below: mine.count)]
                    target = .lineage(
                        job: .init(namespace: "airflow", name: "job-\(client)"), runID: "run-\(step)",
                        inputs: input == id ? [] : [.init(datasetID: input, version: nil)],
                        outputs: [.init(datasetID: id, version: nil)]
                    )
                } else {
                    target = .dataset(id, command)
                }
            }
            let request = CatalogWriter.Request(
                target: target, metadata: EventMetadata(actor: "client-\(client)"),
                occurredAt: Timestamp.truncated(Date()),
                respond: { outcome in
                    StoredResponse(status: 200, headers: ["stream_version": "\(outcome.state.streamVersion)"], body: "")
                }
            )
            do {
                let response = try await writer.submit(request)
                if case .dataset(let id, _) = target, let version = response.headers["stream_version"].flatMap(Int.init)
                {
                    acknowledged.append(Acknowledged(dataset: id, streamVersion: version))
                }
            } catch is DomainError {
                continue  // refusals are part of a realistic workload
            } catch is AccessError {
                continue
            }
        }
        return acknowledged
    }
}

/// SplitMix64: a small, reproducible random source, so a failing random workload can be replayed.
public struct SplitMix: RandomNumberGenerator, Sendable {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// The seed of a suite's random inputs: `STRATA_TEST_SEED` if set, to replay another run, else `fixed`.
    public static func seed(default fixed: UInt64) -> UInt64 {
        ProcessInfo.processInfo.environment["STRATA_TEST_SEED"].flatMap { UInt64($0) } ?? fixed
    }
}
