import Hummingbird

/// The per-request context of every Strata route.
public struct StrataRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Request bodies are small JSON documents; anything bigger than 1 MiB is refused with 413.
    public var maxUploadSize: Int { 1 << 20 }
}
