import Foundation

/// An event of the log, whichever kind of stream it belongs to: a dataset's, or an API token's.
public enum LogEvent: Sendable, Equatable {
    case dataset(DatasetEvent)
    case token(TokenEvent)

    /// Whether events of this type belong to a token's stream.
    public static func isToken(type: String) -> Bool {
        type == "TokenCreated" || type == "TokenRevoked"
    }

    /// Reads an event back from its type name and the payload's UTF-8 bytes.
    public static func decode(type: String, json bytes: UnsafeRawBufferPointer) throws -> LogEvent {
        isToken(type: type)
            ? .token(try TokenEvent.decode(type: type, json: bytes))
            : .dataset(try DatasetEvent.decode(type: type, json: bytes))
    }

    public static func decode(type: String, data: String) throws -> LogEvent {
        var data = data
        return try data.withUTF8 { try decode(type: type, json: UnsafeRawBufferPointer($0)) }
    }

    public static let allTypes = DatasetEvent.allTypes + TokenEvent.allTypes
}
