// `onedfu-sim powercut`: see powercut.h.
#include "powercut.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "bootloader/boot.h"
#include "bootloader/dfu_device.h"
#include "host/board_json.h"
#include "host/file_io.h"
#include "runtime/boot_record.h"
#include "runtime/fake_flash.h"
#include "sim_commands.h"
#include "subcommand_options.h"
#include "umockdev_usb.h"

namespace onedfu::sim {
namespace {

using host::Expected;
using host::Fail;
using runtime::Board;
using runtime::RegionRole;

constexpr int kExitFailures = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage =
    "usage: onedfu-sim powercut --board BOARD.json --from OLD.dfu --to NEW.dfu [options]\n"
    "\n"
    "Proves an update from OLD to NEW cannot brick the board. Records what the real\n"
    "`dfu-util -a 0 -D NEW.dfu -s :leave` asks of the bootloader on a board that holds OLD\n"
    "(flashed by dfu-util too), then replays that update in-process, cutting the power before,\n"
    "after and half-way through every flash operation. After each cut the board must boot OLD\n"
    "or NEW completely or stay in DFU mode, the bootloader and filesystem regions must be\n"
    "unchanged, and flashing NEW again must succeed and boot NEW. One `FAIL` line per failed\n"
    "check; the last line is `cuts=N failures=N` (failures: cuts with a failed check). Exit\n"
    "status 0 only without failures.\n"
    "\n"
    "options:\n"
    "  --board B            board JSON file, or the id of a bundled board (required)\n"
    "  --from OLD.dfu       the package on the board before the update (required)\n"
    "  --to NEW.dfu         the update (required)\n"
    "  --dfu-util PATH      dfu-util executable (default: dfu-util from PATH)\n"
    "  --timeout MS         limit for each dfu-util run (default 120000; 0 = none)\n"
    "  --verbose            print every cut and its outcome, and dfu-util's output\n"
    "  --unsafe-skip-revoke     TEST ONLY: the bootloader does not revoke the old record\n"
    "  --unsafe-trust-record    TEST ONLY: the boot ignores SHA-256 mismatches\n"
    "                       (the two prove the sweep detects a brick)\n";

// Deterministic filler for the protected regions, so a stray write shows.
void FillPattern(std::span<uint8_t> bytes, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 0x9e3779b9u;
  for (uint8_t& b : bytes) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x >> 8);
  }
}

std::string HexAddress(uint64_t address) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%08llx", static_cast<unsigned long long>(address));
  return b;
}

// Index of the board memory that holds [address, address + size), or -1.
int MemoryFor(const Board& board, uint32_t address, uint64_t size) {
  for (int m = 0; m < board.memory_count; ++m) {
    const runtime::Memory& memory = board.memories[m];
    if (memory.Contains(address) && address + size <= memory.end()) return m;
  }
  return -1;
}

// Index of the first element whose bytes are not in `flash` exactly, or -1 when all are.
int FirstDifferingElement(const Board& board, const std::vector<std::vector<uint8_t>>& flash,
                          const std::vector<host::DfuseElement>& elements) {
  for (size_t i = 0; i < elements.size(); ++i) {
    const host::DfuseElement& e = elements[i];
    const int m = MemoryFor(board, e.address, e.data.size());
    if (m < 0) return static_cast<int>(i);
    const size_t offset = e.address - board.memories[m].base;
    if (std::memcmp(flash[m].data() + offset, e.data.data(), e.data.size()) != 0) return static_cast<int>(i);
  }
  return -1;
}

std::string DescribeElement(const std::vector<host::DfuseElement>& elements, int index) {
  const host::DfuseElement& e = elements[static_cast<size_t>(index)];
  return "element " + std::to_string(index) + " at " + HexAddress(e.address) + " (" + std::to_string(e.data.size()) +
         " bytes)";
}

// The first bootloader/filesystem region whose bytes differ between `a` and `b`, or "".
std::string ChangedProtectedRegion(const Board& board, const std::vector<std::vector<uint8_t>>& a,
                                   const std::vector<std::vector<uint8_t>>& b) {
  for (int r = 0; r < board.region_count; ++r) {
    const runtime::Region& region = board.regions[r];
    if (region.role != RegionRole::kBootloader && region.role != RegionRole::kFilesystem) continue;
    const uint8_t* pa = a[region.memory].data() + region.offset;
    const uint8_t* pb = b[region.memory].data() + region.offset;
    if (std::memcmp(pa, pb, region.size) == 0) continue;
    size_t first = 0;
    while (pa[first] == pb[first]) ++first;
    return std::string(runtime::RegionRoleName(region.role)) + " region '" + region.name + "' changed at " +
           HexAddress(board.RegionStart(region) + first);
  }
  return "";
}

// ---- power ------------------------------------------------------------------------------

enum class CutMode : uint8_t { kBefore, kAfter, kTorn };
constexpr CutMode kCutModes[] = {CutMode::kBefore, CutMode::kAfter, CutMode::kTorn};

const char* CutModeName(CutMode mode) {
  switch (mode) {
    case CutMode::kBefore: return "before";
    case CutMode::kAfter: return "after";
    case CutMode::kTorn: return "during (torn)";
  }
  return "?";
}

// One flash-changing operation of the clean update.
struct FlashOp {
  int memory = 0;
  bool erase = false;
  uint32_t address = 0;
  uint32_t size = 0;
  size_t event = 0;  // index of the request in the stream that caused it
};

// The board's power supply, shared by every memory: counts flash-changing operations across
// all memories and fails the power at the armed one.
struct PowerRail {
  uint32_t ops = 0;
  size_t event = 0;  // the request being replayed
  bool armed = false;
  uint32_t cut_op = 0;
  CutMode mode = CutMode::kBefore;
  bool dead = false;
  std::vector<FlashOp>* log = nullptr;

  void Reset() {
    ops = 0;
    event = 0;
    armed = false;
    dead = false;
    log = nullptr;
  }
};

// FlashMemory decorator over one FakeFlash: the power rail decides when it fails.
class CutFlash final : public runtime::FlashMemory {
 public:
  CutFlash(runtime::FakeFlash& inner, PowerRail& rail, int index, std::optional<uint32_t> drop_revoke_at)
      : inner_(inner), rail_(rail), index_(index), drop_revoke_at_(drop_revoke_at) {}

  const runtime::Memory& geometry() const override { return inner_.geometry(); }
  runtime::Status Read(uint32_t address, runtime::MutableByteSpan out) override {
    if (rail_.dead) return PowerOff();
    return inner_.Read(address, out);
  }
  runtime::ByteSpan Mapped() const override { return rail_.dead ? runtime::ByteSpan() : inner_.Mapped(); }
  runtime::Status Erase(uint32_t address, uint32_t size) override {
    return Change(true, address, size, [&] { return inner_.Erase(address, size); });
  }
  runtime::Status Write(uint32_t address, runtime::ByteSpan data) override {
    if (drop_revoke_at_ && address == *drop_revoke_at_ && data.size() == runtime::kRevokeSize &&
        std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == runtime::kRevokedByte; })) {
      return runtime::Status::Ok();  // the --unsafe-skip-revoke fault: claims success, changes nothing
    }
    return Change(false, address, static_cast<uint32_t>(data.size()), [&] { return inner_.Write(address, data); });
  }

 private:
  static runtime::Status PowerOff() {
    return runtime::Status(runtime::StatusCode::kUnavailable, "power is off");
  }

  template <typename Op>
  runtime::Status Change(bool erase, uint32_t address, uint32_t size, Op op) {
    if (rail_.dead) return PowerOff();
    const uint32_t n = rail_.ops++;
    if (rail_.log) rail_.log->push_back(FlashOp{index_, erase, address, size, rail_.event});
    if (!rail_.armed || n != rail_.cut_op) return op();
    rail_.dead = true;
    switch (rail_.mode) {
      case CutMode::kBefore:
        return PowerOff();
      case CutMode::kTorn:
        inner_.CutPowerAfter(0, true);  // the fake does the first half, then loses power
        return op();
      case CutMode::kAfter:
        return op();  // completes; every later call fails
    }
    return PowerOff();
  }

  runtime::FakeFlash& inner_;
  PowerRail& rail_;
  int index_;
  std::optional<uint32_t> drop_revoke_at_;
};

// A board in RAM: one strict FakeFlash per memory behind a CutFlash on a shared power rail.
class RamBoard {
 public:
  RamBoard(const Board& board, const PowercutFaults& faults) : board_(board) {
    std::optional<uint32_t> revoke_at;
    int revoke_memory = -1;
    if (const runtime::Region* record = board.FindRole(RegionRole::kRecord); record && faults.skip_revoke) {
      revoke_at = board.RegionStart(*record) + runtime::kRevokeOffset;
      revoke_memory = record->memory;
    }
    storage_.resize(board.memory_count);
    for (int m = 0; m < board.memory_count; ++m) {
      storage_[m].assign(board.memories[m].size(), board.memories[m].erased_value);
      fakes_.push_back(std::make_unique<runtime::FakeFlash>(board.memories[m], storage_[m]));
      cuts_.push_back(std::make_unique<CutFlash>(*fakes_.back(), rail_, m,
                                                 m == revoke_memory ? revoke_at : std::nullopt));
      pointers_.push_back(cuts_.back().get());
    }
  }

  std::vector<std::vector<uint8_t>>& storage() { return storage_; }
  std::span<runtime::FlashMemory* const> memories() { return pointers_; }
  PowerRail& rail() { return rail_; }
  const Board& board() const { return board_; }

  // Power back on (faults cleared, counters zero).
  void PowerOn() {
    rail_.Reset();
    for (auto& fake : fakes_) {
      fake->ClearFaults();
      fake->PowerOn();
    }
  }
  void Load(const std::vector<std::vector<uint8_t>>& image) {
    for (size_t m = 0; m < storage_.size(); ++m) std::copy(image[m].begin(), image[m].end(), storage_[m].begin());
    PowerOn();
  }

 private:
  const Board& board_;
  std::vector<std::vector<uint8_t>> storage_;
  std::vector<std::unique_ptr<runtime::FakeFlash>> fakes_;
  std::vector<std::unique_ptr<CutFlash>> cuts_;
  std::vector<runtime::FlashMemory*> pointers_;
  PowerRail rail_;
};

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

bootloader::DfuOptions ReplayDfuOptions() {
  bootloader::DfuOptions options;
  // bwPollTimeout 0: dfu-util does not sleep while recording, and replay answers the same bytes.
  options.max_poll_timeout_ms = 0;
  return options;
}

// The boot decision, with the --unsafe-trust-record fault applied.
struct Boot {
  bool start = false;
  bootloader::BootDecision decision;
};

Boot DecideBoot(RamBoard& board, const PowercutFaults& faults) {
  Boot boot;
  boot.decision = bootloader::Decide(board.board(), board.memories(), false);
  boot.start = boot.decision.start_application;
  const bootloader::BootReason r = boot.decision.reason;
  if (!boot.start && faults.trust_record &&
      (r == bootloader::BootReason::kHashMismatch || r == bootloader::BootReason::kRomfsMismatch ||
       r == bootloader::BootReason::kManifestMismatch)) {
    boot.start = true;
  }
  return boot;
}

std::string DescribeDecision(const bootloader::BootDecision& d) {
  std::string text = bootloader::BootReasonName(d.reason);
  if (d.message.c_str()[0] != '\0') text += std::string(": ") + d.message.c_str();
  return text;
}

// Redirects this process's stdout and stderr (and so a child's) into a temporary file while
// alive; Finish() restores them and returns what was written.
class OutputCapture {
 public:
  explicit OutputCapture(bool enabled) {
    if (!enabled) return;
    std::fflush(stdout);
    std::fflush(stderr);
    std::cout.flush();
    std::cerr.flush();
    char path[] = "/tmp/onedfu-powercut-XXXXXX";
    fd_ = mkstemp(path);
    if (fd_ < 0) return;
    unlink(path);
    saved_out_ = dup(1);
    saved_err_ = dup(2);
    dup2(fd_, 1);
    dup2(fd_, 2);
  }
  ~OutputCapture() { Finish(); }
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  std::string Finish() {
    if (fd_ < 0) return "";
    std::fflush(stdout);
    std::fflush(stderr);
    dup2(saved_out_, 1);
    dup2(saved_err_, 2);
    close(saved_out_);
    close(saved_err_);
    std::string text;
    char buffer[4096];
    lseek(fd_, 0, SEEK_SET);
    for (ssize_t n; (n = read(fd_, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
    close(fd_);
    fd_ = -1;
    return text;
  }

 private:
  int fd_ = -1;
  int saved_out_ = -1;
  int saved_err_ = -1;
};

// The last `count` non-empty lines of `text` (dfu-util's progress bars end in '\r'), indented.
std::string Tail(const std::string& text, size_t count) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (const size_t cr = line.rfind('\r'); cr != std::string::npos) line.erase(0, cr + 1);
    if (!line.empty()) lines.push_back(line);
  }
  std::string out;
  for (size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); ++i) out += "\n    " + lines[i];
  return out;
}

Expected<std::vector<host::DfuseElement>> LoadElements(const std::filesystem::path& path) {
  ONEDFU_PTRY(host::Bytes bytes, host::ReadFile(path));
  ONEDFU_PTRY(host::DfuseImage image, host::ParseDfuse(bytes, path.string()));
  std::vector<host::DfuseElement> elements;
  for (const host::DfuseTarget& target : image.targets) {
    if (target.alt != 0) continue;  // dfu-util -a 0 flashes alt 0 targets only
    elements.insert(elements.end(), target.elements.begin(), target.elements.end());
  }
  if (elements.empty()) return Fail(path.string() + ": no elements for alt 0");
  return elements;
}

}  // namespace

Expected<PowercutInput> LoadPowercutInput(const std::string& board, const std::filesystem::path& from,
                                          const std::filesystem::path& to) {
  PowercutInput input;
  ONEDFU_PTRY(std::filesystem::path board_path, host::FindBoard(board));
  ONEDFU_PTRY(input.board, host::LoadBoardFile(board_path));
  input.from = from;
  input.to = to;
  ONEDFU_PTRY(input.from_elements, LoadElements(from));
  ONEDFU_PTRY(input.to_elements, LoadElements(to));
  for (const auto* elements : {&input.from_elements, &input.to_elements}) {
    for (size_t i = 0; i < elements->size(); ++i) {
      const host::DfuseElement& e = (*elements)[i];
      if (MemoryFor(input.board, e.address, e.data.size()) < 0) {
        return Fail((elements == &input.from_elements ? from : to).string() + ": element " + std::to_string(i) +
                    " at " + HexAddress(e.address) + " (" + std::to_string(e.data.size()) +
                    " bytes) lies in no memory of board " + input.board.id);
      }
    }
  }
  return input;
}

Expected<UpdateRecording> RecordUpdate(const PowercutInput& input, const RecordOptions& options) {
  if (!UmockdevUsb::UnderWrapper()) {
    return Fail("powercut records dfu-util through the virtual USB and must run under umockdev-wrapper "
                "(onedfu-sim re-executes itself under it)");
  }
  const Board& board = input.board;
  RamBoard ram(board, PowercutFaults{});
  for (int r = 0; r < board.region_count; ++r) {
    const runtime::Region& region = board.regions[r];
    if (region.role != RegionRole::kBootloader && region.role != RegionRole::kFilesystem) continue;
    FillPattern(std::span<uint8_t>(ram.storage()[region.memory]).subspan(region.offset, region.size),
                static_cast<uint32_t>(r) + 1);
  }
  UpdateRecording recording;
  recording.blank_flash = ram.storage();

  RecordingDfuDevice device(board, ram.memories(), ReplayDfuOptions());
  if (!device.ok()) return Fail(device.error());
  UmockdevUsbOptions usb_options;
  usb_options.trace = options.trace;
  usb_options.command_timeout_ms = options.timeout_ms;
  UmockdevUsb usb(device, usb_options);

  struct Step {
    const std::filesystem::path* package;
    const std::vector<host::DfuseElement>* elements;
    const char* what;
  };
  const Step steps[] = {{&input.from, &input.from_elements, "flashing OLD onto a blank board"},
                        {&input.to, &input.to_elements, "updating OLD to NEW"}};
  for (const Step& step : steps) {
    const std::vector<std::string> argv = {options.dfu_util, "-a", "0", "-D", step.package->string(), "-s", ":leave"};
    std::string command;
    for (const std::string& a : argv) command += (command.empty() ? "" : " ") + a;
    int status;
    std::string output;
    {
      OutputCapture capture(!options.show_output);
      status = usb.RunCommand(argv);
      output = capture.Finish();
    }
    if (status != 0) {
      std::string why = "`" + command + "` (" + step.what + ") exited with status " + std::to_string(status);
      if (!usb.LastError().empty()) why += ": " + usb.LastError();
      return Fail(why + Tail(output, 12));
    }
    ram.PowerOn();
    const Boot boot = DecideBoot(ram, PowercutFaults{});
    if (!boot.start) {
      return Fail(step.package->string() + " does not boot after `" + command + "`: " +
                  DescribeDecision(boot.decision));
    }
    if (const int e = FirstDifferingElement(board, ram.storage(), *step.elements); e >= 0) {
      return Fail(step.package->string() + ": after `" + command + "`, " + DescribeElement(*step.elements, e) +
                  " is not in flash");
    }
    if (step.package == &input.from) {
      // The starting point must be sane; a NEW that changes them is reported by the sweep.
      if (std::string changed = ChangedProtectedRegion(board, recording.blank_flash, ram.storage()); !changed.empty()) {
        return Fail("`" + command + "` changed a protected region: " + changed);
      }
      recording.old_stream = device.TakeStream();
      recording.old_flash = ram.storage();
    } else {
      recording.update = device.TakeStream();
    }
  }
  return recording;
}

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

int RunPowercut(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const SubcommandOptions parsed = ParseSubcommandOptions(
      args, {"--board", "--from", "--to", "--dfu-util", "--timeout"},
      {"--help", "--verbose", "--trace", "--unsafe-skip-revoke", "--unsafe-trust-record"});
  if (parsed.Flag("--help")) {
    out << kUsage;
    return 0;
  }
  std::string usage_error = parsed.error;
  if (usage_error.empty() && !parsed.positional.empty()) usage_error = "unexpected argument '" + parsed.positional[0] + "'";
  for (const char* required : {"--board", "--from", "--to"}) {
    if (usage_error.empty() && !parsed.Has(required)) usage_error = std::string(required) + " is required";
  }
  RecordOptions record_options;
  if (usage_error.empty() && parsed.Has("--timeout")) {
    char* end = nullptr;
    const std::string text = parsed.Value("--timeout");
    const unsigned long ms = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || ms > 3600000) usage_error = "--timeout: not a number of ms: '" + text + "'";
    record_options.timeout_ms = static_cast<unsigned>(ms);
  }
  if (!usage_error.empty()) {
    err << "onedfu-sim powercut: " << usage_error << "\n\n" << kUsage;
    return kExitUsage;
  }
  record_options.dfu_util = parsed.Value("--dfu-util", "dfu-util");
  record_options.show_output = parsed.Flag("--verbose");
  record_options.trace = parsed.Flag("--trace");
  SweepOptions sweep_options;
  sweep_options.verbose = parsed.Flag("--verbose");
  sweep_options.faults.skip_revoke = parsed.Flag("--unsafe-skip-revoke");
  sweep_options.faults.trust_record = parsed.Flag("--unsafe-trust-record");

  using Clock = std::chrono::steady_clock;
  auto input = LoadPowercutInput(parsed.Value("--board"), parsed.Value("--from"), parsed.Value("--to"));
  if (!input.ok()) {
    err << "onedfu-sim powercut: " << input.error().message << "\n";
    return kExitFailures;
  }
  const Clock::time_point t0 = Clock::now();
  auto recording = RecordUpdate(*input, record_options);
  if (!recording.ok()) {
    err << "onedfu-sim powercut: " << recording.error().message << "\n";
    return kExitFailures;
  }
  const Clock::time_point t1 = Clock::now();
  if (sweep_options.faults.skip_revoke || sweep_options.faults.trust_record) {
    out << "WARNING: test-only faults on:" << (sweep_options.faults.skip_revoke ? " --unsafe-skip-revoke" : "")
        << (sweep_options.faults.trust_record ? " --unsafe-trust-record" : "")
        << " (the bootloader's protections are off)\n";
  }
  auto result = SweepPowerCuts(*input, *recording, sweep_options, out);
  if (!result.ok()) {
    err << "onedfu-sim powercut: " << result.error().message << "\n";
    return kExitFailures;
  }
  const Clock::time_point t2 = Clock::now();
  const auto seconds = [](Clock::duration d) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", std::chrono::duration<double>(d).count());
    return std::string(b);
  };

  out << "recorded: dfu-util " << recording->old_stream.size() << " requests for OLD, " << recording->update.size()
      << " for the update (" << seconds(t1 - t0) << " s)\n";
  out << "update: " << result->operations << " flash operations (";
  bool first = true;
  for (const auto& [name, counts] : result->operations_per_memory) {
    out << (first ? "" : "; ") << name << ": " << counts.erases << " erases, " << counts.writes << " writes";
    first = false;
  }
  out << "), each cut before, after and torn\n";
  out << "outcomes: boots OLD " << result->booted_old << ", boots NEW " << result->booted_new << ", DFU mode "
      << result->stayed_dfu;
  if (!result->dfu_reasons.empty()) {
    out << " (";
    first = true;
    for (const auto& [reason, count] : result->dfu_reasons) {
      out << (first ? "" : ", ") << reason << " " << count;
      first = false;
    }
    out << ")";
  }
  out << "; sweep " << seconds(t2 - t1) << " s\n";
  out << "cuts=" << result->cuts << " failures=" << result->failures << "\n";
  out.flush();
  return result->failures == 0 ? 0 : kExitFailures;
}

int PowercutCommand(const std::vector<std::string>& args) { return RunPowercut(args, std::cout, std::cerr); }

}  // namespace onedfu::sim
