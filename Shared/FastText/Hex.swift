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
}
