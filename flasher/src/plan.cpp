// PlanSectors: which sectors to erase and which write units to send (issue 8 step 5).
#include <algorithm>
#include <map>

#include "bootloader/guarded_flash.h"
#include "flasher/dfuse_client.h"
#include "flasher/flash.h"

namespace onedfu::flasher {
namespace {

// Runs of units that need sending may swallow a gap of units whose new content is all erased
// (the device skips programming those) when the gap costs less on the wire than another
// set-address and its two GETSTATUS polls (about 8 packets of 64 bytes).
constexpr uint32_t kMaxMergedGap = 8 * 64;

bool AllErased(const uint8_t* bytes, size_t n, uint8_t erased) {
  return std::all_of(bytes, bytes + n, [erased](uint8_t b) { return b == erased; });
}

struct PendingSector {
  uint8_t memory = 0;
  uint32_t size = 0;
  host::Bytes now;     // current bytes (empty for a full write)
  host::Bytes target;  // bytes after the update
};

}  // namespace

host::Expected<FlashPlan> PlanSectors(const runtime::Board& board, const std::vector<host::DfuseElement>& elements,
                                      const CurrentContent* current) {
  // The new content of every sector an element touches: the current bytes (or erased, for a
  // full write) with the elements laid over them.
  std::map<uint32_t, PendingSector> sectors;
  for (const host::DfuseElement& e : elements) {
    if (e.data.empty()) continue;
    const runtime::Memory* memory = board.MemoryAt(e.address);
    if (memory == nullptr || e.address + e.data.size() > memory->end()) {
      return host::Fail("element at " + Hex32(e.address) + " (" + std::to_string(e.data.size()) +
                        " bytes) lies outside the memories of board " + board.id);
    }
    const auto memory_index = static_cast<uint8_t>(memory - board.memories);
    uint64_t at = e.address;
    const uint64_t end = e.address + e.data.size();
    while (at < end) {
      auto sector = runtime::SectorContaining(*memory, static_cast<uint32_t>(at));
      if (!sector.ok()) return host::Fail("no sector holds " + Hex32(static_cast<uint32_t>(at)));
      auto [it, added] = sectors.try_emplace(sector->start);
      PendingSector& s = it->second;
      if (added) {
        s.memory = memory_index;
        s.size = sector->size;
        if (current != nullptr) {
          if (auto read = (*current)(sector->start, sector->size, &s.now); !read.ok()) return read.error();
          if (s.now.size() != sector->size) return host::Fail("short read of the sector at " + Hex32(sector->start));
          s.target = s.now;
        } else {
          s.target.assign(sector->size, memory->erased_value);
        }
      }
      const uint64_t stop = std::min<uint64_t>(end, uint64_t{sector->start} + sector->size);
      std::copy(e.data.begin() + static_cast<std::ptrdiff_t>(at - e.address),
                e.data.begin() + static_cast<std::ptrdiff_t>(stop - e.address),
                s.target.begin() + static_cast<std::ptrdiff_t>(at - sector->start));
      at = stop;
    }
  }

  FlashPlan plan;
  const bootloader::GuardedFlash timing(board, {});  // the bootloader's own timing model
  // Units to send, in address order: (address, bytes), plus whether a unit is all erased.
  struct Unit {
    uint32_t address;
    const uint8_t* bytes;
    uint32_t size;
    bool send;
  };
  std::vector<Unit> units;
  for (auto& [start, s] : sectors) {
    const runtime::Memory& memory = board.memories[s.memory];
    const uint32_t align = std::max<uint32_t>(1, memory.write_align);
    const uint8_t erased = memory.erased_value;
    const host::Bytes& now = s.now;
    if (current != nullptr) {
      if (now == s.target) {
        ++plan.sectors_unchanged;
        continue;
      }
    }
    // Erase unless every changed write unit is erased now (NOR: bits only go 1 -> 0, and the
    // strict flash refuses writes over non-erased bytes).
    bool erase = current == nullptr;
    for (uint32_t u = 0; u < s.size && !erase; u += align) {
      if (!std::equal(now.begin() + u, now.begin() + u + align, s.target.begin() + u) &&
          !AllErased(now.data() + u, align, erased)) {
        erase = true;
      }
    }
    SectorWork work;
    work.memory = s.memory;
    work.start = start;
    work.size = s.size;
    work.erase = erase;
    for (uint32_t u = 0; u < s.size; u += align) {
      const uint8_t* t = s.target.data() + u;
      const bool changed = erase ? !AllErased(t, align, erased) : !std::equal(t, t + align, now.begin() + u);
      units.push_back({start + u, t, align, changed});
      if (changed) work.program_bytes += align;
    }
    if (erase) plan.erase_us += runtime::EraseMicroseconds(memory, s.size);
    plan.program_us += timing.WriteEstimateUs(start, work.program_bytes);
    work.target = s.target;
    plan.sectors.push_back(std::move(work));
  }

  // Contiguous runs of units to send; erased gaps inside one memory are merged when short.
  size_t i = 0;
  while (i < units.size()) {
    if (!units[i].send) {
      ++i;
      continue;
    }
    WriteRun run;
    run.address = units[i].address;
    size_t last_sent = i;
    size_t j = i;
    for (; j < units.size(); ++j) {
      const Unit& u = units[j];
      const Unit& prev = units[j - (j > i ? 1 : 0)];
      if (j > i && prev.address + prev.size != u.address) break;  // not contiguous
      if (j > i && board.MemoryAt(u.address) != board.MemoryAt(run.address)) break;
      if (u.send) {
        last_sent = j;
        continue;
      }
      const uint8_t erased = board.MemoryAt(u.address)->erased_value;
      if (!AllErased(u.bytes, u.size, erased)) break;  // unchanged data: must not be sent
      if (u.address + u.size - (units[last_sent].address + units[last_sent].size) > kMaxMergedGap) break;
    }
    for (size_t k = i; k <= last_sent; ++k) run.data.insert(run.data.end(), units[k].bytes, units[k].bytes + units[k].size);
    plan.runs.push_back(std::move(run));
    i = last_sent + 1;
  }
  return plan;
}

uint64_t TouchedSectorBytes(const runtime::Board& board, const std::vector<host::DfuseElement>& elements) {
  std::map<uint32_t, uint32_t> sectors;
  for (const host::DfuseElement& e : elements) {
    const runtime::Memory* memory = board.MemoryAt(e.address);
    if (memory == nullptr) continue;
    for (uint64_t at = e.address; at < e.address + e.data.size();) {
      auto sector = runtime::SectorContaining(*memory, static_cast<uint32_t>(at));
      if (!sector.ok()) break;
      sectors[sector->start] = sector->size;
      at = uint64_t{sector->start} + sector->size;
    }
  }
  uint64_t total = 0;
  for (const auto& [start, size] : sectors) total += size;
  return total;
}

}  // namespace onedfu::flasher
