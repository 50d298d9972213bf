/// Standard base64 (RFC 4648, with `=` padding), for raw payloads inside JSON dead letters.
/// SluiceCore stays free of Foundation on the hot path.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Appends the base64 text of `bytes` to `out`.
    public static func append<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        out.reserveCapacity(out.count + (bytes.count + 2) / 3 * 4)
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let b0 = bytes[i]; i = bytes.index(after: i)
            let b1: UInt8? = i != bytes.endIndex ? bytes[i] : nil
            if b1 != nil { i = bytes.index(after: i) }
            let b2: UInt8? = b1 != nil && i != bytes.endIndex ? bytes[i] : nil
            if b2 != nil { i = bytes.index(after: i) }
            let n = UInt32(b0) << 16 | UInt32(b1 ?? 0) << 8 | UInt32(b2 ?? 0)
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(b1 == nil ? UInt8(ascii: "=") : alphabet[Int(n >> 6 & 63)])
            out.append(b2 == nil ? UInt8(ascii: "=") : alphabet[Int(n & 63)])
        }
    }

    /// The base64 text of `bytes`.
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out: [UInt8] = []
        append(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
