import CSluiceJSON

/// A JSON syntax error: a human message and the byte offset where it was found.
public struct JSONSyntaxError: Error, CustomStringConvertible, Sendable, Equatable {
    /// e.g. "unexpected character 'x'", "unterminated string", "invalid UTF-8",
    /// "nesting deeper than 128", "trailing characters", "expected a JSON object".
    public var message: String
    /// Byte offset of the problem in the input.
    public var offset: Int

    public init(message: String, offset: Int) {
        self.message = message; self.offset = offset
    }

    public var description: String { "\(message) at byte \(offset)" }
}

/// Strict RFC 8259 validation of one JSON text, without building anything.
///
/// Decisions (see Tests/SluiceCoreTests/JSONValidatorTests.swift):
/// - whitespace may surround the value; anything else after it is "trailing characters";
/// - any top-level value is accepted by `validate`; `validateObject` requires an object;
/// - strings must be valid UTF-8 (no overlong forms, no encoded surrogates, <= U+10FFFF);
/// - `\u` escapes encoding an unpaired surrogate are rejected ("lone surrogate in \u escape"):
///   RFC 8259 §8.2 leaves them undefined and they cannot be decoded to UTF-8, so accepting them
///   would only move the failure into a later stage (Lua, a sink);
/// - `\u0000` is accepted (a valid code point);
/// - a byte order mark is not skipped;
/// - nesting deeper than `maxDepth` (default 128) is rejected; the check is iterative, so any
///   depth of input is rejected quickly without recursion.
public enum JSONValidator {
    public static let defaultMaxDepth = 128

    /// Returns nil if `bytes` is one valid JSON text.
    public static func validate(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) -> JSONSyntaxError? {
        run(bytes, maxDepth: maxDepth, flags: 0)
    }

    /// Returns nil if `bytes` is one valid JSON text whose top-level value is an object;
    /// otherwise the error ("expected a JSON object" for a valid non-object).
    public static func validateObject(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) -> JSONSyntaxError? {
        run(bytes, maxDepth: maxDepth, flags: UInt32(SJ_REQUIRE_OBJECT))
    }

    public static func validate(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) -> JSONSyntaxError? {
        bytes.withUnsafeBytes { validate($0, maxDepth: maxDepth) }
    }

    public static func validateObject(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) -> JSONSyntaxError? {
        bytes.withUnsafeBytes { validateObject($0, maxDepth: maxDepth) }
    }

    /// True if valid (no error details; the fastest form).
    @inline(__always)
    public static func isValidObject(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) -> Bool {
        sj_validate(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count,
                    Int32(clamping: maxDepth), UInt32(SJ_REQUIRE_OBJECT), nil) == SJ_OK
    }

    static func run(_ bytes: UnsafeRawBufferPointer, maxDepth: Int, flags: UInt32) -> JSONSyntaxError? {
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        // Fast check without building a message; only on failure run again for the details.
        if sj_validate(base, bytes.count, Int32(clamping: maxDepth), flags, nil) == SJ_OK { return nil }
        var res = sj_result()
        let code = sj_validate(base, bytes.count, Int32(clamping: maxDepth), flags, &res)
        if code == SJ_OK { return nil }
        let message = withUnsafeBytes(of: res.message) { raw -> String in
            let end = raw.firstIndex(of: 0) ?? raw.count
            return String(decoding: raw[..<end], as: UTF8.self)
        }
        return JSONSyntaxError(message: message, offset: Int(res.offset))
    }
}
