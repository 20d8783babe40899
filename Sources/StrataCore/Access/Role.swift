import Foundation

/// What a token may do. Each role includes the ones before it.
public enum Role: String, Sendable, CaseIterable, Comparable {
    /// Reads: every GET.
    case reader
    /// Plus every dataset write, usages, lineage and OpenLineage ingestion.
    case writer
    /// Plus `/v1/admin/*` (projections, tokens), and every namespace whatever the token's scope.
    case admin

    public static func < (lhs: Role, rhs: Role) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// The namespaces a token may see and act in: every one, or a list.
public enum NamespaceScope: Sendable, Hashable {
    case all
    case only(Set<Namespace>)

    /// A namespace as the catalog stores it: compared by its bytes, as PostgreSQL compares it. Swift's
    /// `String` equality is canonical equivalence, by which `café` spelt with a combining accent equals
    /// `café` spelt with a precomposed one, though the catalog holds them as two namespaces: a token
    /// scoped to one must not reach the other.
    public struct Namespace: Sendable, Hashable, ExpressibleByStringLiteral {
        public let text: String

        public init(_ text: String) { self.text = text }
        public init(stringLiteral text: String) { self.text = text }

        public static func == (lhs: Namespace, rhs: Namespace) -> Bool { lhs.text.utf8.elementsEqual(rhs.text.utf8) }
        public func hash(into hasher: inout Hasher) {
            for byte in text.utf8 { hasher.combine(byte) }
        }
    }

    /// A scope from a token's list of namespaces, where an empty list means every namespace.
    public init(_ namespaces: [String]) {
        self = namespaces.isEmpty ? .all : .only(Set(namespaces.map { Namespace($0) }))
    }

    public func includes(_ namespace: String) -> Bool {
        switch self {
        case .all: return true
        case .only(let namespaces): return namespaces.contains(Namespace(namespace))
        }
    }

    /// The namespaces, sorted, for a query's `= ANY(...)`; nil for every namespace.
    public var namespaces: [String]? {
        switch self {
        case .all: return nil
        case .only(let namespaces): return namespaces.map(\.text).sorted()
        }
    }
}

/// Who is asking: the token's name (the actor of everything it appends), its role and its scope.
public struct Caller: Sendable, Equatable {
    public var name: String
    public var role: Role
    public var scope: NamespaceScope
    /// The grant the token is (its stream in the log); nil for a caller no token stands for. A name
    /// revoked and granted again is another grant, with its own scope.
    public var tokenID: UUID?

    public init(name: String, role: Role, scope: NamespaceScope, tokenID: UUID? = nil) {
        self.name = name
        self.role = role
        self.tokenID = tokenID
        // An admin sees every namespace, whatever its token lists.
        self.scope = role == .admin ? .all : scope
    }

    public func may(_ needed: Role) -> Bool { role >= needed }
}
