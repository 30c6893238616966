// Fuzzes the package manifest and board layout JSON parsers with the same
// input. Any outcome must be a value: an Error naming the source, or a result
// that satisfies the documented guarantees (checked independently here).
// A violation traps.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "host/board_json.h"
#include "packer/package.h"
#include "runtime/board.h"

namespace {

using onedfu::packer::PackageSpec;
using onedfu::packer::RomfsItem;

constexpr char kPackagePath[] = "/fuzz/pkg/p.json";
constexpr char kBoardName[] = "fuzz.json";

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

bool StartsWith(const std::string& text, std::string_view prefix) { return text.compare(0, prefix.size(), prefix) == 0; }

// Independent of CheckRomfsTarget: no component is empty, "." or "..", so the
// target cannot escape the ROMFS root.
bool StaysInside(const std::string& target) {
  if (target.empty()) return true;
  size_t start = 0;
  for (;;) {
    const size_t slash = target.find('/', start);
    const std::string part = target.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

void CheckPackage(const PackageSpec& spec) {
  Require(spec.romfs_align != 0 && (spec.romfs_align & (spec.romfs_align - 1)) == 0 && spec.romfs_align <= 65536);
  Require(spec.version.size() <= 31);
  Require(spec.name.size() <= 255);
  for (const auto& f : spec.firmware) {
    Require(!f.file.empty());
    Require(StartsWith(f.origin, std::string(kPackagePath) + ": /firmware/"));
  }
  for (const auto* list : {&spec.modules, &spec.assets}) {
    for (const RomfsItem& item : *list) {
      Require(!item.source.empty());
      Require(onedfu::packer::CheckRomfsTarget(item.target, item.directory).ok());
      Require(StaysInside(item.target));
      Require(StartsWith(item.origin, std::string(kPackagePath) + ": /"));
    }
  }
}

void CheckBoard(const onedfu::runtime::Board& board) {
  Require(onedfu::runtime::ValidateBoard(board, nullptr).ok());
  Require(board.id[0] != '\0');
  Require(board.memory_count >= 1 && board.memory_count <= onedfu::runtime::kMaxMemories);
  uint8_t bootloaders = 0;
  for (uint8_t i = 0; i < board.region_count; ++i) {
    const auto& r = board.regions[i];
    Require(r.memory < board.memory_count);
    const auto& m = board.memories[r.memory];
    const uint64_t start = uint64_t{m.base} + r.offset;
    Require(r.size > 0 && start + r.size <= m.end());
    Require(board.RegionAt(static_cast<uint32_t>(start)) == &r);  // regions do not overlap
    Require(r.role != onedfu::runtime::RegionRole::kRomfs || m.mapped);
    bootloaders += r.role == onedfu::runtime::RegionRole::kBootloader ? 1 : 0;
  }
  Require(bootloaders == 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto spec = onedfu::packer::ParsePackageJson(text, kPackagePath);
  if (spec.ok()) {
    CheckPackage(*spec);
  } else {
    Require(StartsWith(spec.error().message, std::string(kPackagePath) + ": "));
  }

  auto board = onedfu::host::ParseBoardJson(text, kBoardName);
  if (board.ok()) {
    CheckBoard(*board);
  } else {
    Require(StartsWith(board.error().message, std::string(kBoardName) + ": "));
  }
  return 0;
}
