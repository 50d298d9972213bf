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

/// Waits for a child to exit and returns its status as Foundation reports it (the exit code, or
/// the number of the signal that ended it); nil if it still runs after `timeout` seconds (it is
/// then SIGKILLed and reaped). Foundation reaps the child as usual; only if it has not noticed
/// the exit 2 s after the child became a zombie (the spin `waitUntilExit` can fall into) is the
/// child reaped here, and then, as after `killAndReap`, it must not be signalled or asked again.
func waitForExit(_ process: Process, timeout: TimeInterval = 600) -> Int32? {
    let pid = process.processIdentifier
    guard pid > 0 else { return nil }
    let deadline = Date(timeIntervalSinceNow: timeout)
    var zombieSince: Date?
    while Date() < deadline {
        if !process.isRunning { return process.terminationStatus }
        if let since = zombieSince {
            if Date().timeIntervalSince(since) > 2 {
                var status: Int32 = 0
                let r = waitpid(pid, &status, WNOHANG)
                if r == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : status & 0x7f }
                if !process.isRunning { return process.terminationStatus }
            }
        } else {
            // Peek without reaping (WNOWAIT): has it exited, whoever reaps it?
            var info = siginfo_t()
            if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0, info._sifields._sigchld.si_pid == pid {
                zombieSince = Date()
            }
        }
        usleep(2_000)
    }
    killAndReap(process)
    return nil
}
