/// CRC-32C (Castagnoli), the checksum of a checkpoint file. Table-driven, one byte at a time.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8], count: Int? = nil) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        let n = count ?? bytes.count
        table.withUnsafeBufferPointer { t in
            bytes.withUnsafeBufferPointer { b in
                for i in 0..<n { c = t[Int((c ^ UInt32(b[i])) & 0xFF)] ^ (c >> 8) }
            }
        }
        return c ^ 0xFFFF_FFFF
    }
}
