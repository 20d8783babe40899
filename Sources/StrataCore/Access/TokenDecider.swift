import Foundation

/// What can be asked of a token's stream.
public enum TokenCommand: Sendable, Equatable {
    /// Grant a new token; the caller has drawn the secret and passes only its SHA-256.
    case create(name: String, role: Role, namespaces: [String], secretSHA256: String)
    case revoke
}

/// A token as its events leave it.
public struct TokenState: Sendable, Equatable {
    public var id: UUID
    public var name: String?
    public var role: Role?
    public var namespaces: [String] = []
    public var isRevoked = false
    public var streamVersion: Int64 = 0

    public init(id: UUID) {
        self.id = id
    }

    public var exists: Bool { streamVersion > 0 }

    public mutating func apply(_ event: TokenEvent) {
        streamVersion += 1
        switch event {
        case .created(let created):
            name = created.name
            role = created.role
            namespaces = created.namespaces
        case .revoked:
            isRevoked = true
        }
    }

    /// Why `event` cannot follow this state, or nil: a log the decider could not have written.
    public func inconsistency(of event: TokenEvent) -> String? {
        switch event {
        case .created: return exists ? "a token created twice" : nil
        case .revoked:
            if !exists { return "a token revoked before it was created" }
            return isRevoked ? "a token revoked twice" : nil
        }
    }
}

/// Why an access rule refused a command. The HTTP layer maps each to a status and code in one table.
public enum AccessError: Error, Sendable, Equatable {
    /// A token that is not revoked already has this name.
    case tokenNameTaken(String)
    /// No token that is not revoked has this name.
    case tokenNotFound(String)
    /// The caller's token is scoped to other namespaces.
    case namespaceOutOfScope(String)
    /// A name the catalog appends events as itself (``TokenName/isReserved(_:)``).
    case reservedTokenName(String)
}

/// The rules of a token's life: it is created once, and revoked at most once.
public enum TokenDecider {
    public static func decide(_ command: TokenCommand, state: TokenState) throws -> [TokenEvent] {
        switch command {
        case .create(let name, let role, let namespaces, let secret):
            guard !state.exists else { throw AccessError.tokenNameTaken(name) }
            guard !TokenName.isReserved(name) else { throw AccessError.reservedTokenName(name) }
            // One order for a token's namespaces, whatever order they were asked for in; each once, by its
            // bytes, as the catalog tells namespaces apart.
            let namespaces = Set(namespaces.map { NamespaceScope.Namespace($0) }).map(\.text)
                .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            return [.created(.init(name: name, role: role, namespaces: namespaces, secretSHA256: secret))]
        case .revoke:
            guard state.exists, !state.isRevoked, let name = state.name else {
                throw AccessError.tokenNotFound(state.name ?? "")
            }
            return [.revoked(.init(name: name))]
        }
    }
}

/// What a token's name may be (`TokenName` in `Schemas/common.json`): 1 to 128 letters, digits and
/// `. _ @ : + -`, a letter or digit first. It becomes the actor of every event the token appends.
public enum TokenName {
    public static func isValid(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        guard let first = scalars.first, (1...128).contains(scalars.count), isAlphanumeric(first) else { return false }
        return scalars.allSatisfy { isAlphanumeric($0) || "._@:+-".unicodeScalars.contains($0) }
    }

    /// The actor of what the server appends itself (the first admin token's grant).
    public static let server = "strata-serve"
    /// The actor of every request to a server run with `--insecure-no-auth`.
    public static let anonymous = "anonymous"
    /// The actor of `strata token create|revoke`, run on the database: this, then the operator's login.
    public static let commandLinePrefix = "cli:"

    /// Whether a token by this name would pass, in the audit trail, for the server, an unauthenticated
    /// caller or an operator at the command line.
    public static func isReserved(_ name: String) -> Bool {
        let folded = name.lowercased()
        return folded == server || folded == anonymous || folded.hasPrefix(commandLinePrefix)
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("0"..."9").contains(scalar) || ("A"..."Z").contains(scalar) || ("a"..."z").contains(scalar)
    }
}
