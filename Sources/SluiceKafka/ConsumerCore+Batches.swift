import CRdKafka
import SluiceCore

/// Where a held record came from: its partition's slot (`ConsumerCore.slotPartitions`) and offset.
struct Origin {
    var slot: Int32
    var offset: Int64
}

/// A partition of a topic handle, as librdkafka's messages name it (no string involved).
struct SlotKey: Hashable {
    var rkt: OpaquePointer
    var partition: Int32
}

/// Receiving records and handing them out in batches (driver thread only). A record is registered
/// with its partition's offset tracker only when its batch is offered: one entry per record, or with
/// batch acknowledgements one per partition and batch. A refused batch's entries are taken back, so
/// they are registered afresh, with whatever the retried batch holds, when it is offered again.
extension ConsumerCore {
    /// Offers route `r`'s buffer in chunks of `batchSize`; returns true when all of it was accepted.
    func deliver(_ r: Int, batchSize: Int, offer: ([Event], KafkaBatchReceipt) -> Bool) -> Bool {
        while !buffers[r].isEmpty {
            let n = min(batchSize, buffers[r].count)
            let chunk = n == buffers[r].count ? buffers[r] : Array(buffers[r].prefix(n))
            let receipt = register(origins[r].prefix(n))
            guard offer(chunk, receipt) else {
                retract(origins[r].prefix(n), receipt)
                return false
            }
            if n == buffers[r].count {
                buffers[r].removeAll(keepingCapacity: true)
                origins[r].removeAll(keepingCapacity: true)
            } else {
                buffers[r].removeFirst(n)
                origins[r].removeFirst(n)
            }
            let held = heldCount, received = unreportedReceived
            unreportedReceived = 0
            shared.withLock { $0.stats.delivered += n; $0.stats.received += received; $0.stats.held = held }
        }
        return true
    }

    /// Brings `received` and `held` up to date (they are counted per batch, not per record).
    func reportStats() {
        let held = heldCount, received = unreportedReceived
        unreportedReceived = 0
        shared.withLock { $0.stats.received += received; $0.stats.held = held }
    }

    /// The chunk's spans per partition, registered with the offset trackers (a partition whose
    /// offsets went back starts a fresh tracker, as a reset or a seek makes it do).
    private func register(_ records: ArraySlice<Origin>) -> KafkaBatchReceipt {
        if spanOfSlot.count < slotPartitions.count {
            spanOfSlot.append(contentsOf: repeatElement(-1, count: slotPartitions.count - spanOfSlot.count))
        }
        var spans: [KafkaBatchReceipt.Span] = []
        for o in records {
            let slot = Int(o.slot)
            let i = spanOfSlot[slot]
            if i < 0 {
                spanOfSlot[slot] = spans.count
                spans.append(KafkaBatchReceipt.Span(partition: slotPartitions[slot], first: o.offset, last: o.offset))
            } else {
                spans[i].last = o.offset
            }
        }
        for o in records { spanOfSlot[Int(o.slot)] = -1 }
        let perRecord = !batchAcks
        let reset: [(TopicPartition, Int64)] = shared.withLock { s in
            var reset: [(TopicPartition, Int64)] = []
            func ensure(_ key: TopicPartition) {
                guard s.trackers[key] == nil else { return }
                s.generations += 1
                s.trackers[key] = OffsetTracker(generation: s.generations)
            }
            func fresh(_ key: TopicPartition, _ first: Int64, _ last: Int64) {
                s.generations += 1
                var t = OffsetTracker(generation: s.generations)
                _ = perRecord ? t.delivered(first) : t.delivered(first: first, last: last)
                s.trackers[key] = t
                s.dirty.remove(key)
                reset.append((key, first))
            }
            if perRecord {
                for o in records {
                    let key = slotPartitions[Int(o.slot)]
                    ensure(key)
                    if s.trackers[key]?.delivered(o.offset) != true { fresh(key, o.offset, o.offset) }
                }
            } else {
                for i in spans.indices {
                    let span = spans[i]
                    ensure(span.partition)
                    if s.trackers[span.partition]?.delivered(first: span.first, last: span.last) != true {
                        fresh(span.partition, span.first, span.last)
                    }
                    spans[i].generation = s.trackers[span.partition]?.generation ?? 0
                }
            }
            return reset
        }
        for (key, offset) in reset { log("info", "kafka consumer: \(key) went back to offset \(offset); tracking restarts there") }
        return KafkaBatchReceipt(spans: spans)
    }

    /// Takes back what `register` registered for a refused chunk.
    private func retract(_ records: ArraySlice<Origin>, _ receipt: KafkaBatchReceipt) {
        let perRecord = !batchAcks
        shared.withLock { s in
            if perRecord {
                for o in records.reversed() { s.trackers[slotPartitions[Int(o.slot)]]?.retract(o.offset) }
            } else {
                for span in receipt.spans { s.trackers[span.partition]?.retract(span.last) }
            }
        }
    }

    /// Buffers one polled record for its route; returns the route (nil for an error or a record of no route).
    func receive(_ rk: OpaquePointer, _ msg: UnsafeMutablePointer<rd_kafka_message_t>) -> Int? {
        defer { rd_kafka_message_destroy(msg) }
        let m = msg.pointee
        if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return nil }
            let text = rd_kafka_message_errstr(msg).map { String(cString: $0) } ?? ""
            log("warning", "kafka consumer: \(KafkaError.describe(m.err)): \(text)")
            return nil
        }
        guard let rkt = m.rkt else { return nil }
        let topic: String, routeOfTopic: Int?
        if let last = lastTopic, last.rkt == rkt { (topic, routeOfTopic) = (last.name, last.route) }
        else if let known = topics[rkt] { (topic, routeOfTopic) = known; lastTopic = (rkt, topic, routeOfTopic) }
        else {
            topic = String(cString: rd_kafka_topic_name(rkt))
            routeOfTopic = routeOf(topic)
            topics[rkt] = (topic, routeOfTopic)
            lastTopic = (rkt, topic, routeOfTopic)
        }
        guard let route = routeOfTopic, route < buffers.count else { return nil }
        var tsType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(msg, &tsType)
        var headers: [EventMeta.Header] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var i = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let v: [UInt8] = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                headers.append(EventMeta.Header(name: name.map { String(cString: $0) } ?? "", value: v))
                i += 1
            }
        }
        let meta = EventMeta(key: m.key.map { bytes($0, m.key_len) }, timestamp: ts >= 0 ? ts : nil, headers: headers,
                             topic: topic, partition: m.partition, offset: m.offset)
        buffers[route].append(Event(bytes: bytes(m.payload, m.len), meta: meta, position: m.offset))
        let slot = self.slot(SlotKey(rkt: rkt, partition: m.partition), topic: topic)
        origins[route].append(Origin(slot: slot, offset: m.offset))
        unreportedReceived += 1
        // A partition that was (re)assigned while its route was paused may still deliver: pause it too.
        if pausedRoutes.contains(route) { pausePartition(rk, slotPartitions[Int(slot)]) }
        return route
    }

    /// The slot of a partition (records come in runs per partition: the last one is checked first).
    private func slot(_ key: SlotKey, topic: String) -> Int32 {
        if let last = lastSlot, last.key == key { return last.slot }
        let slot: Int32
        if let known = slotOf[key] { slot = known } else {
            slot = Int32(slotPartitions.count)
            slotPartitions.append(TopicPartition(topic: topic, partition: key.partition))
            slotOf[key] = slot
        }
        lastSlot = (key, slot)
        return slot
    }

    /// Drops held records of the given partitions (revoked: they go to the new owner), or all of them.
    func dropHeld(all: Bool, partitions: Set<TopicPartition>) {
        for r in buffers.indices {
            if all { buffers[r].removeAll(); origins[r].removeAll(); continue }
            var keptEvents: [Event] = [], keptOrigins: [Origin] = []
            for (e, o) in zip(buffers[r], origins[r]) where !partitions.contains(slotPartitions[Int(o.slot)]) {
                keptEvents.append(e); keptOrigins.append(o)
            }
            buffers[r] = keptEvents; origins[r] = keptOrigins
        }
        reportStats()
    }
}
