import Synchronization
import SluiceCore

/// Live figures of every stateful operator, per worker, for `/metrics` and the run summary.
/// Written by the operator's stage workers after each message; read by the admin endpoint.
final class OperatorMetrics: Sendable {
    struct Figures: Sendable, Equatable {
        var gauges = OperatorGaugeValues()
        var late = 0
        var deduplicated = 0
        var stateFull = 0
    }

    let names: [String]
    private let lanes: Mutex<[[Figures]]>

    init(operators: [KeyedOperator]) {
        names = operators.map(\.name)
        lanes = Mutex(operators.map { Array(repeating: Figures(), count: $0.parallelism) })
    }

    func update(_ op: Int, lane: Int, gauges: OperatorGaugeValues, late: Int, deduplicated: Int, stateFull: Int) {
        lanes.withLock {
            $0[op][lane].gauges = gauges
            $0[op][lane].late &+= late
            $0[op][lane].deduplicated &+= deduplicated
            $0[op][lane].stateFull &+= stateFull
        }
    }

    func addLate(_ op: Int, _ n: Int) { lanes.withLock { $0[op][0].late &+= n } }

    /// Totals per operator (the watermark: the smallest over its workers).
    var totals: [(name: String, figures: Figures)] {
        lanes.withLock { all in
            all.enumerated().map { i, ls in
                var t = Figures()
                t.gauges.watermark = ls.map(\.gauges.watermark).min() ?? EventTime.missing
                for l in ls {
                    t.gauges.keys += l.gauges.keys; t.gauges.stateBytes += l.gauges.stateBytes
                    t.gauges.held += l.gauges.held; t.gauges.timers += l.gauges.timers
                    t.late += l.late; t.deduplicated += l.deduplicated; t.stateFull += l.stateFull
                }
                return (names[i], t)
            }
        }
    }
}
