import Hummingbird

/// The per-request context of every Strata route: who is asking, and which request this is.
public struct StrataRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Stored as `metadata.request_id` on every event the request appends, and logged with it.
    public var requestID: String = ""
    /// Becomes `metadata.actor` on every event the request appends.
    public var actor: String = "anonymous"

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Request bodies are small JSON documents; anything bigger than 1 MiB is refused with 413.
    public var maxUploadSize: Int { 1 << 20 }
}
