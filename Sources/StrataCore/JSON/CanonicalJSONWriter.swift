import Foundation

/// Writes canonical JSON straight into bytes — the same bytes ``CanonicalJSON/string(_:)`` gives — for the
/// documents the projector renders once per event, where going through `Encodable` dominated a rebuild.
///
/// Objects are written member by member and the caller names the members in sorted order (UTF-8 byte
/// order, as the encoder sorts); debug builds check it. `DocumentRenderingTests` holds the writer to the
/// encoder's output for every kind of value, escapes and numbers included.
public struct CanonicalJSONWriter {
    public private(set) var bytes: [UInt8] = []
    /// Whether the next value follows another in its object or array, and so needs a comma.
    private var followsValue = false
    #if DEBUG
        /// Per open object, the last key written: debug builds check members come in sorted order.
        private var lastKeys: [[UInt8]] = []
    #endif

    public init(capacity: Int = 1024) {
        bytes.reserveCapacity(capacity)
    }

    public var string: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        followsValue = false
        #if DEBUG
            lastKeys.append([])
        #endif
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        followsValue = true
        #if DEBUG
            lastKeys.removeLast()
        #endif
    }

    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        followsValue = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        followsValue = true
    }

    /// Starts a member of the innermost object; its value is whatever is written next.
    public mutating func key(_ key: StaticString) {
        let name = UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        checkOrder(of: name)
        separate()
        // The documents' own member names are plain ASCII: nothing to escape.
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: name)
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        followsValue = false
    }

    /// Starts a member whose name is data (the members of `properties`).
    public mutating func key(named name: String) {
        checkOrder(of: name.utf8)
        separate()
        writeQuoted(name)
        bytes.append(UInt8(ascii: ":"))
        followsValue = false
    }

    private mutating func checkOrder(of key: some Collection<UInt8>) {
        #if DEBUG
            let previous = lastKeys[lastKeys.count - 1]
            assert(
                previous.isEmpty || previous.lexicographicallyPrecedes(key),
                "members must be written in sorted order: \(String(decoding: key, as: UTF8.self)) came after \(String(decoding: previous, as: UTF8.self))"
            )
            lastKeys[lastKeys.count - 1] = Array(key)
        #endif
    }

    public mutating func null() {
        separate()
        bytes.append(contentsOf: "null".utf8)
    }

    public mutating func value(_ value: String) {
        separate()
        writeQuoted(value)
    }

    public mutating func value(_ value: String?) {
        if let value { self.value(value) } else { null() }
    }

    /// A UUID in lower case, as the API writes them.
    public mutating func value(_ id: UUID) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        id.writeLowercased(into: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// A time as ``Timestamp`` writes it.
    public mutating func timestamp(_ date: Date) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        Timestamp.write(date, into: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func value(_ value: Bool) {
        separate()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func value(_ value: Int64) {
        separate()
        value.writeDecimal(into: &bytes)
    }

    public mutating func value(_ value: Int) { self.value(Int64(value)) }

    public mutating func value(_ value: Int?) {
        if let value { self.value(Int64(value)) } else { null() }
    }

    public mutating func value(_ value: Int64?) {
        if let value { self.value(value) } else { null() }
    }

    /// A number as ``JSONValue`` writes it: whole numbers within 2^53 as integers, others as Swift prints them.
    public mutating func value(_ value: Double) {
        if value.rounded() == value, abs(value) < 9_007_199_254_740_992 {
            self.value(Int64(value))
        } else {
            separate()
            // As the encoder does: Swift's shortest round-trip form, without a trailing ".0".
            let text = value.description
            bytes.append(contentsOf: text.hasSuffix(".0") ? text.utf8.dropLast(2) : text.utf8[...])
        }
    }

    /// A value rendered by this writer before, put in as it is.
    public mutating func rendered(_ json: String) {
        separate()
        bytes.append(contentsOf: json.utf8)
    }

    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let flag): self.value(flag)
        case .number(let number): self.value(number)
        case .string(let text): self.value(text)
        case .array(let elements):
            beginArray()
            for element in elements { self.value(element) }
            endArray()
        case .object(let members): object(members)
        }
    }

    public mutating func object(_ members: [String: JSONValue]) {
        beginObject()
        for (key, member) in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            self.key(named: key)
            value(member)
        }
        endObject()
    }

    /// The comma before any value but the first of its object or array.
    @inline(__always)
    private mutating func separate() {
        if followsValue { bytes.append(UInt8(ascii: ",")) }
        followsValue = true
    }

    private mutating func writeQuoted(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            // Copy runs with nothing to escape whole; most strings are one such run.
            var runStart = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                runStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
                case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
                case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                default:
                    bytes.append(contentsOf: [
                        UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                    ])
                    byte.writeHex(into: &bytes)
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
