#include "packer/layout.h"

#include <algorithm>
#include <cstdio>
#include <optional>

namespace onedfu::packer {

using runtime::Board;
using runtime::Region;
using runtime::RegionRole;

std::string HexAddress(uint64_t address) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%08llx", static_cast<unsigned long long>(address));
  return buf;
}

std::string RegionNameAt(const Board& board, uint32_t address) {
  const Region* r = board.RegionAt(address);
  return r ? std::string(r->name) : std::string();
}

namespace {

std::string Describe(const Placement& p) {
  return p.origin + " at " + HexAddress(p.address) + ".." + HexAddress(p.address + p.size - 1) +
         " (" + std::to_string(p.size) + " bytes)";
}

void CheckOne(const Board& board, const Placement& p, std::vector<std::string>& problems) {
  if (p.size == 0) return;
  const uint64_t last = p.address + p.size - 1;
  const Region* first_region = board.RegionAt(p.address);
  if (last > 0xffffffffull) {
    problems.push_back(Describe(p) + ": runs past the 32-bit address space");
    return;
  }
  if (!board.MemoryAt(p.address)) {
    problems.push_back(Describe(p) + ": outside every memory of board " + board.id);
    return;
  }
  if (!first_region) {
    problems.push_back(Describe(p) + ": outside every region of board " + board.id +
                       " (flash no region lists is read-only: the bootloader refuses to write it)");
    return;
  }
  const uint64_t region_end = static_cast<uint64_t>(board.RegionStart(*first_region)) + first_region->size;
  // Find a read-only (bootloader or reserved) region anywhere in the span, even if the span starts elsewhere.
  for (uint8_t i = 0; i < board.region_count; ++i) {
    const Region& r = board.regions[i];
    const uint64_t start = board.RegionStart(r);
    const uint64_t end = start + r.size;
    if ((r.role == RegionRole::kBootloader || r.role == RegionRole::kReserved) && p.address < end && last >= start) {
      problems.push_back(Describe(p) + ": writes into the protected " + runtime::RegionRoleName(r.role) + " region '" +
                         r.name + "' (" + HexAddress(start) + ".." + HexAddress(end - 1) +
                         "), which the bootloader keeps read-only");
      return;
    }
  }
  if (last >= region_end) {
    const Region* next = board.RegionAt(static_cast<uint32_t>(std::min<uint64_t>(region_end, 0xffffffffull)));
    problems.push_back(Describe(p) + ": crosses the end of region '" + first_region->name + "' at " +
                       HexAddress(region_end) + (next ? std::string(" into '") + next->name + "'"
                             : std::string(" into flash no region lists (read-only)")));
    return;
  }
  if (first_region->role != p.expected_role) {
    problems.push_back(Describe(p) + ": lands in region '" + first_region->name + "' (role " +
                       runtime::RegionRoleName(first_region->role) + "), but only a " +
                       runtime::RegionRoleName(p.expected_role) + " region may hold it");
  }
}

// The erase sectors a placement touches (first and last), when it lies in one memory.
struct SectorSpan {
  const Placement* placement = nullptr;
  size_t index = 0;  // in file order
  const runtime::Memory* memory = nullptr;
  runtime::SectorInfo first;
  runtime::SectorInfo last;
};

std::optional<SectorSpan> SpanOf(const Board& board, const Placement& p, size_t index) {
  if (p.size == 0 || p.address + p.size - 1 > 0xffffffffull) return std::nullopt;
  const runtime::Memory* memory = board.MemoryAt(p.address);
  if (!memory) return std::nullopt;
  const auto first = runtime::SectorContaining(*memory, p.address);
  const auto last = runtime::SectorContaining(*memory, static_cast<uint32_t>(p.address + p.size - 1));
  if (!first.ok() || !last.ok()) return std::nullopt;  // runs out of the memory: reported by CheckOne
  return SectorSpan{&p, index, memory, first.value(), last.value()};
}

std::string SizeText(uint64_t bytes) {
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " bytes";
}

// Pairs of placements (not overlapping each other) that touch one erase sector.
void CheckEraseSectors(const Board& board, const std::vector<Placement>& placements,
                       std::vector<std::string>& problems) {
  std::vector<SectorSpan> spans;
  for (size_t i = 0; i < placements.size(); ++i) {
    if (auto span = SpanOf(board, placements[i], i)) spans.push_back(*span);
  }
  std::sort(spans.begin(), spans.end(),
            [](const SectorSpan& a, const SectorSpan& b) { return a.placement->address < b.placement->address; });
  for (size_t i = 1; i < spans.size(); ++i) {
    const SectorSpan& a = spans[i - 1];
    const SectorSpan& b = spans[i];
    if (a.memory != b.memory || a.last.start < b.first.start) continue;
    if (a.placement->address + a.placement->size > b.placement->address) continue;  // an overlap, reported as such
    const SectorSpan& earlier = a.index < b.index ? a : b;
    const SectorSpan& later = a.index < b.index ? b : a;
    problems.push_back(Describe(*earlier.placement) + " and " + Describe(*later.placement) +
                       " touch the same erase sector " + HexAddress(b.first.start) + ".." +
                       HexAddress(uint64_t{b.first.start} + b.first.size - 1) + " (" + SizeText(b.first.size) +
                       ") of memory '" + b.memory->name + "': a loader that erases each element's sectors before " +
                       "writing it (pydfu.py, mboot) would wipe " + earlier.placement->origin +
                       " there; join them into one element");
  }
}

}  // namespace

bool SharesEraseSector(const Board& board, uint32_t a_address, uint64_t a_size, uint32_t b_address) {
  if (a_size == 0) return false;
  const runtime::Memory* memory = board.MemoryAt(a_address);
  if (!memory || !memory->Contains(b_address) || a_address + a_size - 1 > 0xffffffffull) return false;
  const auto last = runtime::SectorContaining(*memory, static_cast<uint32_t>(a_address + a_size - 1));
  const auto first = runtime::SectorContaining(*memory, b_address);
  return last.ok() && first.ok() && last->start >= first->start;
}

Outcome CheckPlacements(const Board& board, const std::vector<Placement>& placements) {
  std::vector<std::string> problems;
  for (const Placement& p : placements) CheckOne(board, p, problems);

  std::vector<const Placement*> sorted;
  for (const Placement& p : placements) {
    if (p.size > 0) sorted.push_back(&p);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Placement* a, const Placement* b) { return a->address < b->address; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const Placement& a = *sorted[i - 1];
    const Placement& b = *sorted[i];
    if (a.address + a.size > b.address) {
      problems.push_back(Describe(a) + " overlaps " + Describe(b) + " at " + HexAddress(b.address));
    }
  }
  CheckEraseSectors(board, placements, problems);
  if (problems.empty()) return Success();
  std::string message;
  for (const std::string& line : problems) {
    if (!message.empty()) message += "\n";
    message += line;
  }
  return Fail(message);
}

}  // namespace onedfu::packer
