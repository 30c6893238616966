// RunChildProcess: the simulator's supervision of a host command (dfu-util, pyusb, a libusb
// client) it serves USB to: spawn it, wait for it on the GLib main loop (so the umockdev
// testbed's sources keep being dispatched while it runs), and kill it when it runs too long.
//
// Host only. One call at a time per process (it runs the default GLib main context).
#pragma once

#include <string>
#include <vector>

namespace onedfu::sim {

// Runs argv[0] (looked up in PATH) with arguments argv and the environment `env` ("NAME=value"
// entries; the whole environment, nothing is inherited), stdin/stdout/stderr inherited, and
// waits for it. timeout_ms 0: wait however long it takes; otherwise the child is killed
// (SIGKILL) after that many milliseconds.
// Returns the child's exit status (0..255) or 128 + N if signal N killed it; -1 with *error
// set when argv is empty, the command could not be started ("cannot run X: ...") or it was
// killed at the timeout ("X did not finish within N ms and was killed").
int RunChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    unsigned timeout_ms, std::string* error);

// Sends `signal` to the command RunChildProcess is waiting for (e.g. SIGINT, as Ctrl-C would);
// false when none is running.
bool SignalRunningChild(int signal);

}  // namespace onedfu::sim
