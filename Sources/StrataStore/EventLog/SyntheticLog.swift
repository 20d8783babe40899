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
    public func generate(events target: Int) async throws -> Int {
        let archive = LogArchive(client: client, logger: logger)
        var random = SystemRandomNumberGenerator()
        var position: Int64 = 0
        var states: [DatasetState] = []
        let start = Date(timeIntervalSince1970: 1_790_000_000)
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
                            data: try JSONDecoder().decode(JSONValue.self, from: Data(event.encodedData().utf8)),
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

extension SyntheticLog {
    /// A layered lineage graph: `datasets` datasets in `layers` layers, each with a history of versions
    /// and pins, and lineage records whose inputs come from the previous layer near the output's place in
    /// it (data flows between neighbours, as in real pipelines), until about `edges` edges exist. Answers
    /// the dataset ids, layer by layer. Without `histories`, every dataset has one published version.
    public func generateLineageGraph(datasets: Int, edges: Int, layers: Int = 20, histories: Bool = true) async throws
        -> [[UUID]]
    {
        let archive = LogArchive(client: client, logger: logger)
        var random = SystemRandomNumberGenerator()
        let perLayer = max(1, datasets / layers)
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        let ids = (0..<layers).map { layer in
            (0..<perLayer).map { index in UUIDv7.make(at: start.addingTimeInterval(Double(layer * perLayer + index))) }
        }
        return try await client.transaction(logger: logger) { connection in
            _ = try await EventLogWriter.begin(on: connection, logger: logger)
            var position: Int64 = 0
            var versions: [UUID: Int64] = [:]
            var batch: [LogArchive.Line] = []
            func add(_ event: DatasetEvent, to stream: UUID) async throws {
                position += 1
                let version = (versions[stream] ?? 0) + 1
                versions[stream] = version
                let stamp = Timestamp.string(from: start.addingTimeInterval(Double(position) / 1000))
                batch.append(
                    LogArchive.Line(
                        position: position, streamID: stream, streamVersion: version, eventID: UUIDv7.make(),
                        type: event.type,
                        data: try JSONDecoder().decode(JSONValue.self, from: Data(event.encodedData().utf8)),
                        metadata: .object(["actor": .string("bench")]), occurredAt: stamp, recordedAt: stamp
                    )
                )
                if batch.count >= 10_000 {
                    try await archive.insert(batch, on: connection, lineOffset: 0)
                    batch = []
                }
            }
            for (layer, layerIDs) in ids.enumerated() {
                for (index, id) in layerIDs.enumerated() {
                    try await add(.created(.init(namespace: "bench/layer-\(layer)", name: "dataset-\(index)")), to: id)
                    let fields = VersionFields(
                        owner: "team-\(index % 20)", location: "s3://lake/\(layer)/\(index)/", format: .parquet,
                        schema: [Column(name: "id", type: "bigint")])
                    try await add(
                        .versionDrafted(.init(version: .init(version: 1, fields: fields), changedFields: ["owner"])),
                        to: id)
                    // Histories as a catalog grows them: most datasets have a few versions, a tenth have
                    // 50–149; a third have a draft newer than the published version; a fifth are pinned.
                    let drafts = !histories ? 1 : index % 10 == 0 ? 50 + index % 100 : 1 + index % 4
                    for number in stride(from: 2, through: drafts, by: 1) {
                        var next = fields
                        next.rowCount = Int64(number * 1_000)
                        try await add(
                            .versionDrafted(
                                .init(version: .init(version: number, fields: next), changedFields: ["row_count"])),
                            to: id)
                    }
                    let published = index % 3 == 0 ? max(1, drafts - 1) : drafts
                    try await add(
                        .published(.init(version: published, previousPublishedVersion: nil, changeNote: nil)), to: id)
                    if histories && index % 5 == 0 {
                        for run in 0..<10 {
                            try await add(
                                .versionUsed(
                                    .init(version: published, consumer: "run-\(run)", kind: "training", properties: [:])
                                ),
                                to: id)
                        }
                    }
                }
            }
            let inputsPerRecord = 4
            for record in 0..<(edges / inputsPerRecord) {
                let layer = 1 + record % (layers - 1)
                let index = Int.random(in: 0..<perLayer, using: &random)
                let window = (max(0, index - 20)..<min(perLayer, index + 21))
                let inputs = (0..<inputsPerRecord).map { _ in
                    VersionRef(datasetID: ids[layer - 1][Int.random(in: window, using: &random)], version: 1)
                }
                let output = VersionRef(datasetID: ids[layer][index], version: 1)
                try await add(
                    .lineageRecorded(
                        .init(
                            job: .init(namespace: "bench", name: "job-\(layer)"), runID: "run-\(record)",
                            inputs: inputs,
                            output: output)),
                    to: output.datasetID)
            }
            try await archive.insert(batch, on: connection, lineOffset: 0)
            try await connection.perform(
                "SELECT setval(pg_get_serial_sequence('events', 'global_position'), \(max(position, 1)))",
                logger: logger)
            return ids
        }
    }
}
