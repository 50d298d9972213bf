import CSluiceDynamic
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The dlopen loader behind libcurl and libmemcached: what it says when a library or a symbol is
/// missing (the message a pipeline that needs the library fails to start with).
@Suite struct DynamicLibraryTests {
    /// Loads `names` from `soname`; nil on success, else the loader's message.
    func load(_ soname: String, package: String, _ names: [String]) -> String? {
        var slots = [UnsafeMutableRawPointer?](repeating: nil, count: names.count)
        var error = [CChar](repeating: 0, count: 512)
        let cNames = names.map { strdup($0) }
        defer { cNames.forEach { free($0) } }
        let ok = slots.withUnsafeMutableBufferPointer { slotBuffer in
            let symbols = (0..<names.count).map { sl_dynamic_symbol(name: cNames[$0], slot: slotBuffer.baseAddress! + $0) }
            return sl_dynamic_load(soname, package, symbols, symbols.count, &error, error.count)
        }
        if ok == 1 { return slots.allSatisfy { $0 != nil } ? nil : "a slot was left empty" }
        return String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func aMissingLibraryNamesItselfAndThePackageToInstall() {
        let message = load("libsluice-test-missing.so.7", package: "libsluice-test7", ["anything"])
        #expect(message?.hasPrefix("libsluice-test-missing.so.7 not found: install Debian package libsluice-test7 (apt install libsluice-test7) [") == true,
                "\(message ?? "loaded")")
    }

    @Test func aMissingSymbolNamesTheLibraryAndTheSymbol() {
        let message = load("libc.so.6", package: "libc6", ["strlen", "sluice_no_such_function"])
        #expect(message == "libc.so.6 has no symbol sluice_no_such_function: install a current Debian package libc6 (apt install libc6)",
                "\(message ?? "loaded")")
    }

    @Test func presentSymbolsFillEverySlot() {
        #expect(load("libc.so.6", package: "libc6", ["strlen", "memcpy"]) == nil)
    }
}
