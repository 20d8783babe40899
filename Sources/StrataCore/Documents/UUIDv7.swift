import Foundation

/// Time-ordered UUIDs (RFC 9562 version 7): 48 bits of Unix milliseconds, then randomness. Ids made
/// later sort later, so listing by id lists by creation.
public enum UUIDv7 {
    @Sendable public static func make() -> UUID {
        make(at: Date())
    }

    public static func make(at date: Date) -> UUID {
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        // Sixteen random bytes in two calls to the system's generator. A call per byte made id generation
        // a visible share of a write, and so did `UUID()`, which opens, reads and closes /dev/urandom.
        var generator = SystemRandomNumberGenerator()
        var uuid = unsafeBitCast((generator.next() as UInt64, generator.next() as UInt64), to: uuid_t.self)
        withUnsafeMutableBytes(of: &uuid) { bytes in
            for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index))) }
            bytes[6] = 0x70 | (bytes[6] & 0x0F)
            bytes[8] = 0x80 | (bytes[8] & 0x3F)
        }
        return UUID(uuid: uuid)
    }
}
