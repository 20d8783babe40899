import Foundation
import PostgresNIO
import StrataCore

/// A large, realistic log written straight into an empty catalog, for benchmarks: datasets created,
/// edited, published, used and now and then archived or retired, each event decided by the real
/// decider, inserted in big batches as `import` does.
public struct SyntheticLog: Sendable {
    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Appends about `events` events; answers how many were written.
    public func generate(events target: Int, seed: UInt64 = 1) async throws -> Int {
        let archive = LogArchive(client: client, logger: logger)
        var random = SystemRandomNumberGenerator()
        _ = seed
        var position: Int64 = 0
        var states: [DatasetState] = []
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try await client.transaction(logger: logger) { connection in
            _ = try await EventLogWriter.begin(on: connection, logger: logger)
            var batch: [LogArchive.Line] = []
            while position < Int64(target) {
                let command: DatasetCommand
                var index = states.count
                if states.isEmpty || Int.random(in: 0..<10, using: &random) == 0 {
                    states.append(DatasetState(id: UUIDv7.make(at: start.addingTimeInterval(Double(position)))))
                    command = .create(
                        namespace: "bench\(index % 50)", name: "dataset-\(index)",
                        fields: VersionFields(
                            owner: "team-\(index % 20)", description: "synthetic dataset \(index)",
                            location: "s3://lake/bench/\(index)/", format: .parquet,
                            schema: [Column(name: "id", type: "bigint"), Column(name: "value", type: "double")],
                            tags: ["bench", "t\(index % 7)"]
                        ),
                        clonedFrom: nil
                    )
                } else {
                    index = Int.random(in: 0..<states.count, using: &random)
                    switch Int.random(in: 0..<10, using: &random) {
                    case 0..<4: command = .edit(patch: .object(["row_count": .number(Double(position))]))
                    case 4..<6: command = .publish(version: nil, changeNote: nil)
                    case 6..<8:
                        command = .recordUsage(
                            version: 1, consumer: "run-\(position)", kind: "training", properties: [:])
                    case 8: command = .archive(reason: nil)
                    default: command = .restore
                    }
                }
                let state = states[index]
                guard let events = try? DatasetDecider.decide(command, state: state) else { continue }
                let context = EventContext(
                    actor: "bench", occurredAt: start.addingTimeInterval(Double(position) / 1000))
                var next = state
                for event in events {
                    position += 1
                    next = next.evolve(event, context: context)
                    let stamp = Timestamp.string(from: context.occurredAt)
                    batch.append(
                        LogArchive.Line(
                            position: position, streamID: state.id, streamVersion: next.streamVersion,
                            eventID: UUIDv7.make(at: context.occurredAt), type: event.type,
                            data: try JSONDecoder().decode(JSONValue.self, from: Data(try event.encodedData().utf8)),
                            metadata: .object(["actor": .string("bench")]), occurredAt: stamp, recordedAt: stamp
                        )
                    )
                }
                states[index] = next
                if batch.count >= 10_000 {
                    try await archive.insert(batch, on: connection, lineOffset: 0)
                    batch = []
                }
            }
            try await archive.insert(batch, on: connection, lineOffset: 0)
            try await connection.perform(
                "SELECT setval(pg_get_serial_sequence('events', 'global_position'), \(max(position, 1)))",
                logger: logger)
            return Int(position)
        }
    }
}
