#include "packer/diff.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "host/text.h"
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

std::string Seconds(uint64_t us) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f s", static_cast<double>(us) / 1e6);
  return text;
}

const char* KindName(RomfsFileChange::Kind kind) {
  switch (kind) {
    case RomfsFileChange::Kind::kAdded:
      return "added";
    case RomfsFileChange::Kind::kRemoved:
      return "removed";
    case RomfsFileChange::Kind::kChanged:
      break;
  }
  return "changed";
}

// The ROMFS files whose bytes differ, into `diff`.
void DiffFiles(const BasePackage& old_pkg, const BasePackage& new_pkg, PackageDiff* diff) {
  std::map<std::string, const RomfsFileRecord*> before, after;
  if (old_pkg.romfs) for (const auto& f : old_pkg.romfs->files) before[f.path] = &f;
  if (new_pkg.romfs) for (const auto& f : new_pkg.romfs->files) after[f.path] = &f;
  for (const auto& [path, f] : after) {
    const auto it = before.find(path);
    if (it == before.end()) {
      diff->files.push_back({RomfsFileChange::Kind::kAdded, path, std::nullopt, f->size, false});
    } else if (it->second->sha256 != f->sha256) {
      diff->files.push_back(
          {RomfsFileChange::Kind::kChanged, path, it->second->size, f->size, it->second->offset != f->offset});
    }
  }
  for (const auto& [path, f] : before) {
    if (after.count(path)) continue;
    diff->files.push_back({RomfsFileChange::Kind::kRemoved, path, f->size, std::nullopt, false});
  }
}

nlohmann::ordered_json WorkloadJson(const SectorWorkload& w) {
  return {{"sectors", w.sectors}, {"write_bytes", w.write_bytes}, {"device_us", w.device_us}};
}

nlohmann::ordered_json SizeJson(const std::optional<uint32_t>& size) {
  return size ? nlohmann::ordered_json(*size) : nlohmann::ordered_json(nullptr);
}

}  // namespace

Expected<PackageDiff> DiffPackages(std::span<const uint8_t> old_bytes, const std::string& old_name,
                                   std::span<const uint8_t> new_bytes, const std::string& new_name,
                                   const runtime::Board& board) {
  ONEDFU_PTRY(BasePackage old_pkg, ReadBasePackage(old_bytes, old_name));
  ONEDFU_PTRY(BasePackage new_pkg, ReadBasePackage(new_bytes, new_name));
  PackageDiff diff;
  diff.old_name = old_name;
  diff.new_name = new_name;
  diff.board_id = board.id;
  DiffFiles(old_pkg, new_pkg, &diff);

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
    MemoryDiff md;
    md.memory = m.name;
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
      ++md.dfu_util.sectors;
      md.dfu_util.write_bytes += written;
      md.dfu_util.device_us += us;
      if (!different) continue;
      ++md.differ.sectors;
      md.differ.write_bytes += written;
      md.differ.device_us += us;
    }
    diff.memories.push_back(std::move(md));
  }
  return diff;
}

size_t PackageDiff::Count(RomfsFileChange::Kind kind) const {
  return static_cast<size_t>(std::count_if(files.begin(), files.end(), [kind](const RomfsFileChange& f) { return f.kind == kind; }));
}

uint64_t PackageDiff::DifferUs() const {
  uint64_t us = 0;
  for (const MemoryDiff& m : memories) us += m.differ.device_us;
  return us;
}

uint64_t PackageDiff::DfuUtilUs() const {
  uint64_t us = 0;
  for (const MemoryDiff& m : memories) us += m.dfu_util.device_us;
  return us;
}

std::string DiffText(const PackageDiff& diff) {
  using Kind = RomfsFileChange::Kind;
  std::ostringstream out;
  out << "ROMFS files: " << diff.Count(Kind::kAdded) << " added, " << diff.Count(Kind::kRemoved) << " removed, "
      << diff.Count(Kind::kChanged) << " changed\n";
  for (const RomfsFileChange& f : diff.files) {
    const std::string path = EscapeText(f.path);
    switch (f.kind) {
      case RomfsFileChange::Kind::kAdded:
        out << "  added    " << path << " (" << *f.new_size << " bytes)\n";
        break;
      case RomfsFileChange::Kind::kRemoved:
        out << "  removed  " << path << " (" << *f.old_size << " bytes)\n";
        break;
      case RomfsFileChange::Kind::kChanged:
        out << "  changed  " << path << " (" << *f.old_size << " -> " << *f.new_size << " bytes"
            << (f.moved ? ", moved" : "") << ")\n";
        break;
    }
  }
  for (const MemoryDiff& m : diff.memories) {
    out << "memory " << m.memory << ": " << m.differ.sectors << " of " << m.dfu_util.sectors
        << " sector(s) the package touches differ: erase " << m.differ.sectors << ", write " << m.differ.write_bytes
        << " bytes (" << Seconds(m.differ.device_us) << "); dfu-util erases " << m.dfu_util.sectors << ", writes "
        << m.dfu_util.write_bytes << " bytes (" << Seconds(m.dfu_util.device_us) << ")\n";
  }
  out << "modeled device time on " << diff.board_id << ": " << Seconds(diff.DifferUs())
      << " writing only the sectors that differ, " << Seconds(diff.DfuUtilUs()) << " for a full dfu-util write\n";
  return out.str();
}

std::string DiffJson(const PackageDiff& diff) {
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const RomfsFileChange& f : diff.files) {
    files.push_back({{"path", EscapeText(f.path)},
                     {"change", KindName(f.kind)},
                     {"old_size", SizeJson(f.old_size)},
                     {"new_size", SizeJson(f.new_size)},
                     {"moved", f.moved}});
  }
  nlohmann::ordered_json memories = nlohmann::ordered_json::array();
  for (const MemoryDiff& m : diff.memories) {
    memories.push_back({{"name", EscapeText(m.memory)}, {"differ", WorkloadJson(m.differ)}, {"dfu_util", WorkloadJson(m.dfu_util)}});
  }
  nlohmann::ordered_json j;
  j["old"] = EscapeText(diff.old_name);
  j["new"] = EscapeText(diff.new_name);
  j["board"] = EscapeText(diff.board_id);
  using Kind = RomfsFileChange::Kind;
  j["romfs"] = {{"added", diff.Count(Kind::kAdded)},
                {"removed", diff.Count(Kind::kRemoved)},
                {"changed", diff.Count(Kind::kChanged)},
                {"files", std::move(files)}};
  j["memories"] = std::move(memories);
  j["device_us"] = {{"differ", diff.DifferUs()}, {"dfu_util", diff.DfuUtilUs()}};
  // Every string from outside is escaped above; replacing is the last guard, so dump never throws.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace onedfu::packer
