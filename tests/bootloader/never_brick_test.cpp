// dfu-util's exact download sequence for a multi-element package against the
// strict fake, the never-brick commit rules (DESIGN.md 7), and a power-cut
// sweep over every flash operation of an update (before it, and torn).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "bootloader/boot.h"
#include "bootloader/dfu_device.h"
#include "rig.h"

using namespace onedfu;
using namespace onedfu::test;

namespace {

struct Package {
  std::string version;
  std::vector<Element> elements;  // the record element is last
};

Package MakePackage(const char* version, uint32_t seed) {
  Package p;
  p.version = version;
  p.elements.push_back({kText0, Pattern(70000, seed)});
  p.elements.push_back({kText1, Pattern(10002, seed + 1)});  // odd tail: padded by the device
  p.elements.push_back({kRomfs, Pattern(5000, seed + 2)});
  const std::string manifest = std::string("{\"version\":\"") + version + "\",\"board\":\"pybd-sf6\"}";
  p.elements.push_back({kRecord, MakeRecordElement(p.elements, version, manifest)});
  return p;
}

uint32_t PageSize(uint32_t address) { return address >= kQspiBase ? 4096 : 32 * 1024; }

// dfu-util -a 0 -D pkg.dfu -s :leave, request for request (dfu-util 0.11
// dfuse.c): SET_INTERFACE, status check, per element erase pass + write pass,
// ABORT + GETSTATUS (must be dfuIDLE), leave (zero-length DNLOAD, GETSTATUS
// must say dfuMANIFEST). Returns false where dfu-util would give up.
bool DfuUtilDownload(Rig& rig, const Package& p) {
  SetupPacket set_interface{0x01, 11, 0, 0, 0};
  if (rig.dev().HandleControl(set_interface, {}, {}).stall) return false;
  Status6 st = rig.GetStatus();
  if (st.state != DfuState::kDfuIdle) return false;
  uint32_t last_erased_page = 0;
  for (const Element& e : p.elements) {
    if (!DfuUtilElement(rig, e, PageSize(e.address), &last_erased_page)) return false;
  }
  if (rig.AbortToIdle().state != DfuState::kDfuIdle) return false;
  if (rig.Out(DfuRequest::kDnload, 2, {}).stall) return false;
  st = rig.GetStatus();
  return st.state == DfuState::kManifest && st.reset_after_status;
}

bootloader::BootDecision Boot(Rig& rig) {
  rig.internal.PowerOn();
  rig.qspi.PowerOn();
  return bootloader::Decide(rig.board, rig.memories, false);
}

bool FlashHolds(Rig& rig, const Package& p) {
  for (const Element& e : p.elements) {
    if (rig.Peek(e.address, e.data.size()) != e.data) return false;
  }
  return true;
}

void Reboot(Rig& rig) {
  rig.Reboot();
  REQUIRE(rig.init_ok);
}

std::string RecordVersion(Rig& rig) {
  auto bytes = rig.Peek(kRecord, runtime::kRecordSize);
  auto r = runtime::DecodeBootRecord(bytes, nullptr);
  return r.ok() ? std::string(r.value().package_version) : std::string();
}

}  // namespace

TEST_CASE("dfu-util download of a multi-element package onto a blank board") {
  Rig rig;
  const Package pkg = MakePackage("1.0.0", 100);
  REQUIRE(DfuUtilDownload(rig, pkg));
  CHECK(FlashHolds(rig, pkg));
  CHECK(rig.BootloaderIntact());
  CHECK(rig.dev().reset_requested());
  // The padded tail of the odd-sized element stayed erased.
  CHECK(rig.Peek(kText1 + 10002, 2) == std::vector<uint8_t>{0xff, 0xff});
  // Erases: text0 70000 bytes -> 3 sectors of 32K; QSPI: text1 3 x 4K,
  // romfs 2 x 4K, record 1 x 4K.
  CHECK(rig.internal.counters().sectors_erased == 3);
  CHECK(rig.qspi.counters().sectors_erased == 6);
  // Nothing to revoke on a blank board.
  CHECK(rig.dev().flash().revocations() == 0);
  bootloader::BootDecision d = Boot(rig);
  CHECK(d.start_application);
  CHECK(d.reason == bootloader::BootReason::kStartApplication);
  CHECK(d.entry == kText0);
  auto record = runtime::DecodeBootRecord(pkg.elements[3].data, nullptr);
  REQUIRE(record.ok());
  CHECK(record.value().manifest_length > 0);
  CHECK(d.bytes_hashed == 70000 + 10002 + 5000 + record.value().manifest_length);
}

TEST_CASE("update: the old record is revoked before the first change it covers, new record last") {
  Rig rig;
  const Package old_pkg = MakePackage("1.0.0", 100);
  const Package new_pkg = MakePackage("2.0.0", 200);
  REQUIRE(DfuUtilDownload(rig, old_pkg));
  REQUIRE(Boot(rig).start_application);
  Reboot(rig);

  SUBCASE("changes outside what the record covers do not revoke") {
    REQUIRE(rig.ErasePage(kFilesystem + 5).status == DfuStatus::kOk);
    REQUIRE(rig.SetAddress(kText0 + 0x100000).status == DfuStatus::kOk);  // erased, not a segment
    REQUIRE(rig.Chunk(2, Pattern(2048, 9)).status == DfuStatus::kOk);
    REQUIRE(rig.AbortToIdle().state == DfuState::kDfuIdle);
    std::vector<uint8_t> b;
    REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 2, 2048, &b).stall);  // reads never revoke
    CHECK(rig.dev().flash().revocations() == 0);
    CHECK(Boot(rig).start_application);
  }
  SUBCASE("the revoke is programmed before the erase, even when the erase then fails") {
    const uint32_t qspi_ops = rig.qspi.operations();
    rig.internal.FailAfter(0);
    Status6 st = rig.ErasePage(kText0 + 0x1000);
    CHECK(st.status == DfuStatus::kErrErase);
    CHECK(rig.qspi.operations() == qspi_ops + 1);  // one write: the revoke block
    CHECK(rig.Peek(kRecord + runtime::kRevokeOffset, runtime::kRevokeSize) ==
          std::vector<uint8_t>(runtime::kRevokeSize, 0x00));
    CHECK(rig.dev().flash().revocations() == 1);
    bootloader::BootDecision d = Boot(rig);
    CHECK_FALSE(d.start_application);
    CHECK(d.reason == bootloader::BootReason::kRevoked);
    // The old image itself is still intact: only the record was revoked.
    CHECK(FlashHolds(rig, {"", {old_pkg.elements[0], old_pkg.elements[1], old_pkg.elements[2]}}));
  }
  SUBCASE("mass erase revokes first, then erases the record too") {
    REQUIRE(rig.Command({0x41}).status == DfuStatus::kOk);
    CHECK(rig.dev().flash().revocations() == 1);
    CHECK(Boot(rig).reason == bootloader::BootReason::kNoRecord);
    CHECK(rig.BootloaderIntact());
  }
  SUBCASE("a complete update boots the new package; one revocation") {
    REQUIRE(DfuUtilDownload(rig, new_pkg));
    CHECK(FlashHolds(rig, new_pkg));
    CHECK(rig.dev().flash().revocations() == 1);
    bootloader::BootDecision d = Boot(rig);
    CHECK(d.start_application);
    CHECK(RecordVersion(rig) == "2.0.0");
    // After leave the device only waits for its reset.
    CHECK(rig.ErasePage(kText0).stalled);
    Reboot(rig);
    REQUIRE(rig.ErasePage(kText0).status == DfuStatus::kOk);
    CHECK(rig.dev().flash().revocations() == 1);
    CHECK(Boot(rig).reason == bootloader::BootReason::kRevoked);
  }
  SUBCASE("a record written in this session is protected like the old one") {
    uint32_t last_erased_page = 0;
    for (const Element& e : new_pkg.elements) {
      REQUIRE(DfuUtilElement(rig, e, PageSize(e.address), &last_erased_page));
    }
    CHECK(rig.dev().flash().revocations() == 1);
    CHECK(Boot(rig).start_application);
    REQUIRE(rig.ErasePage(kRomfs).status == DfuStatus::kOk);
    CHECK(rig.dev().flash().revocations() == 2);
    CHECK(Boot(rig).reason == bootloader::BootReason::kRevoked);
  }
}

TEST_CASE("power-cut sweep over an update: old, new or DFU mode; re-flash always works") {
  const Package old_pkg = MakePackage("1.0.0", 100);
  const Package new_pkg = MakePackage("2.0.0", 200);

  // How many flash operations the update makes on each memory.
  Rig probe;
  REQUIRE(DfuUtilDownload(probe, old_pkg));
  Reboot(probe);
  probe.internal.ResetCounters();
  probe.qspi.ResetCounters();
  REQUIRE(DfuUtilDownload(probe, new_pkg));
  const uint32_t total_internal = probe.internal.operations();
  const uint32_t total_qspi = probe.qspi.operations();
  // text0 (70000 bytes): 3 sector erases + 35 chunk writes. QSPI: the revoke;
  // 3 + 2 + 1 sector erases; text1 5 chunks, the last one (1810 bytes) split
  // into 1808 bytes + a padded 4-byte tail; romfs 3 chunks; the record chunk
  // in 1 run (its erased revoke block lies inside one 256-byte page, so QSPI,
  // without ECC, programs it with the run), then the manifest chunk.
  CHECK(total_internal == 3 + 35);
  CHECK(total_qspi == 1 + (3 + 2 + 1) + (5 + 1) + 3 + (1 + 1));

  int cuts = 0;
  int started_old = 0;
  int started_new = 0;
  int stayed = 0;
  for (int memory = 0; memory < 2; ++memory) {
    const uint32_t total = memory == 0 ? total_internal : total_qspi;
    for (uint32_t k = 0; k < total; ++k) {
      for (bool torn : {false, true}) {
        CAPTURE(memory);
        CAPTURE(k);
        CAPTURE(torn);
        Rig rig;
        REQUIRE(DfuUtilDownload(rig, old_pkg));
        Reboot(rig);
        const std::vector<uint8_t> fs_before = rig.Peek(kFilesystem, 256 * 1024);
        (memory == 0 ? rig.internal : rig.qspi).CutPowerAfter(k, torn);
        CHECK_FALSE(DfuUtilDownload(rig, new_pkg));
        ++cuts;
        // Reboot: the decision must be a complete old or new image, or DFU.
        bootloader::BootDecision d = Boot(rig);
        CHECK(rig.BootloaderIntact());
        CHECK(rig.Peek(kFilesystem, 256 * 1024) == fs_before);
        if (d.start_application) {
          const std::string v = RecordVersion(rig);
          CHECK((v == "1.0.0" || v == "2.0.0"));
          CHECK(FlashHolds(rig, v == "1.0.0" ? old_pkg : new_pkg));
          (v == "1.0.0" ? started_old : started_new)++;
        } else {
          ++stayed;
        }
        // Flashing the new package again succeeds and boots it.
        Reboot(rig);
        REQUIRE(DfuUtilDownload(rig, new_pkg));
        bootloader::BootDecision after = Boot(rig);
        CHECK(after.start_application);
        CHECK(RecordVersion(rig) == "2.0.0");
      }
    }
  }
  MESSAGE("cuts=" << cuts << " old=" << started_old << " new=" << started_new << " dfu=" << stayed);
  CHECK(cuts == static_cast<int>(2 * (total_internal + total_qspi)));
  CHECK(stayed > 0);
}
