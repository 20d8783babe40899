import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The log's end as PostgreSQL announces it: every append NOTIFYs `strata_log` with its last position
/// when it commits (`Migrations/0009_announce_appends.sql`), whichever process appended. One connection
/// of its own LISTENs for the whole process, and every live feed waits here for the log to grow past
/// its position, so an idle subscriber costs the database nothing.
///
/// While it is not listening (no endpoint, or PostgreSQL is away) nothing is announced, and waiters are
/// told to look for themselves: a feed then polls, as it must, rather than trusting a silence it
/// cannot hear. When it starts listening again it wakes every waiter once, for what it may have missed.
public final class LogAnnouncements: Service, Sendable {
    public static let channel = "strata_log"

    private struct Waiter {
        var after: Int64
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var announced: Int64 = 0
        var isListening = false
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let endpoint: PostgresConnection.Configuration?
    private let logger: Logger
    private let state = Mutex(State())
    private let reconnectPause: Duration

    /// - Parameter endpoint: where to open the listening connection; nil (tests that drive the router
    ///   alone) leaves every feed polling.
    public init(endpoint: PostgresConnection.Configuration?, logger: Logger, reconnectPause: Duration = .seconds(1)) {
        self.endpoint = endpoint
        self.logger = logger
        self.reconnectPause = reconnectPause
    }

    /// Whether announcements are being heard now: if not, a feed must look for itself.
    public var isListening: Bool { state.withLock { $0.isListening } }

    /// The feeds waiting now.
    public var waiting: Int { state.withLock { $0.waiters.count } }

    public func run() async throws {
        guard let endpoint else {
            try? await gracefulShutdown()
            return
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: endpoint, id: 1, logger: logger)
                do {
                    try await cancelWhenGracefulShutdown {
                        try await connection.listen(on: Self.channel) { notifications in
                            self.listening(true)
                            for try await notification in notifications {
                                if let position = Int64(notification.payload) { self.announce(position) }
                            }
                        }
                    }
                } catch {
                    if !Task.isShuttingDownGracefully {
                        logger.notice("stopped hearing the log's appends", metadata: ["error": "\(error)"])
                    }
                }
                listening(false)
                try? await connection.close()
            } catch {
                listening(false)
                logger.debug("cannot listen for the log's appends", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await eventLoopSleep(for: self.reconnectPause) }
        }
        listening(false)
    }

    /// Waits until an append past `position` is announced (true), or `limit` passes with none (false).
    /// Answers true at once when not listening, and when listening starts again during the wait: the
    /// caller must read the log to know.
    public func wait(after position: Int64, within limit: Duration) async -> Bool {
        if state.withLock({ !$0.isListening || $0.announced > position }) { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.announcement(after: position) }
            group.addTask {
                try? await eventLoopSleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    private func announcement(after position: Int64) async -> Bool {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let answer: Bool? = state.withLock { state in
                    if !state.isListening || state.announced > position { return true }
                    if Task.isCancelled { return false }
                    state.waiters[id] = Waiter(after: position, continuation: continuation)
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: false)
        }
    }

    private func announce(_ position: Int64) {
        let woken = state.withLock { state in
            state.announced = max(state.announced, position)
            let due = state.waiters.filter { $0.value.after < position }
            for id in due.keys { state.waiters.removeValue(forKey: id) }
            return Array(due.values)
        }
        for waiter in woken { waiter.continuation.resume(returning: true) }
    }

    private func listening(_ isListening: Bool) {
        let woken = state.withLock { state in
            guard state.isListening != isListening else { return [Waiter]() }
            state.isListening = isListening
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.continuation.resume(returning: true) }
    }
}
