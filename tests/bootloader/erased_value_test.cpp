// Flash that erases to 0x00 as well as 0xff, on every region role: the
// bootloader refuses to start (GuardedFlash::Check) only when the record
// region's memory does not erase to 0xff, because a record is revoked by
// programming its 0xff revoke block to 0x00 without an erase. Every other
// role works on either kind of flash: erase, write (erased-value units
// skipped) and read-back, or is refused as read-only whatever it erases to.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "bootloader/guarded_flash.h"
#include "rig.h"

using namespace onedfu;
using namespace onedfu::test;

namespace {

constexpr uint32_t kBaseA = 0x08000000;  // memory "a": holds the region under test only
constexpr uint32_t kBaseB = 0x90000000;  // memory "b": erases to 0xff, holds the other roles
constexpr uint32_t kSector = 4096;

Memory FlashMemoryAt(const char* name, uint32_t base, uint8_t erased) {
  Memory m;
  std::strcpy(m.name, name);
  std::strcpy(m.label, name);
  m.base = base;
  m.sectors[0] = {8, kSector};
  m.sector_group_count = 1;
  m.write_align = 8;
  m.erased_value = erased;
  m.mapped = true;
  return m;
}

// Memory a (erases to `erased`) holds one region of `role`; memory b holds
// one region of every other role.
Board BoardWith(RegionRole role, uint8_t erased) {
  Board b;
  std::strcpy(b.id, "erased-test");
  b.memories[0] = FlashMemoryAt("a", kBaseA, erased);
  b.memories[1] = FlashMemoryAt("b", kBaseB, 0xff);
  b.memory_count = 2;
  b.regions[b.region_count++] = MakeRegion("under-test", 0, 0, 8 * kSector, role);
  uint32_t offset = 0;
  for (RegionRole other : {RegionRole::kBootloader, RegionRole::kFirmware, RegionRole::kRecord, RegionRole::kRomfs,
                           RegionRole::kFilesystem, RegionRole::kReserved}) {
    if (other == role) continue;
    b.regions[b.region_count++] = MakeRegion(runtime::RegionRoleName(other), 1, offset, kSector, other);
    offset += kSector;
  }
  return b;
}

}  // namespace

TEST_CASE("erased value 0x00 or 0xff on every role: only a record memory must erase to 0xff") {
  for (RegionRole role : {RegionRole::kBootloader, RegionRole::kFirmware, RegionRole::kRecord, RegionRole::kRomfs,
                          RegionRole::kFilesystem, RegionRole::kReserved}) {
    for (uint8_t erased : {uint8_t{0xff}, uint8_t{0x00}}) {
      CAPTURE(runtime::RegionRoleName(role));
      CAPTURE(int{erased});
      const Board board = BoardWith(role, erased);
      REQUIRE(runtime::ValidateBoard(board, nullptr).ok());
      std::vector<uint8_t> bytes_a(board.memories[0].size()), bytes_b(board.memories[1].size());
      FakeFlash a(board.memories[0], bytes_a);
      FakeFlash b(board.memories[1], bytes_b);
      a.EraseAll();
      b.EraseAll();
      FlashMemory* memories[] = {&a, &b};
      bootloader::GuardedFlash flash(board, memories);
      runtime::Diag diag;
      const runtime::Status checked = flash.Check(&diag);
      if (role == RegionRole::kRecord && erased != 0xff) {
        CHECK(checked.code() == runtime::StatusCode::kInvalidArgument);
        CHECK(std::string(diag.c_str()) == "record memory: write unit over 32 bytes or erased value not 0xff");
        continue;
      }
      REQUIRE(checked.ok());
      const bool read_only = role == RegionRole::kBootloader || role == RegionRole::kReserved;
      const DfuStatus erase = flash.ErasePageContaining(kBaseA + kSector + 5);
      // Data with whole units of the erased value in it (skipped) and a short tail (padded).
      std::vector<uint8_t> data = Pattern(100, 9);
      std::memset(data.data() + 16, erased, 16);
      const DfuStatus write = flash.Write(kBaseA + kSector, data);
      if (read_only) {
        CHECK(erase == DfuStatus::kErrAddress);
        CHECK(write == DfuStatus::kErrAddress);
        CHECK(a.operations() == 0);
        continue;
      }
      CHECK(erase == DfuStatus::kOk);
      REQUIRE(write == DfuStatus::kOk);
      CHECK(std::memcmp(bytes_a.data() + kSector, data.data(), data.size()) == 0);
      CHECK(bytes_a[kSector + data.size()] == erased);  // the padding
      std::vector<uint8_t> back(data.size());
      size_t n = 0;
      REQUIRE(flash.Read(kBaseA + kSector, back, &n) == DfuStatus::kOk);
      CHECK(back == data);
      // Erased again: every byte back to the erased value.
      REQUIRE(flash.ErasePageContaining(kBaseA + kSector) == DfuStatus::kOk);
      CHECK(std::vector<uint8_t>(bytes_a.begin() + kSector, bytes_a.begin() + 2 * kSector) ==
            std::vector<uint8_t>(kSector, erased));
      if (role == RegionRole::kRecord) CHECK(flash.revocations() == 0);  // nothing was live
    }
  }
}
