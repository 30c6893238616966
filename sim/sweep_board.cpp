#include "sweep_board.h"

#include <cstdio>
#include <cstring>
#include <optional>

#include "runtime/boot_record.h"

namespace onedfu::sim {

using runtime::Board;
using runtime::RegionRole;

FlashView View(const FlashImage& image) {
  FlashView view;
  for (const std::vector<uint8_t>& memory : image) view.emplace_back(memory);
  return view;
}

host::Expected<std::unique_ptr<SweepBoard>> SweepBoard::Open(const Board& board, const PowercutFaults& faults,
                                                             const std::filesystem::path& state_dir) {
  std::unique_ptr<SweepBoard> b(new SweepBoard(board));
  std::optional<uint32_t> revoke_at;
  int revoke_memory = -1;
  if (const runtime::Region* record = board.FindRole(RegionRole::kRecord); record && faults.skip_revoke) {
    revoke_at = board.RegionStart(*record) + runtime::kRevokeOffset;
    revoke_memory = record->memory;
  }
  const bootloader::FlashArea counter = bootloader::CounterArea(board);
  b->changed_.resize(board.memory_count);
  for (int m = 0; m < board.memory_count; ++m) {
    const runtime::Memory& memory = board.memories[m];
    ONEDFU_PTRY(std::unique_ptr<FileFlash> file,
                FileFlash::Open(memory, state_dir / (std::string(memory.name) + ".bin")));
    b->files_.push_back(std::move(file));
    b->views_.push_back(b->files_.back()->contents());
    b->changed_[m].assign((memory.size() + kChangePage - 1) / kChangePage, 0);
    b->cuts_.push_back(std::make_unique<CutFlash>(*b->files_.back(), b->rail_, m,
                                                  m == revoke_memory ? revoke_at : std::nullopt,
                                                  faults.erase_extra, b->changed_[m],
                                                  faults.counter_rewrite && counter.memory == m
                                                      ? std::optional<bootloader::FlashArea>(counter)
                                                      : std::nullopt));
    b->pointers_.push_back(b->cuts_.back().get());
  }
  return b;
}

FlashImage SweepBoard::Snapshot() const {
  FlashImage image;
  for (runtime::ByteSpan view : views_) image.emplace_back(view.begin(), view.end());
  return image;
}

void SweepBoard::PowerOn() {
  rail_.Reset();
  for (auto& file : files_) {
    file->ClearFaults();
    file->PowerOn();
  }
}

void SweepBoard::ClearChanged() {
  for (auto& pages : changed_) std::fill(pages.begin(), pages.end(), 0);
}

void SweepBoard::Load(const FlashImage& image) {
  for (size_t m = 0; m < files_.size(); ++m) (void)files_[m]->Preload(board_.memories[m].base, image[m]);
  ClearChanged();
  PowerOn();
}

void SweepBoard::Restore(const FlashImage& image) {
  for (size_t m = 0; m < changed_.size(); ++m) {
    for (size_t page = 0; page < changed_[m].size(); ++page) {
      if (!changed_[m][page]) continue;
      const size_t begin = page * kChangePage;
      const size_t end = std::min(begin + kChangePage, image[m].size());
      (void)files_[m]->Preload(board_.memories[m].base + static_cast<uint32_t>(begin),
                               runtime::ByteSpan(image[m]).subspan(begin, end - begin));
      changed_[m][page] = 0;
    }
  }
  PowerOn();
}

void SweepBoard::SyncTo(FlashImage& image) {
  for (size_t m = 0; m < changed_.size(); ++m) {
    for (size_t page = 0; page < changed_[m].size(); ++page) {
      if (!changed_[m][page]) continue;
      const size_t begin = page * kChangePage;
      const size_t end = std::min(begin + kChangePage, image[m].size());
      std::copy(views_[m].begin() + static_cast<std::ptrdiff_t>(begin),
                views_[m].begin() + static_cast<std::ptrdiff_t>(end),
                image[m].begin() + static_cast<std::ptrdiff_t>(begin));
      changed_[m][page] = 0;
    }
  }
}

const char* CutModeName(CutMode mode) {
  switch (mode) {
    case CutMode::kBefore: return "before";
    case CutMode::kAfter: return "after";
    case CutMode::kTorn: return "during (torn)";
  }
  return "?";
}

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
int FirstDifferingElement(const Board& board, const FlashView& flash,
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
std::string ChangedProtectedRegion(const Board& board, const FlashView& a, const FlashView& b) {
  const bootloader::FlashArea counter = bootloader::CounterArea(board);
  for (int r = 0; r < board.region_count; ++r) {
    const runtime::Region& region = board.regions[r];
    if (region.role != RegionRole::kBootloader && region.role != RegionRole::kFilesystem) continue;
    const uint8_t* pa = a[region.memory].data() + region.offset;
    const uint8_t* pb = b[region.memory].data() + region.offset;
    // The counter log (the bootloader region's end) is judged by its own rules.
    uint32_t size = region.size;
    if (region.memory == counter.memory && board.RegionStart(region) + region.size == counter.address + counter.size) {
      size -= counter.size;
    }
    if (std::memcmp(pa, pb, size) == 0) continue;
    size_t first = 0;
    while (pa[first] == pb[first]) ++first;
    return std::string(runtime::RegionRoleName(region.role)) + " region '" + region.name + "' changed at " +
           HexAddress(board.RegionStart(region) + first);
  }
  return "";
}

std::string ChangedRange(const Board& board, const FlashView& a, const FlashView& b, uint32_t address,
                         uint32_t size) {
  const int m = MemoryFor(board, address, size);
  if (m < 0) return "";
  const size_t offset = address - board.memories[m].base;
  for (size_t i = 0; i < size; ++i) {
    if (a[m][offset + i] != b[m][offset + i]) return HexAddress(uint64_t{address} + i);
  }
  return "";
}

SectorMask EmptySectorMask(const Board& board) {
  SectorMask mask(board.memory_count);
  for (int m = 0; m < board.memory_count; ++m) mask[m].assign(board.memories[m].sector_count(), 0);
  return mask;
}

void MarkSectors(const Board& board, uint32_t address, uint64_t size, SectorMask& mask) {
  ForEachSector(board, [&](int m, const runtime::SectorInfo& sector) {
    const uint64_t end = static_cast<uint64_t>(sector.start) + sector.size;
    if (size != 0 && address < end && sector.start < address + size) mask[m][sector.index] = 1;
  });
}

void MarkSectors(const Board& board, const std::vector<host::DfuseElement>& elements, SectorMask& mask) {
  for (const host::DfuseElement& e : elements) MarkSectors(board, e.address, e.data.size(), mask);
}

std::string ChangedOutside(const Board& board, const SectorMask& may_change, const FlashView& a, const FlashView& b) {
  std::string found;
  // The counter log (in the bootloader's last sector) is judged by its own rules.
  const bootloader::FlashArea counter = bootloader::CounterArea(board);
  ForEachSector(board, [&](int m, const runtime::SectorInfo& sector) {
    if (!found.empty() || may_change[m][sector.index]) return;
    const size_t offset = sector.start - board.memories[m].base;
    const uint8_t* pa = a[m].data() + offset;
    const uint8_t* pb = b[m].data() + offset;
    if (std::memcmp(pa, pb, sector.size) == 0) return;
    size_t first = 0;
    for (; first < sector.size; ++first) {
      const uint32_t address = sector.start + static_cast<uint32_t>(first);
      const bool in_log = m == counter.memory && address >= counter.address && address - counter.address < counter.size;
      if (pa[first] != pb[first] && !in_log) break;
    }
    if (first == sector.size) return;
    const uint32_t address = sector.start + static_cast<uint32_t>(first);
    const runtime::Region* region = board.RegionAt(address);
    found = region ? std::string(runtime::RegionRoleName(region->role)) + " region '" + region->name + "'"
                   : "flash outside every region (memory '" + std::string(board.memories[m].name) + "')";
    found += " changed at " + HexAddress(address) + " (a sector the update does not write)";
  });
  return found;
}

bootloader::DfuOptions ReplayDfuOptions() {
  bootloader::DfuOptions options;
  // bwPollTimeout 0: dfu-util does not sleep while recording, and replay answers the same bytes.
  options.max_poll_timeout_ms = 0;
  return options;
}

uint32_t SecurityCounter(const Board& board, const FlashView& flash) {
  const bootloader::FlashArea area = bootloader::CounterArea(board);
  if (area.memory < 0) return 0;
  const runtime::Memory& memory = board.memories[area.memory];
  return bootloader::HighestCounter(flash[area.memory].subspan(area.address - memory.base, area.size),
                                    memory.write_align, memory.erased_value);
}

std::string ChangedCounterLog(const Board& board, const FlashView& a, const FlashView& b) {
  const bootloader::FlashArea area = bootloader::CounterArea(board);
  if (area.memory < 0) return "";
  const runtime::Memory& memory = board.memories[area.memory];
  const size_t offset = area.address - memory.base;
  for (size_t i = offset; i < offset + area.size; ++i) {
    const uint8_t was = a[area.memory][i];
    if (was != memory.erased_value && b[area.memory][i] != was) {
      return "the security counter log changed a programmed byte at " + HexAddress(memory.base + i) +
             " (it only appends)";
    }
  }
  return "";
}

Boot DecideBoot(SweepBoard& board, const PowercutFaults& faults) {
  Boot boot;
  boot.decision = bootloader::TrustedBoot(board.board(), board.memories(), false, board.keys());
  boot.start = boot.decision.start_application;
  const bootloader::BootReason r = boot.decision.reason;
  if (!boot.start && faults.trust_record &&
      (r == bootloader::BootReason::kHashMismatch || r == bootloader::BootReason::kRomfsMismatch ||
       r == bootloader::BootReason::kManifestMismatch || r == bootloader::BootReason::kFlashError)) {
    boot.start = true;
  }
  return boot;
}

std::string DescribeDecision(const bootloader::BootDecision& d) {
  std::string text = bootloader::BootReasonName(d.reason);
  if (d.message.c_str()[0] != '\0') text += std::string(": ") + d.message.c_str();
  return text;
}

}  // namespace onedfu::sim
