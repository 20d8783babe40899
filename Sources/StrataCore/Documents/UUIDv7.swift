import Foundation
import Synchronization

/// Time-ordered UUIDs (RFC 9562 version 7): 48 bits of Unix milliseconds, then randomness. Ids made
/// later sort later, so listing by id lists by creation.
public enum UUIDv7 {
    @Sendable public static func make() -> UUID {
        make(at: Date())
    }

    public static func make(at date: Date) -> UUID {
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var uuid = randomness.withLock { $0.next() }
        withUnsafeMutableBytes(of: &uuid) { bytes in
            for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index))) }
            bytes[6] = 0x70 | (bytes[6] & 0x0F)
            bytes[8] = 0x80 | (bytes[8] & 0x3F)
        }
        return UUID(uuid: uuid)
    }

    private static let randomness = Mutex(RandomBytes())
}

/// The system's random bytes, drawn 4 KiB at a time. `UUID()` opens, reads and closes /dev/urandom for
/// each id, and two draws from `SystemRandomNumberGenerator` are two system calls; a write makes four
/// ids (its request's, its dataset's, its events'), and their system calls were 2% of the server's CPU.
private struct RandomBytes: ~Copyable {
    private var bytes = [UInt8](repeating: 0, count: 4096)
    private var used = 4096

    /// Sixteen random bytes, as a UUID's.
    mutating func next() -> uuid_t {
        if used + 16 > bytes.count {
            refill()
            used = 0
        }
        defer { used += 16 }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: used, as: uuid_t.self) }
    }

    private mutating func refill() {
        let filled = bytes.withUnsafeMutableBytes { buffer in
            Self.device >= 0 ? read(Self.device, buffer.baseAddress, buffer.count) : -1
        }
        if filled == bytes.count { return }
        // Without the device, or should a read come back short (it does not for 4 KiB), word by word.
        var generator = SystemRandomNumberGenerator()
        bytes.withUnsafeMutableBytes { buffer in
            for offset in stride(from: 0, to: buffer.count, by: 8) {
                buffer.storeBytes(of: generator.next() as UInt64, toByteOffset: offset, as: UInt64.self)
            }
        }
    }

    /// The system's random device, open for the life of the process.
    private static let device = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
}
