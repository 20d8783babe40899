import Foundation
import HTTPTypes
import Hummingbird
import ServiceLifecycle
import StrataCore
import StrataStore
import Synchronization

/// The log as a feed: pages with `GET /v1/events`, and a live Server-Sent-Events tail.
struct EventRoutes {
    let reader: CatalogReader
    /// Says when the log grows, so a live tail reads only then.
    let announcements: LogAnnouncements
    /// How long the live tail waits before looking for new events again while appends are not being
    /// announced (PostgreSQL away, or no listener).
    var pollInterval: Duration = .milliseconds(200)
    /// How often an idle live tail sends a comment line, so proxies keep the connection open.
    var heartbeatInterval: Duration = .seconds(15)
    /// The live tails' reads, shared by those asking the same at once.
    let tailReads = SharedTailReads()
    /// The valid tokens, which an open tail asks again before each write; nil when access is open.
    var tokens: TokenDirectory?

    func register(on router: Router<StrataRequestContext>) {
        router.get("/v1/events", use: page)
        router.get("/v1/events/stream", use: stream)
    }

    /// A page of the log, as of `as_of` if given. `next_after` is where to continue: the last event
    /// returned, or, when the page is not full, the position the snapshot reflects — nothing at or below
    /// it can appear later.
    @Sendable func page(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let filter = try eventFilter(request, context: context, defaultLimit: 100)
        // `after` is a position the poller was answered, so the read reflects at least it: a replica that has
        // not replayed it waits, and on the primary one past the log's end was answered to no one.
        let events: [RecordedEvent]
        let position: Int64
        do {
            (events, position) = try await reader.read(
                asOf: try asOf(request), scope: try context.caller().scope,
                atLeast: max(context.minPosition ?? 0, filter.after)
            ) {
                try await $0.events(filter)
            }
        } catch ReadError.minimumBeyondHead(let requested, let head) where requested == filter.after {
            throw invalidParameter(
                "after", "is beyond the end of the log (\(head)); a next_after is never past it")
        }
        let nextAfter = events.count == filter.limit ? events.last!.position : max(position, filter.after)
        let documents = try events.map { try $0.document() }
        let body = "{\"events\":[\(documents.joined(separator: ","))],\"next_after\":\(nextAfter)}"
        return jsonResponse(.ok, body: body, position: position)
    }

    /// The live tail: every event after `Last-Event-ID` (or `after`), then new ones as they commit; the
    /// SSE `id:` of each is its position. It ends when the server shuts down. Between events it holds no
    /// database connection and runs no query: it reads again when ``LogAnnouncements`` says the log has
    /// grown past what it has seen (or, while appends are not being announced, every `pollInterval`).
    @Sendable func stream(_ request: Request, context: StrataRequestContext) async throws -> Response {
        var filter = try eventFilter(request, context: context, defaultLimit: 1000)
        if let lastEventID = request.headers[HTTPField.Name("Last-Event-ID")!] {
            guard let position = Int64(lastEventID), position >= 0 else {
                throw invalidParameter("Last-Event-ID", "must be a log position")
            }
            filter.after = position
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let reader = reader
        let caller = try context.caller()
        let scope = caller.scope
        let tokenStands = tokenCheck(request, caller)
        let start = filter
        let pollInterval = pollInterval
        let heartbeatInterval = heartbeatInterval
        let announcements = announcements
        let tailReads = tailReads
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                var filter = start
                var lastWrite = ContinuousClock.now
                var mayHaveGrown = true
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    guard tokenStands() else { break }
                    let page =
                        mayHaveGrown
                        ? try await tailReads.read(TailRead(scope: scope, filter: filter)) { [filter] in
                            let (events, position) = try await reader.read(scope: scope) { try await $0.events(filter) }
                            var text = ""
                            for event in events {
                                text += "id: \(event.position)\nevent: \(event.type)\ndata: \(try event.document())\n\n"
                            }
                            let next =
                                events.count == filter.limit ? events.last!.position : max(position, filter.after)
                            return TailPage(text: text, next: next)
                        } : TailPage(text: "", next: filter.after)
                    filter.after = page.next
                    if page.text.isEmpty {
                        if ContinuousClock.now - lastWrite >= heartbeatInterval {
                            try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                            lastWrite = .now
                        }
                        let untilHeartbeat = heartbeatInterval - (ContinuousClock.now - lastWrite)
                        let after = filter.after
                        mayHaveGrown = await cancelWhenGracefulShutdown {
                            announcements.isListening
                                ? await announcements.wait(after: after, within: untilHeartbeat)
                                : (try? await eventLoopSleep(for: pollInterval)) != nil
                        }
                        continue
                    }
                    // Asked again: a revocation may have come while the page was read.
                    guard tokenStands() else { break }
                    try await writer.write(ByteBuffer(string: page.text))
                    lastWrite = .now
                }
                try await writer.finish(nil)
            }
        )
    }

    /// Whether the token a tail was opened with still stands. A revoked token's next request is refused
    /// within a second; its open tail must stop as soon, not stream on for as long as it stays connected.
    private func tokenCheck(_ request: Request, _ caller: Caller) -> @Sendable () -> Bool {
        guard let tokens, let secret = TokenAuthenticator.bearerToken(request.headers[.authorization]) else {
            return { true }
        }
        let digest = TokenSecret.sha256(String(secret))
        return { tokens.stands(digest: digest, for: caller) }
    }

    private func eventFilter(_ request: Request, context: StrataRequestContext, defaultLimit: Int) throws
        -> CatalogSnapshot.EventFilter
    {
        let query = request.uri.queryParameters
        var filter = CatalogSnapshot.EventFilter(limit: defaultLimit)
        filter.includesTokenEvents = try context.caller().role == .admin
        if let after = query["after"].map(String.init) {
            guard let value = Int64(after), value >= 0 else {
                throw invalidParameter("after", "must be a log position")
            }
            filter.after = value
        }
        if let limit = try limitParameter(in: query, maximum: 10_000) { filter.limit = limit }
        if let type = query["type"].map(String.init) {
            // A misspelt type would page nothing, and say nothing.
            guard LogEvent.allTypes.contains(type) else {
                throw invalidParameter("type", "must be one of \(LogEvent.allTypes.joined(separator: ", "))")
            }
            filter.type = type
        }
        if let stream = query["stream_id"].map(String.init) {
            guard let id = UUID(uuidString: stream) else { throw invalidParameter("stream_id", "must be a UUID") }
            filter.streamID = id
        }
        filter.actor = try textParameter("actor", in: query, maxLength: 256)
        filter.since = try time(query["since"].map(String.init), "since")
        filter.until = try time(query["until"].map(String.init), "until")
        return filter
    }

    private func time(_ text: String?, _ name: String) throws -> Date? {
        guard let text else { return nil }
        guard let date = RFC3339.date(from: text) else {
            throw invalidParameter(name, "must be an RFC 3339 time, such as 2026-11-22T10:00:00Z")
        }
        return date
    }
}

/// Parsing of RFC 3339 times as clients send them, with or without fractional seconds.
enum RFC3339 {
    static func date(from text: String) -> Date? {
        for options in [
            ISO8601DateFormatter.Options.withInternetDateTime, [.withInternetDateTime, .withFractionalSeconds],
        ] {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}

/// What a live tail asks for: the same question from any number of subscribers.
struct TailRead: Hashable, Sendable {
    var scope: NamespaceScope
    var filter: CatalogSnapshot.EventFilter
}

/// A live tail's next page, rendered as Server-Sent Events, and where the tail goes on from.
struct TailPage: Sendable {
    var text: String
    var next: Int64
}

/// Reads of the live tail, shared: when an append is announced, every subscriber at the same position
/// with the same filter and scope wakes at once, and they run one query and render its events once,
/// not one each. A read joined late may predate the append that woke its joiner; the joiner then finds
/// the announced position still ahead of it and reads again, so nothing is missed.
final class SharedTailReads: Sendable {
    private let inFlight = Mutex<[TailRead: Task<TailPage, any Error>]>([:])

    func read(_ question: TailRead, _ body: @escaping @Sendable () async throws -> TailPage) async throws -> TailPage {
        let task = inFlight.withLock { inFlight in
            if let running = inFlight[question] { return running }
            let task = Task { [weak self] in
                defer { self?.inFlight.withLock { _ = $0.removeValue(forKey: question) } }
                return try await body()
            }
            inFlight[question] = task
            return task
        }
        return try await task.value
    }
}
