import Hummingbird
import HummingbirdAuth
import Logging
import StrataCore
import Synchronization

/// The per-request context of every Strata route: who is asking, and which request this is.
public struct StrataRequestContext: AuthRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Stored as `metadata.request_id` on every event the request appends, and logged with it.
    public var requestID: String = ""
    /// The token that authenticated the request; its name is the actor of every event the request
    /// appends. Nil until authentication, and for the few routes open to all.
    public var identity: Caller?
    /// `Strata-Actor`: whom the token acts for, recorded as `metadata.on_behalf_of`; it grants nothing.
    public var onBehalfOf: String?
    /// `Strata-Min-Position`: the answer must reflect at least this position (the one the client's own
    /// write answered), whichever database serves it.
    public var minPosition: Int64?
    /// What the request's log line reports, filled in as the request goes down the middleware (which
    /// passes the context on by value).
    let notes = RequestNotes()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// The request's logger with its id, for lines other than the access log (which names the id
    /// itself). Made when such a line is logged, not for every request: the log handler renders a
    /// logger's metadata again each time it changes.
    var identifiedLogger: Logger {
        var logger = logger
        logger[metadataKey: "request_id"] = .string(requestID)
        return logger
    }

    /// Request bodies are small JSON documents; anything bigger than 1 MiB is refused with 413.
    public var maxUploadSize: Int { 1 << 20 }

    /// The authenticated caller. Every route that reaches a handler has one (see ``AccessPolicy``).
    public func caller() throws -> Caller {
        guard let identity else { throw AccessProblem.unauthorized("this needs a token") }
        return identity
    }
}

/// What a request's log line says about it, once the inner middleware has learned it.
final class RequestNotes: Sendable {
    private let state = Mutex<String?>(nil)

    var actor: String? {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}
