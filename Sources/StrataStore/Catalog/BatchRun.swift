import Foundation
import Metrics
import PostgresNIO
import StrataCore

/// One batch of the append pipeline, inside its transaction, under the log's append lock.
///
/// Its cost is a constant number of round trips, whatever the number of commands: the idempotency
/// answers already stored (one query), the streams, names and tokens the commands need (a few queries,
/// in at most four rounds: a name found leads to the dataset holding it), then every command decided in
/// memory, in order, by the catalog's rules in the core — each seeing the ones before it, a refused one
/// changing nothing — and finally the events of all of them (one INSERT), their projection rows (an
/// UPDATE and a COPY per table touched, made by the code a rebuild uses), and their idempotency answers
/// (one INSERT).
struct BatchRun {
    let writer: EventLogWriter
    let makeEventID: @Sendable () -> UUID
    private(set) var statistics = BatchStatistics()
    /// The first event this batch appends: if the connection dies during COMMIT, the log says whether
    /// the batch landed by whether it holds this event.
    private(set) var firstEventID: UUID?
    /// The usage pins of each dataset loaded, as its current state row sums them up: the one part of
    /// its projected lifecycle that the decider's state leaves out.
    private var usage: [UUID: (count: Int, last: Int64?)] = [:]

    init(writer: EventLogWriter, makeEventID: @escaping @Sendable () -> UUID) {
        self.writer = writer
        self.makeEventID = makeEventID
    }

    var connection: PostgresConnection { writer.connection }
    var logger: Logger { writer.logger }

    /// What became of one request before anything was written.
    private enum Plan {
        case answered(StoredResponse)
        case refused(any Error)
        /// Accepted: its events (by index into the batch's), and the state of what it is about.
        case accepted(events: Range<Int>, subject: UUID?, dataset: DatasetState?, token: TokenState?)
        /// The same key and request as an earlier one of this batch: the same answer.
        case sameAs(Int)
    }

    mutating func process(_ requests: [CatalogWriter.Request]) async throws -> [Result<StoredResponse, any Error>] {
        let stored = try await storedAnswers(to: requests)
        let open = requests.indices.filter { index in
            requests[index].idempotency.map { stored[ClaimKey($0)] == nil } ?? true
        }
        var view = CatalogView()
        var lastPositions: [UUID: Int64] = [:]
        try await load(into: &view, lastPositions: &lastPositions, for: open.map { requests[$0] })
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
                events += decision.events
                let subject = decision.subject
                plans.append(
                    .accepted(
                        events: range, subject: subject,
                        dataset: subject.flatMap { view.knows(dataset: $0) ? view.dataset($0) : nil },
                        token: subject.flatMap { view.tokenStreams[$0] }))
                if let claim = request.idempotency { claims[ClaimKey(claim)] = index }
            } catch {
                plans.append(.refused(error))
            }
        }

        // Write.
        let positions = try await append(events, for: requests, plans: plans, loaded: loaded)
        for (event, position) in zip(events, positions) { lastPositions[event.stream] = position }
        try await project(events, at: positions, from: loaded)

        // Answer.
        var results: [Result<StoredResponse, any Error>] = []
        var fresh: [(IdempotencyClaim, StoredResponse)] = []
        for (index, plan) in plans.enumerated() {
            switch plan {
            case .answered(let response):
                results.append(.success(response))
            case .refused(let error):
                results.append(.failure(error))
            case .sameAs(let earlier):
                results.append(results[earlier])
            case .accepted(let range, let subject, let dataset, let token):
                let mine = events[range]
                let position =
                    range.isEmpty ? subject.flatMap { lastPositions[$0] } ?? 0 : positions[range.upperBound - 1]
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
        try await store(fresh)
        return results
    }

    // MARK: writing

    /// Appends every accepted event, in the order decided, with one INSERT; answers their positions.
    private mutating func append(
        _ events: [StreamEvent], for requests: [CatalogWriter.Request], plans: [Plan], loaded: CatalogView
    ) async throws -> [Int64] {
        guard !events.isEmpty else { return [] }
        var owner = [Int](repeating: 0, count: events.count)
        for (index, plan) in plans.enumerated() {
            if case .accepted(let range, _, _, _) = plan { for event in range { owner[event] = index } }
        }
        var versions: [UUID: Int64] = [:]
        var rows: (streams: [UUID], versions: [Int64], ids: [UUID], types: [String], data: [String]) = (
            [], [], [], [], []
        )
        var (metadata, occurredAt, schemaVersions): ([String], [Date], [Int]) = ([], [], [])
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
                schemaVersions.append(DatasetEvent.schemaVersion)
            case .token(let tokenEvent):
                rows.types.append(tokenEvent.type)
                rows.data.append(tokenEvent.encodedData())
                schemaVersions.append(TokenEvent.schemaVersion)
            }
            metadata.append(request.metadata.encoded())
            occurredAt.append(request.occurredAt)
            counts[rows.types[index], default: 0] += 1
        }
        let returned = try await query(
            """
            INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata,
                                occurred_at, recorded_at)
            SELECT stream, version, id, type, schema_version, data::json, metadata::jsonb, occurred_at,
                   \(writer.recordedAt)
            FROM unnest(\(rows.streams), \(rows.versions), \(rows.ids), \(rows.types), \(schemaVersions), \(rows.data),
                        \(metadata), \(occurredAt))
                 WITH ORDINALITY AS e(stream, version, id, type, schema_version, data, metadata, occurred_at, n)
            ORDER BY n
            RETURNING event_id, global_position
            """)
        var byID: [UUID: Int64] = [:]
        for row in returned {
            let (id, position) = try row.decode((UUID, Int64).self)
            byID[id] = position
        }
        for (type, count) in counts {
            Counter(label: "strata_events_appended_total", dimensions: [("type", type)]).increment(by: count)
        }
        return try rows.ids.map { id in
            guard let position = byID[id] else { throw StoreError.noResult("the position of event \(id)") }
            return position
        }
    }

    /// The projection rows of the batch's events, by the code a rebuild replays the log with, going on
    /// from the streams as they were loaded.
    private mutating func project(_ events: [StreamEvent], at positions: [Int64], from loaded: CatalogView)
        async throws
    {
        guard !events.isEmpty else { return }
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
        statistics.statements += rows.statementCount
        try await rows.write(on: connection, logger: logger, appliedPosition: positions.last)
    }

    /// Keeps the answers to requests that carried an `Idempotency-Key`, with one INSERT.
    private mutating func store(_ answers: [(IdempotencyClaim, StoredResponse)]) async throws {
        guard !answers.isEmpty else { return }
        let headers = try answers.map { String(decoding: try JSONEncoder().encode($0.1.headers), as: UTF8.self) }
        try await query(
            """
            INSERT INTO idempotency_keys (scope, key, request_hash, status, headers, body)
            SELECT scope, key, hash, status, headers::jsonb, body
            FROM unnest(\(answers.map(\.0.scope)), \(answers.map(\.0.key)), \(answers.map(\.0.requestHash)),
                        \(answers.map(\.1.status)), \(headers), \(answers.map(\.1.body)))
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

    /// The answers already given to the keys the requests carry, with one query.
    private mutating func storedAnswers(to requests: [CatalogWriter.Request]) async throws
        -> [ClaimKey: (hash: String, response: StoredResponse)]
    {
        let claims = requests.compactMap(\.idempotency)
        guard !claims.isEmpty else { return [:] }
        let rows = try await query(
            """
            SELECT k.scope, k.key, k.request_hash, k.status, k.headers::text, k.body
            FROM unnest(\(claims.map(\.scope)), \(claims.map(\.key))) AS c(scope, key)
            JOIN idempotency_keys k ON k.scope = c.scope AND k.key = c.key
            """)
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

    /// Loads what the requests need into `view`, in rounds until nothing is missing: a round loads the
    /// names asked about and the streams named, its statements sent together, and a name found (or a
    /// clone's source) may lead to streams for the next round.
    private mutating func load(
        into view: inout CatalogView, lastPositions: inout [UUID: Int64], for requests: [CatalogWriter.Request]
    ) async throws {
        for _ in 0..<4 {
            var needs = CatalogDecider.Needs()
            for request in requests {
                needs.formUnion(CatalogDecider.needs(request.target, context: request.context, in: view))
            }
            if needs.isEmpty { return }
            let names = Self.namesStatement(needs.names)
            let tokenNames = Self.tokenNamesStatement(needs.tokenNames)
            let streams = Self.streamStatements(needs.datasets, histories: needs.histories, tokens: needs.tokenStreams)
            var answers = try await pipelined(
                [names?.statement, tokenNames, streams?.shaping, streams?.last].compactMap { $0 })[...]
            if let names { try Self.apply(names: needs.names, keyed: names.keyed, answers.removeFirst(), to: &view) }
            if tokenNames != nil { try Self.apply(tokenNames: needs.tokenNames, answers.removeFirst(), to: &view) }
            if streams != nil {
                try apply(
                    streams: needs.datasets, histories: needs.histories, tokens: needs.tokenStreams,
                    shaping: answers.removeFirst(), last: answers.removeFirst(), to: &view,
                    lastPositions: &lastPositions)
            }
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
    /// reads: of each kind of lifecycle event the last (the status, the published version, the name
    /// and reasons they leave), and of the drafts only the latest and the published one, unless
    /// `histories` asks for every version. Never a dataset's usage pins or lineage records, which change
    /// nothing but its stream version (read apart, from its last event). So a dataset pinned ten thousand
    /// times, edited and published a thousand, is read in as many rows as a new one.
    private static func streamStatements(_ datasets: Set<UUID>, histories: Set<UUID>, tokens: Set<UUID>)
        -> (shaping: PostgresQuery, last: PostgresQuery)?
    {
        let ids = Array(datasets.union(histories).union(tokens))
        guard !ids.isEmpty else { return nil }
        let whole = Array(histories)
        // A version's number is its draft's rank among the stream's drafts.
        let shaping: PostgresQuery = """
            WITH shaping AS (
                SELECT DISTINCT ON (stream_id, event_type) stream_id, stream_version, event_type, data
                FROM events
                WHERE stream_id = ANY(\(ids)) AND NOT stream_id = ANY(\(whole))
                  AND event_type NOT IN ('DatasetVersionUsed', 'LineageRecorded', 'DatasetVersionDrafted')
                ORDER BY stream_id, event_type, stream_version DESC
            ), drafts AS (
                SELECT stream_id, stream_version, row_number() OVER (PARTITION BY stream_id ORDER BY stream_version)
                       AS number, count(*) OVER (PARTITION BY stream_id) AS latest
                FROM events
                WHERE stream_id = ANY(\(ids)) AND NOT stream_id = ANY(\(whole))
                  AND event_type = 'DatasetVersionDrafted'
            ), chosen AS (
                SELECT stream_id, stream_version FROM shaping
                UNION ALL
                SELECT d.stream_id, d.stream_version FROM drafts d
                LEFT JOIN shaping p ON p.stream_id = d.stream_id AND p.event_type = 'DatasetPublished'
                WHERE d.number = d.latest OR d.number = (p.data->>'version')::bigint
                UNION ALL
                SELECT stream_id, stream_version FROM events
                WHERE stream_id = ANY(\(whole)) AND event_type NOT IN ('DatasetVersionUsed', 'LineageRecorded')
            )
            SELECT e.stream_id, e.event_type, e.data::text, e.occurred_at, e.metadata->>'actor'
            FROM chosen JOIN events e USING (stream_id, stream_version)
            ORDER BY e.stream_id, e.stream_version
            """
        let last: PostgresQuery = """
            SELECT s.id, e.stream_version, e.global_position, e.occurred_at, e.metadata->>'actor',
                   coalesce(d.usage_count, 0), d.last_used
            FROM unnest(\(ids)) AS s(id)
            CROSS JOIN LATERAL (
                SELECT stream_version, global_position, occurred_at, metadata FROM events
                WHERE stream_id = s.id ORDER BY stream_version DESC LIMIT 1
            ) e
            LEFT JOIN dataset_states d ON d.dataset_id = s.id AND d.valid_to IS NULL
            """
        return (shaping, last)
    }

    /// Folds the streams from the answers to ``streamStatements(_:histories:tokens:)`` into `view`.
    private mutating func apply(
        streams datasets: Set<UUID>, histories: Set<UUID>, tokens: Set<UUID>, shaping rows: [PostgresRow],
        last: [PostgresRow], to view: inout CatalogView, lastPositions: inout [UUID: Int64]
    ) throws {
        var states: [UUID: DatasetState] = [:]
        var tokenStates: [UUID: TokenState] = [:]
        for row in rows {
            let (stream, type, data, occurredAt, actor) = try row.decode((UUID, String, String, Date, String).self)
            if LogEvent.isToken(type: type) {
                tokenStates[stream, default: TokenState(id: stream)].apply(
                    try TokenEvent.decode(type: type, data: data))
            } else {
                states[stream, default: DatasetState(id: stream)].apply(
                    try DatasetEvent.decode(type: type, data: data),
                    context: EventContext(actor: actor, occurredAt: occurredAt))
            }
        }
        for row in last {
            let (stream, version, position, occurredAt, actor, usageCount, lastUsed) = try row.decode(
                (UUID, Int64, Int64, Date, String, Int, Int64?).self)
            lastPositions[stream] = position
            usage[stream] = (usageCount, lastUsed)
            if var state = states[stream] {
                state.streamVersion = version
                state.updatedAt = occurredAt
                state.updatedBy = actor
                states[stream] = state
            }
        }
        for id in datasets.union(histories) {
            if let state = states[id] { view.load(dataset: state) } else { view.loadAbsent(dataset: id) }
        }
        for id in tokens { view.load(token: tokenStates[id] ?? TokenState(id: id)) }
    }

    /// Sends statements together (see ``PostgresConnection/pipelined(_:logger:)``) and collects their
    /// rows, counting both for ``statistics``.
    private mutating func pipelined(_ statements: [PostgresQuery]) async throws -> [[PostgresRow]] {
        let answers = try await connection.pipelined(statements, logger: logger)
        statistics.statements += statements.count
        statistics.rowsRead += answers.reduce(0) { $0 + $1.count }
        return answers
    }

    /// Runs a statement and collects its rows, counting both for ``statistics``.
    @discardableResult
    private mutating func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let rows = try await connection.query(query, logger: logger).collect()
        statistics.statements += 1
        statistics.rowsRead += rows.count
        return rows
    }
}

/// What a batch cost the database: statements run and rows they answered, the measure of the
/// pipeline's promise that a batch's cost does not grow with the history of the streams it touches.
public struct BatchStatistics: Sendable, Equatable {
    public var statements = 0
    public var rowsRead = 0
}
