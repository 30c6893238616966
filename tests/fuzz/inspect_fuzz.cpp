// Fuzzes what `onedfu inspect` and `onedfu verify` do with a .dfu from
// anywhere: Inspect, its JSON and text views, and Verify against a
// PYBD-SF6-like board. Any outcome must be a value (never an exception or a
// crash), and the JSON view must always be valid JSON, whatever bytes the
// file's target names, record strings or ROMFS names hold. A violation traps.
// The input is also run with its dwCRC recomputed (as in dfuse_fuzz), so the
// fuzzer gets past the suffix check.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz_board.h"
#include "fuzz_check.h"
#include "packer/inspect.h"
#include "runtime/crc32.h"
#include "runtime/dfuse.h"

using onedfu::fuzz::FuzzBoard;
using onedfu::fuzz::FuzzCheck;

namespace {

constexpr char kBoard[] = R"({
  "id": "pybd-sf6", "arch": "armv7emdp",
  "memories": [
    {"name": "internal", "base": "0x08000000", "sectors": "4*32K,1*128K,7*256K", "write_align": 4, "mapped": true},
    {"name": "qspi", "base": "0x90000000", "sectors": "512*4K", "write_align": 4, "mapped": true}],
  "regions": [
    {"name": "bootloader", "memory": "internal", "offset": "0x0", "size": "32K", "role": "bootloader"},
    {"name": "text0", "memory": "internal", "offset": "0x8000", "size": "0x1b8000", "role": "firmware"},
    {"name": "filesystem", "memory": "internal", "offset": "0x1c0000", "size": "256K", "role": "filesystem"},
    {"name": "text1", "memory": "qspi", "offset": "0x0", "size": "1M", "role": "firmware"},
    {"name": "romfs", "memory": "qspi", "offset": "0x100000", "size": "0xff000", "role": "romfs"},
    {"name": "record", "memory": "qspi", "offset": "0x1ff000", "size": "4K", "role": "record"}]})";

void CheckFile(const std::vector<uint8_t>& file) {
  const auto& board = FuzzBoard<kBoard>();
  auto inspection = onedfu::packer::Inspect(file, "fuzz.dfu", &board);
  if (inspection.ok()) {
    const std::string json = onedfu::packer::InspectionJson(*inspection);
    FuzzCheck(nlohmann::json::accept(json));
    FuzzCheck(!onedfu::packer::InspectionText(*inspection).empty());
  } else {
    FuzzCheck(inspection.error().message.rfind("fuzz.dfu: ", 0) == 0);
  }
  const onedfu::packer::Verification v = onedfu::packer::Verify(file, "fuzz.dfu", board);
  FuzzCheck(v.ok() == v.failed.empty());
  FuzzCheck(!v.passed.empty() || !v.failed.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> file(data, data + size);
  CheckFile(file);
  if (size >= onedfu::runtime::dfuse::kSuffixSize) {
    onedfu::runtime::StoreLe32(file.data() + size - 4,
                               onedfu::runtime::DfuSuffixCrc(onedfu::runtime::ByteSpan(file).first(size - 4)));
    CheckFile(file);
  }
  return 0;
}
