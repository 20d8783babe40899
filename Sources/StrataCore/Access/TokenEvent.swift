import Foundation

/// Everything that can happen to an API token: it is granted, and later revoked. Each token is a stream
/// of the log of its own, so the audit trail shows who gave access to whom, and when it ended. The
/// token's secret is never recorded, only its SHA-256.
public enum TokenEvent: Sendable, Equatable {
    case created(Created)
    case revoked(Revoked)

    public struct Created: Sendable, Equatable, Encodable {
        public var name: String
        public var role: Role
        /// Empty: every namespace.
        public var namespaces: [String]
        /// Lowercase hex SHA-256 of the secret.
        public var secretSHA256: String

        public init(name: String, role: Role, namespaces: [String], secretSHA256: String) {
            self.name = name
            self.role = role
            self.namespaces = namespaces
            self.secretSHA256 = secretSHA256
        }

        enum CodingKeys: String, CodingKey {
            case name, role, namespaces
            case secretSHA256 = "secret_sha256"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(role.rawValue, forKey: .role)
            try container.encode(namespaces, forKey: .namespaces)
            try container.encode(secretSHA256, forKey: .secretSHA256)
        }
    }

    public struct Revoked: Sendable, Equatable, Encodable {
        public var name: String

        public init(name: String) {
            self.name = name
        }
    }

    public var type: String {
        switch self {
        case .created: return "TokenCreated"
        case .revoked: return "TokenRevoked"
        }
    }

    public static let allTypes = ["TokenCreated", "TokenRevoked"]

    /// Every token event type is at version 1 of its schema.
    public static let schemaVersion = 1

    /// The payload as JSON text, keys sorted, as it goes into the log's `data` column.
    public func encodedData() -> String {
        switch self {
        case .created(let payload): return CanonicalJSON.string(payload)
        case .revoked(let payload): return CanonicalJSON.string(payload)
        }
    }

    /// Reads an event back from its type name and the payload's UTF-8 bytes.
    public static func decode(type: String, json bytes: UnsafeRawBufferPointer) throws -> TokenEvent {
        switch type {
        case "TokenCreated": return .created(try JSONReader.read(bytes, Created.init(reading:)))
        case "TokenRevoked": return .revoked(try JSONReader.read(bytes, Revoked.init(reading:)))
        default: throw UnknownEventType(type: type)
        }
    }

    public static func decode(type: String, data: String) throws -> TokenEvent {
        var data = data
        return try data.withUTF8 { try decode(type: type, json: UnsafeRawBufferPointer($0)) }
    }
}

extension TokenEvent.Created {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var name: String?
        var role: Role?
        var namespaces: [String]?
        var secret: String?
        try reader.readObject { key, reader throws(JSONReadError) in
            switch key {
            case "name" where name == nil: name = try reader.string()
            case "role" where role == nil:
                role = try reader.string(as: Role.init(rawValue:), expected: "a role: reader, writer or admin")
            case "namespaces" where namespaces == nil: namespaces = try reader.array(String.init(reading:))
            case "secret_sha256" where secret == nil: secret = try reader.string()
            default: try reader.skipValue()
            }
        }
        self.init(
            name: try reader.required(name, "name"), role: try reader.required(role, "role"),
            namespaces: try reader.required(namespaces, "namespaces"),
            secretSHA256: try reader.required(secret, "secret_sha256"))
    }
}

extension TokenEvent.Revoked {
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        var name: String?
        try reader.readObject { key, reader throws(JSONReadError) in
            if key == "name", name == nil { name = try reader.string() } else { try reader.skipValue() }
        }
        self.init(name: try reader.required(name, "name"))
    }
}
