// Run statistics of the simulated board (DESIGN.md 8): what the host made the device do, and the
// modeled device time of it, written as <state>/stats.json after each `onedfu-sim run`.
//
// USB timing model (full speed): a control transfer is one SETUP packet, ceil(n / 64) data
// packets of at most 64 bytes (n = data-stage bytes actually moved; 0 for a STALL), and one
// status packet. At most kControlPacketsPerFrame packets of control transfers fit in one 1 ms
// frame, so the modeled bus time is packets * 1000 / 19 microseconds. Requests the transport
// handles without the model (SET_INTERFACE, SET_CONFIGURATION) are counted the same way, as
// zero-data transfers; a bus reset costs nothing here.
// Flash counts come from FileFlash::counters() (runtime::FakeFlash), flash time from
// FileFlash::usage() (the board timing model, runtime/flash_timing.h). The modeled device time is
// erase + program + hash + USB: the bootloader holds the bus while it erases and programs (as
// mboot does), so nothing overlaps. Hash: each onedfu hash command (bootloader/dfu.h
// kDfuseHash) the bootloader accepted costs runtime::HashTimeUs of its length (the board's
// boot_cost SHA-256 figure, which it reports as bwPollTimeout); a range it then refuses is
// charged too (rare, an upper bound).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "host/expected.h"

namespace onedfu::sim {

class SimBoard;

inline constexpr uint32_t kFullSpeedPacketSize = 64;    // bytes, endpoint 0
inline constexpr uint32_t kControlPacketsPerFrame = 19; // per 1 ms frame
inline constexpr uint32_t kSetupBytes = 8;

// Packets one control transfer with `data_bytes` in its data stage costs (SETUP + data + status).
uint64_t ControlTransferPackets(uint64_t data_bytes);
// Modeled bus time of `packets` control-transfer packets, microseconds (rounded to nearest).
uint64_t ControlPacketsUs(uint64_t packets);

// Counters of one run on the bus side.
struct UsbUsage {
  uint64_t control_transfers = 0;  // including stalls and SET_INTERFACE
  uint64_t stalls = 0;
  uint64_t set_interface = 0;      // SET_INTERFACE requests (transport-handled)
  uint64_t resets = 0;             // USB bus resets
  uint64_t bytes_out = 0;          // data-stage bytes host -> device
  uint64_t bytes_in = 0;           // data-stage bytes device -> host
  uint64_t packets = 0;            // modeled full-speed packets (see file comment)
  uint32_t plugs = 0;              // enumerations (first plug + re-plugs)
  uint64_t hash_requests = 0;      // hash commands the host sent (device work, not bus time)
  uint64_t hash_us = 0;            // their modeled device time

  // One control transfer; `data_bytes` = bytes moved in the data stage (0 when stalled).
  void CountControl(bool in, uint64_t data_bytes, bool stall);
  void CountSetInterface();
  // SETUP bytes + data-stage bytes.
  uint64_t bytes_on_wire() const { return control_transfers * kSetupBytes + bytes_out + bytes_in; }
  uint64_t modeled_us() const { return ControlPacketsUs(packets); }
};

// One power-on / reset of the board and what the boot decision said.
struct BootEvent {
  std::string cause;        // "power-on", "leave", "detach", "reset"
  bool application = false; // true: the application started; false: DFU mode
  std::string reason;       // bootloader::BootReasonName
  std::string message;      // the decision's message
  uint64_t bytes_hashed = 0;   // SHA-256 bytes the decision hashed
  bool hashes_skipped = false; // a trusting bootloader's verified marker vouched
  uint64_t verify_us = 0;      // modeled CPU time of the verification (runtime::VerifyTimeUs)
  // Emulated boards only (run --emulate): Cortex-M7 instructions the binary executed from reset
  // to its decision (the jump into the application, or its USB connect in DFU mode), and the
  // functions that executed most of them.
  uint64_t instructions = 0;
  std::vector<std::pair<std::string, uint64_t>> instructions_by_function;
};

struct RunReport {
  std::vector<std::string> command;
  int exit_status = 0;
  std::vector<BootEvent> boots;
  UsbUsage usb;
};

// Modeled device time of the run, microseconds: erase + program (all memories) + hash + USB.
uint64_t ModeledDeviceUs(const SimBoard& board, const UsbUsage& usb);

// The stats.json text (pretty-printed, ends with a newline). Layout:
// { "board", "command", "exit_status", "boots": [...],
//   (an emulated board's boots also carry "instructions" and "instructions_by_function": {name: N})
//   "modeled_us": {"total","erase","program","hash","usb"}, "modeled_seconds",
//   "usb": {"control_transfers","stalls","set_interface","resets","bytes_out","bytes_in",
//           "bytes_on_wire","packets","plugs","hash_requests"},
//   "flash": {"erases" (sectors erased),"erase_calls","block_erases","bytes_programmed",
//             "program_units","refused",
//             "memories": [{"name","base","erase_calls","sectors_erased","block_erases",
//                           "bytes_erased","bytes_programmed","program_units","refused",
//                           "erase_us","program_us",
//                           "sector_erases": {"0x08008000": 1, ...}}]}}
// sector_erases lists only sectors erased at least once, keyed by sector start address.
// "command" holds the arguments as given, each through host::EscapeText (a byte that is not
// UTF-8 or a control character becomes \xNN), so any argument makes valid JSON.
std::string StatsJson(const SimBoard& board, const RunReport& report);

// Writes StatsJson to `path` (via a temporary file and rename). Errors name the path.
host::Outcome WriteStatsJson(const std::filesystem::path& path, const SimBoard& board,
                               const RunReport& report);

}  // namespace onedfu::sim
