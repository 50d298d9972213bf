import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct Tap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print sampled events leaving a component of a running pipeline, as JSON lines.",
        discussion: "ADMIN_URL is the pipeline's settings.admin.listen address, e.g. http://127.0.0.1:9464. "
            + "Sampling never slows the pipeline: events the tap is too slow for are skipped.")

    @Argument(help: "The admin endpoint, e.g. http://127.0.0.1:9464.") var adminURL: String
    @Argument(help: "A source, transform or sink name, or dead_letter.") var component: String
    @Option(name: .short, help: "How many events to print (1-100000).") var n = 20

    func run() throws {
        let client: AdminClient
        do { client = try AdminClient(url: adminURL) } catch { printError("sluice tap: \(error)"); throw ExitCode(2) }
        var failureBody: [UInt8] = []
        let status: Int
        do {
            status = try client.get("/tap/\(Self.escape(component))?n=\(n)", timeoutSeconds: 30) { status, chunk in
                if status == 200 { FileHandle.standardOutput.write(Data(chunk)) } else { failureBody += chunk }
                return true
            }
        } catch {
            printError("sluice tap: \(error)")
            throw ExitCode(1)
        }
        if status != 200 {
            printError("sluice tap: \(String(decoding: failureBody, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
            throw ExitCode(status == 404 || status == 400 ? 2 : 1)
        }
    }

    /// Percent-encodes everything but unreserved characters.
    static func escape(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            let c = Character(UnicodeScalar(b))
            if c.isASCII && (c.isLetter || c.isNumber || "-._~".contains(c)) { out.append(c) } else { out += String(format: "%%%02X", b) }
        }
        return out
    }
}

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a running pipeline's components with their rates and queue fill, refreshed every second.",
        discussion: "ADMIN_URL is the pipeline's settings.admin.listen address. A queue over 80% full is marked '!' "
            + "(that component is behind). Ctrl-C quits.")

    @Argument(help: "The admin endpoint, e.g. http://127.0.0.1:9464.") var adminURL: String
    @Flag(help: "Print the table once, without clearing the screen, and exit.") var once = false
    @Option(help: "Seconds between refreshes.") var interval = 1.0

    func run() throws {
        let client: AdminClient
        do { client = try AdminClient(url: adminURL) } catch { printError("sluice top: \(error)"); throw ExitCode(2) }
        let tty = isatty(1) == 1
        while true {
            let text: String
            var failed = false
            do {
                let (status, body) = try client.fetch("/topology")
                guard status == 200 else { throw AdminClient.Failure(description: "GET /topology answered \(status)") }
                let snapshot = try JSONDecoder().decode(TopologySnapshot.self, from: Data(body))
                text = TopTable.render(snapshot, width: Self.columns())
            } catch {
                failed = true
                text = "sluice top: \(adminURL): \(error)\n"
            }
            if once {
                if failed { printError(text.trimmingCharacters(in: .newlines)); throw ExitCode(1) }
                print(text, terminator: "")
                return
            }
            // Home, clear the screen, draw.
            FileHandle.standardOutput.write(Data(((tty ? "\u{1B}[H\u{1B}[2J" : "") + text).utf8))
            usleep(UInt32(max(0.1, interval) * 1_000_000))
        }
    }

    private static func columns() -> Int {
        var w = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0 { return Int(w.ws_col) }
        return 200
    }
}
