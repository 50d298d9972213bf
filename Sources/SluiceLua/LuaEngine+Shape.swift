import CSluiceLua

/// What JSON value an event held by an engine would be written as.
public enum LuaEventShape: Sendable, Equatable {
    case object, array, string, other
    /// The handle is not live.
    case badHandle

    /// How it reads in an error message: "got an array".
    public var phrase: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .other: return "a value that is not a table"
        case .badHandle: return "no event"
        }
    }
}

extension LuaEngine {
    /// The JSON shape of the event behind `h` (cheap for decoded objects: no encoding).
    public func shape(_ h: LuaEventHandle) -> LuaEventShape {
        switch sl_event_shape(engine, h.rawValue) {
        case Int32(SL_SHAPE_OBJECT): return .object
        case Int32(SL_SHAPE_ARRAY): return .array
        case Int32(SL_SHAPE_STRING): return .string
        case Int32(SL_SHAPE_OTHER): return .other
        default: return .badHandle
        }
    }
}
