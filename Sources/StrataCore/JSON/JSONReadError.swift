/// Why ``JSONReader`` refused a text: where, as a byte offset into the text, and what it expected there.
///
/// One type for every refusal — bad syntax, a value of the wrong type, a number out of range, a missing
/// member — so a caller handles them all alike and a log line says exactly where the text went wrong.
public struct JSONReadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The offset of the byte where the text stopped making sense; a missing member is reported at the
    /// `}` of its object, the end of a truncated text at its length.
    public var offset: Int
    /// What would have been acceptable there, in words: "a string", "',' or '}'", "a member \"name\"".
    public var expected: String

    public init(offset: Int, expected: String) {
        self.offset = offset
        self.expected = expected
    }

    public var description: String { "invalid JSON at byte \(offset): expected \(expected)" }
}
