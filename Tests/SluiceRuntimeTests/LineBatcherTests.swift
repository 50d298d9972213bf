import Testing
@testable import SluiceRuntime
import SluiceCore

@Suite struct LineBatcherTests {
    func lines(_ chunks: [String], batchSize: Int = 2) -> ([[String]], [[Int64]]) {
        var batcher = LineBatcher(batchSize: batchSize)
        var batches: [[Event]] = []
        for c in chunks {
            batcher.feed(Array(c.utf8)) { batches.append($0) }
        }
        batcher.finish { batches.append($0) }
        return (batches.map { $0.map(\.text) }, batches.map { $0.map(\.position) })
    }

    @Test func splitsAcrossChunkBoundariesAndKeepsLineNumbers() {
        let (b, pos) = lines(["{\"a\"", ":1}\n{\"b\":2}\n\n{\"c\"", ":3}\r\n{\"d\":4}"])
        #expect(b == [["{\"a\":1}", "{\"b\":2}"], ["{\"c\":3}", "{\"d\":4}"]])
        #expect(pos == [[1, 2], [4, 5]])
    }

    @Test func blankAndWhitespaceLinesAreSkippedButCounted() {
        let (b, pos) = lines([" \n\t\n{}\n   \n{}\n"], batchSize: 10)
        #expect(b == [["{}", "{}"]])
        #expect(pos == [[3, 5]])
    }

    @Test func aLastLineWithoutNewlineIsKept() {
        let (b, _) = lines(["x\ny"], batchSize: 10)
        #expect(b == [["x", "y"]])
    }
}
