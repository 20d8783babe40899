import Foundation
import StrataCore
import Testing

/// Listing by id lists by creation only if ids are well-formed version 7 UUIDs whose prefix is the time.
@Suite("Time-ordered ids")
struct UUIDv7Tests {
    @Test func idsCarryTheirMillisecondVersionAndVariant() {
        let at = Date(timeIntervalSince1970: 1_800_000_000.123)
        let id = UUIDv7.make(at: at)
        let bytes = withUnsafeBytes(of: id.uuid) { Array($0) }
        let milliseconds = bytes[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(milliseconds == 1_800_000_000_123)
        #expect(bytes[6] >> 4 == 7)
        #expect(bytes[8] >> 6 == 0b10)
    }

    @Test func laterIdsSortLaterAndNoneRepeat() {
        let earlier = (0..<1000).map { _ in UUIDv7.make(at: Date(timeIntervalSince1970: 1_800_000_000)) }
        let later = (0..<1000).map { _ in UUIDv7.make(at: Date(timeIntervalSince1970: 1_800_000_000.001)) }
        #expect(Set(earlier + later).count == 2000)
        let latestEarlier = earlier.map(\.uuidString).max()!
        let earliestLater = later.map(\.uuidString).min()!
        #expect(latestEarlier < earliestLater)
    }
}
