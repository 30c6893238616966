// `onedfu-sim powercut --board BOARD.json --from OLD.dfu --to NEW.dfu` (DESIGN.md 7 rule 5):
// proves that updating a board from OLD to NEW cannot brick it, whatever moment the power goes.
//
// 1. Record (RecordUpdate): a board in RAM (one strict FakeFlash per board memory; the
//    bootloader and filesystem regions filled with patterns) runs the bootloader core's
//    DfuDevice behind the virtual USB. The real `dfu-util -a 0 -D OLD.dfu -s :leave` flashes
//    OLD (which must then boot), the flash is snapshot, then `dfu-util -a 0 -D NEW.dfu -s
//    :leave` performs the update while RecordingDevice logs every request it makes (or another
//    host stream, HostStream; onedfu flash and the application-mode start run on a board that
//    boots as `onedfu-sim run`'s, and only its DFU-mode session is the update).
// 2. Sweep (SweepPowerCuts): the recorded update is replayed in-process. A clean replay counts
//    the flash-changing operations (erase and write calls reaching the flash, all memories in
//    one sequence) and must boot NEW. Then for every operation n and every mode: the power
//    fails just BEFORE n (it never happens), just AFTER n, or DURING n (torn: the first half of
//    the write/erase happens): from the OLD snapshot, replay until the cut; power on; boot as
//    the trusting bootloader does (DecideBoot: bootloader::TrustedBoot with the input's keys,
//    the security counter log and the verified-once marker). Pass when
//      - the board starts the application and every element of OLD, or of NEW, is in flash
//        byte for byte, or it stays in DFU mode (any reason); on a blank board (no OLD) it
//        boots NEW or stays in DFU mode, never anything else; once every operation of the
//        update happened (the flash is as the clean replay left it) it boots NEW;
//      - the next power-on starts the same (verified once: the marker spares the hashes);
//      - the security counter is never below OLD's, never above the highest of OLD's and
//        NEW's, NEW's once NEW booted, and its log only appends;
//      - every bootloader (but its counter log) and filesystem region is byte-identical to
//        before, and so is every sector NEW does not write (unlisted flash, unused space,
//        other ROMFS images; the real ROMFS image RecordUpdate pushed on OLD);
//      - replaying the full update again on that flash (a fresh DfuDevice, as after a reset)
//        answers every request as recorded, leaves, boots NEW, and leaves those regions alone
//        (a host that adapts to the board, onedfu flash: for a sample of the cuts the real
//        command runs again instead, RerunHost; the same checks).
//    Then NEW's first boot after the clean update (marker, then counter) is cut the same way,
//    before, after and torn at each of its flash operations, and judged as above.
//    Every failed check prints one line; the caller prints the summary.
//
// Host only. Errors (not failures of the sweep) come back as host::Error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "host/dfuse_file.h"
#include "host/expected.h"
#include "sweep_board.h"
#include "recording_device.h"
#include "runtime/board.h"

namespace onedfu::sim {

struct PowercutInput {
  runtime::Board board;
  std::filesystem::path from;  // OLD.dfu, as given; empty: a blank board (a first flash)
  std::filesystem::path to;    // NEW.dfu, as given
  std::vector<host::DfuseElement> from_elements;  // the alt 0 elements, in file order (none: blank)
  std::vector<host::DfuseElement> to_elements;
  // The keys the board's bootloader is built with (`--trust KEY.pub.pem`...): only records
  // signed by one of them boot. None: unsigned records boot too.
  std::vector<runtime::Ed25519PublicKey> trust_keys;
};

// Loads the board file (a path, or a bundled board id) and both packages (`from` empty: a
// blank board, OLD is nothing). Errors name the file.
host::Expected<PowercutInput> LoadPowercutInput(const std::string& board, const std::filesystem::path& from,
                                                  const std::filesystem::path& to);

// The host stream the sweep records for the update (the real dfu-util, or our own flasher):
//   kDfuUtil    dfu-util -a 0 -D NEW.dfu -s :leave
//   kMassErase  dfu-util -a 0 -s :mass-erase:force:leave -D NEW.dfu (mass erase, then the
//               download: everything mass erase may erase may change)
//   kRaw        one dfu-util -a 0 -s ADDR -D ELEMENT.bin per element of NEW (raw writes, the
//               last with :leave)
//   kOnedfuFlash  onedfu flash NEW.dfu (reads the installed record, hashes what is there,
//               writes only the sectors that differ, checks them, writes the record, leaves and
//               waits for the application). Its requests depend on what the board holds, so
//               after a cut the re-flash is not a replay: the real `onedfu flash NEW.dfu` runs
//               again on the cut board (UpdateRecording::rerun, SweepOptions::rerun_sample).
enum class HostStream : uint8_t { kDfuUtil, kMassErase, kRaw, kOnedfuFlash };

struct RecordOptions {
  HostStream host = HostStream::kDfuUtil;
  // The board runs OLD's application (DFU runtime interface) when the host comes: dfu-util
  // streams start with `dfu-util -e` (DETACH), onedfu flash detaches it itself; the board
  // re-enumerates in DFU mode and what the host asks then is the update that is swept. Off: the
  // board is in DFU mode (the boot button held; a blank board always is).
  bool app = false;
  std::string dfu_util = "dfu-util";  // looked up in PATH unless it holds a '/'
  std::string onedfu = "onedfu";      // kOnedfuFlash: the onedfu CLI, likewise
  unsigned timeout_ms = 120000;       // per dfu-util run; 0 = no limit
  bool show_output = false;           // let dfu-util print to our stdout/stderr (else captured)
  bool trace = false;                 // UmockdevUsb trace (stderr)
};

struct UpdateRecording {
  std::vector<std::vector<uint8_t>> blank_flash;  // per memory: before OLD (patterns, erased)
  std::vector<std::vector<uint8_t>> old_flash;    // per memory: after dfu-util flashed OLD (blank: = blank_flash)
  UsbStream old_stream;  // dfu-util flashing OLD onto the blank board (blank: empty)
  UsbStream update;      // the host updating OLD -> NEW in DFU mode: what the sweep replays
  // RecordOptions::app: what the host asked of the application before the board re-enumerated
  // in DFU mode (DETACH and enumeration; the application changes no flash, nothing to cut).
  UsbStream detach;
  // Not empty for a host whose requests depend on the board's contents (kOnedfuFlash): the
  // command that flashes NEW again after a cut (RerunHost), instead of replaying `update`.
  std::vector<std::string> rerun;
  unsigned rerun_timeout_ms = 0;
  bool rerun_app = false;  // the re-run board starts as RecordOptions::app did (it boots what it can)
  // The sectors the update may change (NEW's elements); everything else must keep OLD's bytes.
  // Before OLD, every sector neither OLD nor NEW writes is filled with a pattern (bootloader,
  // filesystem, unlisted flash, the unused space of every memory, the romfs region past the
  // images: what stands for images pushed at run time), so a stray erase or write shows.
  SectorMask may_change;
  // A real ROMFS image the sweep pushed on OLD (runtime::RegionStore, as an application does at
  // run time) into romfs-region sectors neither package writes: its slot's bytes, which every
  // cut must leave byte-identical. Size 0: none (no romfs region, a blank board, or no room
  // outside NEW's sectors; `pushed_romfs_note` says which).
  uint32_t pushed_romfs_address = 0;
  uint32_t pushed_romfs_size = 0;
  std::string pushed_romfs_note;
};

// Step 1 above. Needs this process under umockdev-wrapper (UmockdevUsb::UnderWrapper) and
// dfu-util. Errors: no wrapper, dfu-util failed (its captured output is in the message), OLD
// or NEW does not boot after dfu-util flashed it, flashing OLD changed a protected region (a NEW
// that changes one is reported by the sweep, as failures).
host::Expected<UpdateRecording> RecordUpdate(const PowercutInput& input, const RecordOptions& options);

// The customer's recovery after a cut, for a host that adapts to the board (UpdateRecording::
// rerun): a simulated board (SimBoard + SimUsbDevice, as `onedfu-sim run`) holding `flash` is
// powered on and boots what it can (an intact record: the application; else DFU mode), then
// `recording.rerun` runs against it through the virtual USB. Its bootloader has none of the
// test-only faults (PowercutFaults): it is the re-flash that is under test.
struct RerunResult {
  int status = 0;       // the command's exit status
  std::string output;   // its output (the tail, for failure lines)
  FlashImage flash;     // the board's flash afterwards
  bool boots = false;   // a power-on after the command starts the application
  std::string decision; // the boot decision of that power-on (DescribeDecision)
};
// Errors: not under umockdev-wrapper, the scratch board could not be made.
host::Expected<RerunResult> RerunHost(const PowercutInput& input, const UpdateRecording& recording,
                                      const FlashView& flash);

struct SweepOptions {
  PowercutFaults faults;
  // How a torn cut leaves the operation: kHalf (the first half done) or kRandom (a random unit
  // half-programmed / a random sector half-erased; on an ECC memory reading it faults), seeded
  // per cut from `seed` so every run and every cut is reproducible.
  runtime::TornModel torn = runtime::TornModel::kHalf;
  uint32_t seed = 1;
  // > 0: after the single cuts, this many pairs (a deterministic sample drawn from `seed`):
  // a cut during the update (op and mode at random), power on, a second cut during the
  // re-flash of NEW that follows, then the same checks as after one cut.
  uint32_t double_pairs = 0;
  // A recording with a re-run command (UpdateRecording::rerun): this many of the cuts (spread
  // evenly over the sweep, deterministic) check the re-flash by re-running the real command
  // (RerunHost): it must exit 0, the board must boot NEW and keep every protected byte. The
  // other cuts get the checks of the cut itself. Ignored for replayed hosts (every cut replays).
  uint32_t rerun_sample = 16;
  // > 0: cut only this many of the update's operations (the first, the last and a seeded
  // sample of the rest), for product-size updates; 0: every one.
  uint32_t sample = 0;
  bool verbose = false;  // also print one line per cut with its outcome
};

struct MemoryOperations {
  uint32_t erases = 0;  // Erase calls
  uint32_t writes = 0;  // Write calls
};

struct SweepResult {
  uint32_t operations = 0;  // flash-changing operations of the clean update
  uint32_t operations_cut = 0;  // of those, the ones swept (all, or SweepOptions::sample)
  std::map<std::string, MemoryOperations> operations_per_memory;  // by memory name
  uint32_t cuts = 0;      // single cuts + double pairs
  uint32_t failures = 0;  // cuts (or pairs) with a failed check
  uint32_t double_cuts = 0;      // pairs swept (SweepOptions::double_pairs)
  uint32_t double_failures = 0;
  uint32_t double_short = 0;     // pairs whose re-flash ended before its cut (one cut only)
  uint32_t reruns = 0;          // cuts whose re-flash re-ran the host command (rerun_sample)
  uint32_t rerun_failures = 0;  // of those, the ones with a failed re-flash check
  uint32_t booted_old = 0;
  uint32_t booted_new = 0;
  uint32_t stayed_dfu = 0;
  std::map<std::string, uint32_t> dfu_reasons;  // BootReasonName -> count
  // The first boot of NEW after the clean update, as the trusting bootloader does it: its
  // flash operations (the verified marker, the counter advance), each cut before, after and
  // torn, then judged like a cut of the update (and it must boot NEW).
  uint32_t boot_operations = 0;
  uint32_t boot_cuts = 0;
  uint32_t boot_failures = 0;
  // Security counters: the board's after OLD booted, NEW's record's (NEW's first boot).
  uint32_t old_counter = 0;
  uint32_t new_counter = 0;
  // Power-ons after a cut that started the application, whose next power-on skipped the
  // hashes (the verified marker of the first vouched for the record).
  uint32_t verified_once = 0;
};

// Step 2 above; prints failure lines (and per-cut lines when verbose) to `out`. An error when
// the clean replay itself does not complete and boot NEW (then nothing was swept).
host::Expected<SweepResult> SweepPowerCuts(const PowercutInput& input, const UpdateRecording& recording,
                                             const SweepOptions& options, std::ostream& out);

// The whole subcommand: arguments after "powercut"; prints to `out` (last line
// `cuts=N failures=N`) and errors to `err`. Returns 0 (no failures), 1 (failures, or an
// error) or 2 (usage).
int RunPowercut(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace onedfu::sim
