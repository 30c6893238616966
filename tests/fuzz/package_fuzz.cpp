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
#include "fuzz_check.h"

using onedfu::fuzz::FuzzCheck;

namespace {

using onedfu::packer::PackageSpec;
using onedfu::packer::RomfsItem;

constexpr char kPackagePath[] = "/fuzz/pkg/p.json";
constexpr char kBoardName[] = "fuzz.json";

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
  FuzzCheck(spec.romfs_align != 0 && (spec.romfs_align & (spec.romfs_align - 1)) == 0 && spec.romfs_align <= 65536);
  FuzzCheck(spec.version.size() <= 31);
  FuzzCheck(spec.name.size() <= 255);
  for (const auto& f : spec.firmware) {
    FuzzCheck(!f.file.empty());
    FuzzCheck(StartsWith(f.origin, std::string(kPackagePath) + ": /firmware/"));
  }
  for (const auto* list : {&spec.modules, &spec.assets}) {
    for (const RomfsItem& item : *list) {
      FuzzCheck(!item.source.empty());
      FuzzCheck(onedfu::packer::CheckRomfsTarget(item.target, item.directory).ok());
      FuzzCheck(StaysInside(item.target));
      FuzzCheck(StartsWith(item.origin, std::string(kPackagePath) + ": /"));
    }
  }
}

void CheckBoard(const onedfu::runtime::Board& board) {
  FuzzCheck(onedfu::runtime::ValidateBoard(board, nullptr).ok());
  FuzzCheck(board.id[0] != '\0');
  FuzzCheck(board.memory_count >= 1 && board.memory_count <= onedfu::runtime::kMaxMemories);
  uint8_t bootloaders = 0;
  for (uint8_t i = 0; i < board.region_count; ++i) {
    const auto& r = board.regions[i];
    FuzzCheck(r.memory < board.memory_count);
    const auto& m = board.memories[r.memory];
    const uint64_t start = uint64_t{m.base} + r.offset;
    FuzzCheck(r.size > 0 && start + r.size <= m.end());
    FuzzCheck(board.RegionAt(static_cast<uint32_t>(start)) == &r);  // regions do not overlap
    FuzzCheck(r.role != onedfu::runtime::RegionRole::kRomfs || m.mapped);
    bootloaders += r.role == onedfu::runtime::RegionRole::kBootloader ? 1 : 0;
  }
  FuzzCheck(bootloaders == 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto spec = onedfu::packer::ParsePackageJson(text, kPackagePath);
  if (spec.ok()) {
    CheckPackage(*spec);
  } else {
    FuzzCheck(StartsWith(spec.error().message, std::string(kPackagePath) + ": "));
  }

  auto board = onedfu::host::ParseBoardJson(text, kBoardName);
  if (board.ok()) {
    CheckBoard(*board);
  } else {
    FuzzCheck(StartsWith(board.error().message, std::string(kBoardName) + ": "));
  }
  return 0;
}
