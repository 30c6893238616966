// `onedfu flash` and `onedfu list` as a library (issue 8): Flash(DfuTransport&, package,
// options, progress) updates one board writing only what changed, checks it by read-back
// BEFORE writing the boot record, writes the record last, leaves, and waits for the board to
// report what it booted. The CLI (packer/cli) only parses flags and prints.
//
// Order of work in Flash (each step fails with a message naming what is at fault):
//   1. the package was verified by LoadFlashPackage (a damaged package touches no device);
//   2. find the board: the package's VID:PID (or in application mode app_vid:app_pid),
//      exactly one (or the one --serial/--path names);
//   3. a board in application mode is DETACHed (plus a USB reset without WillDetach) and
//      awaited in DFU mode (same serial);
//   4. onedfu bootloader (manufacturer string "onedfu"): the DfuSe layout must equal the
//      package board's, the installed record (DfuSe upload of the record region) must name
//      the same board id, else refused before any change;
//   5. plan per erase sector (PlanSectors): segments equal to the installed record's are
//      skipped; the other sectors are learnt, skipped when equal, not erased when every
//      write unit to change is erased; all-erased write units are not sent. A bootloader that
//      lists the hash command (bootloader::kDfuseHash) is asked for SHA-256s of 64 KiB pieces
//      first: a piece equal to the new bytes or erased is known without reading it; only the
//      others are read back (DfuSe UPLOAD, the only way with other bootloaders);
//   6. erase pass, then one set-address per contiguous write run, consecutive blocks;
//   7. check every written run (by hash, else read-back) BEFORE the record sector (planned the
//      same way, after the rest), leave, wait for the board, read what it runs (the record
//      element itself is checked by the bootloader before it boots: CRC, manifest and segment
//      hashes; a bad one keeps the board in DFU mode and fails the run).
// Other DfuSe bootloaders (or plain_dfuse): every element in file order, erase each sector it
// touches once, write it, leave: what dfu-util does, without reading anything back first.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "flasher/dfu_transport.h"
#include "host/dfuse_file.h"
#include "host/expected.h"
#include "runtime/board.h"
#include "runtime/boot_record.h"

namespace onedfu::flasher {

// A verified package, ready to flash.
struct FlashPackage {
  std::string file;
  runtime::Board board;
  std::vector<host::DfuseElement> elements;  // target 0 in file order; the record element is last
  runtime::BootRecord record{};
  uint32_t record_address = 0;
  std::string name;     // manifest "name" ("" when absent)
  std::string version;  // record package_version
};

// Reads `file`, resolves its board (explicit path, else the record's board id) and runs the
// checks of `onedfu verify`; any failed check is an error listing them.
host::Expected<FlashPackage> LoadFlashPackage(const std::filesystem::path& file,
                                              const std::optional<std::filesystem::path>& board_file);

struct FlashOptions {
  std::string serial;         // pick the board by USB serial ("" = any)
  std::string path;           // or by bus path "BUS-PORT" ("" = any)
  uint16_t app_vid = 0;       // the application's USB ids when they differ from the board's
  uint16_t app_pid = 0;       // (DFU-mode) VID:PID; 0:0 = the same
  bool full = false;          // rewrite every sector the package touches
  bool dry_run = false;       // plan and print, change nothing
  bool plain_dfuse = false;   // treat the bootloader as a plain DfuSe one (no record, no read-back)
  uint32_t timeout_ms = 20000;  // waiting for the board to (re)appear, and the longest one device
                                // operation may keep it busy (DfuseClient's busy limit)
  const std::atomic<bool>* cancel = nullptr;  // set (SIGINT): stop between transfers
};

// Whether `device` is the board `options` picks: `board`'s VID:PID, or in application mode
// options.app_vid:app_pid when set; then options.serial and options.path when set. Flash and
// the station (station.h) find boards with it.
bool IsChosenBoard(const UsbDevice& device, const runtime::Board& board, const FlashOptions& options);

// The USB ids IsChosenBoard looks for, for messages: "0483:df11", or with application ids
// "0483:df11 (application f055:9800)".
std::string ChosenIds(const runtime::Board& board, const FlashOptions& options);

// Per-phase progress. Phases: "find", "detach", "read", "erase", "write", "verify", "record",
// "leave", "boot". Units are bytes except "erase" (sectors).
class FlashProgress {
 public:
  virtual ~FlashProgress() = default;
  virtual void Begin(const std::string& phase, uint64_t total) = 0;
  virtual void Advance(uint64_t done) = 0;  // cumulative within the phase
  virtual void End(const std::string& result) = 0;
  virtual void Note(const std::string& text) = 0;  // one line for the user
};

// One erase sector of the plan.
struct SectorWork {
  uint8_t memory = 0;
  uint32_t start = 0;
  uint32_t size = 0;
  bool erase = false;
  uint32_t program_bytes = 0;  // bytes of non-erased write units to send into it
};

// A contiguous range sent with one set-address.
struct WriteRun {
  uint32_t address = 0;
  host::Bytes data;
};

struct FlashPlan {
  std::vector<SectorWork> sectors;  // sectors that change (erase and/or program), address order
  std::vector<WriteRun> runs;
  uint32_t segments_skipped = 0;    // equal to the installed record's
  uint32_t sectors_unchanged = 0;   // read back and found equal
  uint64_t erase_us = 0;            // modeled device time, board timing
  uint64_t program_us = 0;
  bool empty() const { return sectors.empty(); }
};

// Plans writing `elements` over the current flash. `current(address, size, out)` supplies
// current bytes (read-back): first the span of each sector the elements cover, then, only for
// a sector that must be erased, the rest of it (written back after the erase). nullptr plans
// a full write (every touched sector erased, bytes outside the elements left erased, as
// dfu-util leaves them).
using CurrentContent = std::function<host::Outcome(uint32_t address, uint32_t size, host::Bytes* out)>;
host::Expected<FlashPlan> PlanSectors(const runtime::Board& board, const std::vector<host::DfuseElement>& elements,
                                      const CurrentContent* current);

struct FlashResult {
  UsbDevice device;
  bool onedfu_bootloader = false;
  bool up_to_date = false;          // nothing needed writing
  bool record_found = false;
  std::string installed_version;    // of the record read before the update ("" = none)
  FlashPlan plan;                   // main plan (record excluded)
  FlashPlan record_plan;
  uint64_t bytes_read = 0;
  bool hash_command = false;        // the bootloader lists kDfuseHash: content learnt by hash
  uint64_t bytes_hashed = 0;        // ranges the device hashed for us
  uint64_t requests = 0;
  uint64_t poll_ms = 0;             // bwPollTimeout the device asked for and the host waited
  bool booted_application = false;
  std::string booted;               // what the board reported after leave
};

// Updates the board. On success the board runs the package (or, for dry_run, nothing changed).
// On error `result` (when non-null) holds what got done.
host::Expected<FlashResult> Flash(DfuTransport& transport, const FlashPackage& package, const FlashOptions& options,
                                  FlashProgress& progress);

// `onedfu list`: one DFU-capable device and, for an onedfu bootloader, the installed package.
struct ListedDevice {
  UsbDevice device;
  bool onedfu = false;
  std::string board_id;        // board file whose layout matches ("" = none found)
  bool record_read = false;
  bool record_valid = false;
  std::string record_problem;  // why not valid ("no boot record" when erased)
  std::string installed_board;
  std::string installed_name;
  std::string installed_version;
};

host::Expected<std::vector<ListedDevice>> ListDevices(DfuTransport& transport);

// The message for `device` when it cannot be opened for lack of permission: the device (bus
// path, VID:PID, device node) and the fix (the shipped udev rules file, manifests/udev/
// 60-onedfu.rules, and the commands that install it).
std::string PermissionHint(const UsbDevice& device);

}  // namespace onedfu::flasher
