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

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits in either case), the only form PostgreSQL writes
    /// and the only one `UUID(uuidString:)` accepts; nil for anything else. Foundation's parser calls `sscanf`,
    /// which showed up on the lead form's path (every request decodes its source's id and its lead's id).
    public init?(canonicalText text: String) {
        var text = text
        let parsed: uuid_t? = text.withUTF8 { utf8 -> uuid_t? in
            guard utf8.count == 36 else { return nil }
            var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let ok = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
                var i = 0
                for o in 0..<16 {
                    if o == 4 || o == 6 || o == 8 || o == 10 {
                        guard utf8[i] == UInt8(ascii: "-") else { return false }
                        i += 1
                    }
                    let high = Hex.value(utf8[i]), low = Hex.value(utf8[i + 1])
                    if high | low > 0x0F { return false }
                    out[o] = high << 4 | low
                    i += 2
                }
                return true
            }
            return ok ? bytes : nil
        }
        guard let parsed else { return nil }
        self.init(uuid: parsed)
    }
}
