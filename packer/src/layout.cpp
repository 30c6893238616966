#include "packer/layout.h"

#include <algorithm>
#include <cstdio>

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
    problems.push_back(Describe(p) + ": outside every region of board " + board.id);
    return;
  }
  const uint64_t region_end = static_cast<uint64_t>(board.RegionStart(*first_region)) + first_region->size;
  // Find a bootloader region anywhere in the span, even if the span starts elsewhere.
  for (uint8_t i = 0; i < board.region_count; ++i) {
    const Region& r = board.regions[i];
    const uint64_t start = board.RegionStart(r);
    const uint64_t end = start + r.size;
    if (r.role == RegionRole::kBootloader && p.address < end && last >= start) {
      problems.push_back(Describe(p) + ": writes into the protected bootloader region '" + r.name + "' (" +
                         HexAddress(start) + ".." + HexAddress(end - 1) + ")");
      return;
    }
  }
  if (last >= region_end) {
    const Region* next = board.RegionAt(static_cast<uint32_t>(std::min<uint64_t>(region_end, 0xffffffffull)));
    problems.push_back(Describe(p) + ": crosses the end of region '" + first_region->name + "' at " +
                       HexAddress(region_end) + (next ? std::string(" into '") + next->name + "'" : std::string()));
    return;
  }
  if (first_region->role != p.expected_role) {
    problems.push_back(Describe(p) + ": lands in region '" + first_region->name + "' (role " +
                       runtime::RegionRoleName(first_region->role) + "), but only a " +
                       runtime::RegionRoleName(p.expected_role) + " region may hold it");
  }
}

}  // namespace

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
  if (problems.empty()) return Success();
  std::string message;
  for (const std::string& line : problems) {
    if (!message.empty()) message += "\n";
    message += line;
  }
  return Fail(message);
}

}  // namespace onedfu::packer
