/// Kafka-style metadata carried beside an event's payload.
///
/// Its fields live in one shared, immutable object, so copying an event (which happens at every
/// hand-over between stages) costs one reference count instead of one per field. Metadata is set
/// once, by the source that made the event, and only read after that.
public struct EventMeta: Sendable, Equatable {
    @usableFromInline
    final class Fields: Sendable {
        @usableFromInline let key: [UInt8]?
        @usableFromInline let timestamp: Int64?
        @usableFromInline let headers: [Header]
        @usableFromInline let topic: String?
        @usableFromInline let partition: Int32?
        @usableFromInline let offset: Int64?

        @inlinable
        init(key: [UInt8]?, timestamp: Int64?, headers: [Header], topic: String?, partition: Int32?, offset: Int64?) {
            self.key = key; self.timestamp = timestamp; self.headers = headers
            self.topic = topic; self.partition = partition; self.offset = offset
        }
    }

    @usableFromInline let fields: Fields

    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: [UInt8]
        @inlinable public init(name: String, value: [UInt8]) { self.name = name; self.value = value }
    }

    @inlinable
    public init(key: [UInt8]? = nil, timestamp: Int64? = nil, headers: [Header] = [],
                topic: String? = nil, partition: Int32? = nil, offset: Int64? = nil) {
        fields = Fields(key: key, timestamp: timestamp, headers: headers, topic: topic, partition: partition, offset: offset)
    }

    @inlinable public var key: [UInt8]? { fields.key }
    @inlinable public var timestamp: Int64? { fields.timestamp }
    @inlinable public var headers: [Header] { fields.headers }
    @inlinable public var topic: String? { fields.topic }
    @inlinable public var partition: Int32? { fields.partition }
    @inlinable public var offset: Int64? { fields.offset }

    public static func == (a: EventMeta, b: EventMeta) -> Bool {
        a.fields === b.fields || (a.key == b.key && a.timestamp == b.timestamp && a.headers == b.headers
                                  && a.topic == b.topic && a.partition == b.partition && a.offset == b.offset)
    }
}

/// One event: its encoded payload (a JSON object or a text line) plus metadata.
/// The payload stays as bytes until a stage needs to look inside, so an event that
/// passes through unchanged is written out exactly as it came in.
public struct Event: Sendable {
    /// The payload; often a slice of a larger read buffer shared by the events of a batch.
    public var bytes: ArraySlice<UInt8>
    public var meta: EventMeta?
    /// Where it came from inside its source (line number for files and stdin, 0 if unknown).
    public var position: Int64

    @inlinable
    public init(bytes: [UInt8], meta: EventMeta? = nil, position: Int64 = 0) {
        self.bytes = bytes[...]; self.meta = meta; self.position = position
    }

    @inlinable
    public init(slice: ArraySlice<UInt8>, meta: EventMeta? = nil, position: Int64 = 0) {
        self.bytes = slice; self.meta = meta; self.position = position
    }

    public init(_ text: String, position: Int64 = 0) {
        self.init(bytes: Array(text.utf8), position: position)
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// Events cross threads and queues in batches, never one at a time.
public struct Batch: Sendable {
    /// The events' payload bytes (what the work queue's byte budget counts).
    public var byteCount: Int { events.reduce(0) { $0 + $1.bytes.count } }

    /// Index of the source that produced it (in spec order).
    public var source: Int
    /// Per-source sequence number, used to publish results in input order.
    public var sequence: UInt64
    public var events: [Event]
    /// Set by sources that need to know when every destination has written the batch (Kafka).
    public var acknowledgement: Acknowledgement?
    /// Event time of each event (ms), filled only when the source feeds a stateful transform;
    /// `EventTime.missing` where the event has no usable time.
    public var times: [Int64] = []
    /// The watermark of each event's own input (its source or Kafka partition) just before it:
    /// an event whose time is behind it is late.
    public var watermarksBefore: [Int64] = []
    /// The source's watermark after this batch (`EventTime.infinity` once a bounded source has ended).
    public var watermark: Int64 = EventTime.missing

    public init(source: Int, sequence: UInt64, events: [Event], acknowledgement: Acknowledgement? = nil) {
        self.source = source; self.sequence = sequence; self.events = events; self.acknowledgement = acknowledgement
    }
}

/// The payload format of a source or sink.
public enum DataFormat: String, Sendable, Equatable {
    case json, text
}
