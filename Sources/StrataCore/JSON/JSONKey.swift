import Foundation

/// The name of an object member as ``JSONReader/readObject(_:)`` hands it over, for a decoder to match
/// against the names it knows (`case "owner":`) byte for byte, without a `String` made for every member.
///
/// It points into the text being read, so it is good only inside the closure it is handed to. Matching
/// bytes decides as comparing `String`s (as `JSONDecoder` did) would for the names decoders use, lower-case
/// ASCII: no other spelling of those is canonically equivalent to them.
public struct JSONKey {
    /// The name's bytes in the text, when it is written without escapes, as nearly every name is.
    private let bytes: UnsafeBufferPointer<UInt8>?
    /// The name, when it has escapes.
    private let unescaped: String?

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        unescaped = nil
    }

    init(_ unescaped: String) {
        bytes = nil
        self.unescaped = unescaped
    }

    public var string: String { unescaped ?? String(decoding: bytes!, as: UTF8.self) }

    @inline(__always)
    public static func == (key: JSONKey, name: StaticString) -> Bool {
        guard let bytes = key.bytes else { return key.unescaped!.utf8.elementsEqual(name.utf8Bytes) }
        return bytes.count == name.utf8CodeUnitCount && memcmp(bytes.baseAddress!, name.utf8Start, bytes.count) == 0
    }

    @inline(__always)
    public static func ~= (name: StaticString, key: JSONKey) -> Bool { key == name }
}

extension StaticString {
    fileprivate var utf8Bytes: UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: utf8Start, count: utf8CodeUnitCount)
    }
}
