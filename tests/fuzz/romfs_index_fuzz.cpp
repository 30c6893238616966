// Fuzzes the ROMFS file index parser (bytes a host uploads from a board).
// Invariants (trap on violation):
//  - An opened index lies inside the input; walking it yields entry_count
//    entries whose paths lie inside the table.
//  - Find of every walked path returns that entry.
//  - Writing the walked entries again gives exactly the table's bytes.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/romfs_index.h"

using namespace onedfu::runtime;

#define CHECK_OR_TRAP(cond) \
  do {                      \
    if (!(cond)) __builtin_trap(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteSpan input(data, size);
  // The image size the data must fit: the input's length (0 = not checked).
  const uint32_t image_size = static_cast<uint32_t>(size > 0 && (data[0] & 1) ? size : 0);
  Diag diag;
  auto index = RomfsIndex::Open(input, image_size, &diag);
  if (!index.ok()) {
    CHECK_OR_TRAP(!diag.empty());
    return 0;
  }
  const ByteSpan table = index->bytes();
  CHECK_OR_TRAP(table.data() == data && table.size() <= size);
  std::vector<RomfsIndexEntry> entries;
  std::vector<std::string> paths;
  uint32_t cursor = 0;
  RomfsIndexEntry e;
  while (index->Next(&cursor, &e)) {
    const auto* p = reinterpret_cast<const uint8_t*>(e.path);
    CHECK_OR_TRAP(p >= table.data() && p + e.path_len <= table.data() + table.size());
    CHECK_OR_TRAP(image_size == 0 || uint64_t{e.offset} + e.size <= image_size);
    entries.push_back(e);
    paths.emplace_back(e.path, e.path_len);
  }
  CHECK_OR_TRAP(entries.size() == index->entry_count());
  for (size_t i = 0; i < entries.size(); ++i) {
    auto found = index->Find(paths[i].c_str());
    CHECK_OR_TRAP(found.ok() && found->path == entries[i].path && found->offset == entries[i].offset);
  }
  std::vector<uint8_t> again(table.size());
  auto written = WriteRomfsIndex(entries, again);
  CHECK_OR_TRAP(written.ok() && written.value() == table.size());
  CHECK_OR_TRAP(std::memcmp(again.data(), table.data(), table.size()) == 0);
  return 0;
}
