import Foundation

/// The part of the catalog a batch of writes can see: the states of the streams its commands touch,
/// who holds the names they ask about, and the tokens they name — loaded before anything is decided,
/// and kept up to date as each decision's events are applied, so every command sees the ones before it.
///
/// What was loaded is known apart from what is absent: a stream looked up and not found is a stream
/// that does not exist, not one nobody asked about (see ``CatalogDecider/needs(_:context:in:)``).
public struct CatalogView: Sendable {
    /// A dataset's natural key.
    public struct Name: Hashable, Sendable {
        public var namespace: String
        public var name: String

        public init(_ namespace: String, _ name: String) {
            self.namespace = namespace
            self.name = name
        }
    }

    public private(set) var datasets: [UUID: DatasetState] = [:]
    /// Who holds each name looked up: nil when nobody (or only retired datasets) does.
    public private(set) var names: [Name: UUID?] = [:]
    public private(set) var tokenStreams: [UUID: TokenState] = [:]
    /// The stream of the token that holds each name looked up, nil when none does.
    public private(set) var tokenNames: [String: UUID?] = [:]

    public init() {}

    // MARK: loading

    public mutating func load(dataset state: DatasetState) { datasets[state.id] = state }
    public mutating func loadAbsent(dataset id: UUID) { datasets[id] = datasets[id] ?? DatasetState(id: id) }
    public mutating func load(name: Name, holder: UUID?) { names[name] = holder }
    public mutating func load(token state: TokenState) { tokenStreams[state.id] = state }
    public mutating func load(tokenName: String, stream: UUID?) { tokenNames[tokenName] = stream }

    public func knows(dataset id: UUID) -> Bool { datasets[id] != nil }
    public func knows(name: Name) -> Bool { names[name] != nil }
    public func knows(tokenName: String) -> Bool { tokenNames[tokenName] != nil }

    // MARK: reading

    public func dataset(_ id: UUID) -> DatasetState { datasets[id] ?? DatasetState(id: id) }
    public func holder(of name: Name) -> UUID? { names[name] ?? nil }
    public func token(_ id: UUID) -> TokenState { tokenStreams[id] ?? TokenState(id: id) }
    public func tokenStream(named name: String) -> UUID? { tokenNames[name] ?? nil }

    // MARK: applying

    /// Folds a decided event into the view.
    mutating func apply(_ event: StreamEvent, context: EventContext) {
        switch event.event {
        case .dataset(let datasetEvent):
            var state = dataset(event.stream)
            state.apply(datasetEvent, context: context)
            datasets[event.stream] = state
            switch datasetEvent {
            case .created(let created): names[Name(created.namespace, created.name)] = .some(event.stream)
            case .retired: names[Name(state.namespace, state.name)] = .some(nil)
            default: break
            }
        case .token(let tokenEvent):
            var state = token(event.stream)
            state.apply(tokenEvent)
            tokenStreams[event.stream] = state
            switch tokenEvent {
            case .created(let created): tokenNames[created.name] = .some(event.stream)
            case .revoked(let revoked): tokenNames[revoked.name] = .some(nil)
            }
        }
    }
}
