// `onedfu-sim powercut`, step 2: the sweep (powercut.h).
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "bootloader/dfu_device.h"
#include "powercut.h"
#include "ram_board.h"

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

}  // namespace

Expected<SweepResult> SweepPowerCuts(const PowercutInput& input, const UpdateRecording& recording,
                                     const SweepOptions& options, std::ostream& out) {
  const Board& board = input.board;
  const PowercutFaults& faults = options.faults;
  RamBoard ram(board, faults);
  PowerRail& rail = ram.rail();
  std::optional<bootloader::DfuDevice> device;
  // A fresh DfuDevice on the (powered) flash, as after a reset.
  auto reset_device = [&]() -> Expected<bootloader::DfuDevice*> {
    device.reset();
    device.emplace(board, ram.memories(), bootloader::DeviceStrings{}, ReplayDfuOptions());
    runtime::Diag diag;
    if (!device->Init(&diag).ok()) return Fail(std::string("bootloader refused the board: ") + diag.c_str());
    return &*device;
  };
  ReplayOptions compare;
  compare.compare = true;
  compare.stop = [&rail] {
    ++rail.event;
    return rail.dead;
  };

  // The clean update: counts and logs the flash operations.
  SweepResult result;
  std::vector<FlashOp> ops;
  ram.Load(recording.old_flash);
  rail.log = &ops;
  {
    ONEDFU_PTRY(bootloader::DfuDevice * dev, reset_device());
    const ReplayResult clean = ReplayStream(*dev, recording.update, compare);
    rail.log = nullptr;
    if (clean.diverged) return Fail("the clean replay of the recorded update differs: " + clean.divergence);
    if (clean.end != ReplayEnd::kLeft) return Fail("the clean replay of the recorded update never left DFU mode");
  }
  ram.PowerOn();
  if (const Boot boot = DecideBoot(ram, faults); !boot.start) {
    return Fail("after the clean replay the board does not boot: " + DescribeDecision(boot.decision));
  }
  if (const int e = FirstDifferingElement(board, ram.storage(), input.to_elements); e >= 0) {
    return Fail("after the clean replay " + DescribeElement(input.to_elements, e) + " of NEW is not in flash");
  }
  if (ops.empty()) return Fail("the recorded update changes no flash: nothing to sweep");
  // The boot decision is a function of the flash contents: a re-flash that ends in exactly this
  // state needs no second SHA-256 pass over every segment (the costly part of a cut).
  const std::vector<std::vector<uint8_t>> clean_final = ram.storage();
  result.operations = static_cast<uint32_t>(ops.size());
  for (const FlashOp& op : ops) {
    MemoryOperations& counts = result.operations_per_memory[board.memories[op.memory].name];
    (op.erase ? counts.erases : counts.writes)++;
  }

  for (uint32_t n = 0; n < ops.size(); ++n) {
    const FlashOp& op = ops[n];
    for (CutMode mode : kCutModes) {
      ++result.cuts;
      const std::string where = std::string("cut ") + CutModeName(mode) + " op " + std::to_string(n) + "/" +
                                std::to_string(ops.size()) + " (" + board.memories[op.memory].name +
                                (op.erase ? " erase " : " write ") + HexAddress(op.address) + "+" +
                                std::to_string(op.size) + ", " + DescribeCause(recording.update, op.event) + ")";
      std::vector<std::string> problems;

      // Replay until the power fails.
      ram.Load(recording.old_flash);
      rail.armed = true;
      rail.cut_op = n;
      rail.mode = mode;
      {
        ONEDFU_PTRY(bootloader::DfuDevice * dev, reset_device());
        ReplayOptions until_cut;
        until_cut.compare = false;
        until_cut.stop = compare.stop;
        ReplayStream(*dev, recording.update, until_cut);
      }
      if (!rail.dead) {
        problems.push_back("the replay ended after " + std::to_string(rail.ops) +
                           " flash operations without reaching the cut (not deterministic)");
      }

      // Power on: what does the board do?
      ram.PowerOn();
      const Boot boot = DecideBoot(ram, faults);
      std::string outcome;
      if (boot.start) {
        const int old_diff = FirstDifferingElement(board, ram.storage(), input.from_elements);
        const int new_diff = FirstDifferingElement(board, ram.storage(), input.to_elements);
        if (old_diff < 0) {
          outcome = "boots OLD";
          ++result.booted_old;
        } else if (new_diff < 0) {
          outcome = "boots NEW";
          ++result.booted_new;
        } else {
          outcome = "boots a partial image";
          const std::string why = boot.decision.start_application
                                      ? "the boot decision accepted it"
                                      : "started despite: " + DescribeDecision(boot.decision);
          problems.push_back("boots a partial image (" + why + "): OLD " +
                             DescribeElement(input.from_elements, old_diff) + " and NEW " +
                             DescribeElement(input.to_elements, new_diff) + " are not in flash");
        }
      } else {
        outcome = "stays in DFU mode (" + std::string(bootloader::BootReasonName(boot.decision.reason)) + ")";
        ++result.stayed_dfu;
        ++result.dfu_reasons[bootloader::BootReasonName(boot.decision.reason)];
      }
      if (std::string changed = ChangedProtectedRegion(board, recording.old_flash, ram.storage()); !changed.empty()) {
        problems.push_back("after the cut: " + changed);
      }

      // Flash NEW again on the same flash: it must succeed and boot NEW.
      {
        ONEDFU_PTRY(bootloader::DfuDevice * dev, reset_device());
        const ReplayResult again = ReplayStream(*dev, recording.update, compare);
        if (again.diverged) {
          problems.push_back("flashing NEW again: " + again.divergence);
        } else if (again.end != ReplayEnd::kLeft) {
          problems.push_back("flashing NEW again: the device never left DFU mode");
        }
      }
      ram.PowerOn();
      const bool as_clean = ram.storage() == clean_final;
      const Boot after = as_clean ? Boot{true, {}} : DecideBoot(ram, faults);
      if (!after.start) {
        problems.push_back("after flashing NEW again the board does not boot: " + DescribeDecision(after.decision));
      } else if (const int e = FirstDifferingElement(board, ram.storage(), input.to_elements); e >= 0) {
        problems.push_back("after flashing NEW again " + DescribeElement(input.to_elements, e) + " of NEW differs");
      }
      if (std::string changed = ChangedProtectedRegion(board, recording.old_flash, ram.storage()); !changed.empty()) {
        problems.push_back("after flashing NEW again: " + changed);
      }

      if (options.verbose) out << where << ": " << outcome << (problems.empty() ? "" : " FAILED") << "\n";
      if (!problems.empty()) ++result.failures;
      for (const std::string& p : problems) out << "FAIL " << where << ": " << p << "\n";
    }
  }
  return result;
}

}  // namespace onedfu::sim
