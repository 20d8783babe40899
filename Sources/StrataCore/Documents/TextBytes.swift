import Foundation

// Values written straight into UTF-8 bytes, for the documents and COPY rows a rebuild writes by the
// million, where building a String per value first showed in the profile.

extension UUID {
    /// UUIDs are written in lower case on the wire, as RFC 9562 recommends.
    public var lowercased: String {
        var text: [UInt8] = []
        text.reserveCapacity(36)
        writeLowercased(into: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends the lower-case text form (8-4-4-4-12 hex digits) to `text`.
    public func writeLowercased(into text: inout [UInt8]) {
        withUnsafeBytes(of: uuid) { bytes in
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
                byte.writeHex(into: &text)
            }
        }
    }
}

extension Int64 {
    /// Appends the decimal digits (and sign) to `text`.
    public func writeDecimal(into text: inout [UInt8]) {
        if self < 0 { text.append(UInt8(ascii: "-")) }
        // UInt64 holds the magnitude of Int64.min; the digits come least significant first.
        var magnitude = self.magnitude
        let start = text.count
        repeat {
            text.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        text[start...].reverse()
    }
}

extension UInt8 {
    /// Appends the two lower-case hex digits of the byte to `text`.
    public func writeHex(into text: inout [UInt8]) {
        let digits: StaticString = "0123456789abcdef"
        text.append(digits.utf8Start[Int(self >> 4)])
        text.append(digits.utf8Start[Int(self & 0x0F)])
    }
}

extension Sequence where Element == UInt8 {
    /// The bytes as lower-case hex digits: how digests are written down.
    public var hexadecimal: String {
        var text: [UInt8] = []
        for byte in self { byte.writeHex(into: &text) }
        return String(decoding: text, as: UTF8.self)
    }
}
