import ArgumentParser
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SluiceKafka

/// `sluice dev ...`: local tools for trying pipelines without infrastructure.
struct Dev: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Development helpers (a local Kafka broker).",
        subcommands: [Kafka.self]
    )

    /// `sluice dev kafka`: librdkafka's mock cluster as a local Kafka broker on 127.0.0.1.
    struct Kafka: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a local Kafka broker (librdkafka's mock cluster) until SIGINT/SIGTERM.",
            discussion: """
            Prints the bootstrap address (host:port,...) as the first line of stdout, then runs until \
            SIGINT/SIGTERM and exits 0. Data lives in memory only; each partition keeps at most ~5 MiB.

            Fault injection: one command per line on stdin; each is answered by one line on stdout, \
            `ok` or `error: ...`.

            down ID, up ID: broker ID (1...N, -1 = all) refuses / accepts connections.

            rtt ID MS: delay broker ID's responses by MS milliseconds.

            errors APIKEY COUNT ERRCODE: the next COUNT requests of APIKEY (a number or name: \
            0 or Produce, 1 or Fetch, ...) fail with ERRCODE (a number or name: 7 or REQUEST_TIMED_OUT).

            topic NAME PARTITIONS: create a topic.

            bootstrap: answers `ok BOOTSTRAP`.
            """
        )

        @Option(help: "Number of brokers (ids 1...N).") var brokers = 1
        @Option(name: .customLong("topic"), help: "Create a topic, NAME:PARTITIONS (repeatable; PARTITIONS defaults to 1).")
        var topics: [String] = []
        @Option(help: "Also accept bootstrap connections on this 127.0.0.1 port (forwarded to broker 1; the brokers themselves keep random ports, as librdkafka 2.0.2 cannot fix them).")
        var port: Int?
        @Flag(help: "Print librdkafka's informational log lines too (warnings and errors are always printed to stderr).")
        var verbose = false

        func run() throws {
            let verbose = verbose
            let log: KafkaLog = { level, message in
                if verbose || level == "warning" || level == "error" { printError("sluice dev kafka: \(level): \(message)", level: level) }
            }
            let broker: DevBroker
            do { broker = try DevBroker(brokers: brokers, log: log) }
            catch {
                printError("sluice dev kafka: \(error)")
                throw ExitCode(1)
            }
            for spec in topics {
                let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
                guard (1...2).contains(parts.count), !parts[0].isEmpty,
                      let partitions = parts.count == 2 ? Int32(parts[1]) : 1 else {
                    printError("sluice dev kafka: --topic expects NAME:PARTITIONS, got '\(spec)'")
                    throw ExitCode(2)
                }
                do { try broker.createTopic(String(parts[0]), partitions: partitions) }
                catch {
                    printError("sluice dev kafka: \(error)")
                    throw ExitCode(2)
                }
            }
            var forwarder: BootstrapForwarder?
            if let port {
                do { forwarder = try BootstrapForwarder(port: port, target: broker.bootstrap, log: log) }
                catch {
                    printError("sluice dev kafka: --port \(port): \(error)")
                    throw ExitCode(1)
                }
            }

            // SIGINT/SIGTERM: stop the brokers and exit 0.
            let done = DispatchSemaphore(value: 0)
            let signalQueue = DispatchQueue(label: "sluice-dev-kafka-signals")
            var signalSources: [any DispatchSourceSignal] = []
            for sig in [SIGINT, SIGTERM] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: signalQueue)
                source.setEventHandler { done.signal() }
                source.resume()
                signalSources.append(source)
            }
            signal(SIGPIPE, SIG_IGN)
            writeLine(forwarder.map { "127.0.0.1:\($0.port),\(broker.bootstrap)" } ?? broker.bootstrap)
            printError("sluice dev kafka: librdkafka \(librdkafkaVersion) mock cluster, \(brokers) broker(s) at \(broker.bootstrap)", level: "info")

            let commands = Thread {
                while let line = readLine() {
                    if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                    writeLine(broker.execute(line))
                }
                // End of stdin: keep serving until a signal.
            }
            commands.name = "sluice-dev-kafka-commands"
            commands.start()

            done.wait()
            for source in signalSources { source.cancel() }
            forwarder?.stop()
            broker.shutdown()
        }
    }
}

/// Writes one line to stdout unbuffered (so a reader sees it at once).
private func writeLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
