import Synchronization

/// What this process last learned about whether PostgreSQL can be reached, from the readiness
/// monitor's own connection (see ``DatabaseMonitor``).
///
/// A request that waits long for a pooled connection may be waiting for a busy pool or for a database
/// that is down; only the second deserves a prompt 503, and this tells them apart.
public final class DatabaseReachability: Sendable {
    public enum State: Sendable, Equatable {
        /// Nothing learned yet, or nothing watching: treated as reachable.
        case unknown
        case reachable
        case unreachable(DatabaseUnavailable.Reason)
    }

    private let state = Mutex<State>(.unknown)

    public init() {}

    public var current: State { state.withLock { $0 } }

    public var isUnreachable: Bool {
        if case .unreachable = current { return true }
        return false
    }

    /// Records what was learned; answers whether it differs from what was known.
    @discardableResult
    public func update(_ new: State) -> Bool {
        state.withLock { state in
            defer { state = new }
            return state != new
        }
    }
}
