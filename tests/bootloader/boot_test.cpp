// The boot decision: every reason to stay in DFU mode, and the start case,
// on mapped and unmapped flash.
#include "bootloader/boot.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rig.h"

using namespace onedfu;
using namespace onedfu::test;
using bootloader::BootReason;

namespace {

// Installs `segments` and a record for them directly into flash.
struct Installed {
  std::vector<Element> segments;
  std::vector<uint8_t> record;
};

Installed Install(Rig& rig, std::vector<Element> segments, const char* board_id = "pybd-sf6") {
  Installed in;
  in.segments = std::move(segments);
  for (const Element& e : in.segments) {
    FakeFlash& f = e.address >= kQspiBase ? rig.qspi : rig.internal;
    REQUIRE(f.Preload(e.address, e.data));
  }
  in.record = MakeRecordElement(in.segments, "3.1.4", "{\"v\":1}", board_id);
  REQUIRE(rig.qspi.Preload(kRecord, in.record));
  return in;
}

std::vector<Element> TwoSegments() {
  return {{kText0, Pattern(4000, 1)}, {kText1, Pattern(3000, 2)}};
}

bootloader::BootDecision Decide(Rig& rig, bool forced = false) {
  return bootloader::Decide(rig.board, rig.memories, forced);
}

std::string Message(const bootloader::BootDecision& d) { return d.message.c_str(); }

// Rewrites record bytes in place (test set-up, not a DFU write).
void PatchRecord(Rig& rig, const runtime::BootRecord& r) {
  std::vector<uint8_t> bytes(runtime::kRecordSize);
  REQUIRE(runtime::EncodeBootRecord(r, bytes).ok());
  REQUIRE(rig.qspi.Preload(kRecord, bytes));
}

runtime::BootRecord Decoded(Rig& rig) {
  auto r = runtime::DecodeBootRecord(rig.Peek(kRecord, runtime::kRecordSize), nullptr);
  REQUIRE(r.ok());
  return r.value();
}

}  // namespace

TEST_CASE("boot: a complete, intact image starts") {
  Rig rig;
  Install(rig, TwoSegments());
  auto d = Decide(rig);
  CHECK(d.start_application);
  CHECK(d.reason == BootReason::kStartApplication);
  CHECK(d.entry == kText0);
  CHECK(d.bytes_hashed == 4000 + 3000 + 7);
  CHECK(Message(d) == "package 3.1.4: 2 segments verified");
  // Hashing reads mapped flash in place: no Read calls.
  CHECK(rig.internal.counters().reads == 0);
  CHECK(rig.qspi.counters().reads == 0);
}

TEST_CASE("boot: unmapped memories are hashed through bounded reads") {
  Board b = PybdBoard();
  b.memories[1].mapped = false;
  Rig rig(bootloader::DfuOptions{}, b);
  Install(rig, TwoSegments());
  auto d = Decide(rig);
  CHECK(d.start_application);
  // Record (2048 bytes, one read), text1 in 256-byte chunks (12), manifest (1).
  CHECK(rig.qspi.counters().reads == 1 + 12 + 1);
  CHECK(rig.internal.counters().reads == 0);
}

TEST_CASE("boot: forced DFU entry wins without reading flash") {
  Rig rig;
  Install(rig, TwoSegments());
  auto d = Decide(rig, true);
  CHECK_FALSE(d.start_application);
  CHECK(d.reason == BootReason::kForced);
  CHECK(d.bytes_hashed == 0);
}

TEST_CASE("boot: blank board has no record") {
  Rig rig;
  auto d = Decide(rig);
  CHECK(d.reason == BootReason::kNoRecord);
  CHECK(Message(d) == "boot record: erased (no record)");
}

TEST_CASE("boot: a damaged record (one flipped byte) stays in DFU") {
  Rig rig;
  Install(rig, TwoSegments());
  rig.qspi_bytes[kRecord - kQspiBase + 300] ^= 0x01;  // inside the segment table
  auto d = Decide(rig);
  CHECK(d.reason == BootReason::kDamagedRecord);
  CHECK(Message(d).find("CRC") != std::string::npos);
}

TEST_CASE("boot: a torn record write stays in DFU") {
  Rig rig;
  Install(rig, TwoSegments());
  std::fill(rig.qspi_bytes.begin() + (kRecord - kQspiBase) + 1024, rig.qspi_bytes.begin() + (kRecord - kQspiBase) + 2048,
            0xff);
  CHECK(Decide(rig).reason == BootReason::kDamagedRecord);
}

TEST_CASE("boot: revoked record") {
  Rig rig;
  Install(rig, TwoSegments());
  rig.qspi_bytes[kRecord - kQspiBase + runtime::kRevokeOffset + 5] = 0x00;  // even a partial revoke
  auto d = Decide(rig);
  CHECK(d.reason == BootReason::kRevoked);
}

TEST_CASE("boot: record for another board") {
  Rig rig;
  Install(rig, TwoSegments(), "pybv10");
  auto d = Decide(rig);
  CHECK(d.reason == BootReason::kWrongBoard);
  CHECK(Message(d) == "boot record is for board pybv10, this is pybd-sf6");
}

TEST_CASE("boot: hash mismatch names the segment") {
  Rig rig;
  Install(rig, TwoSegments());
  rig.qspi_bytes[1234] ^= 0x80;  // inside segment 1 (text1)
  auto d = Decide(rig);
  CHECK_FALSE(d.start_application);
  CHECK(d.reason == BootReason::kHashMismatch);
  CHECK(d.segment == 1);
  CHECK(Message(d) == "segment 1 at 0x90000000 (3000 bytes): SHA-256 mismatch");
  CHECK(d.bytes_hashed == 4000 + 3000);
}

TEST_CASE("boot: no segment holds the application entry") {
  Rig rig;
  Install(rig, {{kText0 + 0x1000, Pattern(100, 4)}});
  auto d = Decide(rig);
  CHECK(d.reason == BootReason::kNoApplication);
  CHECK(Message(d) == "no segment holds the application entry 0x08008000");
}

TEST_CASE("boot: a segment outside every memory is a damaged record, checked before hashing") {
  Rig rig;
  Install(rig, TwoSegments());
  runtime::BootRecord r = Decoded(rig);
  r.segments[1].address = 0x081fff00;  // runs past the end of internal flash
  r.segments[1].length = 0x200;
  PatchRecord(rig, r);
  auto d = Decide(rig);
  CHECK(d.reason == BootReason::kDamagedRecord);
  CHECK(d.segment == 1);
  CHECK(d.bytes_hashed == 0);
}

TEST_CASE("boot: ROMFS image and manifest hashes") {
  Rig rig;
  Install(rig, TwoSegments());
  auto romfs = Pattern(600, 9);
  REQUIRE(rig.qspi.Preload(kRomfs, romfs));
  runtime::BootRecord r = Decoded(rig);
  r.romfs.address = kRomfs;
  r.romfs.size = 600;
  r.romfs.sha256 = runtime::Sha256Digest(romfs);
  PatchRecord(rig, r);
  auto ok = Decide(rig);
  CHECK(ok.start_application);
  CHECK(ok.bytes_hashed == 4000 + 3000 + 600 + 7);
  rig.qspi_bytes[kRomfs - kQspiBase + 599] ^= 1;
  CHECK(Decide(rig).reason == BootReason::kRomfsMismatch);
  rig.qspi_bytes[kRomfs - kQspiBase + 599] ^= 1;
  // Manifest bytes right after the record.
  rig.qspi_bytes[kRecord - kQspiBase + runtime::kRecordSize + 2] ^= 1;
  auto d = Decide(rig);
  CHECK(d.reason == BootReason::kManifestMismatch);
  // A manifest longer than the record region can hold.
  r.manifest_length = 4096;
  PatchRecord(rig, r);
  CHECK(Decide(rig).reason == BootReason::kDamagedRecord);
}

TEST_CASE("boot: unreadable flash is a flash error, not a crash") {
  Board b = PybdBoard();
  b.memories[1].mapped = false;
  Rig rig(bootloader::DfuOptions{}, b);
  Install(rig, TwoSegments());
  rig.qspi.CutPowerAfter(0, false);
  std::vector<uint8_t> w(4, 0);
  REQUIRE(rig.qspi.Write(kQspiBase + 0x10000, w).code() == runtime::StatusCode::kUnavailable);
  REQUIRE_FALSE(rig.qspi.powered());  // reads of the record now fail
  auto d = bootloader::Decide(rig.board, rig.memories, false);
  CHECK(d.reason == BootReason::kFlashError);
}

TEST_CASE("boot: a board without a record region") {
  Rig rig;
  rig.board.regions[5].role = RegionRole::kRomfs;
  auto d = Decide(rig);
  CHECK(d.reason == BootReason::kNoRecordRegion);
}

TEST_CASE("boot reason names") {
  CHECK(std::string(bootloader::BootReasonName(BootReason::kHashMismatch)) == "hash mismatch");
  CHECK(std::string(bootloader::BootReasonName(BootReason::kStartApplication)) == "start application");
}
