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
    case only(Set<String>)

    /// A scope from a token's list of namespaces, where an empty list means every namespace.
    public init(_ namespaces: [String]) {
        self = namespaces.isEmpty ? .all : .only(Set(namespaces))
    }

    public func includes(_ namespace: String) -> Bool {
        switch self {
        case .all: return true
        case .only(let namespaces): return namespaces.contains(namespace)
        }
    }

    /// The namespaces, sorted, for a query's `= ANY(...)`; nil for every namespace.
    public var namespaces: [String]? {
        switch self {
        case .all: return nil
        case .only(let namespaces): return namespaces.sorted()
        }
    }
}

/// Who is asking: the token's name (the actor of everything it appends), its role and its scope.
public struct Caller: Sendable, Equatable {
    public var name: String
    public var role: Role
    public var scope: NamespaceScope

    public init(name: String, role: Role, scope: NamespaceScope) {
        self.name = name
        self.role = role
        // An admin sees every namespace, whatever its token lists.
        self.scope = role == .admin ? .all : scope
    }

    public func may(_ needed: Role) -> Bool { role >= needed }
}
