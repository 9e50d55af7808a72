/// Lower-case hexadecimal without separators.
public enum Hex {
    @inline(__always)
    static func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? nibble + 48 : nibble + 87 }

    public static func encode(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            var i = 0
            for byte in bytes {
                buffer[i] = digit(byte >> 4)
                buffer[i + 1] = digit(byte & 0x0F)
                i += 2
            }
            return i
        }
    }

    /// The value of the hex digit `c` (either case), or 0xFF when `c` is not one: `value(a) | value(b) > 0x0F`
    /// checks two digits at once.
    @inlinable
    public static func value(_ c: UInt8) -> UInt8 { values[Int(c)] }

    @usableFromInline
    static let values: [UInt8] = (0...255).map { c -> UInt8 in
        switch UInt8(c) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt8(c) - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt8(c) - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt8(c) - UInt8(ascii: "A") + 10
        default: return 0xFF
        }
    }
}
