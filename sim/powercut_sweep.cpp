// `onedfu-sim powercut`, step 2: the sweep (powercut.h).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <ostream>
#include <string>
#include <vector>

#include "dfu_port.h"
#include "output_capture.h"
#include "powercut.h"
#include "sweep_board.h"

namespace onedfu::sim {
namespace {

using host::Expected;
using host::Fail;
using runtime::Board;

// "request 8 GETSTATUS (the work of request 7 DNLOAD block 0 (5 bytes: 41 00 80 00 08))": the
// flash work of a DNLOAD runs once its busy GETSTATUS reply is out, so name both.
std::string DescribeCause(const UsbStream& stream, size_t event) {
  std::string text = "request " + std::to_string(event) + " " + DescribeEvent(stream[event]);
  const SetupPacket& s = stream[event].setup;
  if (stream[event].kind != UsbEvent::Kind::kControl || s.bmRequestType != 0xa1 || s.bRequest != 3) return text;
  for (size_t i = event; i-- > 0;) {
    const UsbEvent& e = stream[i];
    if (e.kind == UsbEvent::Kind::kControl && e.setup.bmRequestType == 0x21 && e.setup.bRequest == 1) {
      return text + " (the work of request " + std::to_string(i) + " " + DescribeEvent(e) + ")";
    }
  }
  return text;
}

// What one cut did to the board: its outcome at power-on and every failed check after it.
struct Verdict {
  enum class Kind : uint8_t { kOld, kNew, kDfu, kPartial } kind = Kind::kDfu;
  std::string outcome;     // "boots OLD", "stays in DFU mode (revoked boot record)", ...
  std::string dfu_reason;  // kDfu: BootReasonName
  bool verified_once = false;  // started, and the next power-on skipped the hashes
  std::vector<std::string> problems;
};

// Whether the board's flash equals a reference image, in time proportional to the pages changed
// since the board's last Restore/SyncTo: it knows, per kChangePage page, whether the image the
// board was restored to (the checkpoint) equals the reference there.
class SameAsReference {
 public:
  explicit SameAsReference(const FlashImage& reference) : reference_(reference) {
    equal_.resize(reference.size());
    for (size_t m = 0; m < reference.size(); ++m) equal_[m].assign(Pages(m), 1);
  }
  // The checkpoint changed: `checkpoint` now holds new bytes in the pages marked in `changed`.
  void Update(const std::vector<std::vector<uint8_t>>& checkpoint, const std::vector<std::vector<uint8_t>>& changed) {
    ForMarked(changed, [&](size_t m, size_t page) {
      const bool now = SamePage(checkpoint, m, page);
      differing_ += static_cast<size_t>(!now) - static_cast<size_t>(!equal_[m][page]);
      equal_[m][page] = now;
    });
  }
  // Full recount against `checkpoint`.
  void Reset(const std::vector<std::vector<uint8_t>>& checkpoint) {
    differing_ = 0;
    for (size_t m = 0; m < equal_.size(); ++m) {
      for (size_t page = 0; page < equal_[m].size(); ++page) {
        equal_[m][page] = SamePage(checkpoint, m, page);
        differing_ += !equal_[m][page];
      }
    }
  }
  // The board's flash (`storage`, equal to the checkpoint outside the `changed` pages) equals the reference.
  bool Same(const FlashView& storage, const std::vector<std::vector<uint8_t>>& changed) const {
    size_t differing = differing_;
    ForMarked(changed, [&](size_t m, size_t page) {
      differing += static_cast<size_t>(!SamePage(storage, m, page)) - static_cast<size_t>(!equal_[m][page]);
    });
    return differing == 0;
  }

 private:
  size_t Pages(size_t m) const { return (reference_[m].size() + kChangePage - 1) / kChangePage; }
  template <typename Image>
  bool SamePage(const Image& image, size_t m, size_t page) const {
    const size_t begin = page * kChangePage;
    const size_t size = std::min<size_t>(kChangePage, reference_[m].size() - begin);
    return std::memcmp(image[m].data() + begin, reference_[m].data() + begin, size) == 0;
  }
  template <typename F>
  static void ForMarked(const std::vector<std::vector<uint8_t>>& changed, F f) {
    for (size_t m = 0; m < changed.size(); ++m) {
      for (size_t page = 0; page < changed[m].size(); ++page) {
        if (changed[m][page]) f(m, page);
      }
    }
  }

  const FlashImage& reference_;
  std::vector<std::vector<uint8_t>> equal_;  // per page of the checkpoint: equals the reference
  size_t differing_ = 0;                     // pages of the checkpoint that differ
};

// The replay's view of the power rail: counts the events replayed, stops once the power is gone.
ReplayOptions RailReplay(PowerRail& rail, bool compare, size_t first, size_t last = SIZE_MAX) {
  ReplayOptions options;
  options.compare = compare;
  options.first = first;
  options.last = last;
  rail.event = first;
  options.stop = [&rail] {
    ++rail.event;
    return rail.dead;
  };
  return options;
}

// Counts what the board did after one cut (a partial image counts only as a failure).
void CountOutcome(const Verdict& v, SweepResult* result) {
  switch (v.kind) {
    case Verdict::Kind::kOld: ++result->booted_old; break;
    case Verdict::Kind::kNew: ++result->booted_new; break;
    case Verdict::Kind::kDfu:
      ++result->stayed_dfu;
      ++result->dfu_reasons[v.dfu_reason];
      break;
    case Verdict::Kind::kPartial: break;
  }
  if (v.verified_once) ++result->verified_once;
}

}  // namespace

Expected<SweepResult> SweepPowerCuts(const PowercutInput& input, const UpdateRecording& recording,
                                     const SweepOptions& options, std::ostream& out) {
  const Board& board = input.board;
  const PowercutFaults& faults = options.faults;
  const UsbStream& stream = recording.update;
  // The board: FileFlash memories (as `onedfu-sim run` has them) in a scratch state directory.
  ONEDFU_PTRY(host::TempDir state, host::TempDir::Create("onedfu-powercut"));
  ONEDFU_PTRY(std::unique_ptr<SweepBoard> board_files, SweepBoard::Open(board, faults, state.path()));
  SweepBoard& ram = *board_files;
  PowerRail& rail = ram.rail();
  // A fresh DfuDevice on the (powered) flash, as after a reset.
  auto fresh_device = [&](std::optional<DfuPort>& device) -> Expected<DfuPort*> {
    device.reset();
    device.emplace(board, ram.memories(), DfuPortStrings{}, ReplayDfuOptions());
    runtime::Diag diag;
    if (!device->Init(&diag).ok()) return Fail(std::string("bootloader refused the board: ") + diag.c_str());
    return &*device;
  };

  // A host that adapts to the board (onedfu flash) was recorded on a bootloader without the
  // test-only faults; under one, its hash requests would see other bytes, so its requests are
  // replayed as recorded without comparing the replies (self-checks only).
  const bool adaptive = !recording.rerun.empty();
  const bool compare = !(adaptive && (faults.skip_revoke || faults.trust_record || faults.erase_extra));

  // The clean update: counts and logs the flash operations.
  SweepResult result;
  std::vector<FlashOp> ops;
  std::optional<DfuPort> device;
  ram.Load(recording.old_flash);
  rail.log = &ops;
  {
    ONEDFU_PTRY(DfuPort * dev, fresh_device(device));
    const ReplayResult clean = ReplayStream(*dev, stream, RailReplay(rail, compare, 0));
    rail.log = nullptr;
    if (clean.diverged) return Fail("the clean replay of the recorded update differs: " + clean.divergence);
    if (clean.end != ReplayEnd::kLeft) return Fail("the clean replay of the recorded update never left DFU mode");
  }
  ram.PowerOn();
  // The boot decision is a function of the flash contents: a re-flash that ends in exactly this
  // state (the update done, before its first boot programs the marker and the counter) needs no
  // second SHA-256 pass over every segment (the costly part of a cut).
  const FlashImage clean_final = ram.Snapshot();
  // The first boot of NEW: its flash operations (marker, counter) are swept after the update's.
  std::vector<FlashOp> boot_ops;
  rail.ops = 0;
  rail.log = &boot_ops;
  const Boot clean_boot = DecideBoot(ram, faults);
  rail.log = nullptr;
  if (!clean_boot.start) {
    return Fail("after the clean replay the board does not boot: " + DescribeDecision(clean_boot.decision));
  }
  if (const int e = FirstDifferingElement(board, ram.storage(), input.to_elements); e >= 0) {
    return Fail("after the clean replay " + DescribeElement(input.to_elements, e) + " of NEW is not in flash");
  }
  if (ops.empty()) return Fail("the recorded update changes no flash: nothing to sweep");
  // The counter rule: never below what OLD booted with, never above the highest record that
  // passed verification, NEW's once NEW booted.
  const FlashView old_view = View(recording.old_flash);
  result.old_counter = SecurityCounter(board, old_view);
  result.new_counter = clean_boot.decision.security_counter;
  const uint32_t top_counter = std::max(result.old_counter, result.new_counter);
  const auto counter_problems = [&](const std::string& when, bool booted_new, std::vector<std::string>& problems) {
    // As the bootloader's next boot reads it (an unreadable log counts as 0).
    const uint32_t counter = bootloader::BootSecurityCounter(board, ram.memories());
    const std::string text = "the security counter is " + std::to_string(counter);
    if (counter < result.old_counter) {
      problems.push_back(when + ": the security counter went back: " + std::to_string(counter) + ", OLD booted with " +
                         std::to_string(result.old_counter));
    } else if (counter > top_counter) {
      problems.push_back(when + ": " + text + ", above every verified record's (OLD " +
                         std::to_string(result.old_counter) + ", NEW " + std::to_string(result.new_counter) + ")");
    } else if (booted_new && counter != top_counter) {
      problems.push_back(when + ": NEW booted but " + text + ", not " + std::to_string(top_counter));
    }
    if (std::string changed = ChangedCounterLog(board, old_view, ram.storage()); !changed.empty()) {
      problems.push_back(when + ": " + changed);
    }
  };
  const auto pushed_problems = [&](const std::string& when, std::vector<std::string>& problems) {
    if (recording.pushed_romfs_size == 0) return;
    const std::string changed =
        ChangedRange(board, old_view, ram.storage(), recording.pushed_romfs_address, recording.pushed_romfs_size);
    if (!changed.empty()) {
      problems.push_back(when + ": the ROMFS image pushed at run time (slot " +
                         HexAddress(recording.pushed_romfs_address) + ", " + std::to_string(recording.pushed_romfs_size) +
                         " bytes) changed at " + changed);
    }
  };
  result.operations = static_cast<uint32_t>(ops.size());
  for (const FlashOp& op : ops) {
    MemoryOperations& counts = result.operations_per_memory[board.memories[op.memory].name];
    (op.erase ? counts.erases : counts.writes)++;
  }

  // Power on after a cut, then flash NEW again: the checks of the file comment. A function of
  // the flash contents only (a fresh DfuDevice replays the whole update).
  std::optional<DfuPort> again_device;
  SameAsReference same_as_clean(clean_final);
  // A host that adapts to the board (onedfu flash) re-runs for real after `rerun_sample` of the
  // judged cuts, spread evenly: the judged ones are "before" op 0 and "after"/"torn" of each op.
  const uint64_t judged_total = 2 * static_cast<uint64_t>(ops.size()) + 1;
  const uint64_t sample = std::min<uint64_t>(options.rerun_sample, judged_total);
  uint64_t judged = 0;
  // `complete`: the update's operations all happened (the flash is as the clean replay left it,
  // or only the first boot of NEW was cut): the board must boot NEW.
  auto judge = [&](bool complete) -> Expected<Verdict> {
    Verdict v;
    ram.PowerOn();
    complete = complete || same_as_clean.Same(ram.storage(), ram.changed());
    counter_problems("after the cut", false, v.problems);
    pushed_problems("after the cut", v.problems);
    const Boot boot = DecideBoot(ram, faults);
    if (boot.start) {
      const int old_diff = FirstDifferingElement(board, ram.storage(), input.from_elements);
      const int new_diff = FirstDifferingElement(board, ram.storage(), input.to_elements);
      if (!input.from_elements.empty() && old_diff < 0) {
        v.kind = Verdict::Kind::kOld;
        v.outcome = "boots OLD";
      } else if (new_diff < 0) {
        v.kind = Verdict::Kind::kNew;
        v.outcome = "boots NEW";
      } else {
        v.kind = Verdict::Kind::kPartial;
        v.outcome = "boots a partial image";
        const std::string why = boot.decision.start_application
                                    ? "the boot decision accepted it"
                                    : "started despite: " + DescribeDecision(boot.decision);
        const std::string old_text = input.from_elements.empty()
                                         ? "the board was blank (no OLD)"
                                         : "OLD " + DescribeElement(input.from_elements, old_diff) + " is not in flash";
        v.problems.push_back("boots a partial image (" + why + "): " + old_text + " and NEW " +
                             DescribeElement(input.to_elements, new_diff) + " is not in flash");
      }
    } else {
      v.kind = Verdict::Kind::kDfu;
      v.dfu_reason = bootloader::BootReasonName(boot.decision.reason);
      v.outcome = "stays in DFU mode (" + v.dfu_reason + ")";
    }
    if (complete && v.kind != Verdict::Kind::kNew) {
      v.problems.push_back("the update was complete, but the board " + v.outcome +
                           (boot.start ? "" : ": " + DescribeDecision(boot.decision)));
    }
    counter_problems("after power-on", v.kind == Verdict::Kind::kNew && boot.decision.start_application, v.problems);
    if (boot.start) {
      // Verified once: the next power-on starts the same image, the marker sparing the hashes.
      ram.PowerOn();
      const Boot next = DecideBoot(ram, faults);
      if (!next.start) {
        v.problems.push_back("the power-on after that does not boot: " + DescribeDecision(next.decision));
      } else if (FirstDifferingElement(board, ram.storage(), input.to_elements) >= 0 &&
                 FirstDifferingElement(board, ram.storage(), input.from_elements) >= 0) {
        v.problems.push_back("the power-on after that starts neither OLD nor NEW");
      }
      v.verified_once = next.start && next.decision.hashes_skipped;
    }
    if (std::string changed = ChangedProtectedRegion(board, old_view, ram.storage()); !changed.empty()) {
      v.problems.push_back("after the cut: " + changed);
    }
    if (std::string changed = ChangedOutside(board, recording.may_change, old_view, ram.storage()); !changed.empty()) {
      v.problems.push_back("after the cut: " + changed);
    }
    if (adaptive) {
      const uint64_t j = judged++;
      // Not in the sample (at most `sample` re-runs, also should more cuts be judged than counted here).
      if (result.reruns >= sample || (j * sample) / judged_total == ((j + 1) * sample) / judged_total) return v;
      ++result.reruns;
      const size_t before = v.problems.size();
      ONEDFU_PTRY(RerunResult rerun, RerunHost(input, recording, ram.storage()));
      const std::string what = "re-running `" + recording.rerun[0] + " " + recording.rerun[1] + "`";
      const FlashView after = View(rerun.flash);
      if (rerun.status != 0) {
        v.problems.push_back(what + ": exit status " + std::to_string(rerun.status) + Tail(rerun.output, 6));
      } else if (!rerun.boots) {
        v.problems.push_back("after " + what + " the board does not boot: " + rerun.decision);
      } else if (const int e = FirstDifferingElement(board, after, input.to_elements); e >= 0) {
        v.problems.push_back("after " + what + " " + DescribeElement(input.to_elements, e) + " of NEW differs");
      }
      if (std::string changed = ChangedProtectedRegion(board, old_view, after); !changed.empty()) {
        v.problems.push_back("after " + what + ": " + changed);
      }
      if (std::string changed = ChangedOutside(board, recording.may_change, old_view, after); !changed.empty()) {
        v.problems.push_back("after " + what + ": " + changed);
      }
      if (v.problems.size() > before) ++result.rerun_failures;
      return v;
    }
    {
      ONEDFU_PTRY(DfuPort * dev, fresh_device(again_device));
      const ReplayResult again = ReplayStream(*dev, stream, RailReplay(rail, true, 0));
      if (again.diverged) {
        v.problems.push_back("flashing NEW again: " + again.divergence);
      } else if (again.end != ReplayEnd::kLeft) {
        v.problems.push_back("flashing NEW again: the device never left DFU mode");
      }
    }
    ram.PowerOn();
    const bool as_clean = same_as_clean.Same(ram.storage(), ram.changed());
    // As the clean replay left it: its first boot (judged above) is this one.
    const Boot after = as_clean ? Boot{true, {}} : DecideBoot(ram, faults);
    if (!after.start) {
      v.problems.push_back("after flashing NEW again the board does not boot: " + DescribeDecision(after.decision));
    } else if (const int e = FirstDifferingElement(board, ram.storage(), input.to_elements); e >= 0) {
      v.problems.push_back("after flashing NEW again " + DescribeElement(input.to_elements, e) + " of NEW differs");
    }
    if (!as_clean) counter_problems("after flashing NEW again", after.decision.start_application, v.problems);
    pushed_problems("after flashing NEW again", v.problems);
    if (std::string changed = ChangedProtectedRegion(board, old_view, ram.storage()); !changed.empty()) {
      v.problems.push_back("after flashing NEW again: " + changed);
    }
    if (std::string changed = ChangedOutside(board, recording.may_change, old_view, ram.storage()); !changed.empty()) {
      v.problems.push_back("after flashing NEW again: " + changed);
    }
    return v;
  };

  // The sweep, checkpointed: one running clean replay (`device` on the board's flash) goes
  // through the update once. Before the event that causes a group of operations it is
  // checkpointed (flash bytes + a copy of the DfuPort); each cut in the group restores the
  // checkpoint and replays from that event only, so reaching a cut costs one event, not the
  // update so far. The running replay itself resumes from the checkpoint after the group and
  // compares every reply with the recording, so a checkpoint that does not restore the device
  // exactly fails the sweep.
  static_assert(std::is_copy_constructible_v<DfuPort>, "the sweep checkpoints the bootloader core by copying it");
  std::vector<std::vector<uint8_t>> checkpoint = recording.old_flash;
  ram.Load(checkpoint);
  same_as_clean.Reset(checkpoint);
  { ONEDFU_PTRY(DfuPort * dev, fresh_device(device)); (void)dev; }
  // "Before op n" leaves the flash as "after op n - 1" did: both completed exactly operations
  // 0..n-1 of the same deterministic replay, and the verdict depends on the flash only, so it
  // is reused instead of judged again.
  std::optional<Verdict> after_verdict;
  uint32_t after_verdict_op = 0;
  // --sample N: the operations cut (all by default; else the first, the last and a seeded
  // sample of the rest, N in all).
  std::vector<bool> sampled(ops.size(), options.sample == 0 || options.sample >= ops.size());
  if (!sampled[0]) {
    uint32_t random = options.seed * 2654435761u + 0x6a09e667u;
    sampled.front() = sampled.back() = true;
    for (uint32_t picked = ops.size() > 1 ? 2 : 1; picked < options.sample;) {
      random ^= random << 13;
      random ^= random >> 17;
      random ^= random << 5;
      const uint32_t n = random % static_cast<uint32_t>(ops.size());
      if (!sampled[n]) {
        sampled[n] = true;
        ++picked;
      }
    }
  }
  result.operations_cut = static_cast<uint32_t>(std::count(sampled.begin(), sampled.end(), true));
  size_t delivered = 0;  // events of the running replay delivered so far
  for (uint32_t group = 0; group < ops.size();) {
    const size_t event = ops[group].event;
    uint32_t group_end = group;
    while (group_end < ops.size() && ops[group_end].event == event) ++group_end;
    // Bring the running replay to just before `event`.
    if (delivered < event) {
      const ReplayResult r = ReplayStream(*device, stream, RailReplay(rail, compare, delivered, event));
      if (r.diverged) return Fail("the checkpointed replay differs from the recording: " + r.divergence);
      if (rail.ops != group) {
        return Fail("the checkpointed replay reached request " + std::to_string(event) + " after " +
                    std::to_string(rail.ops) + " flash operations, the clean one after " + std::to_string(group));
      }
      delivered = event;
    }
    const std::vector<std::vector<uint8_t>> synced = ram.changed();
    ram.SyncTo(checkpoint);
    same_as_clean.Update(checkpoint, synced);
    const DfuPort saved(*device);

    for (uint32_t n = group; n < group_end; ++n) {
      if (!sampled[n]) continue;
      const FlashOp& op = ops[n];
      for (CutMode mode : kCutModes) {
        ++result.cuts;
        const std::string where = std::string("cut ") + CutModeName(mode) + " op " + std::to_string(n) + "/" +
                                  std::to_string(ops.size()) + " (" + board.memories[op.memory].name +
                                  (op.erase ? " erase " : " write ") + HexAddress(op.address) + "+" +
                                  std::to_string(op.size) + ", " + DescribeCause(stream, op.event) + ")";
        // Replay from the checkpoint until the power fails.
        ram.Restore(checkpoint);
        rail.ops = group;
        rail.armed = true;
        rail.cut_op = n;
        rail.mode = mode;
        rail.torn_model = options.torn;
        rail.torn_seed = options.seed * 1000003u + n * 3u + static_cast<uint32_t>(mode);
        {
          std::optional<DfuPort> cut_device;
          cut_device.emplace(saved);
          ReplayStream(*cut_device, stream, RailReplay(rail, false, event));
        }
        std::vector<std::string> reach_problems;
        if (!rail.dead) {
          reach_problems.push_back("the replay ended after " + std::to_string(rail.ops) +
                                   " flash operations without reaching the cut (not deterministic)");
        }
        Verdict v;
        if (mode == CutMode::kBefore && n > 0 && after_verdict && after_verdict_op == n - 1) {
          v = *after_verdict;
        } else {
          ONEDFU_PTRY(v, judge(false));
          if (mode == CutMode::kAfter) {
            after_verdict = v;
            after_verdict_op = n;
          }
        }
        CountOutcome(v, &result);
        std::vector<std::string> problems = std::move(reach_problems);
        problems.insert(problems.end(), v.problems.begin(), v.problems.end());
        if (options.verbose) out << where << ": " << v.outcome << (problems.empty() ? "" : " FAILED") << "\n";
        if (!problems.empty()) ++result.failures;
        for (const std::string& p : problems) out << "FAIL " << where << ": " << p << "\n";
      }
    }
    // Resume the running replay from the checkpoint.
    ram.Restore(checkpoint);
    rail.ops = group;
    device.reset();
    device.emplace(saved);
    group = group_end;
  }
  // The rest of the running replay must end as the clean one did.
  const ReplayResult rest = ReplayStream(*device, stream, RailReplay(rail, compare, delivered));
  if (rest.diverged) return Fail("the checkpointed replay differs from the recording: " + rest.divergence);
  if (rest.end != ReplayEnd::kLeft || !same_as_clean.Same(ram.storage(), ram.changed())) {
    return Fail("the checkpointed replay did not end in the flash state of the clean replay");
  }

  // The first boot of NEW (the trusting bootloader programs the verified marker, then advances
  // the security counter): each of its flash operations cut before, after and torn, from the
  // flash the update left; then power on and judge as above: the board must boot NEW.
  {
    const std::vector<std::vector<uint8_t>> synced = ram.changed();
    ram.SyncTo(checkpoint);
    same_as_clean.Update(checkpoint, synced);
  }
  result.boot_operations = static_cast<uint32_t>(boot_ops.size());
  for (uint32_t n = 0; n < boot_ops.size(); ++n) {
    const FlashOp& op = boot_ops[n];
    for (CutMode mode : kCutModes) {
      ++result.cuts;
      ++result.boot_cuts;
      const std::string where = std::string("cut ") + CutModeName(mode) + " boot op " + std::to_string(n) + "/" +
                                std::to_string(boot_ops.size()) + " (" + board.memories[op.memory].name +
                                (op.erase ? " erase " : " write ") + HexAddress(op.address) + "+" +
                                std::to_string(op.size) + ", the first boot of NEW)";
      ram.Restore(checkpoint);
      rail.armed = true;
      rail.cut_op = n;
      rail.mode = mode;
      rail.torn_model = options.torn;
      rail.torn_seed = options.seed * 1000003u + 0x40000000u + n * 3u + static_cast<uint32_t>(mode);
      (void)DecideBoot(ram, faults);
      std::vector<std::string> problems;
      if (!rail.dead) {
        problems.push_back("the boot ended after " + std::to_string(rail.ops) +
                           " flash operations without reaching the cut (not deterministic)");
      }
      ONEDFU_PTRY(Verdict v, judge(true));
      CountOutcome(v, &result);
      problems.insert(problems.end(), v.problems.begin(), v.problems.end());
      if (options.verbose) out << where << ": " << v.outcome << (problems.empty() ? "" : " FAILED") << "\n";
      if (!problems.empty()) {
        ++result.failures;
        ++result.boot_failures;
      }
      for (const std::string& p : problems) out << "FAIL " << where << ": " << p << "\n";
    }
  }

  // --double: cut once during the update, power on, cut again during the re-flash of NEW that
  // follows, then judge as above. A deterministic sample of `double_pairs` pairs (seeded).
  if (options.double_pairs == 0) return result;
  if (adaptive) {
    return Fail("--double replays the recorded re-flash, but " + recording.rerun[0] +
                " adapts to what the board holds (its re-flash is re-run for real instead)");
  }
  uint32_t random = options.seed * 2246822519u + 0x2545f491u;
  auto next = [&random](uint32_t bound) {
    random ^= random << 13;
    random ^= random >> 17;
    random ^= random << 5;
    return random % bound;
  };
  ram.Load(recording.old_flash);
  same_as_clean.Reset(recording.old_flash);
  for (uint32_t pair = 0; pair < options.double_pairs; ++pair) {
    const uint32_t n1 = next(static_cast<uint32_t>(ops.size()));
    const CutMode mode1 = kCutModes[next(3)];
    const uint32_t n2 = next(static_cast<uint32_t>(ops.size()));
    const CutMode mode2 = kCutModes[next(3)];
    const std::string where = "double cut " + std::to_string(pair) + ": " + CutModeName(mode1) + " op " +
                              std::to_string(n1) + " of the update, then " + CutModeName(mode2) + " op " +
                              std::to_string(n2) + " of the re-flash";
    ram.Restore(recording.old_flash);
    std::vector<std::string> problems;
    bool reached = true;
    for (int round = 0; round < 2; ++round) {
      ram.PowerOn();
      rail.armed = true;
      rail.cut_op = round == 0 ? n1 : n2;
      rail.mode = round == 0 ? mode1 : mode2;
      rail.torn_model = options.torn;
      rail.torn_seed = options.seed * 1000003u + pair * 7u + static_cast<uint32_t>(round);
      std::optional<DfuPort> cut_device;
      ONEDFU_PTRY(DfuPort * dev, fresh_device(cut_device));
      ReplayStream(*dev, stream, RailReplay(rail, false, 0));
      reached = reached && rail.dead;
    }
    ++result.cuts;
    ++result.double_cuts;
    if (!reached) ++result.double_short;  // the re-flash ended before op n2: one cut only
    ONEDFU_PTRY(Verdict v, judge(false));
    CountOutcome(v, &result);
    problems.insert(problems.end(), v.problems.begin(), v.problems.end());
    if (options.verbose) out << where << ": " << v.outcome << (problems.empty() ? "" : " FAILED") << "\n";
    if (!problems.empty()) {
      ++result.failures;
      ++result.double_failures;
    }
    for (const std::string& p : problems) out << "FAIL " << where << ": " << p << "\n";
  }
  return result;
}

}  // namespace onedfu::sim
