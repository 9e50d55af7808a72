import FastText
import Foundation

/// UUID version 7 (RFC 9562): 48-bit Unix milliseconds, then random bits; sorts by creation time.
public enum UUIDv7 {
    public static func generate(at date: Date = Date()) -> UUID {
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1_000))
        var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { raw in
            RandomBuffer.shared.fill(UnsafeMutableRawBufferPointer(rebasing: raw[6..<16]))
            for i in 0..<6 { raw[i] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - UInt64(i)))) }
            raw[6] = (raw[6] & 0x0F) | 0x70
            raw[8] = (raw[8] & 0x3F) | 0x80
        }
        return UUID(uuid: bytes)
    }

    /// The lowest version-7 UUID of `date`'s millisecond: every UUIDv7 generated at or after that millisecond sorts
    /// at or above it, so a time range of v7 ids is an id range (a primary-key scan, no time index).
    public static func lowest(at date: Date) -> UUID {
        let millis = UInt64(max(0, (date.timeIntervalSince1970 * 1_000).rounded(.down)))
        var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { raw in
            for i in 0..<6 { raw[i] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - UInt64(i)))) }
        }
        return UUID(uuid: bytes)
    }
}
