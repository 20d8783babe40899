import Foundation
import PostgresNIO
import StrataCore

/// An event as a replay reads it: only what the projector needs (who acted and when is never copied
/// into a projection, so it is not read).
struct ReplayEvent: Sendable {
    var position: Int64
    var streamID: UUID
    var type: String
    /// The payload's JSON as it came off the wire: decoded from these bytes, with no copy between.
    var data: ByteBuffer

    func datasetEvent() throws -> DatasetEvent {
        try DatasetEvent.decode(type: type, json: data)
    }

    func tokenEvent() throws -> TokenEvent {
        try data.withUnsafeReadableBytes { try TokenEvent.decode(type: type, json: $0) }
    }

    /// Throws unless `event` (this one, decoded) can follow `state`: a log the decider could not have
    /// written stops the replay with the event named, before it is folded.
    func check(_ event: DatasetEvent, after state: DatasetLifecycle) throws {
        if let reason = state.inconsistency(of: event) {
            throw ProjectionError.inconsistentLog(position: position, stream: streamID, reason: reason)
        }
    }

    /// Up to `limit` events with positions in `(after, upTo]`, in log order.
    static func read(
        after position: Int64, upTo head: Int64, limit: Int, on connection: PostgresConnection, logger: Logger
    )
        async throws -> [ReplayEvent]
    {
        // Gathered, not streamed (see `PostgresConnection.rows(_:logger:)`): a page is held whole anyway.
        let rows = try await connection.rows(
            """
            SELECT global_position, stream_id, event_type, data::text FROM events
            WHERE global_position > \(position) AND global_position <= \(head)
            ORDER BY global_position LIMIT \(limit)
            """,
            logger: logger
        )
        var events: [ReplayEvent] = []
        events.reserveCapacity(limit)
        // Each cell is decoded by its type's own decoder: the generic decode of a row as a tuple looked
        // up the tuple's type metadata once per row, and cost twice as much as the decoding itself.
        let context = PostgresDecodingContext.default
        for row in rows {
            var cells = row.makeIterator()
            func next<Value: PostgresDecodable>(_: Value.Type) throws -> Value {
                guard let cell = cells.next() else { throw PostgresDecodingError.Code.missingData }
                var bytes = cell.bytes ?? ByteBuffer()
                return try Value(from: &bytes, type: cell.dataType, format: cell.format, context: context)
            }
            events.append(
                ReplayEvent(
                    position: try next(Int64.self), streamID: try next(UUID.self), type: try next(String.self),
                    data: try next(ByteBuffer.self)))
        }
        return events
    }
}

/// Replays the log through ``DatasetProjector`` in memory and turns its changes into finished rows for
/// bulk loading: a row is written once, when it is closed (or at the end, still open), so a rebuild
/// inserts every row exactly once with `COPY` and never updates.
///
/// A replay only ever sees whole streams (every row belongs to one dataset), so the log can be split
/// by stream between replays that run side by side; the rows they make are the same.
struct ProjectionReplay<Rows: ProjectionRows>: Sendable {
    /// The projection tables being built; changes to other tables are ignored.
    let tables: Set<ProjectionTable>
    /// Each stream's lifecycle and the rows it holds open, in one entry: one hash lookup per event.
    private var streams: [UUID: Stream] = [:]
    private(set) var position: Int64 = 0
    /// Finished rows, waiting to be loaded.
    private(set) var pending = Rows()
    /// The changes of the event being replayed, in an array kept from one event to the next.
    private var changes: [DatasetProjector.Change] = []

    /// Whether every projection is being built, so no change needs filtering out.
    private let buildsEveryTable: Bool

    private struct Stream {
        var lifecycle: DatasetLifecycle
        /// For a token's stream: the token as its events leave it, and its row until it is revoked.
        var token: TokenState?
        var openToken: (row: DatasetProjector.TokenRow, from: Int64)?
        /// The stream's current state row, written once the next event closes it.
        var openState: (row: DatasetProjector.StateRow, from: Int64)?
        /// The stream's name reservation, written once it is released.
        var openName: (key: [UInt8], from: Int64)?
        /// The keys of the sets of words this replay has written for the stream: the latest version's,
        /// and any others (a dataset whose words changed and changed back shares the earlier row).
        var latestWords: [UInt8]?
        var earlierWords: Set<[UInt8]> = []
        /// Rows already in the tables, still open: the event that ends one ends it there, by an update.
        var stateInTable = false
        var nameInTable = false
        var tokenInTable = false
    }

    init(tables: Set<String>) {
        self.tables = Set(tables.compactMap(ProjectionTable.init(name:)))
        buildsEveryTable = self.tables.count == ProjectionTable.allCases.count
    }

    /// A replay that goes on from the projections as they stand: for the append pipeline, which writes
    /// the rows of a batch's events with the same code a rebuild uses.
    static func continuing() -> Self {
        ProjectionReplay(tables: Set(ProjectionTable.allCases.map(\.name)))
    }

    /// Starts a dataset's stream from its state as the projections hold it (its state row and, unless
    /// retired, its name reservation open in the tables).
    mutating func continueDataset(from lifecycle: DatasetLifecycle) {
        guard streams[lifecycle.id] == nil else { return }
        var stream = Stream(lifecycle: lifecycle)
        stream.stateInTable = lifecycle.exists
        stream.nameInTable = lifecycle.exists && lifecycle.status != .retired
        streams[lifecycle.id] = stream
    }

    /// Starts a token's stream from its state as the projections hold it.
    mutating func continueToken(from token: TokenState) {
        guard streams[token.id] == nil else { return }
        var stream = Stream(lifecycle: DatasetLifecycle(id: token.id))
        stream.token = token
        stream.tokenInTable = token.exists && !token.isRevoked
        streams[token.id] = stream
    }

    /// Projects one event already decoded (the append pipeline's own), at `position`.
    mutating func apply(_ event: LogEvent, of streamID: UUID, at position: Int64) throws {
        var changes: [DatasetProjector.Change] = []
        try { (stream: inout Stream, pending: inout Rows) in
            try Self.advance(&stream, streamID: streamID, position: position, past: event, changes: &changes)
            for change in changes { Self.record(change, of: &stream, at: position, into: &pending) }
        }(&streams[streamID, default: Stream(lifecycle: DatasetLifecycle(id: streamID))], &pending)
        self.position = position
    }

    /// Replays into the pending rows the events of `events` whose streams are share `share` of `shares`
    /// (all of them by default). Every replay of a split reads the same batch and skips the streams that
    /// are not its own, rather than being handed a copy of its share (which copied every event).
    mutating func apply(_ events: [ReplayEvent], share: Int = 0, of shares: Int = 1) throws {
        for event in events where Self.share(of: event.streamID, among: shares) == share { try apply(event) }
    }

    /// Which of `shares` replays side by side owns `stream`.
    static func share(of stream: UUID, among shares: Int) -> Int {
        // The last bytes of a UUID (v4 or v7) are random, so streams spread evenly.
        Int(stream.uuid.15) % shares
    }

    /// Replays one event into the pending rows.
    private mutating func apply(_ event: ReplayEvent) throws {
        var changes: [DatasetProjector.Change] = []
        swap(&changes, &self.changes)
        changes.removeAll(keepingCapacity: true)
        let (buildsEveryTable, tables) = (buildsEveryTable, tables)
        // The stream's entry is changed where it lies in the dictionary, never copied out and back.
        try { (stream: inout Stream, pending: inout Rows) in
            let decoded: LogEvent =
                LogEvent.isToken(type: event.type) ? .token(try event.tokenEvent()) : .dataset(try event.datasetEvent())
            try Self.advance(
                &stream, streamID: event.streamID, position: event.position, past: decoded, changes: &changes)
            for change in changes where buildsEveryTable || tables.contains(change.table) {
                Self.record(change, of: &stream, at: event.position, into: &pending)
            }
        }(&streams[event.streamID, default: Stream(lifecycle: DatasetLifecycle(id: event.streamID))], &pending)
        swap(&changes, &self.changes)
        position = event.position
    }

    /// Checks `event` against the stream, folds it in, and adds the changes it makes to `changes`.
    private static func advance(
        _ stream: inout Stream, streamID: UUID, position: Int64, past event: LogEvent,
        changes: inout [DatasetProjector.Change]
    ) throws {
        switch event {
        case .token(let tokenEvent):
            var token = stream.token ?? TokenState(id: streamID)
            if let reason = token.inconsistency(of: tokenEvent) {
                throw ProjectionError.inconsistentLog(position: position, stream: streamID, reason: reason)
            }
            token.apply(tokenEvent)
            stream.token = token
            changes.append(contentsOf: DatasetProjector.changes(ofToken: streamID, event: tokenEvent))
        case .dataset(let datasetEvent):
            if let reason = stream.lifecycle.inconsistency(of: datasetEvent) {
                throw ProjectionError.inconsistentLog(position: position, stream: streamID, reason: reason)
            }
            stream.lifecycle.apply(datasetEvent, at: position)
            DatasetProjector.collectChanges(after: stream.lifecycle, event: datasetEvent, into: &changes)
        }
    }

    /// Writes a finished row to `pending`, or holds a row open in `stream` until a later event ends it.
    private static func record(
        _ change: DatasetProjector.Change, of stream: inout Stream, at position: Int64, into pending: inout Rows
    ) {
        switch change {
        case .addToken(let row):
            stream.openToken = (row, position)
        case .revokeToken(let id):
            if let open = stream.openToken {
                pending.token(open.row, from: open.from, to: position)
                stream.openToken = nil
            } else if stream.tokenInTable {
                pending.close(.apiTokens, id, at: position)
                stream.tokenInTable = false
            }
        case .closeState(let id):
            if let open = stream.openState {
                pending.state(open.row, from: open.from, to: position)
                stream.openState = nil
            } else if stream.stateInTable {
                pending.close(.datasetStates, id, at: position)
                stream.stateInTable = false
            }
        case .openState(let row):
            stream.openState = (row, position)
        case .addIdentity(let row):
            pending.line(.datasetIdentities) { line in
                line.uuid(row.datasetID)
                line.bigint(position)
                line.text(row.namespace)
                line.text(row.name)
                line.bytea(row.nameKey)
                line.uuid(row.clonedFrom?.datasetID)
                line.integer(row.clonedFrom?.version)
            }
        case .addVersion(let row):
            pending.line(.versions) { line in
                line.uuid(row.datasetID)
                line.integer(row.version)
                line.bigint(position)
                line.bytea(row.wordsKey)
            }
        case .addWords(let row):
            guard row.key != stream.latestWords else { return }
            if let latest = stream.latestWords { stream.earlierWords.insert(latest) }
            stream.latestWords = row.key
            guard stream.earlierWords.remove(row.key) == nil else { return }
            pending.line(.datasetWords) { line in
                line.uuid(row.datasetID)
                line.bytea(row.key)
                line.bigint(position)
                line.text(row.namespace)
                line.text(row.name)
                line.text(row.owner)
                line.text(row.description)
                line.textArray(row.tags)
                line.text(row.format)
                line.textArray(row.columnNames)
                line.textArray(row.propertyKeys)
                line.tsvector(row.searchVector)
            }
        case .addPublication(let id, let version):
            pending.line(.versionPublications) { line in
                line.uuid(id)
                line.integer(version)
                line.bigint(position)
            }
        case .reserveName(let key, _):
            stream.openName = (key, position)
        case .releaseName(let id):
            if let open = stream.openName {
                pending.name(open.key, id, from: open.from, to: position)
                stream.openName = nil
            } else if stream.nameInTable {
                pending.close(.datasetNames, id, at: position)
                stream.nameInTable = false
            }
        case .addEdge(let edge):
            pending.line(.lineageEdges) { line in
                line.uuid(edge.to.datasetID)
                line.integer(edge.to.version)
                line.uuid(edge.from.datasetID)
                line.integer(edge.from.version)
                line.bigint(position)
                line.null()
                line.text(edge.job?.namespace)
                line.text(edge.job?.name)
                line.text(edge.runID)
                line.integer(edge.ordinal)
            }
        case .addUsage(let row):
            pending.line(.datasetUsages) { line in
                line.uuid(row.datasetID)
                line.bigint(position)
                line.null()
                line.integer(row.version)
                line.text(row.consumer)
            }
        }
    }

    /// Moves every still-open row to the pending rows, with no end: the state at the replayed position.
    /// The lifecycles stay, and the rows are then open in the tables: a catch-up goes on from them.
    mutating func closeOut() {
        for index in streams.indices {
            // Through the values in place: taking the entry out would copy (and retain) the whole state.
            if let open = streams.values[index].openState {
                pending.state(open.row, from: open.from, to: nil)
                streams.values[index].stateInTable = true
            }
            if let open = streams.values[index].openName {
                pending.name(open.key, streams.keys[index], from: open.from, to: nil)
                streams.values[index].nameInTable = true
            }
            if let open = streams.values[index].openToken {
                pending.token(open.row, from: open.from, to: nil)
                streams.values[index].tokenInTable = true
            }
            streams.values[index].openState = nil
            streams.values[index].openName = nil
            streams.values[index].openToken = nil
        }
    }

    /// Hands over the pending rows and forgets them.
    mutating func takePending() -> Rows {
        defer { pending = Rows() }
        return pending
    }
}
