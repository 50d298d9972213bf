import CRdKafka
import Foundation
import Synchronization
import SluiceCore

/// librdkafka's callbacks into the consumer core, served on the driver thread, and the C
/// trampolines that reach the core through the opaque pointer.
extension ConsumerCore {
    func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ parts: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        if !closing { cooperative = rd_kafka_rebalance_protocol(rk).map { String(cString: $0) } == "COOPERATIVE" }
        var keys: Set<TopicPartition> = []
        for i in 0..<Int(parts.pointee.cnt) {
            let p = parts.pointee.elems[i]
            keys.insert(TopicPartition(topic: String(cString: p.topic), partition: p.partition))
        }
        let names = keys.map(\.description).sorted().joined(separator: ", ")
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            log("info", "kafka consumer: assigned \(names.isEmpty ? "nothing" : names)")
            applyStartPositions(rk, parts)
            if cooperative {
                if let e = rd_kafka_incremental_assign(rk, parts) {
                    log("error", "kafka consumer: incremental assign: \(String(cString: rd_kafka_error_string(e)))")
                    rd_kafka_error_destroy(e)
                }
            } else {
                let e = rd_kafka_assign(rk, parts)
                if e != RD_KAFKA_RESP_ERR_NO_ERROR { log("error", "kafka consumer: assign: \(KafkaError.describe(e))") }
            }
            shared.withLock { s in
                for k in keys { s.trackers[k] = nil; s.dirty.remove(k) }
                s.stats.rebalances += 1
            }
            if !keys.isEmpty, let onAssigned { onAssigned(Array(keys)) }
            if !pausedRoutes.isEmpty {
                for i in 0..<Int(parts.pointee.cnt) {
                    let p = parts.pointee.elems[i]
                    guard let r = routeOf(String(cString: p.topic)), pausedRoutes.contains(r) else { continue }
                    let one = rd_kafka_topic_partition_list_new(1)!
                    rd_kafka_topic_partition_list_add(one, p.topic, p.partition)
                    rd_kafka_pause_partitions(rk, one)
                    rd_kafka_topic_partition_list_destroy(one)
                }
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            log("info", "kafka consumer: \(lost ? "lost" : "revoked") \(names.isEmpty ? "nothing" : names)")
            if let onRevoked, !keys.isEmpty, !closing { onRevoked(Array(keys), lost) }
            if !lost {
                storeAcknowledged(rk)
                // During close() the commit was just made, and consumer_close commits what is stored now.
                if !closing { commitSync(rk, reason: "revoke") }
            }
            if cooperative {
                if let e = rd_kafka_incremental_unassign(rk, parts) {
                    log("error", "kafka consumer: incremental unassign: \(String(cString: rd_kafka_error_string(e)))")
                    rd_kafka_error_destroy(e)
                }
            } else {
                rd_kafka_assign(rk, nil)
            }
            let revokedAll = !cooperative
            shared.withLock { s in
                if revokedAll { s.trackers.removeAll(); s.dirty.removeAll() }
                else { for k in keys { s.trackers[k] = nil; s.dirty.remove(k) } }
                s.stats.rebalances += 1
            }
            // Records of revoked partitions that were not handed out yet go to the new owner instead.
            dropHeld(all: revokedAll, partitions: keys)
        default:
            log("error", "kafka consumer: rebalance error: \(KafkaError.describe(err))")
            rd_kafka_assign(rk, nil)
            shared.withLock { s in s.trackers.removeAll(); s.dirty.removeAll() }
        }
        if closing {
            shared.withLock { $0.stats.assigned = 0; $0.stats.assignment = [] }
            return
        }
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        if rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            let n = Int(list.pointee.cnt)
            var parts = Set<TopicPartition>()
            for i in 0..<n {
                let e = list.pointee.elems[i]
                if let t = e.topic { parts.insert(TopicPartition(topic: String(cString: t), partition: e.partition)) }
            }
            rd_kafka_topic_partition_list_destroy(list)
            shared.withLock { $0.stats.assigned = n; $0.stats.assignment = parts }
        }
    }

    /// Sets the assigned partitions' start offsets from a restored checkpoint (or a rewind time);
    /// each partition's is used once, so a later reassignment resumes from the committed offset.
    private func applyStartPositions(_ rk: OpaquePointer, _ parts: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        var byTime: [Int] = []
        for i in 0..<Int(parts.pointee.cnt) {
            let p = parts.pointee.elems[i]
            let key = TopicPartition(topic: String(cString: p.topic), partition: p.partition)
            if let o = startOffsets.removeValue(forKey: key) {
                parts.pointee.elems[i].offset = o
                log("info", "kafka consumer: \(key) starts at the checkpointed offset \(o)")
            } else if startTime != nil {
                byTime.append(i)
            }
        }
        guard let t = startTime, !byTime.isEmpty else { return }
        let query = rd_kafka_topic_partition_list_new(Int32(byTime.count))!
        defer { rd_kafka_topic_partition_list_destroy(query) }
        for i in byTime {
            rd_kafka_topic_partition_list_add(query, parts.pointee.elems[i].topic, parts.pointee.elems[i].partition).pointee.offset = t
        }
        let err = rd_kafka_offsets_for_times(rk, query, 10_000)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            log("error", "kafka consumer: offsets for time \(t): \(KafkaError.describe(err)); using the committed offsets")
            return
        }
        for (j, i) in byTime.enumerated() {
            let found = query.pointee.elems[j]
            // -1 (no record at or after the time): the end of the partition.
            parts.pointee.elems[i].offset = found.offset >= 0 ? found.offset : -1   // RD_KAFKA_OFFSET_END
            log("info", "kafka consumer: \(String(cString: found.topic))[\(found.partition)] starts at offset \(found.offset) (time \(t))")
        }
        startTime = nil
    }

    func committed(_ err: rd_kafka_resp_err_t, _ offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        if err == RD_KAFKA_RESP_ERR__NO_OFFSET { return }
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            lastCommitError = RD_KAFKA_RESP_ERR_NO_ERROR
            shared.withLock { $0.stats.commits += 1 }
            if let offsets {
                var parts: [String] = []
                for i in 0..<Int(offsets.pointee.cnt) {
                    let p = offsets.pointee.elems[i]
                    // A negative offset (RD_KAFKA_OFFSET_INVALID) means nothing was committed for it.
                    if p.offset >= 0 { parts.append("\(String(cString: p.topic))[\(p.partition)]@\(p.offset)") }
                }
                if !parts.isEmpty { log("debug", "kafka consumer: committed \(parts.joined(separator: " "))") }
            }
        } else {
            shared.withLock { $0.stats.commitFailures += 1 }
            // The same failure repeats at every auto-commit while a broker is away: say it once per 30 s.
            let t = now()
            if err != lastCommitError || t - lastCommitErrorLogged >= 30 {
                lastCommitError = err
                lastCommitErrorLogged = t
                log("warning", "kafka consumer: commit failed: \(KafkaError.describe(err))")
            }
        }
    }
}

func core(_ opaque: UnsafeMutableRawPointer?) -> ConsumerCore? {
    opaque.map { Unmanaged<ConsumerCore>.fromOpaque($0).takeUnretainedValue() }
}

let consumerRebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = { rk, err, parts, opaque in
    guard let rk, let parts, let c = core(opaque) else { return }
    c.rebalance(rk, err, parts)
}

let consumerErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = { rk, err, reason, opaque in
    guard let c = core(opaque) else { return }
    let code = rd_kafka_resp_err_t(rawValue: err)
    let text = reason.map { String(cString: $0) } ?? ""
    if code == RD_KAFKA_RESP_ERR__FATAL, let rk {
        var buf = [CChar](repeating: 0, count: 512)
        let real = rd_kafka_fatal_error(rk, &buf, buf.count)
        c.log("error", "kafka consumer: fatal error \(KafkaError.describe(real)): \(cString(buf))")
    } else {
        // Transport failures were already logged by librdkafka's own log line.
        let level = code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? "error" : code == RD_KAFKA_RESP_ERR__TRANSPORT ? "debug" : "warning"
        c.log(level, "kafka consumer: \(KafkaError.describe(code)): \(text)")
    }
}

let consumerCommitCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = { _, err, offsets, opaque in
    core(opaque)?.committed(err, offsets)
}

let consumerLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = { rk, level, fac, buf in
    guard let rk, let buf, let c = core(rd_kafka_opaque(rk)) else { return }
    let facility = fac.map { String(cString: $0) } ?? ""
    c.log(levelName(level), "kafka consumer: \(facility): \(String(cString: buf))")
}
