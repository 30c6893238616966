#include "packer/diff.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "packer/base_package.h"
#include "runtime/flash_timing.h"

namespace onedfu::packer {

namespace {

// Bytes a package puts at each address of one memory (sparse, by element).
using Contents = std::map<uint32_t, const Bytes*>;

int ByteAt(const Contents& c, uint32_t address) {
  auto it = c.upper_bound(address);
  if (it == c.begin()) return -1;
  --it;
  if (address - it->first < it->second->size()) return (*it->second)[address - it->first];
  return -1;
}

// Program time of `bytes` at `address` (the board's per-unit figure).
std::string Seconds(uint64_t us) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f s", static_cast<double>(us) / 1e6);
  return text;
}

}  // namespace

Expected<std::string> DiffPackages(std::span<const uint8_t> old_bytes, const std::string& old_name,
                                   std::span<const uint8_t> new_bytes, const std::string& new_name,
                                   const runtime::Board& board) {
  ONEDFU_PTRY(BasePackage old_pkg, ReadBasePackage(old_bytes, old_name));
  ONEDFU_PTRY(BasePackage new_pkg, ReadBasePackage(new_bytes, new_name));
  std::ostringstream out;

  std::map<std::string, const RomfsFileRecord*> before, after;
  if (old_pkg.romfs) for (const auto& f : old_pkg.romfs->files) before[f.path] = &f;
  if (new_pkg.romfs) for (const auto& f : new_pkg.romfs->files) after[f.path] = &f;
  std::ostringstream lines;
  size_t added = 0, removed = 0, changed = 0;
  for (const auto& [path, f] : after) {
    const auto it = before.find(path);
    if (it == before.end()) {
      ++added;
      lines << "  added    " << path << " (" << f->size << " bytes)\n";
    } else if (it->second->sha256 != f->sha256) {
      ++changed;
      lines << "  changed  " << path << " (" << it->second->size << " -> " << f->size << " bytes"
            << (it->second->offset == f->offset ? "" : ", moved") << ")\n";
    }
  }
  for (const auto& [path, f] : before) {
    if (!after.count(path)) {
      ++removed;
      lines << "  removed  " << path << " (" << f->size << " bytes)\n";
    }
  }
  out << "ROMFS files: " << added << " added, " << removed << " removed, " << changed << " changed\n" << lines.str();

  uint64_t total_diff_us = 0, total_full_us = 0;
  for (uint8_t mi = 0; mi < board.memory_count; ++mi) {
    const runtime::Memory& m = board.memories[mi];
    Contents old_c, new_c;
    for (const auto& t : old_pkg.dfuse.targets)
      for (const auto& e : t.elements) if (m.Contains(e.address)) old_c[e.address] = &e.data;
    for (const auto& t : new_pkg.dfuse.targets)
      for (const auto& e : t.elements) if (m.Contains(e.address)) new_c[e.address] = &e.data;
    if (new_c.empty()) continue;
    std::map<uint32_t, uint32_t> touched;  // sector start -> size
    for (const auto& [address, data] : new_c) {
      for (uint64_t at = address; at < address + data->size();) {
        auto sector = runtime::SectorContaining(m, static_cast<uint32_t>(at));
        if (!sector.ok()) return Fail(new_name + ": element at " + std::to_string(address) + " runs outside memory " + m.name);
        touched[sector->start] = sector->size;
        at = uint64_t{sector->start} + sector->size;
      }
    }
    size_t differ = 0;
    uint64_t full_bytes = 0, diff_bytes = 0, diff_us = 0, full_us = 0;
    for (const auto& [start, size] : touched) {
      uint64_t written = 0;
      bool different = false;
      for (uint64_t a = start; a < uint64_t{start} + size; ++a) {
        const int n = ByteAt(new_c, static_cast<uint32_t>(a));
        if (n < 0) continue;
        ++written;
        const int o = ByteAt(old_c, static_cast<uint32_t>(a));
        different |= (o < 0 ? m.erased_value : o) != n;
      }
      // The one cost model (runtime/flash_timing.h): erase the sector, program what the package writes.
      const uint64_t us = runtime::EraseTimeUs(m, start, size) +
                          runtime::ProgramTimeUs(m, start, static_cast<uint32_t>(written));
      full_bytes += written;
      full_us += us;
      if (!different) continue;
      ++differ;
      diff_bytes += written;
      diff_us += us;
    }
    total_diff_us += diff_us;
    total_full_us += full_us;
    out << "memory " << m.name << ": " << differ << " of " << touched.size()
        << " sector(s) the package touches differ: erase " << differ << ", write " << diff_bytes << " bytes ("
        << Seconds(diff_us) << "); dfu-util erases " << touched.size() << ", writes " << full_bytes << " bytes ("
        << Seconds(full_us) << ")\n";
  }
  out << "modeled device time on " << board.id << ": " << Seconds(total_diff_us)
      << " writing only the sectors that differ, " << Seconds(total_full_us) << " for a full dfu-util write\n";
  return out.str();
}

}  // namespace onedfu::packer
