// The power-cut sweep's board (DESIGN.md 7 rule 5): the simulator's flash backend (FileFlash,
// as `onedfu-sim run` uses it) per board memory behind a CutFlash on one shared PowerRail that
// fails the power at an armed flash operation (before it, after it, or torn by the fake's torn
// model), plus the checks a cut is judged by
// (what is in flash, protected regions, the boot decision). Test-only faults switch the
// bootloader's protections off so the sweep can prove it detects a brick.
// Host only (STL).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bootloader/boot.h"
#include "bootloader/boot_state.h"
#include "bootloader/dfu_device.h"
#include "host/dfuse_file.h"
#include "runtime/board.h"
#include "runtime/boot_record.h"
#include "file_flash.h"
#include "host/expected.h"
#include "runtime/fake_flash.h"
#include "runtime/flash_memory.h"

namespace onedfu::sim {

// Test-only faults that turn off the bootloader's protections, so the sweep can prove it
// detects a brick (a check that cannot fail is worthless). Never use them to judge a package.
struct PowercutFaults {
  // The flash silently drops the bootloader's write of the record's revoke block: a
  // bootloader that does not invalidate the old record before changing what it covers.
  bool skip_revoke = false;
  // The boot decision starts the application when the record is intact and not revoked even
  // though a SHA-256 (segment, ROMFS image, manifest) does not match, or a segment cannot be
  // read (an ECC fault): a bootloader that does not verify the image before starting it.
  bool trust_record = false;
  // Every erase also erases the sector after its range (when the memory has one): a bootloader
  // that erases more than it was asked to (what the check of the sectors NEW does not write
  // must catch).
  bool erase_extra = false;
  // The security counter is not advanced power-safely: each advance erases the whole counter
  // log, then programs the new value into its first slot (as a counter kept in one erasable
  // place would be), so a cut in between leaves no counter at all. (On the real part the log
  // shares a sector with the bootloader; the fault erases just the log's bytes.) What the
  // check "the counter never goes back" must catch.
  bool counter_rewrite = false;
};

enum class CutMode : uint8_t { kBefore, kAfter, kTorn };
constexpr CutMode kCutModes[] = {CutMode::kBefore, CutMode::kAfter, CutMode::kTorn};

const char* CutModeName(CutMode mode);

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
  // How a kTorn cut tears the operation (runtime::FakeFlash's torn model) and its seed.
  runtime::TornModel torn_model = runtime::TornModel::kHalf;
  uint32_t torn_seed = 0;

  void Reset() {
    ops = 0;
    event = 0;
    armed = false;
    dead = false;
    log = nullptr;
  }
};

// Granularity of RamBoard's record of which flash bytes may have changed.
inline constexpr uint32_t kChangePage = 4096;

// FlashMemory decorator over one memory's FileFlash: the power rail decides when it fails.
// Marks every kChangePage page an Erase or Write reaches (whether or not it succeeds) in
// `changed`.
class CutFlash final : public runtime::FlashMemory {
 public:
  CutFlash(FileFlash& inner, PowerRail& rail, int index, std::optional<uint32_t> drop_revoke_at, bool erase_extra,
           std::vector<uint8_t>& changed, std::optional<bootloader::FlashArea> rewrite_counter = std::nullopt)
      : inner_(inner),
        rail_(rail),
        index_(index),
        drop_revoke_at_(drop_revoke_at),
        erase_extra_(erase_extra),
        changed_(changed),
        rewrite_counter_(rewrite_counter) {}

  const runtime::Memory& geometry() const override { return inner_.geometry(); }
  runtime::Status Read(uint32_t address, runtime::MutableByteSpan out) override {
    if (rail_.dead) return PowerOff();
    return inner_.Read(address, out);
  }
  runtime::ByteSpan Mapped() const override { return rail_.dead ? runtime::ByteSpan() : inner_.Mapped(); }
  runtime::Status Erase(uint32_t address, uint32_t size) override {
    return Change(true, address, size, [&] {
      const runtime::Status status = inner_.Erase(address, size);
      const uint64_t end = static_cast<uint64_t>(address) + size;
      if (!status.ok() || !erase_extra_ || end >= inner_.geometry().end()) return status;
      // The --unsafe-erase-extra fault: the next sector goes too.
      auto next = runtime::SectorContaining(inner_.geometry(), static_cast<uint32_t>(end));
      if (next.ok()) {
        MarkChanged(next->start, next->size);
        (void)inner_.Erase(next->start, next->size);
      }
      return status;
    });
  }
  runtime::Status Write(uint32_t address, runtime::ByteSpan data) override {
    if (drop_revoke_at_ && address == *drop_revoke_at_ && data.size() == runtime::kRevokeSize &&
        std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == runtime::kRevokedByte; })) {
      return runtime::Status::Ok();  // the --unsafe-skip-revoke fault: claims success, changes nothing
    }
    if (rewrite_counter_ && address >= rewrite_counter_->address &&
        address - rewrite_counter_->address < rewrite_counter_->size) {
      return RewriteCounter(data);  // the --unsafe-counter-rewrite fault
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
    MarkChanged(address, size);
    const uint32_t n = rail_.ops++;
    if (rail_.log) rail_.log->push_back(FlashOp{index_, erase, address, size, rail_.event});
    if (!rail_.armed || n != rail_.cut_op) return op();
    rail_.dead = true;
    switch (rail_.mode) {
      case CutMode::kBefore:
        return PowerOff();
      case CutMode::kTorn:
        inner_.SetTornModel(rail_.torn_model, rail_.torn_seed);
        inner_.CutPowerAfter(0, true);  // the fake tears this operation, then loses power
        return op();
      case CutMode::kAfter:
        return op();  // completes; every later call fails
    }
    return PowerOff();
  }

  // The --unsafe-counter-rewrite fault: the log erased (one operation; torn: its first half),
  // then `data` (the new slot) programmed at its start (a second operation).
  runtime::Status RewriteCounter(runtime::ByteSpan data) {
    const bootloader::FlashArea& area = *rewrite_counter_;
    const runtime::Status erased = Change(true, area.address, area.size, [&] {
      const bool torn = rail_.dead && rail_.mode == CutMode::kTorn;
      const std::vector<uint8_t> blank(torn ? area.size / 2 : area.size, inner_.geometry().erased_value);
      (void)inner_.Preload(area.address, blank);
      return torn ? PowerOff() : runtime::Status::Ok();
    });
    if (!erased.ok()) return erased;
    return Change(false, area.address, static_cast<uint32_t>(data.size()),
                  [&] { return inner_.Write(area.address, data); });
  }

  void MarkChanged(uint32_t address, uint32_t size) {
    const runtime::Memory& g = inner_.geometry();
    if (size == 0 || !g.Contains(address)) return;
    const uint64_t offset = address - g.base;
    const uint64_t end = std::min<uint64_t>(offset + size, g.size());
    for (uint64_t page = offset / kChangePage; page * kChangePage < end; ++page) changed_[page] = 1;
  }

  FileFlash& inner_;
  PowerRail& rail_;
  int index_;
  std::optional<uint32_t> drop_revoke_at_;
  bool erase_extra_;
  std::vector<uint8_t>& changed_;
  std::optional<bootloader::FlashArea> rewrite_counter_;
};

// The whole flash of a board at one moment, one vector per memory (full size): a snapshot.
using FlashImage = std::vector<std::vector<uint8_t>>;
// The same, as views (of a snapshot, or of a board's live flash).
using FlashView = std::vector<runtime::ByteSpan>;
FlashView View(const FlashImage& image);

// The sweep's board: the flash backend of `onedfu-sim run` (FileFlash: a mapped file +
// runtime::FakeFlash + TimedFlash, one per memory, in a state directory) with a CutFlash on a
// shared power rail in front of each memory.
class SweepBoard {
 public:
  // One FileFlash per memory in `state_dir` (which must exist; `<memory name>.bin`, created
  // erased, or refused when one exists with another size). Errors name the file.
  static host::Expected<std::unique_ptr<SweepBoard>> Open(const runtime::Board& board, const PowercutFaults& faults,
                                                          const std::filesystem::path& state_dir);
  SweepBoard(const SweepBoard&) = delete;
  SweepBoard& operator=(const SweepBoard&) = delete;

  // The live flash contents (the mappings), bypassing the power rail.
  const FlashView& storage() const { return views_; }
  FlashImage Snapshot() const;
  std::span<runtime::FlashMemory* const> memories() { return pointers_; }
  PowerRail& rail() { return rail_; }
  const runtime::Board& board() const { return board_; }
  FileFlash& flash(size_t m) { return *files_[m]; }
  // The keys of the board's trusting bootloader (`onedfu-sim powercut --trust`); none: it
  // boots unsigned records too. DecideBoot boots with them.
  void SetTrust(std::vector<runtime::Ed25519PublicKey> keys) { keys_ = std::move(keys); }
  std::span<const runtime::Ed25519PublicKey> keys() const { return keys_; }

  // Power back on (faults cleared, counters zero).
  void PowerOn();
  // The flash := `image` (one vector per memory, full size), powered on.
  void Load(const FlashImage& image);
  // Load for an `image` the flash held at the last Load, Restore or SyncTo: copies only the
  // pages an Erase or Write reached since then. (Preload bypasses this bookkeeping.)
  void Restore(const FlashImage& image);
  // `image` := the flash, for an `image` the flash held at the last Load, Restore or SyncTo
  // (copies only the changed pages); the flash is then unchanged relative to it.
  void SyncTo(FlashImage& image);
  // Per memory, per kChangePage page: 1 when an Erase or Write reached it since the last Load,
  // Restore or SyncTo.
  const std::vector<std::vector<uint8_t>>& changed() const { return changed_; }

 private:
  SweepBoard(const runtime::Board& board) : board_(board) {}
  void ClearChanged();

  const runtime::Board& board_;
  std::vector<std::unique_ptr<FileFlash>> files_;
  FlashView views_;
  std::vector<std::vector<uint8_t>> changed_;  // per memory, per kChangePage page: 1 = may differ
  std::vector<std::unique_ptr<CutFlash>> cuts_;
  std::vector<runtime::FlashMemory*> pointers_;
  PowerRail rail_;
  std::vector<runtime::Ed25519PublicKey> keys_;
};

// Deterministic filler for the protected regions, so a stray write shows.
void FillPattern(std::span<uint8_t> bytes, uint32_t seed);

// "0x08004000".
std::string HexAddress(uint64_t address);

// Index of the board memory that holds [address, address + size), or -1.
int MemoryFor(const runtime::Board& board, uint32_t address, uint64_t size);

// Index of the first element whose bytes are not in `flash` exactly, or -1 when all are.
int FirstDifferingElement(const runtime::Board& board, const FlashView& flash,
                          const std::vector<host::DfuseElement>& elements);

// "element 2 at 0x90000000 (4096 bytes)".
std::string DescribeElement(const std::vector<host::DfuseElement>& elements, int index);

// The first bootloader/filesystem region whose bytes differ between `a` and `b`, or "". The
// security counter log at the end of the bootloader region (bootloader/boot_state.h) is left
// out: the boot appends to it (see ChangedCounterLog and SecurityCounter).
std::string ChangedProtectedRegion(const runtime::Board& board, const FlashView& a, const FlashView& b);

// The first address in [address, address + size) (inside one memory) whose byte differs
// between `a` and `b`, as "0x90100080", or "".
std::string ChangedRange(const runtime::Board& board, const FlashView& a, const FlashView& b, uint32_t address,
                         uint32_t size);

// Per memory, one flag per sector (index = runtime::SectorInfo::index): e.g. the sectors a host
// stream may change.
using SectorMask = std::vector<std::vector<uint8_t>>;
SectorMask EmptySectorMask(const runtime::Board& board);
// Marks every sector that [address, address + size) touches (nothing outside the memories).
void MarkSectors(const runtime::Board& board, uint32_t address, uint64_t size, SectorMask& mask);
// Marks every sector of `elements`.
void MarkSectors(const runtime::Board& board, const std::vector<host::DfuseElement>& elements, SectorMask& mask);
// Calls f(memory, SectorInfo) for every sector of the board.
template <typename F>
void ForEachSector(const runtime::Board& board, F f) {
  for (int m = 0; m < board.memory_count; ++m) {
    const runtime::Memory& memory = board.memories[m];
    runtime::SectorInfo sector;
    sector.start = memory.base;
    for (uint8_t g = 0; g < memory.sector_group_count; ++g) {
      for (uint32_t i = 0; i < memory.sectors[g].count; ++i) {
        sector.size = memory.sectors[g].size;
        f(m, sector);
        sector.start += sector.size;
        ++sector.index;
      }
    }
  }
}

// The first byte outside the `may_change` sectors that differs between `a` and `b`, named by
// where it lies ("romfs region 'romfs' changed at 0x90100000 (a sector the update does not
// write)", "flash outside every region changed at ..."), or "". The security counter log is
// left out (ChangedCounterLog judges it).
std::string ChangedOutside(const runtime::Board& board, const SectorMask& may_change, const FlashView& a,
                           const FlashView& b);

// The DfuDevice options of recording and replay: bwPollTimeout 0, so dfu-util does not sleep
// while recording, and a replay answers the same bytes.
bootloader::DfuOptions ReplayDfuOptions();

// The board's security counter in `flash` (bootloader::HighestCounter over its counter log;
// 0 without one).
uint32_t SecurityCounter(const runtime::Board& board, const FlashView& flash);
// The first byte of the counter log that was programmed in `a` and differs in `b` (the log is
// append-only: a slot, once programmed, stays), named with its address, or "".
std::string ChangedCounterLog(const runtime::Board& board, const FlashView& a, const FlashView& b);

// A power-on of the board: the trusting bootloader's boot (bootloader::TrustedBoot with the
// board's keys: counter log, verified-once marker; the one boot sequence of the Cortex-M port
// and `onedfu-sim run --trust`), which programs the marker and advances the counter when it
// starts the application, with the --unsafe-trust-record fault applied.
struct Boot {
  bool start = false;
  bootloader::BootDecision decision;
};
Boot DecideBoot(SweepBoard& board, const PowercutFaults& faults);

// "revoked boot record: ...".
std::string DescribeDecision(const bootloader::BootDecision& decision);

}  // namespace onedfu::sim
