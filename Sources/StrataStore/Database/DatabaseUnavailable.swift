import PostgresNIO
import _ConnectionPoolModule

/// PostgreSQL could not be used for a request: it is unreachable, restarting, or did not answer within
/// its deadline. Nothing the request asked for is known to have happened (``Reason/outcomeUnknown`` says
/// when that cannot be told), so a client may retry; with the same `Idempotency-Key` a retried write is
/// applied at most once.
public struct DatabaseUnavailable: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// No connection could be had within the connect deadline.
        case unreachable
        /// Every pooled connection stayed busy for longer than a request may wait for one.
        case busy
        /// The connection died while it was in use: PostgreSQL stopped, restarted or ended the session.
        case connectionLost
        /// Connected, but the work did not finish within its deadline.
        case timedOut
        /// PostgreSQL is shutting down, starting up or out of connections, and said so.
        case refused
        /// A batch's COMMIT was sent and its answer lost, and the log could not be asked whether it landed.
        case outcomeUnknown
        /// PostgreSQL ended the work to break a deadlock with other work, or could not serialize it with
        /// other work; none of it happened, and the same request again will most likely go through.
        case conflict
    }

    public var reason: Reason

    public init(_ reason: Reason) {
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .unreachable: return "PostgreSQL is unreachable"
        case .busy: return "every connection to PostgreSQL is busy"
        case .connectionLost: return "the connection to PostgreSQL was lost"
        case .timedOut: return "PostgreSQL did not answer in time"
        case .refused: return "PostgreSQL refused the connection (shutting down, starting up or full)"
        case .outcomeUnknown:
            return "the connection to PostgreSQL was lost while a write committed; retry with the same Idempotency-Key"
        case .conflict: return "PostgreSQL ended the work to break a conflict with other work (a deadlock)"
        }
    }

    /// `error` as an outage, if that is what it is; nil for every error that says something about the
    /// request itself (a constraint, a refused command), which must not be retried blindly.
    public init?(_ error: any Error) {
        switch error {
        case let outage as DatabaseUnavailable:
            self = outage
        case let error as PostgresTransactionError:
            guard
                let inner = [error.beginError, error.closureError, error.commitError].lazy.compactMap({ $0 })
                    .compactMap(DatabaseUnavailable.init).first
            else { return nil }
            self = inner
        case let error as PSQLError:
            guard let reason = Self.reason(of: error) else { return nil }
            self.init(reason)
        case let error as ConnectionPoolError:
            // The pool gave up opening connections (its circuit breaker), or is shutting down.
            guard error == .connectionCreationCircuitBreakerTripped || error == .poolShutdown else { return nil }
            self.init(.unreachable)
        default:
            return nil
        }
    }

    private static func reason(of error: PSQLError) -> Reason? {
        switch error.code {
        case .connectionError, .poolClosed: return .unreachable
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown: return .connectionLost
        case .server:
            guard let state = error.serverInfo?[.sqlState] else { return nil }
            // Class 08: connection exceptions; 57P01 and 57P02: the server ends this session (terminated,
            // shutting down, or another backend crashed), the last thing said on it; 57P03: cannot connect
            // now (starting up, shutting down); 53300: too many connections; 40P01 and 40001: a deadlock
            // broken, a serialization failure.
            if state.hasPrefix("08") || ["57P01", "57P02"].contains(state) { return .connectionLost }
            if ["57P03", "53300"].contains(state) { return .refused }
            if ["40P01", "40001"].contains(state) { return .conflict }
            return nil
        default:
            return nil
        }
    }
}
