// Exclusive use of a simulator state directory (`onedfu-sim run --state DIR`): two runs on one
// board would interleave writes into the same flash files (issue 12, item 11), so a run holds an
// flock(2) on DIR/.lock from before it opens the flash files until it exits. The kernel drops
// the lock when the process dies, even by SIGKILL, so a killed run never leaves the board locked.
//
// While holding the lock a run may clean what a killed run left behind (see CleanStaleFiles).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "host/expected.h"

namespace onedfu::sim {

class StateLock {
 public:
  // Creates `state` when missing and takes the lock without waiting, then records
  // "pid <pid> board <board_id>" in DIR/.lock. Errors name the directory; when another process
  // holds the lock: "state directory DIR is in use by another onedfu-sim (pid N, board B):
  // wait for it to finish or use another --state".
  static host::Expected<std::unique_ptr<StateLock>> Acquire(const std::filesystem::path& state,
                                                            const std::string& board_id);
  ~StateLock();
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;

  // The umockdev testbed directory of this run (UmockdevUsb::TestbedRoot(), under $TMPDIR: its
  // ioctl sockets need a short path, so it cannot live in DIR). Noted in DIR/.umockdev-testbed
  // while the run uses it, so the next run can remove it if this one is killed; Forget when
  // the testbed removed it itself.
  void NoteTestbed(const std::string& root) const;
  void ForgetTestbed() const;

  // Removes what a run killed before it could clean up left behind: the testbed directory
  // DIR/.umockdev-testbed names (only a directory named umockdev.*), temporary files of atomic
  // writes (DIR/.stats.json.*) and the previous run's DIR/stats.json, so a stats.json there
  // always describes the last run that finished. Returns how many entries it removed.
  size_t CleanStaleFiles() const;

 private:
  StateLock(std::filesystem::path state, int fd) : state_(std::move(state)), fd_(fd) {}
  std::filesystem::path state_;
  int fd_ = -1;
};

}  // namespace onedfu::sim
