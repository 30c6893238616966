// PlanSectors: which sectors to erase and which write units to send (issue 8 step 5).
#include <algorithm>
#include <map>

#include "flasher/dfuse_client.h"
#include "flasher/flash.h"
#include "runtime/flash_timing.h"

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
  host::Bytes target;  // bytes after the update (outside the elements: erased, or current once read)
  std::vector<bool> covered;  // [i]: an element covers byte i of the sector
  uint32_t lo = 0;     // span the elements cover, offsets in the sector
  uint32_t hi = 0;
};

}  // namespace

host::Expected<FlashPlan> PlanSectors(const runtime::Board& board, const std::vector<host::DfuseElement>& elements,
                                      const CurrentContent* current) {
  // Pass 1: the sectors the elements touch, the new bytes laid over them, and the span
  // [lo, hi) of each sector the elements cover.
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
      const uint64_t stop = std::min<uint64_t>(end, uint64_t{sector->start} + sector->size);
      const auto lo = static_cast<uint32_t>(at - sector->start);
      const auto hi = static_cast<uint32_t>(stop - sector->start);
      if (added) {
        s.memory = memory_index;
        s.size = sector->size;
        s.target.assign(sector->size, memory->erased_value);
        s.covered.assign(sector->size, false);
        s.lo = lo;
        s.hi = hi;
      }
      s.lo = std::min(s.lo, lo);
      s.hi = std::max(s.hi, hi);
      std::copy(e.data.begin() + static_cast<std::ptrdiff_t>(at - e.address),
                e.data.begin() + static_cast<std::ptrdiff_t>(stop - e.address), s.target.begin() + lo);
      std::fill(s.covered.begin() + lo, s.covered.begin() + hi, true);
      at = stop;
    }
  }

  FlashPlan plan;
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
    // Pass 2: the current bytes of the covered span (write-unit aligned); the rest of the
    // sector is read only when the sector must be erased, to write it back.
    const uint32_t lo = s.lo / align * align;
    const uint32_t hi = std::min(s.size, (s.hi + align - 1) / align * align);
    host::Bytes now(s.size, erased);
    const uint32_t base = start;  // a lambda cannot name a structured binding before clang 16
    const auto read = [&](uint32_t from, uint32_t to) -> host::Outcome {
      if (from >= to) return host::Success();
      host::Bytes part;
      if (auto r = (*current)(base + from, to - from, &part); !r.ok()) return r.error();
      if (part.size() != to - from) return host::Fail("short read at " + Hex32(base + from));
      std::copy(part.begin(), part.end(), now.begin() + from);
      return host::Success();
    };
    bool erase = current == nullptr;
    if (current != nullptr) {
      if (auto r = read(lo, hi); !r.ok()) return r.error();
      // Bytes the elements do not cover keep their current value.
      for (uint32_t i = lo; i < hi; ++i) {
        if (!s.covered[i]) s.target[i] = now[i];
      }
      if (std::equal(now.begin() + lo, now.begin() + hi, s.target.begin() + lo)) {
        ++plan.sectors_unchanged;
        continue;
      }
      // Erase unless every changed write unit is erased now (NOR: bits only go 1 -> 0, and the
      // strict flash refuses writes over non-erased bytes).
      for (uint32_t u = lo; u < hi && !erase; u += align) {
        if (!std::equal(now.begin() + u, now.begin() + u + align, s.target.begin() + u) &&
            !AllErased(now.data() + u, align, erased)) {
          erase = true;
        }
      }
      if (erase) {
        if (auto r = read(0, lo); !r.ok()) return r.error();
        if (auto r = read(hi, s.size); !r.ok()) return r.error();
        std::copy(now.begin(), now.begin() + lo, s.target.begin());
        std::copy(now.begin() + hi, now.end(), s.target.begin() + hi);
      }
    }
    SectorWork work;
    work.memory = s.memory;
    work.start = start;
    work.size = s.size;
    work.erase = erase;
    const uint32_t from = erase ? 0 : lo;
    const uint32_t to = erase ? s.size : hi;
    for (uint32_t u = from; u < to; u += align) {
      const uint8_t* t = s.target.data() + u;
      const bool changed = erase ? !AllErased(t, align, erased) : !std::equal(t, t + align, now.begin() + u);
      units.push_back({start + u, t, align, changed});
      if (changed) work.program_bytes += align;
    }
    if (erase) plan.erase_us += runtime::EraseTimeUs(memory, start, s.size);
    // The cost model (runtime/flash_timing.h) for that many bytes from the sector start. (A
    // GuardedFlash without flash drivers, used here before, knows no memory and said 0.)
    plan.program_us += runtime::ProgramTimeUs(memory, start, work.program_bytes);
    plan.sectors.push_back(std::move(work));
  }
  // Contiguous runs of units to send; erased gaps inside one memory are merged when short.
  size_t i = 0;
  while (i < units.size()) {
    if (!units[i].send) {
      ++i;
      continue;
    }
    // Start the run on a program unit (board program_bytes, e.g. a QSPI page) of its sector when
    // the units before it are erased: the device skips them, and every block then covers
    // whole program units instead of splitting one at each block boundary.
    const runtime::Memory* memory = board.MemoryAt(units[i].address);
    const uint32_t page = std::max<uint32_t>(memory->program_bytes, 1);
    const uint32_t page_start = memory->base + (units[i].address - memory->base) / page * page;
    while (i > 0 && !units[i - 1].send && units[i - 1].address >= page_start &&
           units[i - 1].address + units[i - 1].size == units[i].address &&
           AllErased(units[i - 1].bytes, units[i - 1].size, memory->erased_value)) {
      --i;
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

}  // namespace onedfu::flasher
