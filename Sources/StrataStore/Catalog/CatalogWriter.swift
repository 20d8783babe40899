import Foundation
import Metrics
import PostgresNIO
import StrataCore

/// The append pipeline: every write to the catalog goes through here.
///
/// Appends hold the log's lock until they commit, so one transaction per command would cost one disk
/// flush per command. Instead, the commands that arrive while a batch commits wait together and form
/// the next batch: each is decided in order against a state that includes the ones before it, each in
/// a savepoint so a refused or failing command does not spoil the others, and the whole batch commits
/// in one transaction. With one client a batch is one command.
public actor CatalogWriter {
    /// One write: what to do, to which dataset, and the request's envelope.
    public struct Request: Sendable {
        public enum Target: Sendable, Equatable {
            case dataset(UUID, DatasetCommand)
            /// A new dataset whose first version copies the source's current one.
            case clone(source: UUID, newID: UUID, namespace: String?, name: String, changeNote: String?)
        }

        public var target: Target
        /// `If-Match`: the stream version the writer last saw.
        public var expectedStreamVersion: Int64?
        public var metadata: EventMetadata
        public var occurredAt: Date
        public var idempotency: IdempotencyClaim?
        /// Turns the outcome into the response to send (and to store, for an idempotent request).
        public var respond: @Sendable (Outcome) -> StoredResponse

        public init(
            target: Target,
            expectedStreamVersion: Int64? = nil,
            metadata: EventMetadata,
            occurredAt: Date,
            idempotency: IdempotencyClaim? = nil,
            respond: @escaping @Sendable (Outcome) -> StoredResponse
        ) {
            self.target = target
            self.expectedStreamVersion = expectedStreamVersion
            self.metadata = metadata
            self.occurredAt = occurredAt
            self.idempotency = idempotency
            self.respond = respond
        }
    }

    /// What a write did: the dataset's state afterwards and where its events landed.
    public struct Outcome: Sendable {
        public var state: DatasetState
        public var events: [DatasetEvent]
        /// The position of the last event appended, or of the dataset's last event if none was.
        public var position: Int64
    }

    private struct Pending {
        var request: Request
        var continuation: CheckedContinuation<StoredResponse, any Error>
    }

    private let client: PostgresClient
    private let logger: Logger
    private let makeEventID: @Sendable () -> UUID
    private let maximumBatch: Int
    private var queue: [Pending] = []
    private var draining = false
    private let batchSizes = Recorder(label: "strata_append_batch_size")

    public init(
        client: PostgresClient,
        logger: Logger,
        maximumBatch: Int = 256,
        makeEventID: @escaping @Sendable () -> UUID = UUIDv7.make
    ) {
        self.client = client
        self.logger = logger
        self.maximumBatch = maximumBatch
        self.makeEventID = makeEventID
    }

    /// Queues `request` and answers its response once the batch holding it has committed.
    public func submit(_ request: Request) async throws -> StoredResponse {
        try await withCheckedThrowingContinuation { continuation in
            queue.append(Pending(request: request, continuation: continuation))
            if !draining {
                draining = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !queue.isEmpty {
            let batch = Array(queue.prefix(maximumBatch))
            queue.removeFirst(batch.count)
            batchSizes.record(batch.count)
            // The actor is reentrant: while this batch commits, new submissions queue up for the next.
            let results = await commit(batch.map(\.request))
            for (pending, result) in zip(batch, results) { pending.continuation.resume(with: result) }
        }
        draining = false
    }

    private func commit(_ requests: [Request]) async -> [Result<StoredResponse, any Error>] {
        do {
            let results = try await client.transaction(logger: logger) { connection in
                let writer = try await EventLogWriter.begin(on: connection, logger: logger)
                var batch = Batch(writer: writer, makeEventID: makeEventID)
                var results: [Result<StoredResponse, any Error>] = []
                for request in requests {
                    results.append(await batch.process(request))
                }
                if let position = batch.lastAppended {
                    try await connection.perform(
                        "UPDATE projections SET applied_position = \(position)", logger: logger)
                }
                return results
            }
            return results
        } catch {
            // Nothing of the batch committed: every caller hears so, and nothing was acknowledged.
            logger.error("append batch failed", metadata: ["error": "\(String(reflecting: error))"])
            return requests.map { _ in .failure(error) }
        }
    }
}

/// The work of one batch inside its transaction: dataset states as this batch has changed them so far.
private struct Batch {
    let writer: EventLogWriter
    let makeEventID: @Sendable () -> UUID
    var known: [UUID: (state: DatasetState, lastPosition: Int64)] = [:]
    /// The last position this batch appended, for the projections' bookkeeping.
    var lastAppended: Int64?

    init(writer: EventLogWriter, makeEventID: @escaping @Sendable () -> UUID) {
        self.writer = writer
        self.makeEventID = makeEventID
    }

    var connection: PostgresConnection { writer.connection }
    var logger: Logger { writer.logger }

    mutating func process(_ request: CatalogWriter.Request) async -> Result<StoredResponse, any Error> {
        do {
            try await connection.perform("SAVEPOINT strata_command", logger: logger)
        } catch {
            return .failure(error)
        }
        let saved = (known, lastAppended)
        do {
            let response = try await handle(request)
            try await connection.perform("RELEASE SAVEPOINT strata_command", logger: logger)
            return .success(response)
        } catch {
            (known, lastAppended) = saved
            do {
                try await connection.perform("ROLLBACK TO SAVEPOINT strata_command", logger: logger)
            } catch {
                return .failure(error)
            }
            return .failure(error)
        }
    }

    private mutating func handle(_ request: CatalogWriter.Request) async throws -> StoredResponse {
        if let claim = request.idempotency,
            let stored = try await IdempotencyStore.lookup(claim, on: connection, logger: logger)
        {
            return stored
        }
        let (id, command) = try await resolve(request.target)
        let (before, lastPosition) = try await state(of: id)
        if let expected = request.expectedStreamVersion, expected != before.streamVersion {
            throw CatalogError.versionConflict(expected: expected, actual: before.streamVersion)
        }
        let events: [DatasetEvent]
        do {
            events = try DatasetDecider.decide(command, state: before)
        }
        if case .create(let namespace, let name, _, _) = command {
            try await checkNameIsFree(namespace: namespace, name: name)
        }
        let context = EventContext(actor: request.metadata.actor, occurredAt: request.occurredAt)
        var state = before
        var position = lastPosition
        if !events.isEmpty {
            let metadata = request.metadata.encoded()
            let appended = try await writer.append(
                try events.map { event in
                    NewEvent(
                        eventID: makeEventID(), type: event.type, schemaVersion: DatasetEvent.schemaVersion,
                        data: try event.encodedData(), metadata: metadata, occurredAt: request.occurredAt
                    )
                },
                to: id,
                expectedVersion: before.exists ? .exactly(before.streamVersion) : .noStream
            )
            for (event, eventPosition) in zip(events, appended.positions) {
                let next = state.evolve(event, context: context)
                let changes = DatasetProjector.changes(
                    from: state, to: next, event: event, context: context, position: eventPosition
                )
                try await DatasetProjector.apply(changes, at: eventPosition, on: connection, logger: logger)
                state = next
                Counter(label: "strata_events_appended_total", dimensions: [("type", event.type)]).increment()
            }
            position = appended.positions.last ?? position
            known[id] = (state, position)
            lastAppended = position
        }
        let response = request.respond(CatalogWriter.Outcome(state: state, events: events, position: position))
        if let claim = request.idempotency {
            try await IdempotencyStore.store(response, for: claim, on: connection, logger: logger)
        }
        return response
    }

    /// A clone is a create on a new stream, made from the source's current version.
    private mutating func resolve(_ target: CatalogWriter.Request.Target) async throws -> (UUID, DatasetCommand) {
        switch target {
        case .dataset(let id, let command):
            return (id, command)
        case .clone(let sourceID, let newID, let namespace, let name, let changeNote):
            let (source, _) = try await state(of: sourceID)
            guard source.exists else { throw DomainError.datasetNotFound }
            guard source.status != .retired else {
                throw DomainError.invalidTransition(action: "clone", status: source.status)
            }
            guard let current = source.currentVersion, var fields = source.version(current)?.snapshot.fields else {
                throw DomainError.datasetNotFound
            }
            let origin = VersionRef(datasetID: sourceID, version: current)
            fields.parents = [origin]
            fields.changeNote = changeNote
            return (
                newID,
                .create(namespace: namespace ?? source.namespace, name: name, fields: fields, clonedFrom: origin)
            )
        }
    }

    private mutating func state(of id: UUID) async throws -> (DatasetState, Int64) {
        if let known = known[id] { return known }
        let events = try await writer.readStream(id)
        let state = DatasetDecider.state(of: id, from: try events.map { try $0.datasetEvent() })
        let result = (state, events.last?.position ?? 0)
        known[id] = result
        return result
    }

    private func checkNameIsFree(namespace: String, name: String) async throws {
        let key = ByteBuffer(bytes: DatasetProjector.nameKey(namespace, name))
        let holders = try await connection.query(
            "SELECT dataset_id FROM dataset_names WHERE name_key = \(key) AND valid_to IS NULL", logger: logger
        ).collect()
        if !holders.isEmpty { throw DomainError.nameTaken(namespace: namespace, name: name) }
    }
}

/// Write refusals that are not the domain's: the caller's view of the dataset is stale.
public enum CatalogError: Error, Equatable {
    case versionConflict(expected: Int64, actual: Int64)
    case idempotencyKeyReused
}
