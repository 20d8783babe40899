import Foundation
import Metrics
import PostgresNIO
import StrataCore
import Synchronization

/// The append pipeline: every write to the catalog goes through here.
///
/// Appends hold the log's lock until they commit, so one transaction per command would cost one disk
/// flush per command. Instead, the commands that arrive while a batch decides wait together and form
/// the next batch, which costs a constant number of round trips however many commands it holds (see
/// ``BatchRun``): what its commands need is loaded in a few queries, each command is decided in memory,
/// in order, seeing the ones before it (a refused one appends nothing and spoils none), and the events,
/// projection rows and idempotency answers of all of them are written with one statement per table
/// and one COMMIT. With one client a batch is one command. Two batches overlap at most: the next one
/// begins while the one before writes and commits, and waits in PostgreSQL for its lock.
///
/// Every batch is bounded in time (see ``BoundedPool``) and may lose its connection at any point. A
/// batch that fails before its COMMIT is sent fails as a whole: nothing of it landed. If the connection
/// dies during the COMMIT itself, the outcome is found out from the log, by one of the batch's event
/// ids, before anyone is answered. Either way the pipeline goes on with the next batch; the commands
/// submitted alone of a batch that lost its connection and landed nothing go into it again (a few times
/// at most), since that is what PostgreSQL restarting looks like.
public actor CatalogWriter {
    /// One write: what to do, to which dataset, and the request's envelope.
    public struct Request: Sendable {
        public typealias Target = CatalogCommand
        public typealias LineageEnd = CatalogCommand.LineageEnd

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
        /// For an idempotent request the catalog's rules refuse: the response to store with its key, so
        /// that a retry is answered the same refusal (as ``AnsweredRefusal``) rather than decided again
        /// against a catalog that may have changed since. Nil stores nothing.
        public var refusal: (@Sendable (any Error) -> StoredResponse?)?

        /// Who asks, when, within which namespaces, with which `If-Match`.
        var context: CommandContext {
            CommandContext(
                actor: metadata.actor, occurredAt: occurredAt, scope: scope,
                expectedStreamVersion: expectedStreamVersion)
        }

        public init(
            target: Target,
            scope: NamespaceScope = .all,
            expectedStreamVersion: Int64? = nil,
            metadata: EventMetadata,
            occurredAt: Date,
            idempotency: IdempotencyClaim? = nil,
            refusal: (@Sendable (any Error) -> StoredResponse?)? = nil,
            respond: @escaping @Sendable (Outcome) -> StoredResponse
        ) {
            self.target = target
            self.scope = scope
            self.expectedStreamVersion = expectedStreamVersion
            self.metadata = metadata
            self.occurredAt = occurredAt
            self.idempotency = idempotency
            self.refusal = refusal
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
        var answer: @Sendable (Result<StoredResponse, any Error>) -> Void
        /// How many more times the command is decided again if its batch loses its connection with
        /// nothing appended. None for the commands of ``submit(all:)``, which are promised to be decided
        /// in order: once the batch after theirs has begun, theirs would come after it.
        var retriesLeft: Int
        /// The ``submit(all:)`` call it came with, nil if it came alone.
        var group: UInt64?
    }

    private let pool: BoundedPool
    private let logger: Logger
    private let makeEventID: @Sendable () -> UUID
    /// The most commands one batch decides.
    public nonisolated let maximumBatch: Int
    private var queue: [Pending] = []
    /// How many ``submit(all:)`` calls there have been: each one's commands share its number.
    private var groups: UInt64 = 0
    /// Whether a batch has begun and not yet decided its commands: the commands that queue meanwhile
    /// wait for it to decide, and form the next batch then.
    private var deciding = false
    private let batchSizes = Recorder(label: "strata_append_batch_size")
    private let batchesAgain = Counter(label: "strata_append_batches_retried_total")
    /// What the last batch cost, for tests that hold the pipeline to a constant number of statements.
    public private(set) var lastBatch = BatchStatistics()

    public init(
        pool: BoundedPool,
        logger: Logger,
        maximumBatch: Int = 256,
        makeEventID: @escaping @Sendable () -> UUID = UUIDv7.make
    ) {
        precondition(maximumBatch > 0, "a batch holds at least one command")
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
            queue.append(
                Pending(
                    request: request, answer: { continuation.resume(with: $0) },
                    retriesLeft: BoundedPool.retriesAfterLostConnection))
            beginBatchIfDue()
        }
    }

    /// Queues `requests` one after another, none of anyone else's between them, and answers each one's
    /// outcome once the batches holding them have committed. Each is decided seeing the ones before it,
    /// as if they had been submitted one at a time and waited for, and a refused one changes nothing for
    /// the others; but they share batches, where one at a time each would wait for a commit of its own
    /// (an OpenLineage batch of 100 events is one batch, not 100).
    public func submit(all requests: [Request]) async -> [Result<StoredResponse, any Error>] {
        guard !requests.isEmpty else { return [] }
        groups += 1
        return await withCheckedContinuation { continuation in
            let answers = Answers(count: requests.count) { continuation.resume(returning: $0) }
            for (index, request) in requests.enumerated() {
                queue.append(
                    Pending(request: request, answer: { answers.set(index, $0) }, retriesLeft: 0, group: groups))
            }
            beginBatchIfDue()
        }
    }

    /// Begins the next batch, unless one is still deciding. A batch begins while the one before writes
    /// and commits: its BEGIN and the lock wait in PostgreSQL, so it starts loading the moment the one
    /// before has committed, without waiting for a connection and a round trip first.
    private func beginBatchIfDue() {
        guard !deciding, !queue.isEmpty else { return }
        deciding = true
        let batch = Array(queue.prefix(maximumBatch))
        queue.removeFirst(batch.count)
        batchSizes.record(batch.count)
        Task { await self.run(batch) }
    }

    private func decided() {
        deciding = false
        beginBatchIfDue()
    }

    private func run(_ batch: [Pending]) async {
        let attempt = BatchAttempt { [weak self] in Task { await self?.decided() } }
        let results = await commit(batch.map(\.request), attempt: attempt)
        // A command whose batch lost its connection appended nothing (``settle(_:failedWith:attempt:)``
        // makes sure), so it is decided again in a later batch, ahead of the commands queued since, as
        // its caller would on a 503: a PostgreSQL restart then costs the caller time, not an error.
        var again: [Pending] = []
        for (pending, result) in zip(batch, results) {
            if case .failure(let error) = result, (error as? DatabaseUnavailable)?.reason == .connectionLost,
                pending.retriesLeft > 0
            {
                var retried = pending
                retried.retriesLeft -= 1
                again.append(retried)
            } else {
                pending.answer(result)
            }
        }
        if !again.isEmpty {
            let attempt = BoundedPool.retriesAfterLostConnection - again.map(\.retriesLeft).min()!
            try? await eventLoopSleep(for: BoundedPool.pause(beforeRetry: attempt))
            logger.notice(
                "append batch lost its connection; its commands go again", metadata: ["commands": "\(again.count)"])
            batchesAgain.increment()
            // Behind the rest of a group a batch already began: none of anyone else's between its commands.
            let group = queue.first?.group
            let at = group == nil ? 0 : queue.firstIndex { $0.group != group } ?? queue.count
            queue.insert(contentsOf: again, at: at)
        }
        // The commands that queued while this batch waited for a connection in vain would wait as long
        // again, and their callers longer than the deadline promises: they get the same answer.
        if case .failure(let error) = results.first, (error as? DatabaseUnavailable)?.reason == .unreachable {
            let waiting = queue
            queue.removeAll()
            for pending in waiting { pending.answer(.failure(error)) }
        }
        // A batch that failed before it decided frees the way here.
        attempt.decided()
        beginBatchIfDue()
    }

    private func commit(_ requests: [Request], attempt: BatchAttempt) async -> [Result<StoredResponse, any Error>] {
        let (logger, makeEventID) = (logger, makeEventID)
        do {
            let (results, statistics) = try await pool.withConnection { connection in
                return try await Self.commit(
                    requests, on: connection, attempt: attempt, logger: logger, makeEventID: makeEventID)
            }
            lastBatch = statistics
            return results
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
    ) async throws -> ([Result<StoredResponse, any Error>], BatchStatistics) {
        do {
            var run = BatchRun(connection: connection, logger: logger, makeEventID: makeEventID)
            let results = try await run.process(requests, attempt: attempt)
            return (results, run.statistics)
        } catch {
            // A query on a closed connection is never answered (see BoundedPool); once COMMIT is sent, the
            // transaction ends with it, committed or (after a failed statement) rolled back.
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
        // Nothing appended and nothing kept: whether the COMMIT landed changes nothing anyone was told.
        guard let probe else { return results }
        // The batch's own transaction may still be committing: give the question twice the time the batch
        // had. The question is a read, asked again if the asking connection is lost too (PostgreSQL may be
        // restarting).
        let patient = pool.allowing(work: pool.deadlines.work * 2)
        do {
            if try await EventLogWriter.landed(probe, pool: patient, logger: logger) {
                logger.notice(
                    "append batch committed though its connection was lost", metadata: ["probe": "\(probe)"])
                return results
            }
            logger.warning("append batch lost with its connection", metadata: ["reason": "\(outage)"])
            return requests.map { _ in .failure(outage) }
        } catch {
            logger.error(
                "append batch outcome unknown",
                metadata: ["probe": "\(probe)", "error": "\(String(reflecting: error))"])
        }
        return requests.map { _ in .failure(DatabaseUnavailable(.outcomeUnknown)) }
    }
}

/// The answers to requests submitted together, handed over once the last is in.
private final class Answers: Sendable {
    private let state: Mutex<(results: [Result<StoredResponse, any Error>?], missing: Int)>
    private let done: @Sendable ([Result<StoredResponse, any Error>]) -> Void

    init(count: Int, done: @escaping @Sendable ([Result<StoredResponse, any Error>]) -> Void) {
        self.state = Mutex((Array(repeating: nil, count: count), count))
        self.done = done
    }

    func set(_ index: Int, _ result: Result<StoredResponse, any Error>) {
        let all = state.withLock { state -> [Result<StoredResponse, any Error>]? in
            precondition(state.results[index] == nil, "request \(index) answered twice")
            state.results[index] = result
            state.missing -= 1
            return state.missing == 0 ? state.results.map { $0! } : nil
        }
        if let all { done(all) }
    }
}

/// How far a batch got, kept outside the task that runs it, which may never return if its connection
/// dies (see ``BoundedPool``).
final class BatchAttempt: Sendable {
    enum Phase {
        case working
        /// COMMIT is being sent: these are the answers if it lands; `probe` tells whether it did, nil if
        /// the batch appended nothing and kept no answer.
        case committing([Result<StoredResponse, any Error>], probe: EventLogWriter.LandingProbe?)
    }

    private let state = Mutex<Phase>(.working)
    private let hasDecided = Mutex(false)
    private let onDecided: @Sendable () -> Void

    /// `onDecided` is called once, when the batch has decided its commands or has failed before.
    init(onDecided: @escaping @Sendable () -> Void = {}) {
        self.onDecided = onDecided
    }

    var phase: Phase { state.withLock { $0 } }

    var isCommitting: Bool {
        if case .committing = phase { return true }
        return false
    }

    /// The batch has decided its commands, and only its writes and COMMIT are left; the first call
    /// counts.
    func decided() {
        let first = hasDecided.withLock { decided in
            defer { decided = true }
            return !decided
        }
        if first { onDecided() }
    }

    func committing(_ results: [Result<StoredResponse, any Error>], probe: EventLogWriter.LandingProbe?) {
        state.withLock { $0 = .committing(results, probe: probe) }
    }
}
