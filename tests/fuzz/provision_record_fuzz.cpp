// Fuzzes the device's provision record reader (runtime/provision_record.h): the
// application reads the provision region in place from flash, whatever a station, a
// power cut or a foreign tool left there.
//
// Input: the region's bytes. They are also run with the magic, the version and the CRC
// made right (the CRC over the header and min(length, what is there) payload bytes), so the
// fuzzer reaches the entry walk.
//
// Invariants (trap on violation):
//  - Open returns a value; a record it accepts has at most kMaxProvisionEntries entries and
//    every key and value lies inside the region's payload.
//  - At(i) succeeds for every i < count() and fails past it; Find(key of entry i) finds the
//    first entry with that key.
//  - Re-encoding the entries (EncodeProvisionRecord) gives back the record's bytes exactly
//    when the keys are unique; with a duplicate key it is refused (kInvalidArgument).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "fuzz_check.h"
#include "runtime/crc32.h"
#include "runtime/provision_record.h"

using onedfu::fuzz::FuzzCheck;
using namespace onedfu::runtime;

namespace {

bool Same(ByteSpan a, ByteSpan b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

bool Inside(ByteSpan outer, ByteSpan inner) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

void Check(ByteSpan region) {
  auto reader = ProvisionReader::Open(region);
  if (!reader.ok()) return;
  FuzzCheck(reader->count() <= kMaxProvisionEntries);
  const ByteSpan payload = region.subspan(kProvisionHeaderSize);
  std::vector<ProvisionEntry> entries;
  size_t used = kProvisionHeaderSize;
  for (size_t i = 0; i < reader->count(); ++i) {
    auto e = reader->At(i);
    FuzzCheck(e.ok());
    FuzzCheck(!e->key.empty() && e->key.size() <= kMaxProvisionKey && Inside(payload, e->key) && Inside(payload, e->value));
    entries.push_back(*e);
    used += 1 + e->key.size() + 2 + e->value.size();
  }
  FuzzCheck(!reader->At(reader->count()).ok());
  bool unique = true;
  for (size_t i = 0; i < entries.size(); ++i) {
    size_t first = i;
    for (size_t j = 0; j < i; ++j) {
      if (Same(entries[j].key, entries[i].key)) {
        first = j;
        unique = false;
        break;
      }
    }
    auto found = reader->Find(entries[i].key);
    FuzzCheck(found.ok() && found->data() == entries[first].value.data() && found->size() == entries[first].value.size());
  }
  FuzzCheck(used == kProvisionHeaderSize + LoadLe32(region.data() + 8));
  std::vector<uint8_t> again(used);
  auto n = EncodeProvisionRecord(entries, again);
  if (unique) {
    FuzzCheck(n.ok() && *n == used && Same(again, region.first(used)));
  } else {
    FuzzCheck(!n.ok() && n.status().code() == StatusCode::kInvalidArgument);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> region(data, data + size);
  Check(region);
  if (size >= kProvisionHeaderSize) {
    StoreLe32(region.data(), kProvisionMagic);
    StoreLe16(region.data() + 4, kProvisionVersion);
    const size_t length = std::min<size_t>(LoadLe32(region.data() + 8), size - kProvisionHeaderSize);
    const uint32_t crc = ~Crc32Update(Crc32Update(0xFFFFFFFFu, ByteSpan(region.data(), 12)),
                                      ByteSpan(region.data() + kProvisionHeaderSize, length));
    StoreLe32(region.data() + 12, crc);
    Check(region);
  }
  return 0;
}
