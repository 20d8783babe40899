import Foundation

/// The part of the catalog a batch of writes can see: the states of the streams its commands touch,
/// who holds the names they ask about, and the tokens they name — loaded before anything is decided,
/// and kept up to date as each decision's events are applied, so every command sees the ones before it.
///
/// What was loaded is known apart from what is absent: a stream looked up and not found is a stream
/// that does not exist, not one nobody asked about (see ``CatalogDecider/needs(_:context:in:)``).
public struct CatalogView: Sendable {
    /// A dataset's natural key, compared by its bytes as the catalog's unique index compares it: Swift's
    /// `String` equality would hold `café` and `café` (a combining accent) to be one name where the
    /// catalog holds two, and answer one's holder for the other.
    public struct Name: Hashable, Sendable {
        public var namespace: String
        public var name: String

        public init(_ namespace: String, _ name: String) {
            self.namespace = namespace
            self.name = name
        }

        public static func == (lhs: Name, rhs: Name) -> Bool {
            lhs.namespace.utf8.elementsEqual(rhs.namespace.utf8) && lhs.name.utf8.elementsEqual(rhs.name.utf8)
        }

        public func hash(into hasher: inout Hasher) {
            for byte in namespace.utf8 { hasher.combine(byte) }
            hasher.combine(namespace.utf8.count)
            for byte in name.utf8 { hasher.combine(byte) }
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
    /// The entries that applying events changed, as they were before: what puts the view back when the
    /// command that applied them is refused.
    struct Undo {
        fileprivate var datasets: [UUID: DatasetState?] = [:]
        fileprivate var names: [Name: UUID??] = [:]
        fileprivate var tokenStreams: [UUID: TokenState?] = [:]
        fileprivate var tokenNames: [String: UUID??] = [:]
    }

    /// Applies `event`, noting in `undo` each entry it changes as the entry was before its first change.
    mutating func apply(_ event: StreamEvent, context: EventContext, undo: inout Undo) {
        switch event.event {
        case .dataset(let datasetEvent):
            var state = dataset(event.stream)
            state.apply(datasetEvent, context: context)
            if undo.datasets[event.stream] == nil { undo.datasets[event.stream] = .some(datasets[event.stream]) }
            datasets[event.stream] = state
            let name: Name
            let holder: UUID?
            switch datasetEvent {
            case .created(let created): (name, holder) = (Name(created.namespace, created.name), event.stream)
            case .retired: (name, holder) = (Name(state.namespace, state.name), nil)
            default: return
            }
            if undo.names[name] == nil { undo.names[name] = .some(names[name]) }
            names[name] = .some(holder)
        case .token(let tokenEvent):
            var state = token(event.stream)
            state.apply(tokenEvent)
            if undo.tokenStreams[event.stream] == nil {
                undo.tokenStreams[event.stream] = .some(tokenStreams[event.stream])
            }
            tokenStreams[event.stream] = state
            let (name, holder): (String, UUID?) =
                switch tokenEvent {
                case .created(let created): (created.name, event.stream)
                case .revoked(let revoked): (revoked.name, nil)
                }
            if undo.tokenNames[name] == nil { undo.tokenNames[name] = .some(tokenNames[name]) }
            tokenNames[name] = .some(holder)
        }
    }

    /// Puts back every entry `undo` noted, as it was.
    mutating func revert(_ undo: Undo) {
        for (id, state) in undo.datasets { datasets[id] = state }
        for (name, holder) in undo.names { names[name] = holder }
        for (id, state) in undo.tokenStreams { tokenStreams[id] = state }
        for (name, holder) in undo.tokenNames { tokenNames[name] = holder }
    }
}
