#include "runtime/fake_flash.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <memory>
#include <cstring>
#include <vector>

namespace {

using onedfu::runtime::ByteSpan;
using onedfu::runtime::FakeFlash;
using onedfu::runtime::Memory;
using onedfu::runtime::StatusCode;

// 2 x 1 KiB + 1 x 4 KiB at 0x1000, write_align 4: 6 KiB, end 0x2800.
Memory MixedGeometry() {
  Memory m;
  m.base = 0x1000;
  m.sectors[0] = {2, 1024};
  m.sectors[1] = {1, 4096};
  m.sector_group_count = 2;
  m.write_align = 4;
  m.erased_value = 0xff;
  m.mapped = true;
  return m;
}

constexpr uint32_t kSize = 2 * 1024 + 4096;
constexpr uint32_t kBase = 0x1000;
constexpr uint32_t kEnd = kBase + kSize;

struct Fixture {
  std::vector<uint8_t> storage = std::vector<uint8_t>(kSize, 0x00);
  FakeFlash flash{MixedGeometry(), storage};
  Fixture() { flash.EraseAll(); }
};

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

}  // namespace

TEST_CASE("fake flash: storage must match geometry") {
  std::vector<uint8_t> small(kSize - 1);
  FakeFlash flash(MixedGeometry(), small);
  CHECK_FALSE(flash.valid());
  std::array<uint8_t, 4> buf{};
  CHECK(flash.Read(kBase, buf).code() == StatusCode::kInternal);
  CHECK(flash.Write(kBase, buf).code() == StatusCode::kInternal);
  CHECK(flash.Erase(kBase, 1024).code() == StatusCode::kInternal);

  Fixture f;
  CHECK(f.flash.valid());
  CHECK(f.flash.Mapped().size() == kSize);
}

TEST_CASE("fake flash: EraseAll fills with the erased value") {
  Fixture f;
  for (uint8_t b : f.storage) REQUIRE(b == 0xff);
}

TEST_CASE("fake flash: write then read back, counted") {
  Fixture f;
  auto data = Pattern(64, 3);
  REQUIRE(f.flash.Write(kBase + 0x100, data).ok());
  std::vector<uint8_t> out(64);
  REQUIRE(f.flash.Read(kBase + 0x100, out).ok());
  CHECK(out == data);
  CHECK(f.storage[0x100 - 1] == 0xff);
  CHECK(f.storage[0x100 + 64] == 0xff);
  CHECK(f.flash.counters().writes == 1);
  CHECK(f.flash.counters().bytes_written == 64);
  CHECK(f.flash.counters().reads == 1);
  CHECK(f.flash.counters().bytes_read == 64);
  CHECK(f.flash.operations() == 1);
}

TEST_CASE("fake flash: bounds at the last byte") {
  Fixture f;
  std::array<uint8_t, 4> word{1, 2, 3, 4};
  // The last aligned word is inside.
  CHECK(f.flash.Write(kEnd - 4, word).ok());
  std::array<uint8_t, 1> one{};
  CHECK(f.flash.Read(kEnd - 1, one).ok());
  CHECK(one[0] == 4);
  // One byte past the end is not.
  CHECK(f.flash.Read(kEnd, one).code() == StatusCode::kOutOfRange);
  std::array<uint8_t, 2> two{};
  CHECK(f.flash.Read(kEnd - 1, two).code() == StatusCode::kOutOfRange);
  CHECK(f.flash.Write(kEnd, word).code() == StatusCode::kOutOfRange);
  std::array<uint8_t, 8> eight{};
  CHECK(f.flash.Write(kEnd - 4, eight).code() == StatusCode::kOutOfRange);
  // Below the base.
  CHECK(f.flash.Read(kBase - 1, one).code() == StatusCode::kOutOfRange);
  CHECK(f.flash.Write(kBase - 4, word).code() == StatusCode::kOutOfRange);
  // Address arithmetic must not wrap: a huge span near the top of 32 bits.
  CHECK(f.flash.Erase(0xfffff000u, 0x2000).code() == StatusCode::kOutOfRange);
  CHECK(f.flash.Erase(kBase, 0xffffffffu).code() == StatusCode::kOutOfRange);
  // The last sector erases; one sector past it does not exist.
  CHECK(f.flash.Erase(kEnd - 4096, 4096).ok());
  CHECK(f.flash.Erase(kEnd, 4096).code() == StatusCode::kOutOfRange);
  // Zero-length read at the very end is fine; refused ops were counted as such.
  CHECK(f.flash.Read(kEnd, {}).ok());
  CHECK(f.flash.counters().refused == 9);
}

TEST_CASE("fake flash: refuses writes to bytes that are not erased") {
  Fixture f;
  std::array<uint8_t, 4> a{0xf0, 0xff, 0x00, 0x0f};
  REQUIRE(f.flash.Write(kBase, a).ok());
  // Same value again: refused by default (stricter than silicon).
  CHECK(f.flash.Write(kBase, a).code() == StatusCode::kFailedPrecondition);
  // Only clearing more bits: allowed with allow_bit_clear.
  std::array<uint8_t, 4> b{0x30, 0xfe, 0x00, 0x01};
  CHECK(f.flash.Write(kBase, b).code() == StatusCode::kFailedPrecondition);
  f.flash.set_allow_bit_clear(true);
  CHECK(f.flash.Write(kBase, b).ok());
  CHECK(f.storage[0] == 0x30);
  CHECK(f.storage[1] == 0xfe);
  // Setting a bit back to 1 is never possible without an erase.
  std::array<uint8_t, 4> c{0x31, 0xfe, 0x00, 0x01};
  CHECK(f.flash.Write(kBase, c).code() == StatusCode::kFailedPrecondition);
  CHECK(f.storage[0] == 0x30);
  // A refused write changes nothing, not even its erased bytes.
  std::array<uint8_t, 8> e{0xff, 0xff, 0xff, 0xff, 0x11, 0x22, 0x33, 0x44};
  f.flash.set_allow_bit_clear(false);
  CHECK(f.flash.Write(kBase, e).code() == StatusCode::kFailedPrecondition);
  CHECK(f.storage[4] == 0xff);
}

TEST_CASE("fake flash: erased value 0x00 memory: bits only go 0 -> 1") {
  Memory m = MixedGeometry();
  m.erased_value = 0x00;
  std::vector<uint8_t> storage(kSize, 0xaa);
  FakeFlash flash(m, storage);
  flash.EraseAll();
  CHECK(storage[17] == 0x00);
  std::array<uint8_t, 4> a{0x01, 0, 0, 0};
  REQUIRE(flash.Write(kBase, a).ok());
  flash.set_allow_bit_clear(true);
  std::array<uint8_t, 4> more{0x03, 0, 0, 0};
  CHECK(flash.Write(kBase, more).ok());
  std::array<uint8_t, 4> back{0x02, 0, 0, 0};
  CHECK(flash.Write(kBase, back).code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("fake flash: misaligned writes refused") {
  Fixture f;
  std::array<uint8_t, 4> w{};
  std::array<uint8_t, 3> three{};
  CHECK(f.flash.Write(kBase + 2, w).code() == StatusCode::kInvalidArgument);
  CHECK(f.flash.Write(kBase, three).code() == StatusCode::kInvalidArgument);
  CHECK(f.flash.operations() == 0);
}

TEST_CASE("fake flash: erase only on sector boundaries, mixed sizes") {
  Fixture f;
  auto data = Pattern(kSize, 9);
  REQUIRE(f.flash.Write(kBase, data).ok());
  CHECK(f.flash.Erase(kBase + 4, 1024).code() == StatusCode::kInvalidArgument);
  CHECK(f.flash.Erase(kBase, 1000).code() == StatusCode::kInvalidArgument);
  CHECK(f.flash.Erase(kBase, 0).code() == StatusCode::kInvalidArgument);
  // Crossing into the 4 KiB sector but not to its end.
  CHECK(f.flash.Erase(kBase + 1024, 2048).code() == StatusCode::kInvalidArgument);
  // 4 KiB starting at a 1 KiB sector boundary is not a whole set of sectors.
  CHECK(f.flash.Erase(kBase + 1024, 4096).code() == StatusCode::kInvalidArgument);
  CHECK(f.flash.operations() == 1);  // only the initial write
  CHECK(f.flash.counters().refused == 5);
  // Second 1 KiB sector.
  REQUIRE(f.flash.Erase(kBase + 1024, 1024).ok());
  CHECK(f.storage[1023] == data[1023]);
  for (size_t i = 1024; i < 2048; ++i) REQUIRE(f.storage[i] == 0xff);
  CHECK(f.storage[2048] == data[2048]);
  CHECK(f.flash.counters().sectors_erased == 1);
  // Several sectors in one call (1 KiB + 4 KiB).
  REQUIRE(f.flash.Erase(kBase + 1024, 1024 + 4096).ok());
  CHECK(f.flash.counters().sectors_erased == 3);
  CHECK(f.flash.counters().erases == 2);
  CHECK(f.storage[0] == data[0]);
  CHECK(f.storage[kSize - 1] == 0xff);
  // Whole memory.
  REQUIRE(f.flash.Erase(kBase, kSize).ok());
  CHECK(f.flash.counters().sectors_erased == 6);
  CHECK(f.storage[0] == 0xff);
}

TEST_CASE("fake flash: FailAfter is a one-shot transient error") {
  Fixture f;
  std::array<uint8_t, 4> w{1, 2, 3, 4};
  f.flash.FailAfter(1);
  REQUIRE(f.flash.Write(kBase, w).ok());
  CHECK(f.flash.Write(kBase + 4, w).code() == StatusCode::kUnavailable);
  CHECK(f.storage[4] == 0xff);
  CHECK(f.flash.powered());
  CHECK(f.flash.Write(kBase + 4, w).ok());
  CHECK(f.storage[4] == 1);
  f.flash.FailAfter(0);
  CHECK(f.flash.Erase(kBase, 1024).code() == StatusCode::kUnavailable);
  CHECK(f.storage[0] == 1);
  // Reads do not consume the countdown.
  f.flash.FailAfter(0);
  std::array<uint8_t, 4> r{};
  CHECK(f.flash.Read(kBase, r).ok());
  f.flash.ClearFaults();
  CHECK(f.flash.Erase(kBase, 1024).ok());
}

TEST_CASE("fake flash: power cut before an operation") {
  Fixture f;
  std::array<uint8_t, 8> w{1, 2, 3, 4, 5, 6, 7, 8};
  f.flash.CutPowerAfter(1, false);
  REQUIRE(f.flash.Write(kBase, w).ok());
  CHECK(f.flash.Write(kBase + 8, w).code() == StatusCode::kUnavailable);
  CHECK_FALSE(f.flash.powered());
  CHECK(f.storage[8] == 0xff);
  // Everything fails until power returns, reads and mapped access too.
  std::array<uint8_t, 4> r{};
  CHECK(f.flash.Read(kBase, r).code() == StatusCode::kUnavailable);
  CHECK(f.flash.Erase(kBase, 1024).code() == StatusCode::kUnavailable);
  CHECK(f.flash.Mapped().empty());
  CHECK(f.flash.operations() == 1);
  f.flash.PowerOn();
  CHECK(f.flash.Read(kBase, r).ok());
  CHECK(r[3] == 4);
  CHECK(f.flash.Write(kBase + 8, w).ok());
}

TEST_CASE("fake flash: torn write programs the first half") {
  Fixture f;
  auto data = Pattern(20, 1);  // half = 10, rounded down to 8 (write_align 4)
  f.flash.CutPowerAfter(0, true);
  CHECK(f.flash.Write(kBase, data).code() == StatusCode::kUnavailable);
  CHECK_FALSE(f.flash.powered());
  for (size_t i = 0; i < 8; ++i) CHECK(f.storage[i] == data[i]);
  for (size_t i = 8; i < 20; ++i) CHECK(f.storage[i] == 0xff);
  CHECK(f.flash.operations() == 1);
  CHECK(f.flash.counters().bytes_written == 8);
}

TEST_CASE("fake flash: torn erase leaves the first half erased") {
  Fixture f;
  auto data = Pattern(4096, 5);
  REQUIRE(f.flash.Write(kBase + 2048, data).ok());
  f.flash.CutPowerAfter(0, true);
  CHECK(f.flash.Erase(kBase + 2048, 4096).code() == StatusCode::kUnavailable);
  for (size_t i = 0; i < 2048; ++i) REQUIRE(f.storage[2048 + i] == 0xff);
  for (size_t i = 2048; i < 4096; ++i) REQUIRE(f.storage[2048 + i] == data[i]);
  f.flash.PowerOn();
  // After power returns, the sector can be erased completely.
  CHECK(f.flash.Erase(kBase + 2048, 4096).ok());
  CHECK(f.storage[kSize - 1] == 0xff);
}

TEST_CASE("fake flash: refused operations do not consume a pending fault") {
  Fixture f;
  std::array<uint8_t, 4> w{1, 2, 3, 4};
  f.flash.CutPowerAfter(0, false);
  CHECK(f.flash.Write(kBase + 1, w).code() == StatusCode::kInvalidArgument);
  CHECK(f.flash.powered());
  CHECK(f.flash.Write(kBase, w).code() == StatusCode::kUnavailable);
  CHECK_FALSE(f.flash.powered());
}

TEST_CASE("fake flash: Preload bypasses checks but not bounds") {
  Fixture f;
  auto data = Pattern(16, 2);
  CHECK(f.flash.Preload(kEnd - 16, data));
  CHECK_FALSE(f.flash.Preload(kEnd - 15, data));
  CHECK(f.storage[kSize - 1] == data[15]);
  CHECK(f.flash.operations() == 0);
  CHECK(f.flash.counters().refused == 0);
  // Unmapped memories expose no span.
  Memory m = MixedGeometry();
  m.mapped = false;
  std::vector<uint8_t> storage(kSize);
  FakeFlash unmapped(m, storage);
  CHECK(unmapped.Mapped().empty());
}

TEST_CASE("fake flash: an empty write is no operation") {
  Fixture f;
  // Checked like any write...
  CHECK(f.flash.Write(kBase + 2, {}).code() == StatusCode::kInvalidArgument);
  CHECK(f.flash.Write(kEnd + 4, {}).code() == StatusCode::kOutOfRange);
  CHECK(f.flash.counters().refused == 2);
  // ...then OK without counting, and a pending fault stays pending for the next real one.
  f.flash.CutPowerAfter(0, false);
  CHECK(f.flash.Write(kBase, {}).ok());
  CHECK(f.flash.Write(kEnd, {}).ok());  // at the very end: an empty range is inside
  CHECK(f.flash.powered());
  CHECK(f.flash.operations() == 0);
  CHECK(f.flash.counters().writes == 0);
  std::array<uint8_t, 4> w{1, 2, 3, 4};
  CHECK(f.flash.Write(kBase, w).code() == StatusCode::kUnavailable);
  CHECK_FALSE(f.flash.powered());
  CHECK(f.flash.Write(kBase, {}).code() == StatusCode::kUnavailable);  // power off: refused
}

TEST_CASE("fake flash: a torn erase counts the sectors its erased half covers wholly") {
  Fixture f;  // sectors: 1 KiB at 0x1000, 1 KiB at 0x1400, 4 KiB at 0x1800
  // Two 1 KiB sectors, torn: the first half is exactly sector 0.
  f.flash.CutPowerAfter(0, true);
  CHECK(f.flash.Erase(kBase, 2048).code() == StatusCode::kUnavailable);
  CHECK(f.flash.counters().erases == 1);
  CHECK(f.flash.counters().sectors_erased == 1);
  CHECK(f.flash.counters().bytes_erased == 1024);
  f.flash.PowerOn();
  // One 4 KiB sector, torn: half of it erased, no sector wholly.
  f.flash.CutPowerAfter(0, true);
  CHECK(f.flash.Erase(kBase + 2048, 4096).code() == StatusCode::kUnavailable);
  CHECK(f.flash.counters().erases == 2);
  CHECK(f.flash.counters().sectors_erased == 1);
  CHECK(f.flash.counters().bytes_erased == 1024 + 2048);
  f.flash.PowerOn();
  // The whole memory, torn: 3 KiB = both 1 KiB sectors and a part of the 4 KiB one.
  f.flash.CutPowerAfter(0, true);
  CHECK(f.flash.Erase(kBase, kSize).code() == StatusCode::kUnavailable);
  CHECK(f.flash.counters().erases == 3);
  CHECK(f.flash.counters().sectors_erased == 3);
  CHECK(f.flash.counters().bytes_erased == 1024 + 2048 + 3072);
  CHECK(f.flash.operations() == 3);
}

TEST_CASE("fake flash: a memory that ends at 4 GiB") {
  Memory m = MixedGeometry();
  m.base = 0xffffe800;  // 1 KiB + 1 KiB + 4 KiB up to 0x100000000
  std::vector<uint8_t> storage(kSize);
  FakeFlash flash(m, storage);
  flash.EraseAll();
  REQUIRE(flash.valid());
  CHECK(flash.Erase(0xfffff000, 4096).ok());  // the last sector: its end is 2^32
  CHECK(flash.Erase(0xffffe800, kSize).ok());
  CHECK(flash.counters().sectors_erased == 1 + 3);
  CHECK(flash.Erase(0xfffff000, 8192).code() == StatusCode::kOutOfRange);
  CHECK(flash.Erase(0xffffec00, 2048).code() == StatusCode::kInvalidArgument);  // ends inside the 4 KiB
  std::array<uint8_t, 4> w{1, 2, 3, 4};
  CHECK(flash.Write(0xfffffffc, w).ok());
  std::array<uint8_t, 8> eight{};
  CHECK(flash.Write(0xfffffffc, eight).code() == StatusCode::kOutOfRange);
  std::array<uint8_t, 1> last{};
  CHECK(flash.Read(0xffffffff, last).ok());
  CHECK(last[0] == 4);
}

namespace {

using onedfu::runtime::TornModel;

// Writes 1 KiB of zeros (every bit programmed) torn by the kRandom model with `seed`; returns the storage.
std::vector<uint8_t> TornRandomWrite(bool ecc, uint32_t seed, FakeFlash** out_flash, std::vector<uint8_t>& storage) {
  Memory g = MixedGeometry();
  g.ecc = ecc;
  storage.assign(kSize, 0xff);
  static std::vector<std::unique_ptr<FakeFlash>> keep;
  keep.push_back(std::make_unique<FakeFlash>(g, storage));
  FakeFlash& flash = *keep.back();
  flash.SetTornModel(TornModel::kRandom, seed);
  flash.CutPowerAfter(0, true);
  const std::vector<uint8_t> zeros(1024, 0x00);
  CHECK(flash.Write(kBase, zeros).code() == StatusCode::kUnavailable);
  flash.PowerOn();
  *out_flash = &flash;
  return storage;
}

}  // namespace

TEST_CASE("fake flash: kRandom torn write: units before a random one written, that one partly, the rest erased") {
  std::vector<uint8_t> storage;
  FakeFlash* flash = nullptr;
  const std::vector<uint8_t> first = TornRandomWrite(false, 7, &flash, storage);
  size_t unit = 0;
  while (unit < 256 && std::all_of(first.begin() + unit * 4, first.begin() + unit * 4 + 4, [](uint8_t b) { return b == 0; })) ++unit;
  REQUIRE(unit < 256);
  // The torn unit: neither erased nor fully programmed (a random subset of its 32 bits).
  const uint32_t word = first[unit * 4] | first[unit * 4 + 1] << 8 | first[unit * 4 + 2] << 16 |
                        static_cast<uint32_t>(first[unit * 4 + 3]) << 24;
  CHECK(word != 0u);
  CHECK(word != 0xffffffffu);
  CHECK(std::all_of(first.begin() + unit * 4 + 4, first.begin() + 1024, [](uint8_t b) { return b == 0xff; }));
  // Seeded: the same seed tears the same way, another seed differently.
  std::vector<uint8_t> storage2;
  FakeFlash* flash2 = nullptr;
  CHECK(TornRandomWrite(false, 7, &flash2, storage2) == first);
  std::vector<uint8_t> storage3;
  CHECK(TornRandomWrite(false, 8, &flash2, storage3) != first);
  // Without ECC the torn unit reads back (garbage) and the mapping stays.
  std::array<uint8_t, 4> out{};
  CHECK(flash->Read(kBase + static_cast<uint32_t>(unit) * 4, out).ok());
  CHECK(flash->torn_units() == 0);
  CHECK_FALSE(flash->Mapped().empty());
}

TEST_CASE("fake flash: ECC: reading a torn unit faults, the mapping is hidden, erasing its sector clears it") {
  std::vector<uint8_t> storage;
  FakeFlash* flash = nullptr;
  (void)TornRandomWrite(true, 11, &flash, storage);
  CHECK(flash->torn_units() == 1);
  CHECK(flash->Mapped().empty());
  std::vector<uint8_t> sector(1024);
  CHECK(flash->Read(kBase, sector).code() == StatusCode::kDataLoss);
  // Other sectors read fine; writes to the torn unit are refused.
  CHECK(flash->Read(kBase + 1024, sector).ok());
  CHECK(flash->Write(kBase, std::vector<uint8_t>(1024, 0x00)).code() == StatusCode::kFailedPrecondition);
  REQUIRE(flash->Erase(kBase, 1024).ok());
  CHECK(flash->torn_units() == 0);
  CHECK(flash->Read(kBase, sector).ok());
  CHECK_FALSE(flash->Mapped().empty());
}

TEST_CASE("fake flash: kRandom torn erase leaves one sector neither erased nor intact; with ECC it faults") {
  for (const bool ecc : {false, true}) {
    Memory g = MixedGeometry();
    g.ecc = ecc;
    std::vector<uint8_t> storage(kSize, 0x00);  // everything programmed
    FakeFlash flash(g, storage);
    flash.SetTornModel(TornModel::kRandom, 3);
    flash.CutPowerAfter(0, true);
    CHECK(flash.Erase(kBase, kSize).code() == StatusCode::kUnavailable);
    flash.PowerOn();
    const uint32_t starts[] = {0, 1024, 2048, kSize};
    int torn = 0;
    for (int s = 0; s < 3; ++s) {
      const auto begin = storage.begin() + starts[s];
      const auto end = storage.begin() + starts[s + 1];
      const bool erased = std::all_of(begin, end, [](uint8_t b) { return b == 0xff; });
      const bool intact = std::all_of(begin, end, [](uint8_t b) { return b == 0x00; });
      if (!erased && !intact) ++torn;
    }
    CHECK(torn == 1);
    CHECK(flash.torn_units() == (ecc ? 1 : 0));
    std::vector<uint8_t> all(kSize);
    CHECK(flash.Read(kBase, all).code() == (ecc ? StatusCode::kDataLoss : StatusCode::kOk));
  }
}
