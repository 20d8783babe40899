import Foundation
import Metrics
import PostgresNIO
import StrataCore
import Synchronization

/// The append pipeline: every write to the catalog goes through here.
///
/// Appends hold the log's lock until they commit, so one transaction per command would cost one disk
/// flush per command. Instead, the commands that arrive while a batch commits wait together and form
/// the next batch: each is decided in order against a state that includes the ones before it, each in
/// a savepoint so a refused or failing command does not spoil the others, and the whole batch commits
/// in one transaction. With one client a batch is one command.
///
/// Every batch is bounded in time (see ``BoundedPool``) and may lose its connection at any point. A
/// batch that fails before its COMMIT is sent fails as a whole: nothing of it landed. If the connection
/// dies during the COMMIT itself, the outcome is found out from the log, by one of the batch's event
/// ids, before anyone is answered. Either way the pipeline goes on with the next batch.
public actor CatalogWriter {
    /// One write: what to do, to which dataset, and the request's envelope.
    public struct Request: Sendable {
        public enum Target: Sendable, Equatable {
            case dataset(UUID, DatasetCommand)
            /// A new dataset whose first version copies the source's current one.
            case clone(source: UUID, newID: UUID, namespace: String?, name: String, changeNote: String?)
            /// An OpenLineage event, mapped onto datasets, versions, lineage and retirements, atomically.
            case openLineage(OpenLineageIngest)
            /// A job read the inputs to make the outputs: one `LineageRecorded` per output, atomically.
            case lineage(
                job: DatasetEvent.LineageRecorded.Job?, runID: String?, inputs: [LineageEnd], outputs: [LineageEnd])
            /// A new API token, on a stream of its own.
            case createToken(UUID, name: String, role: Role, namespaces: [String], secretSHA256: String)
            /// The token that holds this name, revoked.
            case revokeToken(name: String)
        }

        /// A dataset at a version, or at its current version when `version` is nil.
        public struct LineageEnd: Sendable, Equatable {
            public var datasetID: UUID
            public var version: Int?

            public init(datasetID: UUID, version: Int?) {
                self.datasetID = datasetID
                self.version = version
            }
        }

        public var target: Target
        /// The namespaces the caller may act in: a dataset outside them is not found, and nothing can be
        /// created in another.
        public var scope: NamespaceScope
        /// `If-Match`: the stream version the writer last saw.
        public var expectedStreamVersion: Int64?
        public var metadata: EventMetadata
        public var occurredAt: Date
        public var idempotency: IdempotencyClaim?
        /// Turns the outcome into the response to send (and to store, for an idempotent request).
        public var respond: @Sendable (Outcome) -> StoredResponse

        public init(
            target: Target,
            scope: NamespaceScope = .all,
            expectedStreamVersion: Int64? = nil,
            metadata: EventMetadata,
            occurredAt: Date,
            idempotency: IdempotencyClaim? = nil,
            respond: @escaping @Sendable (Outcome) -> StoredResponse
        ) {
            self.target = target
            self.scope = scope
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
        /// For a token's write: the token as it left it, and when its event was recorded.
        public var token: (state: TokenState, recordedAt: Date)?

        init(state: DatasetState, events: [DatasetEvent], position: Int64) {
            self.state = state
            self.events = events
            self.position = position
        }

        init(token: TokenState, recordedAt: Date, position: Int64) {
            self.init(state: DatasetState(id: token.id), events: [], position: position)
            self.token = (token, recordedAt)
        }
    }

    private struct Pending {
        var request: Request
        var continuation: CheckedContinuation<StoredResponse, any Error>
    }

    private let pool: BoundedPool
    private let logger: Logger
    private let makeEventID: @Sendable () -> UUID
    private let maximumBatch: Int
    private var queue: [Pending] = []
    private var draining = false
    private let batchSizes = Recorder(label: "strata_append_batch_size")

    public init(
        pool: BoundedPool,
        logger: Logger,
        maximumBatch: Int = 256,
        makeEventID: @escaping @Sendable () -> UUID = UUIDv7.make
    ) {
        self.pool = pool
        self.logger = logger
        self.maximumBatch = maximumBatch
        self.makeEventID = makeEventID
    }

    public init(
        client: PostgresClient,
        logger: Logger,
        maximumBatch: Int = 256,
        makeEventID: @escaping @Sendable () -> UUID = UUIDv7.make
    ) {
        self.init(
            pool: BoundedPool(client: client), logger: logger, maximumBatch: maximumBatch, makeEventID: makeEventID)
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
            // The commands that queued while this batch waited for a connection in vain would wait as
            // long again, and their callers longer than the deadline promises: they get the same answer.
            if case .failure(let error) = results.first, (error as? DatabaseUnavailable)?.reason == .unreachable {
                let waiting = queue
                queue.removeAll()
                for pending in waiting { pending.continuation.resume(throwing: error) }
            }
        }
        draining = false
    }

    private func commit(_ requests: [Request]) async -> [Result<StoredResponse, any Error>] {
        let attempt = BatchAttempt()
        let (logger, makeEventID) = (logger, makeEventID)
        do {
            return try await pool.withConnection { connection in
                PoolUsage.leased.increment()
                defer { PoolUsage.leased.decrement() }
                return try await Self.commit(
                    requests, on: connection, attempt: attempt, logger: logger, makeEventID: makeEventID)
            }
        } catch {
            return await settle(requests, failedWith: error, attempt: attempt)
        }
    }

    /// Decides and appends the batch in one transaction, and commits it.
    private static func commit(
        _ requests: [Request],
        on connection: PostgresConnection,
        attempt: BatchAttempt,
        logger: Logger,
        makeEventID: @escaping @Sendable () -> UUID
    ) async throws -> [Result<StoredResponse, any Error>] {
        try await connection.perform("BEGIN", logger: logger)
        do {
            let writer = try await EventLogWriter.begin(on: connection, logger: logger)
            var batch = Batch(writer: writer, makeEventID: makeEventID)
            var results: [Result<StoredResponse, any Error>] = []
            for request in requests {
                results.append(try await batch.process(request))
            }
            if let position = batch.lastAppended {
                try await connection.perform("UPDATE projections SET applied_position = \(position)", logger: logger)
            }
            attempt.committing(results, probe: batch.firstAppendedEventID)
            try await connection.perform("COMMIT", logger: logger)
            return results
        } catch {
            // A query on a closed connection is never answered (see BoundedPool); a failed COMMIT has
            // ended the transaction already.
            if !attempt.isCommitting && !connection.isClosed {
                try? await connection.perform("ROLLBACK", logger: logger)
            }
            throw error
        }
    }

    /// Answers a batch whose transaction failed. Before COMMIT nothing of it landed, so every caller
    /// hears the failure. If the connection was lost during COMMIT, the log says whether it landed.
    private func settle(
        _ requests: [Request],
        failedWith error: any Error,
        attempt: BatchAttempt
    ) async -> [Result<StoredResponse, any Error>] {
        let outage = DatabaseUnavailable(error)
        guard let outage, case .committing(let results, let probe) = attempt.phase else {
            if let outage {
                logger.warning(
                    "append batch failed", metadata: ["reason": "\(outage)", "commands": "\(requests.count)"])
            } else {
                logger.error("append batch failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return requests.map { _ in .failure(outage ?? error) }
        }
        // Nothing appended: whether the COMMIT landed changes nothing anyone was told.
        guard let probe else { return results }
        // The batch's own transaction may still be committing: give the question twice the time the batch
        // had, and ask again if the asking connection is lost too (PostgreSQL may be restarting).
        let patient = pool.allowing(work: pool.deadlines.work * 2)
        var lastError: any Error = outage
        for _ in 1...3 {
            do {
                if try await EventLogWriter.wasAppended(probe, pool: patient, logger: logger) {
                    logger.notice(
                        "append batch committed though its connection was lost", metadata: ["event_id": "\(probe)"])
                    return results
                }
                logger.warning("append batch lost with its connection", metadata: ["reason": "\(outage)"])
                return requests.map { _ in .failure(outage) }
            } catch {
                lastError = error
                guard DatabaseUnavailable(error)?.reason == .connectionLost else { break }
            }
        }
        logger.error(
            "append batch outcome unknown",
            metadata: ["event_id": "\(probe)", "error": "\(String(reflecting: lastError))"])
        return requests.map { _ in .failure(DatabaseUnavailable(.outcomeUnknown)) }
    }
}

/// How far a batch got, kept outside the task that runs it, which may never return if its connection
/// dies (see ``BoundedPool``).
final class BatchAttempt: Sendable {
    enum Phase {
        case working
        /// COMMIT is being sent: these are the answers if it lands; `probe` is an event the batch
        /// appended, nil if it appended none.
        case committing([Result<StoredResponse, any Error>], probe: UUID?)
    }

    private let state = Mutex<Phase>(.working)

    var phase: Phase { state.withLock { $0 } }

    var isCommitting: Bool {
        if case .committing = phase { return true }
        return false
    }

    func committing(_ results: [Result<StoredResponse, any Error>], probe: UUID?) {
        state.withLock { $0 = .committing(results, probe: probe) }
    }
}

/// The work of one batch inside its transaction: dataset states as this batch has changed them so far.
struct Batch {
    let writer: EventLogWriter
    let makeEventID: @Sendable () -> UUID
    var known: [UUID: (state: DatasetState, lastPosition: Int64)] = [:]
    /// The last position this batch appended, for the projections' bookkeeping.
    var lastAppended: Int64?
    /// The first event this batch appended: if the connection dies during COMMIT, the log says
    /// whether the batch landed by whether it holds this event.
    var firstAppendedEventID: UUID?

    init(writer: EventLogWriter, makeEventID: @escaping @Sendable () -> UUID) {
        self.writer = writer
        self.makeEventID = makeEventID
    }

    var connection: PostgresConnection { writer.connection }
    var logger: Logger { writer.logger }

    /// Runs one command in a savepoint: a refusal rolls back only its own work and is its caller's answer.
    /// Losing the database is no refusal: it fails the batch.
    mutating func process(_ request: CatalogWriter.Request) async throws -> Result<StoredResponse, any Error> {
        try await connection.perform("SAVEPOINT strata_command", logger: logger)
        let saved = (known, lastAppended, firstAppendedEventID)
        do {
            let response = try await handle(request)
            try await connection.perform("RELEASE SAVEPOINT strata_command", logger: logger)
            return .success(response)
        } catch {
            if DatabaseUnavailable(error) != nil { throw error }
            (known, lastAppended, firstAppendedEventID) = saved
            try await connection.perform("ROLLBACK TO SAVEPOINT strata_command", logger: logger)
            return .failure(error)
        }
    }

    private mutating func handle(_ request: CatalogWriter.Request) async throws -> StoredResponse {
        if let claim = request.idempotency,
            let stored = try await IdempotencyStore.lookup(claim, on: connection, logger: logger)
        {
            return stored
        }
        let outcome: CatalogWriter.Outcome
        if case .createToken(let id, let name, let role, let namespaces, let secret) = request.target {
            outcome = try await applyToken(
                .create(name: name, role: role, namespaces: namespaces, secretSHA256: secret), to: id, request)
        } else if case .revokeToken(let name) = request.target {
            guard let id = try await activeToken(named: name) else { throw AccessError.tokenNotFound(name) }
            outcome = try await applyToken(.revoke, to: id, request)
        } else if case .lineage(let job, let runID, let inputs, let outputs) = request.target {
            outcome = try await recordLineage(job: job, runID: runID, inputs: inputs, outputs: outputs, request)
        } else if case .openLineage(let event) = request.target {
            outcome = try await ingest(event, request)
        } else {
            let (id, command) = try await resolve(request.target, scope: request.scope)
            outcome = try await apply(command, to: id, expectedStreamVersion: request.expectedStreamVersion, request)
        }
        let response = request.respond(outcome)
        if let claim = request.idempotency {
            try await IdempotencyStore.store(response, for: claim, on: connection, logger: logger)
        }
        return response
    }

    /// Decides `command` against the dataset, appends what it decided and projects it.
    mutating func apply(
        _ command: DatasetCommand,
        to id: UUID,
        expectedStreamVersion: Int64?,
        _ request: CatalogWriter.Request
    ) async throws -> CatalogWriter.Outcome {
        let (before, lastPosition) = try await state(of: id)
        if before.exists && !request.scope.includes(before.namespace) { throw DomainError.datasetNotFound }
        if let expected = expectedStreamVersion, expected != before.streamVersion {
            throw CatalogError.versionConflict(expected: expected, actual: before.streamVersion)
        }
        let events = try DatasetDecider.decide(command, state: before)
        if case .create(let namespace, let name, _, _) = command {
            guard request.scope.includes(namespace) else { throw AccessError.namespaceOutOfScope(namespace) }
            try await checkNameIsFree(namespace: namespace, name: name)
        }
        for case .versionDrafted(let drafted) in events {
            _ = try await resolveInputs(
                drafted.version.fields.parents.map { ($0.datasetID, $0.version) }, scope: request.scope)
        }
        let context = EventContext(actor: request.metadata.actor, occurredAt: request.occurredAt)
        var state = before
        var position = lastPosition
        if !events.isEmpty {
            let metadata = request.metadata.encoded()
            let newEvents = try events.map { event in
                NewEvent(
                    eventID: makeEventID(), type: event.type, schemaVersion: DatasetEvent.schemaVersion,
                    data: try event.encodedData(), metadata: metadata, occurredAt: request.occurredAt
                )
            }
            firstAppendedEventID = firstAppendedEventID ?? newEvents.first?.eventID
            let appended = try await writer.append(
                newEvents,
                to: id,
                expectedVersion: before.exists ? .exactly(before.streamVersion) : .noStream
            )
            for (event, eventPosition) in zip(events, appended.positions) {
                state.apply(event, context: context)
                let changes = DatasetProjector.changes(after: DatasetLifecycle(state), event: event)
                try await DatasetProjector.apply(changes, at: eventPosition, on: connection, logger: logger)
                Counter(label: "strata_events_appended_total", dimensions: [("type", event.type)]).increment()
            }
            position = appended.positions.last ?? position
            known[id] = (state, position)
            lastAppended = position
        }
        return CatalogWriter.Outcome(state: state, events: events, position: position)
    }

    /// One `LineageRecorded` on each output's stream, all or none. A version left out means the
    /// dataset's current one, as of this transaction.
    mutating func recordLineage(
        job: DatasetEvent.LineageRecorded.Job?,
        runID: String?,
        inputs: [CatalogWriter.Request.LineageEnd],
        outputs: [CatalogWriter.Request.LineageEnd],
        _ request: CatalogWriter.Request
    ) async throws -> CatalogWriter.Outcome {
        let resolvedInputs = try await resolveInputs(inputs.map { ($0.datasetID, $0.version) }, scope: request.scope)
        var events: [DatasetEvent] = []
        var last: CatalogWriter.Outcome?
        for output in outputs {
            let (state, _) = try await state(of: output.datasetID)
            guard state.exists, request.scope.includes(state.namespace) else { throw DomainError.datasetNotFound }
            guard let version = output.version ?? state.currentVersion else { throw DomainError.datasetNotFound }
            let outcome = try await apply(
                .recordLineage(version: version, inputs: resolvedInputs, job: job, runID: runID),
                to: output.datasetID, expectedStreamVersion: nil, request
            )
            events += outcome.events
            last = outcome
        }
        guard var outcome = last else { throw DomainError.datasetNotFound }
        outcome.events = events
        return outcome
    }

    /// Checks that each input exists (within `scope`), is not retired and has the version named (default:
    /// its current one), and answers the versions.
    mutating func resolveInputs(_ inputs: [(UUID, Int?)], scope: NamespaceScope) async throws -> [VersionRef] {
        var resolved: [VersionRef] = []
        for (index, (id, version)) in inputs.enumerated() {
            let (state, _) = try await state(of: id)
            guard state.exists, scope.includes(state.namespace), let current = state.currentVersion else {
                throw DomainError.invalidLineageInput(index: index, datasetID: id, reason: .datasetNotFound)
            }
            guard state.status != .retired else {
                throw DomainError.invalidLineageInput(index: index, datasetID: id, reason: .retired)
            }
            let number = version ?? current
            guard state.version(number) != nil else {
                throw DomainError.invalidLineageInput(index: index, datasetID: id, reason: .versionNotFound(number))
            }
            resolved.append(VersionRef(datasetID: id, version: number))
        }
        return resolved
    }

    /// A clone is a create on a new stream, made from the source's current version.
    mutating func resolve(_ target: CatalogWriter.Request.Target, scope: NamespaceScope) async throws
        -> (UUID, DatasetCommand)
    {
        switch target {
        case .dataset(let id, let command):
            return (id, command)
        case .lineage, .openLineage, .createToken, .revokeToken:
            preconditionFailure("lineage, OpenLineage and token writes are handled before resolve(_:)")
        case .clone(let sourceID, let newID, let namespace, let name, let changeNote):
            let (source, _) = try await state(of: sourceID)
            guard source.exists, scope.includes(source.namespace) else { throw DomainError.datasetNotFound }
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

    mutating func state(of id: UUID) async throws -> (DatasetState, Int64) {
        if let known = known[id] { return known }
        let events = try await writer.readStream(id)
        let state = DatasetDecider.state(of: id, from: try events.map { try $0.datasetEvent() })
        let result = (state, events.last?.position ?? 0)
        known[id] = result
        return result
    }

    /// Decides `command` against the token's stream, appends what it decided and projects it.
    mutating func applyToken(_ command: TokenCommand, to id: UUID, _ request: CatalogWriter.Request) async throws
        -> CatalogWriter.Outcome
    {
        var state = TokenState(id: id)
        for recorded in try await writer.readStream(id) {
            state.apply(try TokenEvent.decode(type: recorded.type, data: recorded.data))
        }
        let events = try TokenDecider.decide(command, state: state)
        if case .create(let name, _, _, _) = command, try await activeToken(named: name) != nil {
            throw AccessError.tokenNameTaken(name)
        }
        let metadata = request.metadata.encoded()
        let newEvents = events.map { event in
            NewEvent(
                eventID: makeEventID(), type: event.type, schemaVersion: TokenEvent.schemaVersion,
                data: event.encodedData(), metadata: metadata, occurredAt: request.occurredAt)
        }
        firstAppendedEventID = firstAppendedEventID ?? newEvents.first?.eventID
        let appended = try await writer.append(
            newEvents, to: id, expectedVersion: state.exists ? .exactly(state.streamVersion) : .noStream)
        for (event, position) in zip(events, appended.positions) {
            state.apply(event)
            try await DatasetProjector.apply(
                DatasetProjector.changes(ofToken: id, event: event), at: position, on: connection, logger: logger)
            Counter(label: "strata_events_appended_total", dimensions: [("type", event.type)]).increment()
        }
        let position = appended.positions.last ?? 0
        lastAppended = position
        return CatalogWriter.Outcome(token: state, recordedAt: writer.recordedAt, position: position)
    }

    /// The stream of the token that holds `name` and is not revoked.
    func activeToken(named name: String) async throws -> UUID? {
        try await connection.query(
            "SELECT token_id FROM api_tokens WHERE name = \(name) AND valid_to IS NULL", logger: logger
        ).collect().first?.decode(UUID.self)
    }

    func checkNameIsFree(namespace: String, name: String) async throws {
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
