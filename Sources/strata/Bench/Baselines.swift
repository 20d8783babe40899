import Foundation
import Logging
import PostgresNIO
import StrataCore
import StrataStore

/// What the database alone allows, measured in the same run as the service, so that the service's
/// figures are read as fractions of it rather than against a machine whose speed moves.
enum Baselines {
    /// A pooled primary-key SELECT of one dataset's current state: the floor of a read by id.
    static func pooledSelect(
        client: PostgresClient, ids: [UUID], load: LoadGenerator, duration: Duration, logger: Logger
    ) async -> LoadResult {
        await load.run("baseline: pooled primary-key SELECT", for: duration) { index, iteration in
            let id = ids[(index * 7919 + iteration * 104_729) % ids.count]
            do {
                let rows = try await client.query(
                    "SELECT status, latest_version FROM dataset_states WHERE dataset_id = \(id) AND valid_to IS NULL",
                    logger: logger
                ).collect()
                return rows.count == 1 ? .succeeded : .failed
            } catch {
                return .failed
            }
        }
    }

    /// The log's append SQL alone, with group commit: each client submits one event, batches form while
    /// the previous one commits, and a batch is the append lock, one multi-row INSERT and COMMIT. It
    /// writes a copy of the events table, so the catalog's own log is left as it was.
    static func groupCommitAppend(
        client: PostgresClient, load: LoadGenerator, duration: Duration, logger: Logger
    ) async throws -> LoadResult {
        try await client.perform("CREATE TABLE bench_events (LIKE events INCLUDING ALL)", logger: logger)
        let appender = GroupAppender(client: client, logger: logger)
        let result = await load.run("baseline: append SQL with group commit", for: duration) { _, _ in
            (try? await appender.append()) != nil ? .succeeded : .failed
        }
        try await client.perform("DROP TABLE bench_events", logger: logger)
        return result
    }
}

extension Baselines {
    /// The append pipeline alone, in this process: creates submitted straight to a ``CatalogWriter``, no
    /// HTTP between. Next to the service's creates, it says what HTTP and the server's request handling
    /// cost; next to the append SQL, what deciding and projecting in the pipeline cost.
    static func pipelineCreates(
        client: PostgresClient, load: LoadGenerator, duration: Duration, logger: Logger
    ) async -> LoadResult {
        let writer = CatalogWriter(client: client, logger: logger)
        let run = UUID().uuidString.prefix(8)
        return await load.run("baseline: append pipeline, creates in process", for: duration) { index, iteration in
            let request = CatalogWriter.Request(
                target: .dataset(
                    UUIDv7.make(),
                    .create(
                        namespace: "bench-pipeline", name: "p-\(run)-\(index)-\(iteration)", fields: VersionFields(),
                        clonedFrom: nil)),
                metadata: EventMetadata(actor: "bench"), occurredAt: Date(),
                respond: { StoredResponse(status: 201, headers: [:], body: Documents.dataset($0.state)) })
            return (try? await writer.submit(request))?.status == 201 ? .succeeded : .failed
        }
    }
}

/// The smallest group-commit appender: what `CatalogWriter` does to the log, without deciding anything.
private actor GroupAppender {
    let client: PostgresClient
    let logger: Logger
    private var waiting: [CheckedContinuation<Void, any Error>] = []
    private var draining = false

    init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    func append() async throws {
        try await withCheckedThrowingContinuation { continuation in
            waiting.append(continuation)
            if !draining {
                draining = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !waiting.isEmpty {
            let batch = waiting
            waiting = []
            let result: Result<Void, any Error>
            do {
                try await client.withTransaction(logger: logger) { connection in
                    try await connection.query("SELECT pg_advisory_xact_lock(6004514643731631175)", logger: logger)
                    let streams = batch.map { _ in UUIDv7.make() }
                    let data = CanonicalJSON.string(DatasetEvent.Created(namespace: "bench", name: "n"))
                    _ = try await connection.query(
                        """
                        INSERT INTO bench_events (stream_id, stream_version, event_id, event_type, schema_version, data,
                                                  metadata, occurred_at, recorded_at)
                        SELECT s, 1, gen_random_uuid(), 'DatasetCreated', 1, \(data)::json, '{"actor":"bench"}',
                               now(), now()
                        FROM unnest(\(streams)) AS s
                        """,
                        logger: logger
                    ).collect()
                }
                result = .success(())
            } catch {
                result = .failure(error)
            }
            for continuation in batch { continuation.resume(with: result) }
        }
        draining = false
    }
}
