import Foundation

/// A strict RFC 8259 JSON reader that decodes UTF-8 bytes straight into typed values, without building a
/// tree first: how event payloads are decoded, because `JSONDecoder` took a third of a rebuild's time.
///
/// A reader lives only inside ``read(_:_:)`` (it points into the caller's bytes, so it cannot be copied
/// out), and each of its reading methods consumes exactly one value: objects member by member, arrays
/// element by element, scalars as the Swift type asked for. Everything it reads is checked as it goes —
/// grammar, escapes, UTF-8, number ranges, nesting depth — and any refusal is a ``JSONReadError`` saying
/// where and what was expected. The closures handed to it say `throws(JSONReadError)`, so that the error
/// keeps its type all the way up.
///
/// Where the RFC leaves a choice, the reader chooses as `JSONDecoder` does, so moving a decoder onto it
/// changes no accepted value: integers are accepted in any notation whose value is whole and fits
/// (`1.0`, `1e2`), doubles are correctly rounded and refused when they overflow or underflow to zero, a
/// repeated object member keeps its first value (see ``readObject(_:)``), nesting stops at 512 levels,
/// and a leading UTF-8 byte order mark is ignored.
public struct JSONReader: ~Copyable {
    /// The deepest nesting of arrays and objects accepted, `JSONDecoder`'s limit.
    public static let maximumDepth = 512

    private let text: UnsafeBufferPointer<UInt8>
    private var position = 0
    private var depth = 0
    /// Where strings with escapes are put together, kept between strings to spare an allocation each.
    private var scratch: [UInt8] = []

    private init(_ text: UnsafeBufferPointer<UInt8>) {
        self.text = text
    }

    /// Reads the JSON text in `bytes` with `body`, which must read its one value; anything but whitespace
    /// after that value is refused.
    public static func read<T>(
        _ bytes: UnsafeRawBufferPointer, _ body: (inout JSONReader) throws(JSONReadError) -> T
    ) throws(JSONReadError) -> T {
        var reader = JSONReader(bytes.assumingMemoryBound(to: UInt8.self))
        reader.skipByteOrderMark()
        let value = try body(&reader)
        reader.skipWhitespace()
        guard reader.position == reader.text.count else { throw reader.error("the end of the text") }
        return value
    }

    // `withUnsafeBytes` and its kin rethrow untyped errors; a `Result` carries the typed one through.

    public static func read<T>(
        _ bytes: [UInt8], _ body: (inout JSONReader) throws(JSONReadError) -> T
    ) throws(JSONReadError) -> T {
        try bytes.withUnsafeBytes { bytes in Result { () throws(JSONReadError) in try read(bytes, body) } }.get()
    }

    public static func read<T>(
        _ data: Data, _ body: (inout JSONReader) throws(JSONReadError) -> T
    ) throws(JSONReadError) -> T {
        try data.withUnsafeBytes { bytes in Result { () throws(JSONReadError) in try read(bytes, body) } }.get()
    }

    public static func read<T>(
        _ text: String, _ body: (inout JSONReader) throws(JSONReadError) -> T
    ) throws(JSONReadError) -> T {
        var text = text
        return try text.withUTF8 { utf8 in
            Result { () throws(JSONReadError) in try read(UnsafeRawBufferPointer(utf8), body) }
        }.get()
    }

    /// The offset of the next byte to read.
    public var offset: Int { position }

    /// A refusal at the next byte, or at `offset`.
    public func error(_ expected: String, at offset: Int? = nil) -> JSONReadError {
        JSONReadError(offset: offset ?? position, expected: expected)
    }

    // MARK: containers

    /// Reads an object, handing each member's name and the reader, positioned at the member's value, to
    /// `member`, which must read (or skip) that value. The name is a ``JSONKey``, matched without making
    /// a `String` of it.
    ///
    /// A name can occur twice in an object. `JSONDecoder` kept the first value; a decoder that means to
    /// do the same reads a member only while it has no value for it yet and skips the rest.
    public mutating func readObject(
        _ member: (JSONKey, inout JSONReader) throws(JSONReadError) -> Void
    ) throws(JSONReadError) {
        try enter(ASCII.openBrace, "an object")
        skipWhitespace()
        if peek() == ASCII.closeBrace {
            return leave()
        }
        while true {
            skipWhitespace()
            guard peek() == ASCII.quote else { throw error("a member name") }
            let name = try readKey()
            skipWhitespace()
            guard peek() == ASCII.colon else { throw error("':'") }
            position += 1
            try member(name, &self)
            skipWhitespace()
            switch peek() {
            case ASCII.comma: position += 1
            case ASCII.closeBrace: return leave()
            default: throw error("',' or '}'")
            }
        }
    }

    /// Reads an array, calling `element` with the reader positioned at each element, which it must read.
    public mutating func readArray(_ element: (inout JSONReader) throws(JSONReadError) -> Void) throws(JSONReadError) {
        try enter(ASCII.openBracket, "an array")
        skipWhitespace()
        if peek() == ASCII.closeBracket {
            return leave()
        }
        while true {
            try element(&self)
            skipWhitespace()
            switch peek() {
            case ASCII.comma: position += 1
            case ASCII.closeBracket: return leave()
            default: throw error("',' or ']'")
            }
        }
    }

    /// An array whose elements `element` reads.
    public mutating func array<T>(_ element: (inout JSONReader) throws(JSONReadError) -> T) throws(JSONReadError)
        -> [T]
    {
        var elements: [T] = []
        try readArray { reader throws(JSONReadError) in elements.append(try element(&reader)) }
        return elements
    }

    /// An array whose elements `element` reads, or nil for `null`.
    public mutating func optionalArray<T>(_ element: (inout JSONReader) throws(JSONReadError) -> T)
        throws(JSONReadError) -> [T]?
    {
        readNull() ? nil : try array(element)
    }

    /// Consumes the opening bracket of a container, counting it against the depth limit.
    private mutating func enter(_ bracket: UInt8, _ expected: String) throws(JSONReadError) {
        skipWhitespace()
        guard peek() == bracket else { throw error(expected) }
        guard depth < Self.maximumDepth else { throw error("at most \(Self.maximumDepth) levels of nesting") }
        depth += 1
        position += 1
    }

    /// Consumes the closing bracket of a container.
    private mutating func leave() {
        depth -= 1
        position += 1
    }

    // MARK: scalars

    /// Consumes a `null` if one comes next; answers whether it did.
    public mutating func readNull() -> Bool {
        skipWhitespace()
        guard matches("null") else { return false }
        position += 4
        return true
    }

    /// The value `read` reads, or nil for `null`.
    public mutating func optional<T>(_ read: (inout JSONReader) throws(JSONReadError) -> T) throws(JSONReadError)
        -> T?
    {
        readNull() ? nil : try read(&self)
    }

    public mutating func bool() throws(JSONReadError) -> Bool {
        skipWhitespace()
        if matches("true") {
            position += 4
            return true
        }
        if matches("false") {
            position += 5
            return false
        }
        throw error("true or false")
    }

    public mutating func string() throws(JSONReadError) -> String {
        skipWhitespace()
        guard peek() == ASCII.quote else { throw error("a string") }
        return try readString()
    }

    /// A string that `convert` turns into a value (an enum's raw value, a UUID); if it answers nil, the
    /// string is refused, at its opening quote, as not being `expected`.
    public mutating func string<T>(as convert: (String) -> T?, expected: @autoclosure () -> String)
        throws(JSONReadError) -> T
    {
        skipWhitespace()
        let start = position
        guard let value = convert(try string()) else { throw error(expected(), at: start) }
        return value
    }

    /// A string holding a UUID, as `UUID(uuidString:)` reads one. The usual form, 8-4-4-4-12 hex digits,
    /// is read from the bytes where they are: `UUID(uuidString:)` on a String made for it took longer than
    /// the rest of a lineage event.
    public mutating func uuid() throws(JSONReadError) -> UUID {
        skipWhitespace()
        if let uuid = plainUUID() {
            position += 38
            return uuid
        }
        return try string(as: UUID.init(uuidString:), expected: "a UUID")
    }

    /// The UUID in a string of exactly 8-4-4-4-12 hex digits at the position, if that is what is there.
    private func plainUUID() -> UUID? {
        guard text.count - position >= 38, text[position] == ASCII.quote, text[position + 37] == ASCII.quote else {
            return nil
        }
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let parsed = withUnsafeMutableBytes(of: &uuid) { bytes in
            var index = position + 1
            for byte in 0..<16 {
                if byte == 4 || byte == 6 || byte == 8 || byte == 10 {
                    guard text[index] == UInt8(ascii: "-") else { return false }
                    index += 1
                }
                guard let high = hexValue(text[index]), let low = hexValue(text[index + 1]) else { return false }
                bytes[byte] = high << 4 | low
                index += 2
            }
            return true
        }
        return parsed ? UUID(uuid: uuid) : nil
    }

    public mutating func int() throws(JSONReadError) -> Int { try integer(Int.self) }

    public mutating func int64() throws(JSONReadError) -> Int64 { try integer(Int64.self) }

    public mutating func double() throws(JSONReadError) -> Double {
        skipWhitespace()
        return try doubleValue(of: try readNumber("a number"))
    }

    public mutating func optionalBool() throws(JSONReadError) -> Bool? { readNull() ? nil : try bool() }

    public mutating func optionalString() throws(JSONReadError) -> String? { readNull() ? nil : try string() }

    public mutating func optionalInt() throws(JSONReadError) -> Int? { readNull() ? nil : try int() }

    public mutating func optionalInt64() throws(JSONReadError) -> Int64? { readNull() ? nil : try int64() }

    /// `value` when the member it was read from was present; call right after reading the object, so a
    /// missing member is reported at the object's closing brace.
    public func required<T>(_ value: consuming T?, _ name: String) throws(JSONReadError) -> T {
        guard let value else { throw error("a member \"\(name)\"", at: position - 1) }
        return value
    }

    // MARK: any value

    /// The next value, whatever it is, as a tree.
    public mutating func value() throws(JSONReadError) -> JSONValue {
        try value(uniqueMembers: false)
    }

    /// The next value as a tree, but an object that names a member twice is refused instead of read
    /// first-wins: I-JSON (RFC 7493), what a request must send. A reader that keeps the last of two values
    /// (Python's, which checks bodies against the schemas in the tests) would see another document.
    public mutating func valueWithUniqueMembers() throws(JSONReadError) -> JSONValue {
        try value(uniqueMembers: true)
    }

    private mutating func value(uniqueMembers: Bool) throws(JSONReadError) -> JSONValue {
        skipWhitespace()
        switch peek() {
        case ASCII.openBrace: return .object(try object(uniqueMembers: uniqueMembers))
        case ASCII.openBracket:
            var elements: [JSONValue] = []
            try readArray { reader throws(JSONReadError) in
                elements.append(try reader.value(uniqueMembers: uniqueMembers))
            }
            return .array(elements)
        case ASCII.quote: return .string(try readString())
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool(try bool())
        case UInt8(ascii: "n"):
            guard readNull() else { throw error("a JSON value") }
            return .null
        default: return .number(try doubleValue(of: try readNumber("a JSON value")))
        }
    }

    /// An object, its members any JSON values.
    public mutating func object() throws(JSONReadError) -> [String: JSONValue] {
        try object(uniqueMembers: false)
    }

    private mutating func object(uniqueMembers: Bool) throws(JSONReadError) -> [String: JSONValue] {
        var members: [String: JSONValue] = [:]
        try readObject { name, reader throws(JSONReadError) in
            let name = name.string
            if members[name] == nil {
                members[name] = try reader.value(uniqueMembers: uniqueMembers)
            } else if uniqueMembers {
                reader.skipWhitespace()
                throw reader.error(
                    "a member other than \(CanonicalJSON.string(JSONValue.string(name))), which the object already has")
            } else {
                // The first of repeated members counts, as with `JSONDecoder`.
                try reader.skipValue()
            }
        }
        return members
    }

    /// Consumes the next value, checking it as strictly as reading it would, except that a number is not
    /// converted, so one no Swift type holds (`1e400`) passes.
    public mutating func skipValue() throws(JSONReadError) {
        skipWhitespace()
        switch peek() {
        case ASCII.openBrace: try readObject { _, reader throws(JSONReadError) in try reader.skipValue() }
        case ASCII.openBracket: try readArray { reader throws(JSONReadError) in try reader.skipValue() }
        case ASCII.quote: try skipString()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try bool()
        case UInt8(ascii: "n"): guard readNull() else { throw error("a JSON value") }
        default: _ = try readNumber("a JSON value")
        }
    }

    // MARK: bytes

    /// The next byte, or 0 at the end: 0 is never valid where a token can start, so the end needs no
    /// test of its own there.
    @inline(__always)
    private func peek(_ ahead: Int = 0) -> UInt8 {
        position + ahead < text.count ? text[position + ahead] : 0
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while true {
            switch peek() {
            case ASCII.space, ASCII.newline, ASCII.carriageReturn, ASCII.tab: position += 1
            default: return
            }
        }
    }

    /// RFC 8259 lets a parser ignore a byte order mark, and `JSONDecoder` does.
    private mutating func skipByteOrderMark() {
        if peek() == 0xEF && peek(1) == 0xBB && peek(2) == 0xBF { position = 3 }
    }

    /// Whether the bytes at the position spell `literal`.
    private func matches(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard text.count - position >= count else { return false }
        return memcmp(text.baseAddress! + position, literal.utf8Start, count) == 0
    }
}

// MARK: - strings

extension JSONReader {
    /// Reads a string whose opening quote is next. Most strings are plain ASCII, without escapes: those are
    /// made straight from the input's bytes.
    private mutating func readString() throws(JSONReadError) -> String {
        let start = position + 1
        position = plainRunEnd(from: start)
        while true {
            let byte = peek()
            if byte == ASCII.quote {
                let string = String(decoding: UnsafeBufferPointer(rebasing: text[start..<position]), as: UTF8.self)
                position += 1
                return string
            }
            if byte == ASCII.backslash {
                return try readEscapedString(from: start)
            }
            try skipCharacter(byte)
        }
    }

    /// Reads a member name whose opening quote is next: most are plain ASCII, left where they are.
    private mutating func readKey() throws(JSONReadError) -> JSONKey {
        let start = position + 1
        let end = plainRunEnd(from: start)
        guard end < text.count && text[end] == ASCII.quote else { return JSONKey(try readString()) }
        position = end + 1
        return JSONKey(UnsafeBufferPointer(rebasing: text[start..<end]))
    }

    /// Where the run of plain ASCII characters starting at `index` in a string ends: at a quote, a
    /// backslash, a control character, a byte of a multi-byte character, or the end of the text.
    @inline(__always)
    private func plainRunEnd(from index: Int) -> Int {
        var index = index
        // Eight bytes at a time while none of them ends the run; the bit tricks are the classic ones for
        // "has a zero byte", (x - 0x01…) & ~x & 0x80…, which can only err towards stopping early.
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while index + 8 <= text.count {
            let word = UnsafeRawPointer(text.baseAddress! + index).loadUnaligned(as: UInt64.self)
            let quotes = word ^ (ones &* UInt64(ASCII.quote))
            let backslashes = word ^ (ones &* UInt64(ASCII.backslash))
            let controls = word &- ones &* 0x20
            let stops = ((quotes &- ones) & ~quotes | (backslashes &- ones) & ~backslashes | controls | word) & highs
            if stops != 0 { break }
            index += 8
        }
        while index < text.count {
            let byte = text[index]
            if byte < 0x20 || byte >= 0x80 || byte == ASCII.quote || byte == ASCII.backslash { break }
            index += 1
        }
        return index
    }

    /// Goes on with a string at its first escape, putting it together in `scratch`: the runs between
    /// escapes are copied whole.
    private mutating func readEscapedString(from start: Int) throws(JSONReadError) -> String {
        scratch.removeAll(keepingCapacity: true)
        var runStart = start
        while true {
            let byte = peek()
            if byte == ASCII.quote || byte == ASCII.backslash {
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: text[runStart..<position]))
                if byte == ASCII.quote {
                    position += 1
                    return String(decoding: scratch, as: UTF8.self)
                }
                appendUTF8(try unescape())
                runStart = position
            } else {
                try skipCharacter(byte)
            }
        }
    }

    /// Consumes a string whose opening quote is next, checking it as ``readString()`` does.
    private mutating func skipString() throws(JSONReadError) {
        position += 1
        while true {
            let byte = peek()
            if byte == ASCII.quote {
                position += 1
                return
            }
            if byte == ASCII.backslash {
                _ = try unescape()
            } else {
                try skipCharacter(byte)
            }
        }
    }

    /// Consumes one unescaped character of a string, `byte` being its first byte: JSON forbids raw
    /// control characters, and the text must be UTF-8.
    @inline(__always)
    private mutating func skipCharacter(_ byte: UInt8) throws(JSONReadError) {
        if byte >= 0x20 && byte < 0x80 {
            position += 1
        } else if byte >= 0x80 {
            try skipUTF8Sequence()
        } else if position < text.count {
            throw error("a control character to be escaped")
        } else {
            throw error("the string's closing quote")
        }
    }

    /// Consumes one multi-byte UTF-8 sequence, refusing what the Unicode standard calls ill-formed:
    /// stray continuation bytes, overlong forms, surrogates, code points past U+10FFFF, truncation.
    private mutating func skipUTF8Sequence() throws(JSONReadError) {
        let lead = peek()
        // The range the second byte must be in, and the number of continuation bytes, per lead byte
        // (Table 3-7 of the Unicode standard).
        let second: ClosedRange<UInt8>
        let length: Int
        switch lead {
        case 0xC2...0xDF: (second, length) = (0x80...0xBF, 2)
        case 0xE0: (second, length) = (0xA0...0xBF, 3)
        case 0xE1...0xEC, 0xEE...0xEF: (second, length) = (0x80...0xBF, 3)
        case 0xED: (second, length) = (0x80...0x9F, 3)
        case 0xF0: (second, length) = (0x90...0xBF, 4)
        case 0xF1...0xF3: (second, length) = (0x80...0xBF, 4)
        case 0xF4: (second, length) = (0x80...0x8F, 4)
        default: throw error("UTF-8")
        }
        guard second.contains(peek(1)) else { throw error("UTF-8", at: position + 1) }
        for index in 2..<length where !(0x80...0xBF).contains(peek(index)) {
            throw error("UTF-8", at: position + index)
        }
        position += length
    }

    /// Consumes one escape sequence, its backslash next, and answers the character it stands for. A
    /// character outside the BMP is escaped as a surrogate pair; a surrogate alone stands for nothing.
    private mutating func unescape() throws(JSONReadError) -> Unicode.Scalar {
        let start = position
        position += 2
        switch peek(-1) {
        case ASCII.quote: return "\""
        case ASCII.backslash: return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"): break
        default: throw error("an escape: one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u", at: start)
        }
        let unit = try hexQuad()
        switch unit {
        case 0xD800...0xDBFF:
            guard peek() == ASCII.backslash && peek(1) == UInt8(ascii: "u") else {
                throw error("\\u and a low surrogate after a high surrogate")
            }
            position += 2
            let low = try hexQuad()
            guard (0xDC00...0xDFFF).contains(low) else {
                throw error("a low surrogate after a high surrogate", at: position - 6)
            }
            return Unicode.Scalar(0x10000 + (unit - 0xD800) << 10 + (low - 0xDC00))!
        case 0xDC00...0xDFFF:
            throw error("a character, not a lone low surrogate", at: start)
        default:
            return Unicode.Scalar(unit)!
        }
    }

    /// The four hex digits of a `\u` escape.
    private mutating func hexQuad() throws(JSONReadError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = hexValue(peek()) else { throw error("a hex digit") }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private mutating func appendUTF8(_ scalar: Unicode.Scalar) {
        let value = scalar.value
        switch value {
        case ..<0x80:
            scratch.append(UInt8(value))
        case ..<0x800:
            scratch.append(0xC0 | UInt8(value >> 6))
            scratch.append(0x80 | UInt8(value & 0x3F))
        case ..<0x1_0000:
            scratch.append(0xE0 | UInt8(value >> 12))
            scratch.append(0x80 | UInt8(value >> 6 & 0x3F))
            scratch.append(0x80 | UInt8(value & 0x3F))
        default:
            scratch.append(0xF0 | UInt8(value >> 18))
            scratch.append(0x80 | UInt8(value >> 12 & 0x3F))
            scratch.append(0x80 | UInt8(value >> 6 & 0x3F))
            scratch.append(0x80 | UInt8(value & 0x3F))
        }
    }
}

// MARK: - numbers

extension JSONReader {
    /// A number's text, checked against JSON's grammar, in the parts reading it takes apart.
    private struct NumberText {
        var start: Int
        var end: Int
        var isNegative: Bool
        var integerDigits: Range<Int>
        /// Empty when there is no fraction.
        var fractionDigits: Range<Int>
        var hasExponent: Bool
        /// Clamped to ±1e9: beyond that no digits of a text shorter than a gigabyte make a whole number
        /// that fits, nor a double that is neither zero nor infinite.
        var exponent: Int

        /// Written as digits alone, no fraction or exponent: `JSONDecoder` reads those digit by digit.
        var isPlainInteger: Bool { fractionDigits.isEmpty && !hasExponent }
    }

    /// Consumes a number, checking its grammar: an optional minus, no leading zeros, digits on both sides
    /// of a point, an exponent with digits.
    private mutating func readNumber(_ expected: String) throws(JSONReadError) -> NumberText {
        let start = position
        let isNegative = peek() == UInt8(ascii: "-")
        if isNegative { position += 1 }
        let integerDigits = try readDigits(isNegative ? "a digit after '-'" : expected)
        if text[integerDigits.lowerBound] == UInt8(ascii: "0") && integerDigits.count > 1 {
            throw error("no leading zero", at: integerDigits.lowerBound)
        }
        var fractionDigits = position..<position
        if peek() == UInt8(ascii: ".") {
            position += 1
            fractionDigits = try readDigits("a digit after '.'")
        }
        var exponent = 0
        let hasExponent = peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E")
        if hasExponent {
            position += 1
            let sign = peek()
            if sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { position += 1 }
            for index in try readDigits("a digit in the exponent") {
                exponent = min(exponent * 10 + Int(text[index] - UInt8(ascii: "0")), 1_000_000_000)
            }
            if sign == UInt8(ascii: "-") { exponent = -exponent }
        }
        return NumberText(
            start: start, end: position, isNegative: isNegative, integerDigits: integerDigits,
            fractionDigits: fractionDigits, hasExponent: hasExponent, exponent: exponent)
    }

    /// Consumes one or more digits.
    private mutating func readDigits(_ expected: String) throws(JSONReadError) -> Range<Int> {
        let start = position
        while peek() &- UInt8(ascii: "0") < 10 { position += 1 }
        guard position > start else { throw error(expected) }
        return start..<position
    }

    /// A whole number as `T`, accepting what `JSONDecoder` accepts for it whenever the text's value is
    /// whole: plain digits within `T`'s range, and any other notation (`1.0`, `2.5e3`) whose value fits
    /// in `T` both exactly and after rounding to a `Double`, as `JSONDecoder` checks. (It also rounded some
    /// fractions to whole numbers; those are refused.)
    private mutating func integer<T: FixedWidthInteger & SignedInteger>(_: T.Type) throws(JSONReadError) -> T {
        skipWhitespace()
        let number = try readNumber("an integer")
        let expected = "an integer that fits in \(T.self)"
        if number.isPlainInteger {
            var magnitude: UInt64 = 0
            for index in number.integerDigits {
                let (tens, overflow) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, carry) = tens.addingReportingOverflow(UInt64(text[index] - UInt8(ascii: "0")))
                guard !overflow && !carry else { throw error(expected, at: number.start) }
                magnitude = sum
            }
            guard magnitude <= (number.isNegative ? UInt64(T.min.magnitude) : UInt64(T.max)) else {
                throw error(expected, at: number.start)
            }
            // Two's complement: the negation of the magnitude, truncated, is the value, T.min included.
            return number.isNegative ? T(truncatingIfNeeded: 0 &- magnitude) : T(truncatingIfNeeded: magnitude)
        }
        guard let magnitude = wholeMagnitude(of: number), magnitude <= UInt64(T.max) else {
            throw error(expected, at: number.start)
        }
        let value = number.isNegative ? -T(magnitude) : T(magnitude)
        guard T(exactly: Double(value)) != nil else { throw error(expected, at: number.start) }
        return value
    }

    /// The magnitude of the number if it is a whole number within UInt64, whatever its notation.
    private func wholeMagnitude(of number: NumberText) -> UInt64? {
        // The significant digits run through the integer and fraction digits as one string; the value is
        // that string, without its leading and trailing zeros, times 10^scale.
        let integerCount = number.integerDigits.count
        let count = integerCount + number.fractionDigits.count
        func digit(_ index: Int) -> UInt64 {
            let offset =
                index < integerCount
                ? number.integerDigits.lowerBound + index : number.fractionDigits.lowerBound + index - integerCount
            return UInt64(text[offset] - UInt8(ascii: "0"))
        }
        guard let first = (0..<count).first(where: { digit($0) != 0 }) else { return 0 }
        let last = (0..<count).last(where: { digit($0) != 0 })!
        let scale = number.exponent - number.fractionDigits.count + (count - 1 - last)
        guard scale >= 0, last - first + 1 + scale <= 20 else { return nil }
        var magnitude: UInt64 = 0
        var overflow = false
        for index in first...last {
            (magnitude, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            (magnitude, overflow) = magnitude.addingReportingOverflow(digit(index))
            if overflow { return nil }
        }
        for _ in 0..<scale {
            (magnitude, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
        }
        return magnitude
    }

    private func isZero(_ number: NumberText) -> Bool {
        !number.integerDigits.contains { text[$0] != UInt8(ascii: "0") }
            && !number.fractionDigits.contains { text[$0] != UInt8(ascii: "0") }
    }

    /// The number as the nearest `Double`, refusing, as `JSONDecoder` does, one that overflows to infinity
    /// or rounds to zero without being zero.
    private func doubleValue(of number: NumberText) throws(JSONReadError) -> Double {
        if number.isPlainInteger && number.integerDigits.count <= 15 {
            // Below 10^15 every integer is a Double, so converting the digits' value rounds nothing.
            var magnitude: Int64 = 0
            for index in number.integerDigits { magnitude = magnitude * 10 + Int64(text[index] - UInt8(ascii: "0")) }
            return number.isNegative ? -Double(magnitude) : Double(magnitude)
        }
        // The standard library's parser rounds correctly, as `JSONDecoder`'s does; the text is JSON's
        // grammar, a subset of what it accepts.
        let digits = String(decoding: UnsafeBufferPointer(rebasing: text[number.start..<number.end]), as: UTF8.self)
        guard let value = Double(digits), value.isFinite else {
            throw error("a number within Double's range", at: number.start)
        }
        if value == 0 && !isZero(number) {
            throw error("a number that does not round to zero", at: number.start)
        }
        return value
    }
}

extension String {
    /// The next value, a string: lets arrays of strings be read as arrays of anything are,
    /// `reader.array(String.init(reading:))`.
    init(reading reader: inout JSONReader) throws(JSONReadError) {
        self = try reader.string()
    }
}

/// The bytes of JSON's punctuation.
private enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let space = UInt8(ascii: " ")
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
    static let tab = UInt8(ascii: "\t")
}
