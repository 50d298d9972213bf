import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SIGKILLs a child and reaps it, waiting at most `timeout` seconds. Not Foundation's
/// `waitUntilExit`: on Linux it can spin forever when its SIGCHLD handling misses an exit (seen
/// in a loaded parallel run: two killed children stayed zombies and the suite never finished).
/// Once this has reaped the child, Foundation may go on reporting it as running: callers must
/// not signal it again (the pid can be reused), nor read its termination status.
func killAndReap(_ process: Process, timeout: TimeInterval = 10) {
    let pid = process.processIdentifier
    guard pid > 0 else { return }
    kill(pid, SIGKILL)
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline && process.isRunning {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid || (r < 0 && errno == ECHILD) { return }
        usleep(5_000)
    }
}
