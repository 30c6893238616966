// Fuzzes the anti-rollback security counter log and the verified marker
// (bootloader/boot_state.h): the bootloader reads both from its own flash at every boot, and
// `onedfu flash` parses the log it uploaded from a board (HighestCounter), whatever a power
// cut, bit rot or a foreign tool left there.
//
// Input: byte 0 picks the geometry (bits 0-2: write unit 1 << n, 1..128 bytes; bit 6:
// erased value 0x00 instead of 0xff); bytes 1-4 a counter to advance to, bytes 5-8 a record
// CRC (little-endian); the rest is the log area (at most kCounterAreaSize bytes, padded with
// the erased value) and, from its start, the marker bytes.
//
// Invariants (trap on violation):
//  - ReadSecurityCounter through the flash equals HighestCounter over the same bytes (one
//    reading on the board and on the host); a slot wider than the reader's buffer is
//    "no counter area" (kNotFound), never a read past it.
//  - AdvanceSecurityCounter never lowers the counter: at or below it, nothing changes; above
//    it, exactly one erased slot becomes the intact slot of the new value and the counter is
//    that value, or the log is full (kResourceExhausted, no erased slot, nothing changed).
//    The strict fake flash refuses any write over programmed bytes.
//  - MarkedVerified accepts exactly {magic, crc, ~crc, zeros}; MarkVerified on an erased area
//    (write unit <= the marker) writes a marker that MarkedVerified accepts for that CRC and no other.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "bootloader/boot_state.h"
#include "fuzz_check.h"
#include "runtime/fake_flash.h"

using onedfu::fuzz::FuzzCheck;
using namespace onedfu;
using runtime::ByteSpan;
using runtime::StatusCode;

namespace {

constexpr uint32_t kBase = 0x08000000;
constexpr uint32_t kSectorSize = bootloader::kCounterAreaSize;
constexpr size_t kHeader = 9;

runtime::Memory Geometry(uint8_t selector) {
  runtime::Memory m;
  m.base = kBase;
  m.sectors[0] = {2, kSectorSize};  // sector 0: the marker at its end; sector 1: the log
  m.sector_group_count = 1;
  m.write_align = 1u << (selector & 7);
  m.erased_value = (selector & 0x40) ? 0x00 : 0xff;
  m.mapped = true;
  return m;
}

bool AllValue(ByteSpan bytes, uint8_t value) {
  return std::all_of(bytes.begin(), bytes.end(), [value](uint8_t b) { return b == value; });
}

// The slot form a reader accepts: {v, ~v, zeros}.
bool IntactSlot(ByteSpan slot, uint32_t v) {
  return runtime::LoadLe32(slot.data()) == v && runtime::LoadLe32(slot.data() + 4) == ~v && AllValue(slot.subspan(8), 0);
}

void CheckMarker(ByteSpan bytes, uint32_t crc) {
  bool expect = bytes.size() >= bootloader::kMarkerSize && runtime::LoadLe32(bytes.data()) == bootloader::kMarkerMagic &&
                runtime::LoadLe32(bytes.data() + 4) == crc && runtime::LoadLe32(bytes.data() + 8) == ~crc &&
                AllValue(bytes.subspan(12, bootloader::kMarkerSize - 12), 0);
  FuzzCheck(bootloader::MarkedVerified(bytes, crc) == expect);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kHeader) return 0;
  const runtime::Memory geometry = Geometry(data[0]);
  const uint32_t value = runtime::LoadLe32(data + 1);
  const uint32_t crc = runtime::LoadLe32(data + 5);
  const ByteSpan input(data + kHeader, std::min<size_t>(size - kHeader, bootloader::kCounterAreaSize));
  const uint32_t slot = bootloader::CounterSlotSize(geometry.write_align);
  FuzzCheck(slot >= 8 && slot >= geometry.write_align);

  std::vector<uint8_t> storage(geometry.size(), geometry.erased_value);
  runtime::FakeFlash flash(geometry, storage);
  FuzzCheck(flash.valid());
  const bootloader::FlashArea area{0, kBase + kSectorSize, bootloader::kCounterAreaSize};
  FuzzCheck(flash.Preload(area.address, input));
  const ByteSpan log = flash.contents().subspan(kSectorSize, area.size);

  CheckMarker(input, crc);

  const uint32_t highest = bootloader::HighestCounter(log, geometry.write_align, geometry.erased_value);
  auto read = bootloader::ReadSecurityCounter(flash, area);
  if (slot > 32) {
    FuzzCheck(!read.ok() && read.status().code() == StatusCode::kNotFound);
    FuzzCheck(bootloader::AdvanceSecurityCounter(flash, area, value).code() == StatusCode::kNotFound);
  } else {
    FuzzCheck(read.ok() && *read == highest);
    const std::vector<uint8_t> before(log.begin(), log.end());
    const runtime::Status s = bootloader::AdvanceSecurityCounter(flash, area, value);
    const uint32_t after = bootloader::HighestCounter(log, geometry.write_align, geometry.erased_value);
    if (value <= highest) {
      FuzzCheck(s.ok() && after == highest && std::equal(before.begin(), before.end(), log.begin()));
    } else if (s.code() == StatusCode::kResourceExhausted) {
      FuzzCheck(std::equal(before.begin(), before.end(), log.begin()));
      for (size_t at = 0; at + slot <= before.size(); at += slot) {
        FuzzCheck(!AllValue(ByteSpan(before).subspan(at, slot), geometry.erased_value));
      }
    } else {
      FuzzCheck(s.ok() && after == value);
      size_t changed = 0;
      for (size_t at = 0; at + slot <= before.size(); at += slot) {
        if (std::memcmp(before.data() + at, log.data() + at, slot) == 0) continue;
        ++changed;
        FuzzCheck(AllValue(ByteSpan(before).subspan(at, slot), geometry.erased_value));
        FuzzCheck(IntactSlot(log.subspan(at, slot), value));
      }
      FuzzCheck(changed == 1);
      auto again = bootloader::ReadSecurityCounter(flash, area);
      FuzzCheck(again.ok() && *again == value);
    }
  }

  // The marker at the end of the (erased) sector 0 (a write unit wider than the marker
  // cannot hold one).
  if (geometry.write_align > bootloader::kMarkerSize) return 0;
  const bootloader::FlashArea marker{0, kBase + kSectorSize - bootloader::kMarkerSize, bootloader::kMarkerSize};
  FuzzCheck(bootloader::MarkVerified(flash, marker, crc).ok());
  const ByteSpan written = flash.contents().subspan(kSectorSize - bootloader::kMarkerSize, bootloader::kMarkerSize);
  FuzzCheck(bootloader::MarkedVerified(written, crc));
  FuzzCheck(!bootloader::MarkedVerified(written, crc ^ 1));
  FuzzCheck(!bootloader::MarkedVerified(written.first(bootloader::kMarkerSize - 1), crc));
  return 0;
}
