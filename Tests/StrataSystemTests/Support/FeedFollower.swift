import AsyncHTTPClient
import Foundation
import NIOCore
import StrataTestSupport
import Synchronization

/// A live feed (`GET /v1/events/stream`) followed in the background, as a dashboard follows it: the
/// positions it delivered, in the order delivered, and when each arrived.
final class FeedFollower: Sendable {
    private final class Received: Sendable {
        let events = Mutex<[(position: Int64, at: ContinuousClock.Instant)]>([])
        let isOpen = Atomic<Bool>(false)
        let failure = Mutex<String?>(nil)
    }

    private let state = Received()
    private let task: Task<Void, Never>

    init(client: HTTPClient, server: String, after: Int64 = 0) {
        let state = state
        task = Task {
            var request = HTTPClientRequest(url: server + "/v1/events/stream?after=\(after)")
            request.headers.add(name: "Authorization", value: "Bearer \(ServerProcess.adminToken)")
            do {
                let response = try await client.execute(request, timeout: .hours(1))
                state.isOpen.store(response.status == .ok, ordering: .releasing)
                var pending = ""
                for try await buffer in response.body {
                    pending += String(buffer: buffer)
                    // Whole lines only: an event may arrive split across buffers.
                    while let end = pending.firstIndex(of: "\n") {
                        let line = pending[..<end]
                        if line.hasPrefix("id: "), let position = Int64(line.dropFirst(4)) {
                            state.events.withLock { $0.append((position, .now)) }
                        }
                        pending.removeSubrange(...end)
                    }
                }
            } catch {
                if !Task.isCancelled { state.failure.withLock { $0 = String(describing: error) } }
            }
        }
    }

    var positions: [Int64] { state.events.withLock { $0.map(\.position) } }
    var error: String? { state.failure.withLock { $0 } }

    func arrival(of position: Int64) -> ContinuousClock.Instant? {
        state.events.withLock { $0.first { $0.position == position }?.at }
    }

    /// Waits until the stream's response has begun.
    func waitUntilOpen(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if state.isOpen.load(ordering: .acquiring) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Waits until every one of `positions` has been delivered.
    func waitFor(_ positions: Set<Int64>, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if positions.isSubset(of: Set(self.positions)) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    func stop() {
        task.cancel()
    }
}
