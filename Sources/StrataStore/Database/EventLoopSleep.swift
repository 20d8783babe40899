import NIOCore
import PostgresNIO
import Synchronization

/// `Task.sleep(for:)`, on an event loop's timer; throws `CancellationError` when the task is cancelled.
///
/// On Linux every `Task.sleep` leaves a libdispatch timer source and a job behind that are never freed,
/// cancelled or not (heaptrack: ~110 bytes a sleep). A server that bounds every database call with a
/// sleeping timer grew by ~200 MB in two minutes of reads. NIO's scheduled tasks leave the loop's queue
/// when they run or are cancelled, so this costs nothing once it returns. Everything on the request
/// path and every periodic loop sleeps here.
public func eventLoopSleep(for duration: Duration) async throws {
    let (seconds, attoseconds) = duration.components
    let nanoseconds = max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    let timer = SleepTimer()
    try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let scheduled = PostgresConnection.defaultEventLoopGroup.any()
                .scheduleTask(in: .nanoseconds(nanoseconds)) {}
            scheduled.futureResult.whenComplete { result in
                switch result {
                case .success: continuation.resume()
                case .failure: continuation.resume(throwing: CancellationError())
                }
            }
            timer.hold(scheduled)
        }
    } onCancel: {
        timer.cancel()
    }
}

/// The scheduled wake-up of one sleep, cancelled at most once, whichever comes first: the schedule or
/// the cancellation.
private final class SleepTimer: Sendable {
    private let state = Mutex<(scheduled: Scheduled<Void>?, cancelled: Bool)>((nil, false))

    func hold(_ scheduled: Scheduled<Void>) {
        let cancelled = state.withLock { state in
            state.scheduled = scheduled
            return state.cancelled
        }
        if cancelled { scheduled.cancel() }
    }

    func cancel() {
        let scheduled = state.withLock { state in
            state.cancelled = true
            return state.scheduled
        }
        scheduled?.cancel()
    }
}
