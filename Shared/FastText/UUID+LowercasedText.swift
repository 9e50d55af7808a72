import Foundation

extension UUID {
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lower case, without Foundation's formatter (`uuidString` goes
    /// through `sprintf`, then `lowercased()` copies again; both show up on hot paths).
    public var lowercasedText: String {
        withUnsafeBytes(of: uuid) { raw in
            String(unsafeUninitializedCapacity: 36) { buffer in
                var o = 0
                for (i, byte) in raw.enumerated() {
                    if i == 4 || i == 6 || i == 8 || i == 10 {
                        buffer[o] = UInt8(ascii: "-")
                        o += 1
                    }
                    buffer[o] = Hex.digit(byte >> 4)
                    buffer[o + 1] = Hex.digit(byte & 0x0F)
                    o += 2
                }
                return o
            }
        }
    }
}
