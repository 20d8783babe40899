import Foundation
import Metrics
import PostgresNIO
import StrataCore

/// One batch of the append pipeline: its transaction from BEGIN to COMMIT.
///
/// Its cost is a constant number of round trips, whatever the number of commands, and on the usual
/// path three. The first sends BEGIN, takes the log's append lock and reads where the log goes on, with
/// the idempotency answers already stored and what the commands need (the streams, names and tokens
/// they name); a name found or a clone's source may lead to a few more rounds of loading, four in all
/// at most. Then every command is decided in memory, in order, by the catalog's rules in the core —
/// each seeing the ones before it, a refused one changing nothing — and the second round writes all of
/// them: the end of the projection rows they close (one UPDATE per table), then one prepared statement
/// of several parts for the events, their projection rows (made by the code a rebuild uses) and the
/// idempotency answers. The third is COMMIT.
///
/// That the rows and answers can go with the events is because the batch gives its events their
/// positions: the ones after where the log goes on, which no one else can take while it holds the lock.
struct BatchRun {
    let connection: PostgresConnection
    let logger: Logger
    let makeEventID: @Sendable () -> UUID
    private(set) var statistics = BatchStatistics()
    /// The first event this batch appends: if the connection dies during COMMIT, the log says whether
    /// the batch landed by whether it holds this event.
    private(set) var firstEventID: UUID?
    /// The usage pins of each dataset loaded, as its current state row sums them up: the one part of
    /// its projected lifecycle that the decider's state leaves out.
    private var usage: [UUID: (count: Int, last: Int64?)] = [:]

    init(connection: PostgresConnection, logger: Logger, makeEventID: @escaping @Sendable () -> UUID) {
        self.connection = connection
        self.logger = logger
        self.makeEventID = makeEventID
    }

    /// What became of one request before anything was written.
    private enum Plan {
        case answered(StoredResponse)
        /// Refused before deciding: its key was used for another request.
        case refused(any Error)
        /// Refused by the catalog's rules: an answer to keep under its key, if it has one.
        case ruledOut(any Error)
        /// Accepted: its events (by index into the batch's), and the state of what it is about; for one
        /// that appends nothing, `reflects` says which position its answer reflects (nil for one that
        /// appends: its last event's).
        case accepted(
            events: Range<Int>, subject: UUID?, dataset: DatasetState?, token: TokenState?, reflects: Reflected?)
        /// The same key and request as an earlier one of this batch: the same answer.
        case sameAs(Int)
    }

    /// What the answer of a write that appended nothing reflects: its dataset's last event, or, about no
    /// dataset, the last event before it in the batch or else the log's head.
    private enum Reflected {
        /// An event of this batch, by index.
        case position(Int)
        /// A position the log held before the batch.
        case known(Int64)
        case atHead

        init(subject: UUID?, events: [StreamEvent], loaded: [UUID: Int64]) {
            if let subject {
                if let index = events.lastIndex(where: { $0.stream == subject }) {
                    self = .position(index)
                } else {
                    self = loaded[subject].map(Reflected.known) ?? .atHead
                }
            } else {
                self = events.isEmpty ? .atHead : .position(events.count - 1)
            }
        }
    }

    /// Begins the batch's transaction, decides its commands, writes what they do and commits; answers
    /// each request. `attempt` hears when the batch has decided (the next one may begin then) and what
    /// the answers are before COMMIT is sent (if its connection is lost, the log says whether it landed).
    mutating func process(_ requests: [CatalogWriter.Request], attempt: BatchAttempt) async throws
        -> [Result<StoredResponse, any Error>]
    {
        // Read.
        var view = CatalogView()
        var lastPositions: [UUID: Int64] = [:]
        let storedStatement = Self.storedAnswersStatement(requests)
        let firstRound = LoadRound(needs: Self.needs(of: requests, in: view))
        // Outside the transaction: a connection's first batch prepares the load of streams it executes.
        try await connection.prepare(LoadStreams.self, logger: logger)
        let (writer, nextPosition, firstAnswers) = try await EventLogWriter.beginTransaction(
            on: connection, logger: logger, settings: [Self.planOnce],
            alongside: [storedStatement].compactMap { $0 } + firstRound.statements,
            then: NoPreparedStatement?.none)
        count(statements: 3 + firstAnswers.count, answers: firstAnswers)
        var answers = firstAnswers[...]
        let stored = try storedStatement.map { _ in try Self.storedAnswers(answers.removeFirst()) } ?? [:]
        try apply(firstRound, &answers, to: &view, lastPositions: &lastPositions)
        try await load(into: &view, lastPositions: &lastPositions, for: requests)
        let loaded = view

        // Decide, in order, in memory.
        var plans: [Plan] = []
        var events: [StreamEvent] = []
        var claims: [ClaimKey: Int] = [:]
        for (index, request) in requests.enumerated() {
            if let claim = request.idempotency {
                let key = ClaimKey(claim)
                if let prior = stored[key] {
                    plans.append(
                        prior.hash == claim.requestHash
                            ? .answered(prior.response) : .refused(CatalogError.idempotencyKeyReused))
                    continue
                }
                if let earlier = claims[key] {
                    let same = requests[earlier].idempotency?.requestHash == claim.requestHash
                    plans.append(same ? .sameAs(earlier) : .refused(CatalogError.idempotencyKeyReused))
                    continue
                }
            }
            do {
                let decision = try CatalogDecider.decide(request.target, context: request.context, in: &view)
                let range = events.count..<(events.count + decision.events.count)
                // Taken now, before the requests after it add events: its answer shows the state as now.
                let reflects =
                    range.isEmpty ? Reflected(subject: decision.subject, events: events, loaded: lastPositions) : nil
                events += decision.events
                let subject = decision.subject
                plans.append(
                    .accepted(
                        events: range, subject: subject,
                        dataset: subject.flatMap { view.knows(dataset: $0) ? view.dataset($0) : nil },
                        token: subject.flatMap { view.tokenStreams[$0] }, reflects: reflects))
                if let claim = request.idempotency { claims[ClaimKey(claim)] = index }
            } catch {
                plans.append(.ruledOut(error))
                if let claim = request.idempotency { claims[ClaimKey(claim)] = index }
            }
        }

        // Answer, with the positions the events will take.
        let positions = events.indices.map { nextPosition + Int64($0) }
        for (event, position) in zip(events, positions) { lastPositions[event.stream] = position }
        // The log's head, for a write that appended nothing and is about no dataset, with no event before it
        // in the batch (an OpenLineage START). Where this batch's events begin, less one: no event lies
        // between the head and them, and once they land the log reaches past it. A batch that appends
        // nothing asks the log under the lock: the sequence `nextPosition` comes from runs ahead of the log
        // after a batch that did not commit, past any position the log holds.
        var head = nextPosition - 1
        if events.isEmpty,
            plans.contains(where: { if case .accepted(_, _, _, _, .atHead?) = $0 { true } else { false } })
        {
            head =
                try await pipelined(["SELECT coalesce(max(global_position), 0) FROM events"]).first?.first?
                .decode(Int64.self) ?? 0
        }
        var results: [Result<StoredResponse, any Error>] = []
        var fresh: [(IdempotencyClaim, StoredResponse)] = []
        for (index, plan) in plans.enumerated() {
            switch plan {
            case .answered(let response):
                results.append(
                    response.status >= 400 ? .failure(AnsweredRefusal(response: response)) : .success(response))
            case .refused(let error):
                results.append(.failure(error))
            case .ruledOut(let error):
                results.append(.failure(error))
                // A stale If-Match stays stale (a stream's version only grows), so its refusal is decided again
                // rather than kept: the same request is refused alike, and a retry under the same key with the
                // version just read, the usual answer to a 412, goes through.
                if case CatalogError.versionConflict = error { continue }
                if let claim = requests[index].idempotency, let response = requests[index].refusal?(error) {
                    fresh.append((claim, response))
                }
            case .sameAs(let earlier):
                results.append(results[earlier])
            case .accepted(let range, let subject, let dataset, let token, let reflects):
                let mine = events[range]
                let position: Int64
                switch reflects {
                case nil: position = positions[range.upperBound - 1]
                case .position(let index)?: position = nextPosition + Int64(index)
                case .known(let known)?: position = known
                case .atHead?: position = head
                }
                var outcome = CatalogWriter.Outcome(
                    state: dataset ?? DatasetState(id: subject ?? UUID()),
                    events: mine.compactMap { if case .dataset(let event) = $0.event { event } else { nil } },
                    position: position)
                if let token { outcome.token = (token, writer.recordedAt) }
                let response = requests[index].respond(outcome)
                results.append(.success(response))
                if let claim = requests[index].idempotency { fresh.append((claim, response)) }
            }
        }

        // Write, then commit: the end of the projection rows the events close, then the prepared statement
        // for the events, their projection rows and the idempotency answers, then COMMIT. A statement
        // that fails aborts the transaction, and its error, the first thrown, tells that nothing landed.
        attempt.decided()
        let (appended, counts) = eventRows(events, at: positions, for: requests, plans: plans, from: loaded)
        let (projected, closings) = try project(events, at: positions, from: loaded)
        if !events.isEmpty || !fresh.isEmpty {
            let write = try Self.writeStatement(
                appended, recordedAt: writer.recordedAt, projected: projected, answers: fresh)
            if write.sql == BatchWrite.sql {
                _ = try await pipelined([closings].compactMap { $0 }, then: BatchWrite(bindings: write.binds))
            } else {
                assertionFailure("a batch's write statement is not the prepared one")
                _ = try await pipelined([closings, write].compactMap { $0 })
            }
        }
        attempt.committing(
            results,
            probe: firstEventID.map(EventLogWriter.LandingProbe.event)
                ?? fresh.first.map { .answer(scope: $0.0.scope, key: $0.0.key) })
        _ = try await pipelined(["COMMIT"])
        for (type, count) in counts {
            Counter(label: "strata_events_appended_total", dimensions: [("type", type)]).increment(by: count)
        }
        return results
    }

    /// What the requests need that `view` lacks.
    private static func needs(of requests: [CatalogWriter.Request], in view: CatalogView) -> CatalogDecider.Needs {
        var needs = CatalogDecider.Needs()
        for request in requests {
            needs.formUnion(CatalogDecider.needs(request.target, context: request.context, in: view))
        }
        return needs
    }

    // MARK: writing

    /// The statement that writes a batch: its events, their projection rows, the idempotency answers
    /// and where the log's sequence goes on. Every part is there whatever the batch holds (a table
    /// without rows gets empty arrays), so that its text is the same for every batch, ``BatchWrite``'s.
    static func writeStatement(
        _ events: EventRows, recordedAt: Date, projected: InsertRows, answers: [(IdempotencyClaim, StoredResponse)]
    ) throws -> PostgresQuery {
        var statement = WithStatement()
        statement.add(
            """
            INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type, schema_version,
                                data, metadata, occurred_at, recorded_at)
            OVERRIDING SYSTEM VALUE
            SELECT position, stream, version, id, type, schema_version, data::json, metadata::jsonb, occurred_at,
                   \(statement.bind(recordedAt))
            FROM unnest(\(statement.bind(events.positions)), \(statement.bind(events.streams)),
                        \(statement.bind(events.versions)), \(statement.bind(events.ids)), \(statement.bind(events.types)),
                        \(statement.bind(events.schemaVersions)), \(statement.bind(events.data)),
                        \(statement.bind(events.metadata)), \(statement.bind(events.occurredAt)))
                 AS e(position, stream, version, id, type, schema_version, data, metadata, occurred_at)
            ORDER BY position
            """)
        try projected.insert(into: &statement, appliedPosition: events.positions.last ?? 0)
        try store(answers, into: &statement)
        let final = EventLogWriter.advanceSequence(to: statement.bind(events.positions.last ?? 0))
        guard let query = statement.query(finally: final) else { preconditionFailure("a statement of parts has none") }
        return query
    }

    /// ``writeStatement(_:recordedAt:projected:answers:)``, prepared: parsed once per connection and,
    /// under the batch's `plan_cache_mode`, planned once. Parsed and planned for each batch, it cost
    /// PostgreSQL about half a millisecond before it ran, under the lock.
    struct BatchWrite: PostgresPreparedStatement {
        static let sql = {
            do {
                return try BatchRun.writeStatement(
                    EventRows(), recordedAt: Date(), projected: InsertRows(), answers: []
                )
                .sql
            } catch {
                preconditionFailure("the write statement of an empty batch cannot be made: \(error)")
            }
        }()

        var bindings: PostgresBindings

        func makeBindings() throws -> PostgresBindings { bindings }
        func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
    }

    /// The columns of the events a batch appends, in the order decided.
    struct EventRows {
        var positions: [Int64] = []
        var streams: [UUID] = []
        var versions: [Int64] = []
        var ids: [UUID] = []
        var types: [String] = []
        var schemaVersions: [Int] = []
        var data: [String] = []
        var metadata: [String] = []
        var occurredAt: [Date] = []
    }

    /// The rows of every accepted event, in the order decided, at `positions`, and how many events of
    /// each type there are.
    ///
    /// The positions are given, not drawn in the INSERT, so that the rows and answers made with them
    /// before the INSERT answers are right by construction. Only a writer that appends without the lock
    /// could take one of them first, and then the INSERT fails on the log's primary key.
    private mutating func eventRows(
        _ events: [StreamEvent], at positions: [Int64], for requests: [CatalogWriter.Request], plans: [Plan],
        from loaded: CatalogView
    ) -> (EventRows, counts: [String: Int]) {
        var owner = [Int](repeating: 0, count: events.count)
        for (index, plan) in plans.enumerated() {
            if case .accepted(let range, _, _, _, _) = plan { for event in range { owner[event] = index } }
        }
        var versions: [UUID: Int64] = [:]
        var rows = EventRows()
        rows.positions = positions
        var counts: [String: Int] = [:]
        for (index, event) in events.enumerated() {
            let request = requests[owner[index]]
            let version =
                (versions[event.stream]
                    ?? (loaded.knows(dataset: event.stream)
                        ? loaded.dataset(event.stream).streamVersion : loaded.token(event.stream).streamVersion))
                + 1
            versions[event.stream] = version
            let id = makeEventID()
            firstEventID = firstEventID ?? id
            rows.streams.append(event.stream)
            rows.versions.append(version)
            rows.ids.append(id)
            switch event.event {
            case .dataset(let datasetEvent):
                rows.types.append(datasetEvent.type)
                rows.data.append(datasetEvent.encodedData())
                rows.schemaVersions.append(DatasetEvent.schemaVersion)
            case .token(let tokenEvent):
                rows.types.append(tokenEvent.type)
                rows.data.append(tokenEvent.encodedData())
                rows.schemaVersions.append(TokenEvent.schemaVersion)
            }
            rows.metadata.append(request.metadata.encoded())
            rows.occurredAt.append(request.occurredAt)
            counts[rows.types[index], default: 0] += 1
        }
        return (rows, counts)
    }

    /// The projection rows of the batch's events, made by the code a rebuild replays the log with, going
    /// on from the streams as they were loaded, and the statement that ends the rows they close, to be
    /// sent first.
    private func project(_ events: [StreamEvent], at positions: [Int64], from loaded: CatalogView) throws -> (
        InsertRows, closings: PostgresQuery?
    ) {
        var replay = ProjectionReplay<InsertRows>.continuing()
        for stream in Set(events.map(\.stream)) {
            if let token = loaded.tokenStreams[stream] {
                replay.continueToken(from: token)
            } else {
                var lifecycle = DatasetLifecycle(loaded.dataset(stream))
                (lifecycle.usageCount, lifecycle.lastUsed) = usage[stream] ?? (0, nil)
                replay.continueDataset(from: lifecycle)
            }
        }
        for (event, position) in zip(events, positions) {
            try replay.apply(event.event, of: event.stream, at: position)
        }
        replay.closeOut()
        let rows = replay.takePending()
        return (rows, rows.closings.statement)
    }

    /// Adds the INSERT keeping the answers to requests that carried an `Idempotency-Key` to `statement`.
    private static func store(_ answers: [(IdempotencyClaim, StoredResponse)], into statement: inout WithStatement)
        throws
    {
        let headers = try answers.map { String(decoding: try JSONEncoder().encode($0.1.headers), as: UTF8.self) }
        statement.add(
            """
            INSERT INTO idempotency_keys (scope, key, request_hash, status, headers, body)
            SELECT scope, key, hash, status, headers::jsonb, body
            FROM unnest(\(statement.bind(answers.map(\.0.scope))), \(statement.bind(answers.map(\.0.key))),
                        \(statement.bind(answers.map(\.0.requestHash))), \(statement.bind(answers.map(\.1.status))),
                        \(statement.bind(headers)), \(statement.bind(answers.map(\.1.body))))
                 AS a(scope, key, hash, status, headers, body)
            """)
    }

    // MARK: reading

    /// An `Idempotency-Key` as stored: its scope and key.
    private struct ClaimKey: Hashable {
        var scope: String
        var key: String
        init(_ claim: IdempotencyClaim) {
            scope = claim.scope
            key = claim.key
        }
    }

    /// The query for the answers already given to the keys the requests carry; nil when they carry none.
    private static func storedAnswersStatement(_ requests: [CatalogWriter.Request]) -> PostgresQuery? {
        let claims = requests.compactMap(\.idempotency)
        guard !claims.isEmpty else { return nil }
        return """
            SELECT k.scope, k.key, k.request_hash, k.status, k.headers::text, k.body
            FROM unnest(\(claims.map(\.scope)), \(claims.map(\.key))) AS c(scope, key)
            JOIN idempotency_keys k ON k.scope = c.scope AND k.key = c.key
            """
    }

    private static func storedAnswers(_ rows: [PostgresRow]) throws -> [ClaimKey: (
        hash: String, response: StoredResponse
    )] {
        var answers: [ClaimKey: (hash: String, response: StoredResponse)] = [:]
        for row in rows {
            let (scope, key, hash, status, headers, body) = try row.decode(
                (String, String, String, Int, String, String).self)
            let response = StoredResponse(
                status: status, headers: try JSONDecoder().decode([String: String].self, from: Data(headers.utf8)),
                body: body)
            answers[ClaimKey(IdempotencyClaim(scope: scope, key: key, requestHash: hash))] = (hash, response)
        }
        return answers
    }

    /// The streams statement runs on every batch that touches an existing dataset, and planning it for
    /// each batch's array of ids took twice as long as running it, under the lock; its generic plan,
    /// made once per connection, reads the same rows (PostgreSQL would keep planning it anew, since a
    /// generic plan for arrays of any length looks dearer than a custom one).
    private static let planOnce: PostgresQuery = "SET LOCAL plan_cache_mode = force_generic_plan"

    /// One round of loading: the statements that load what the commands need, sent together, the
    /// streams last.
    private struct LoadRound {
        var needs: CatalogDecider.Needs
        var names: (statement: PostgresQuery, keyed: [ByteBuffer: CatalogView.Name])?
        var tokenNames: PostgresQuery?
        var streams: LoadStreams?

        init(needs: CatalogDecider.Needs) {
            self.needs = needs
            names = BatchRun.namesStatement(needs.names)
            tokenNames = BatchRun.tokenNamesStatement(needs.tokenNames)
            streams = BatchRun.streamsStatement(needs.datasets, histories: needs.histories, tokens: needs.tokenStreams)
        }

        /// The round's statements, the streams last.
        var statements: [PostgresQuery] {
            [names?.statement, tokenNames, streams?.execution].compactMap { $0 }
        }
    }

    /// Folds the answers to `round`'s statements, which come first in `answers`, into `view`.
    private mutating func apply(
        _ round: LoadRound, _ answers: inout ArraySlice<[PostgresRow]>, to view: inout CatalogView,
        lastPositions: inout [UUID: Int64]
    ) throws {
        let needs = round.needs
        if let names = round.names {
            try Self.apply(names: needs.names, keyed: names.keyed, answers.removeFirst(), to: &view)
        }
        if round.tokenNames != nil { try Self.apply(tokenNames: needs.tokenNames, answers.removeFirst(), to: &view) }
        if round.streams != nil {
            try apply(
                streams: needs.datasets, histories: needs.histories, tokens: needs.tokenStreams,
                answers.removeFirst(), to: &view, lastPositions: &lastPositions)
        }
    }

    /// Loads what the requests still need into `view`, in rounds until nothing is missing: a name found
    /// (or a clone's source) may lead to streams the first round could not know of.
    private mutating func load(
        into view: inout CatalogView, lastPositions: inout [UUID: Int64], for requests: [CatalogWriter.Request]
    ) async throws {
        for _ in 0..<3 {
            let round = LoadRound(needs: Self.needs(of: requests, in: view))
            if round.needs.isEmpty { return }
            var answers = try await pipelined(round.statements)[...]
            try apply(round, &answers, to: &view, lastPositions: &lastPositions)
        }
    }

    /// Which datasets hold the names, by their keys.
    private static func namesStatement(_ names: Set<CatalogView.Name>)
        -> (statement: PostgresQuery, keyed: [ByteBuffer: CatalogView.Name])?
    {
        guard !names.isEmpty else { return nil }
        let keyed = Dictionary(
            names.map { (ByteBuffer(bytes: DatasetProjector.nameKey($0.namespace, $0.name)), $0) },
            uniquingKeysWith: { first, _ in first })
        return (
            """
            SELECT name_key, dataset_id FROM dataset_names
            WHERE name_key = ANY(\(Array(keyed.keys))) AND valid_to IS NULL
            """, keyed
        )
    }

    private static func apply(
        names: Set<CatalogView.Name>, keyed: [ByteBuffer: CatalogView.Name], _ rows: [PostgresRow],
        to view: inout CatalogView
    ) throws {
        var holders: [CatalogView.Name: UUID] = [:]
        for row in rows {
            let (key, id) = try row.decode((ByteBuffer, UUID).self)
            if let name = keyed[key] { holders[name] = id }
        }
        for name in names { view.load(name: name, holder: holders[name]) }
    }

    private static func tokenNamesStatement(_ names: Set<String>) -> PostgresQuery? {
        guard !names.isEmpty else { return nil }
        return "SELECT name, token_id FROM api_tokens WHERE name = ANY(\(Array(names))) AND valid_to IS NULL"
    }

    private static func apply(tokenNames names: Set<String>, _ rows: [PostgresRow], to view: inout CatalogView) throws {
        var holders: [String: UUID] = [:]
        for row in rows {
            let (name, id) = try row.decode((String, UUID).self)
            holders[name] = id
        }
        for name in names { view.load(tokenName: name, stream: holders[name]) }
    }

    /// The streams' states, folded from the events that shape them, and only from those the decider
    /// reads: of each type of lifecycle event the last (the status, the published version, the name
    /// and reasons they leave), and of the drafts only the latest and the published one, unless
    /// `histories` asks for every version. Never a dataset's usage pins or lineage records, which change
    /// nothing but its stream version (read apart, from its last event). Each of those events is found
    /// by one descent into the log's index by stream and type (`Migrations/0011`), so a dataset pinned
    /// ten thousand times, edited and published a thousand, is read in as many rows, and about as
    /// quickly, as a new one.
    ///
    /// One statement answers both: each event that shapes a stream, with the stream's last event and
    /// usage alongside.
    static func streamsStatement(_ datasets: Set<UUID>, histories: Set<UUID>, tokens: Set<UUID>) -> LoadStreams? {
        let ids = Array(datasets.union(histories).union(tokens))
        guard !ids.isEmpty else { return nil }
        // Each stream is looked up by the types of its kind only: a dataset has no token events.
        let lookups =
            datasets.union(histories).flatMap { id in datasetShapingTypes.map { (id, $0) } }
            + tokens.flatMap { id in TokenEvent.allTypes.map { (id, $0) } }
        return LoadStreams(
            lookupStreams: lookups.map(\.0), lookupTypes: lookups.map(\.1), whole: Array(histories), ids: ids)
    }

    /// ``streamsStatement(_:histories:tokens:)``, prepared: its text is the same for every batch. Its
    /// answer (the events that shape each stream) can be long, so it is prepared with SQL's PREPARE and
    /// its `EXECUTE` goes out among the batch's plain queries, whose rows are gathered (see
    /// ``ExecutedStatement``).
    struct LoadStreams: ExecutedStatement {
        static let name = "strata_load_streams"
        static let parameterTypes = ["uuid[]", "text[]", "uuid[]", "uuid[]"]

        var lookupStreams: [UUID]
        var lookupTypes: [String]
        var whole: [UUID]
        var ids: [UUID]

        var arguments: [String] {
            [Self.literal(lookupStreams), Self.literal(names: lookupTypes), Self.literal(whole), Self.literal(ids)]
        }

        func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }

        // A version's number is its draft's rank among the stream's drafts. The parts are MATERIALIZED
        // so that each is planned on its own: inlined into one join tree they took the planner about
        // twice as long, under the lock, for sets of a few rows. The usage columns are cast to the types
        // read: a rebuilt `dataset_states` that changed theirs must not change the prepared statement's.
        // Every read of a table is a lookup by key in a LATERAL part that its LIMIT keeps from being
        // flattened into a join: a connection plans the statement once, maybe on a catalog so small that
        // a join would read the events or the states whole, and then keeps that plan as the catalog grows.
        static let sql = """
            WITH shaping AS MATERIALIZED (
                SELECT l.stream_id, l.stream_version, l.event_type, l.data
                FROM unnest($1::uuid[], $2::text[]) AS s(id, type)
                CROSS JOIN LATERAL (
                    SELECT stream_id, stream_version, event_type, data FROM events
                    WHERE stream_id = s.id AND event_type = s.type
                      AND event_type NOT IN ('DatasetVersionUsed', 'LineageRecorded')
                    ORDER BY stream_version DESC LIMIT 1
                ) l
                WHERE NOT s.id = ANY($3::uuid[])
            ), drafts AS MATERIALIZED (
                SELECT s.id AS stream_id, d.stream_version
                FROM unnest($4::uuid[]) AS s(id)
                CROSS JOIN LATERAL (
                    SELECT stream_version FROM events
                    WHERE stream_id = s.id AND event_type = 'DatasetVersionDrafted'
                    ORDER BY stream_version DESC LIMIT 1
                ) d
                WHERE NOT s.id = ANY($3::uuid[])
                UNION
                SELECT p.stream_id, d.stream_version
                FROM shaping p
                CROSS JOIN LATERAL (
                    SELECT stream_version FROM events
                    WHERE stream_id = p.stream_id AND event_type = 'DatasetVersionDrafted'
                    ORDER BY stream_version OFFSET (p.data->>'version')::bigint - 1 LIMIT 1
                ) d
                WHERE p.event_type = 'DatasetPublished'
            ), chosen AS MATERIALIZED (
                SELECT stream_id, stream_version FROM shaping
                UNION ALL
                SELECT stream_id, stream_version FROM drafts
                UNION ALL
                SELECT stream_id, stream_version FROM events
                WHERE stream_id = ANY($3::uuid[]) AND event_type NOT IN ('DatasetVersionUsed', 'LineageRecorded')
            ), last AS MATERIALIZED (
                SELECT s.id, e.stream_version, e.global_position, e.occurred_at, e.metadata->>'actor' AS actor,
                       coalesce(d.usage_count, 0)::bigint AS usage_count, d.last_used::bigint AS last_used
                FROM unnest($4::uuid[]) AS s(id)
                CROSS JOIN LATERAL (
                    SELECT stream_version, global_position, occurred_at, metadata FROM events
                    WHERE stream_id = s.id ORDER BY stream_version DESC LIMIT 1
                ) e
                LEFT JOIN LATERAL (
                    SELECT usage_count, last_used FROM dataset_states
                    WHERE dataset_id = s.id AND valid_to IS NULL LIMIT 1
                ) d ON true
            )
            SELECT e.stream_id, e.event_type, e.data::text, e.occurred_at, e.metadata->>'actor',
                   l.stream_version, l.global_position, l.occurred_at, l.actor, l.usage_count, l.last_used
            FROM chosen c
            CROSS JOIN LATERAL (
                SELECT stream_id, stream_version, event_type, data, occurred_at, metadata FROM events
                WHERE stream_id = c.stream_id AND stream_version = c.stream_version LIMIT 1
            ) e
            JOIN last l ON l.id = e.stream_id
            ORDER BY e.stream_id, e.stream_version
            """
    }

    /// The types of the events that shape a dataset and of which the last one counts: every type but
    /// usage pins, lineage records and drafts.
    private static let datasetShapingTypes = DatasetEvent.allTypes.filter {
        !["DatasetVersionUsed", "LineageRecorded", "DatasetVersionDrafted"].contains($0)
    }

    /// Folds the streams from the answer to ``streamsStatement(_:histories:tokens:)`` into `view`.
    private mutating func apply(
        streams datasets: Set<UUID>, histories: Set<UUID>, tokens: Set<UUID>, _ rows: [PostgresRow],
        to view: inout CatalogView, lastPositions: inout [UUID: Int64]
    ) throws {
        var states: [UUID: DatasetState] = [:]
        var tokenStates: [UUID: TokenState] = [:]
        var last: [UUID: (version: Int64, occurredAt: Date, actor: String)] = [:]
        for row in rows {
            let (
                stream, type, data, occurredAt, actor, lastVersion, lastPosition, lastOccurredAt, lastActor, usageCount,
                lastUsed
            ) =
                try row.decode((UUID, String, String, Date, String, Int64, Int64, Date, String, Int, Int64?).self)
            if LogEvent.isToken(type: type) {
                tokenStates[stream, default: TokenState(id: stream)].apply(
                    try TokenEvent.decode(type: type, data: data))
            } else {
                states[stream, default: DatasetState(id: stream)].apply(
                    try DatasetEvent.decode(type: type, data: data),
                    context: EventContext(actor: actor, occurredAt: occurredAt))
            }
            lastPositions[stream] = lastPosition
            usage[stream] = (usageCount, lastUsed)
            last[stream] = (lastVersion, lastOccurredAt, lastActor)
        }
        for (stream, event) in last {
            guard var state = states[stream] else { continue }
            state.streamVersion = event.version
            state.updatedAt = event.occurredAt
            state.updatedBy = event.actor
            states[stream] = state
        }
        for id in datasets.union(histories) {
            if let state = states[id] { view.load(dataset: state) } else { view.loadAbsent(dataset: id) }
        }
        for id in tokens { view.load(token: tokenStates[id] ?? TokenState(id: id)) }
    }

    /// Sends statements together (see ``PostgresConnection/pipelined(_:logger:)``) and collects their
    /// rows, counting both for ``statistics``.
    private mutating func pipelined(_ statements: [PostgresQuery]) async throws -> [[PostgresRow]] {
        try await pipelined(statements, then: NoPreparedStatement?.none)
    }

    /// ``pipelined(_:)``, followed by the prepared statement `last`.
    private mutating func pipelined<Last: PostgresPreparedStatement>(_ statements: [PostgresQuery], then last: Last?)
        async throws -> [[PostgresRow]] where Last.Row == PostgresRow
    {
        let answers = try await connection.pipelined(statements, then: last, logger: logger)
        count(statements: answers.count, answers: answers)
        return answers
    }

    private mutating func count(statements: Int, answers: [[PostgresRow]]) {
        statistics.statements += statements
        statistics.rowsRead += answers.reduce(0) { $0 + $1.count }
    }
}

/// What a batch cost the database: statements run and rows they answered, the measure of the
/// pipeline's promise that a batch's cost does not grow with the history of the streams it touches.
public struct BatchStatistics: Sendable, Equatable {
    public var statements = 0
    public var rowsRead = 0
}
