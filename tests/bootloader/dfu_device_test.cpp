// The DFU/DfuSe state machine against the strict fake flash: every request,
// every state, every error path. Expected values come from the DFU 1.1 state
// table, DESIGN.md 6 and the rig's board numbers (pybd-sf6.json).
#include "bootloader/dfu_device.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "rig.h"

using namespace onedfu;
using namespace onedfu::test;

namespace {

bool AllErased(const std::vector<uint8_t>& v) {
  for (uint8_t b : v) {
    if (b != 0xff) return false;
  }
  return true;
}

// Fills [address, address + n) with a pattern directly (test set-up).
std::vector<uint8_t> Fill(Rig& rig, uint32_t address, size_t n, uint32_t seed) {
  auto data = Pattern(n, seed);
  FakeFlash& f = address >= kQspiBase ? rig.qspi : rig.internal;
  REQUIRE(f.Preload(address, data));
  return data;
}

}  // namespace

TEST_CASE("initial state: dfuIDLE, status OK, no poll timeout, no string") {
  Rig rig;
  REQUIRE(rig.init_ok);
  Status6 st = rig.GetStatus();
  CHECK_FALSE(st.stalled);
  CHECK(st.status == DfuStatus::kOk);
  CHECK(st.state == DfuState::kDfuIdle);
  CHECK(st.poll_ms == 0);
  CHECK(st.istring == 0);
  CHECK(rig.GetState() == DfuState::kDfuIdle);
  CHECK(rig.StatusString() == "OK");
  rig.dev().SetIdleMessage("no boot record");
  CHECK(rig.StatusString() == "no boot record");
}

TEST_CASE("Init refuses drivers that do not match the board") {
  Board b = PybdBoard();
  std::vector<uint8_t> small(1024 * 1024);
  Memory half = b.memories[0];
  half.sectors[2].count = 3;  // 1 MiB: does not match the board's 2 MiB
  FakeFlash wrong(half, small);
  std::vector<uint8_t> q(kQspiSize);
  FakeFlash qspi(b.memories[1], q);
  FlashMemory* memories[] = {&wrong, &qspi};
  bootloader::DfuDevice dev(b, memories);
  runtime::Diag diag;
  CHECK(dev.Init(&diag).code() == runtime::StatusCode::kInvalidArgument);
  CHECK(std::string(diag.c_str()).find("internal") != std::string::npos);
  // Until Init succeeds, everything stalls.
  SetupPacket s{0xa1, 3, 0, 0, 6};
  std::vector<uint8_t> buf(6);
  CHECK(dev.HandleControl(s, {}, buf).stall);
}

TEST_CASE("set address: busy first, then dnload-idle; address pointer moves") {
  Rig rig;
  Status6 first;
  Status6 st = rig.Command(Rig::Cmd(0x21, 0x08010000), &first);
  CHECK(first.state == DfuState::kDnbusy);
  CHECK(first.status == DfuStatus::kOk);
  CHECK(first.poll_ms == 0);  // no flash work
  CHECK(st.state == DfuState::kDnloadIdle);
  CHECK(st.status == DfuStatus::kOk);
  CHECK(rig.dev().address_pointer() == 0x08010000);
  CHECK(rig.internal.operations() == 0);
}

TEST_CASE("set address outside every memory: errADDRESS with a status string") {
  Rig rig;
  Status6 st = rig.SetAddress(0x70000000);
  CHECK(st.state == DfuState::kError);
  CHECK(st.status == DfuStatus::kErrAddress);
  CHECK(st.istring == bootloader::kStringStatus);
  CHECK(rig.StatusString() == "address 0x70000000 is outside every memory");
  // Reads as error until CLRSTATUS.
  CHECK(rig.GetStatus().state == DfuState::kError);
  CHECK_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  Status6 clear = rig.GetStatus();
  CHECK(clear.state == DfuState::kDfuIdle);
  CHECK(clear.status == DfuStatus::kOk);
  CHECK(clear.istring == 0);
  // The pointer did not move.
  CHECK(rig.dev().address_pointer() == kInternalBase);
}

TEST_CASE("busy then work: nothing happens before the busy status, work runs in Poll") {
  Rig rig;
  auto before = Fill(rig, kText0, 32 * 1024, 3);
  REQUIRE_FALSE(rig.Out(DfuRequest::kDnload, 0, Rig::Cmd(0x41, kText0)).stall);
  CHECK(rig.dev().state() == DfuState::kDnloadSync);
  CHECK(rig.internal.operations() == 0);
  CHECK(rig.dev().Poll() == false);  // busy not reported yet: nothing to do
  Status6 busy = rig.GetStatus();
  CHECK(busy.state == DfuState::kDnbusy);
  CHECK(busy.poll_ms == 450);  // 32 KiB sector: 450 ms in the timing model
  CHECK(rig.internal.operations() == 0);
  // A GETSTATE now is not allowed (DFU 1.1: only the status poll in dfuDNBUSY).
  CHECK(rig.Peek(kText0, 4) == std::vector<uint8_t>(before.begin(), before.begin() + 4));
  CHECK(rig.dev().Poll() == true);
  CHECK(rig.internal.operations() == 1);
  CHECK(AllErased(rig.Peek(kText0, 32 * 1024)));
  CHECK(rig.dev().state() == DfuState::kDnloadSync);
  CHECK(rig.dev().Poll() == false);
  Status6 done = rig.GetStatus();
  CHECK(done.state == DfuState::kDnloadIdle);
  CHECK(done.poll_ms == 0);
  CHECK(done.status == DfuStatus::kOk);
}

TEST_CASE("erase of the page containing an unaligned address") {
  Rig rig;
  auto low = Fill(rig, kText0, 3 * 32 * 1024, 5);
  Status6 st = rig.ErasePage(0x08010123);  // inside sector 2 (0x08010000..0x08018000)
  CHECK(st.state == DfuState::kDnloadIdle);
  CHECK(st.status == DfuStatus::kOk);
  CHECK(rig.Peek(kText0, 32 * 1024) == std::vector<uint8_t>(low.begin(), low.begin() + 32 * 1024));
  CHECK(AllErased(rig.Peek(0x08010000, 32 * 1024)));
  CHECK(rig.Peek(0x08018000, 32 * 1024) == std::vector<uint8_t>(low.begin() + 64 * 1024, low.end()));
  CHECK(rig.internal.counters().sectors_erased == 1);
  // The last byte of a QSPI sector erases that 4 KiB sector only.
  auto q = Fill(rig, kQspiBase, 3 * 4096, 6);
  CHECK(rig.ErasePage(kQspiBase + 2 * 4096 - 1).status == DfuStatus::kOk);
  CHECK(rig.Peek(kQspiBase, 4096) == std::vector<uint8_t>(q.begin(), q.begin() + 4096));
  CHECK(AllErased(rig.Peek(kQspiBase + 4096, 4096)));
  CHECK(rig.Peek(kQspiBase + 8192, 4096) == std::vector<uint8_t>(q.begin() + 8192, q.end()));
}

TEST_CASE("erase in the bootloader region is refused whatever the address") {
  Rig rig;
  for (uint32_t a : {kInternalBase, kInternalBase + 0x10, kBootloaderEnd - 1}) {
    Status6 first;
    Status6 st = rig.Command(Rig::Cmd(0x41, a), &first);
    CHECK(first.state == DfuState::kDnbusy);  // dfu-util insists on busy first
    CHECK(st.state == DfuState::kError);
    CHECK(st.status == DfuStatus::kErrAddress);
    CHECK(st.istring == bootloader::kStringStatus);
    char want[80];
    std::snprintf(want, sizeof want, "address 0x%08x is read-only (bootloader, reserved or in no region)", a);
    CHECK(rig.StatusString() == want);
    CHECK_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  }
  CHECK(rig.BootloaderIntact());
  CHECK(rig.internal.operations() == 0);
  // Outside every memory.
  Status6 st = rig.ErasePage(0x20000000);
  CHECK(st.status == DfuStatus::kErrAddress);
  CHECK(rig.StatusString() == "address 0x20000000 is outside every memory");
}

TEST_CASE("write and upload read-back") {
  Rig rig;
  auto data = Pattern(5000, 11);  // three blocks, the last one short
  REQUIRE(rig.ErasePage(kText0).status == DfuStatus::kOk);
  REQUIRE(rig.SetAddress(kText0).status == DfuStatus::kOk);
  for (uint16_t block = 2; block < 5; ++block) {
    const size_t off = (block - 2) * 2048u;
    const size_t n = std::min<size_t>(2048, data.size() - off);
    Status6 st = rig.Chunk(block, std::vector<uint8_t>(data.begin() + off, data.begin() + off + n));
    REQUIRE(st.status == DfuStatus::kOk);
    CHECK(st.state == DfuState::kDnloadIdle);
  }
  CHECK(rig.Peek(kText0, data.size()) == data);
  CHECK(rig.Peek(kText0 + 5000, 4) == std::vector<uint8_t>(4, 0xff));
  // UPLOAD is not allowed in dfuDNLOAD-IDLE: abort first, as dfu-util does.
  REQUIRE(rig.AbortToIdle().state == DfuState::kDfuIdle);
  std::vector<uint8_t> got;
  std::vector<uint8_t> block;
  for (uint16_t b = 2; got.size() < data.size(); ++b) {
    REQUIRE_FALSE(rig.In(DfuRequest::kUpload, b, 2048, &block).stall);
    got.insert(got.end(), block.begin(), block.end());
    CHECK(rig.GetStatus().state == DfuState::kUploadIdle);
  }
  got.resize(data.size());
  CHECK(got == data);
  // ABORT ends the upload.
  CHECK(rig.AbortToIdle().state == DfuState::kDfuIdle);
}

TEST_CASE("write poll timeouts follow the timing model") {
  Rig rig;
  REQUIRE(rig.SetAddress(kText0).status == DfuStatus::kOk);
  REQUIRE_FALSE(rig.Out(DfuRequest::kDnload, 2, std::vector<uint8_t>(2048, 0x5a)).stall);
  // 2048 bytes = 512 words x 16 us = 8.192 ms -> 9 ms.
  CHECK(rig.GetStatus().poll_ms == 9);
  CHECK(rig.GetStatus().state == DfuState::kDnloadIdle);
  REQUIRE(rig.SetAddress(kText1).status == DfuStatus::kOk);
  REQUIRE_FALSE(rig.Out(DfuRequest::kDnload, 2, std::vector<uint8_t>(2048, 0x5a)).stall);
  // 2048 bytes = 8 pages x 0.7 ms = 5.6 ms -> 6 ms.
  CHECK(rig.GetStatus().poll_ms == 6);
  CHECK(rig.GetStatus().state == DfuState::kDnloadIdle);
}

TEST_CASE("poll timeout cap: 0 makes the host poll at once and the work runs in that GETSTATUS") {
  bootloader::DfuOptions options;
  options.max_poll_timeout_ms = 0;
  Rig rig(options);
  Fill(rig, kText0, 16, 1);
  Status6 first;
  Status6 st = rig.Command(Rig::Cmd(0x41, kText0), &first);
  CHECK(first.state == DfuState::kDnbusy);
  CHECK(first.poll_ms == 0);
  CHECK(st.state == DfuState::kDnloadIdle);
  CHECK(AllErased(rig.Peek(kText0, 16)));
}

TEST_CASE("write into the bootloader region is refused and changes nothing") {
  Rig rig;
  REQUIRE(rig.SetAddress(kInternalBase).status == DfuStatus::kOk);
  Status6 st = rig.Chunk(2, std::vector<uint8_t>(2048, 0));
  CHECK(st.state == DfuState::kError);
  CHECK(st.status == DfuStatus::kErrAddress);
  CHECK(rig.StatusString() == "address 0x08000000 is read-only (bootloader, reserved or in no region)");
  CHECK(rig.BootloaderIntact());
  // A block that starts in the bootloader and runs into TEXT0: refused whole.
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  REQUIRE(rig.SetAddress(kBootloaderEnd - 1024).status == DfuStatus::kOk);
  st = rig.Chunk(2, std::vector<uint8_t>(2048, 0));
  CHECK(st.status == DfuStatus::kErrAddress);
  CHECK(rig.StatusString() == "address 0x08007c00 is read-only (bootloader, reserved or in no region)");
  CHECK(rig.BootloaderIntact());
  CHECK(AllErased(rig.Peek(kText0, 1024)));
  // A block number whose address would pass 4 GiB is refused, not wrapped.
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  REQUIRE(rig.SetAddress(0x90000000).status == DfuStatus::kOk);
  st = rig.Chunk(0xffff, std::vector<uint8_t>(4, 0));
  CHECK(st.status == DfuStatus::kErrAddress);  // 0x90000000 + 65533 * 2048 is past 4 GiB
  CHECK(rig.internal.operations() == 0);
  CHECK(rig.qspi.operations() == 0);
}

TEST_CASE("writes outside memories, past their end, misaligned") {
  Rig rig;
  // Past the end of internal flash.
  REQUIRE(rig.SetAddress(0x081ffc00).status == DfuStatus::kOk);
  Status6 st = rig.Chunk(2, std::vector<uint8_t>(2048, 0));
  CHECK(st.status == DfuStatus::kErrAddress);
  CHECK(rig.StatusString() == "write of 2048 bytes at 0x081ffc00 runs past the end of internal at 0x08200000");
  // Block 3 from the last valid pointer lands outside every memory.
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  REQUIRE(rig.SetAddress(0x081ff800).status == DfuStatus::kOk);
  st = rig.Chunk(3, std::vector<uint8_t>(16, 0));
  CHECK(st.status == DfuStatus::kErrAddress);
  CHECK(rig.StatusString() == "address 0x08200000 is outside every memory");
  // Misaligned start.
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  REQUIRE(rig.SetAddress(kText0 + 2).status == DfuStatus::kOk);
  st = rig.Chunk(2, std::vector<uint8_t>(16, 0));
  CHECK(st.status == DfuStatus::kErrAddress);
  CHECK(rig.StatusString() == "address 0x08008002 is not aligned to the 4-byte write unit");
  CHECK(rig.internal.operations() == 0);
}

TEST_CASE("short tail is padded with the erased value; erased units are skipped") {
  Rig rig;
  REQUIRE(rig.SetAddress(kText0).status == DfuStatus::kOk);
  std::vector<uint8_t> data(4096 / 2, 0xff);
  data[0] = 1;
  data[1000] = 2;
  data.resize(1003);  // not a multiple of 4
  data[1002] = 3;
  Status6 st = rig.Chunk(2, data);
  REQUIRE(st.status == DfuStatus::kOk);
  CHECK(rig.Peek(kText0, 1003) == data);
  CHECK(rig.Peek(kText0 + 1003, 1) == std::vector<uint8_t>{0xff});
  // Units 0, 250 (bytes 1000..1003 incl. the padded tail): two writes of 4 bytes.
  CHECK(rig.internal.counters().writes == 2);
  CHECK(rig.internal.counters().bytes_written == 8);
}

TEST_CASE("an erased gap inside one program unit is programmed with its run (no ECC), skipped with ECC") {
  // QSPI: 4-byte write units, 256-byte program units (pages). Units 0, 25 (page 0) and 75
  // (page 1): the gap inside page 0 costs no second page program; the gap across into page 1
  // is skipped.
  std::vector<uint8_t> data(512, 0xff);
  data[0] = 1;
  data[100] = 2;
  data[300] = 3;
  for (const bool ecc : {false, true}) {
    CAPTURE(ecc);
    Board b = PybdBoard();
    b.memories[1].ecc = ecc;
    Rig rig(bootloader::DfuOptions{}, b);
    REQUIRE(rig.init_ok);
    REQUIRE(rig.SetAddress(kText1).status == DfuStatus::kOk);
    REQUIRE(rig.Chunk(2, data).status == DfuStatus::kOk);
    CHECK(rig.Peek(kText1, data.size()) == data);
    CHECK(rig.qspi.counters().writes == (ecc ? 3u : 2u));
    CHECK(rig.qspi.counters().bytes_written == (ecc ? 12u : 108u));
  }
}

TEST_CASE("write over data that is not erased: errWRITE from the strict flash, errVERIFY when skipped") {
  Rig rig;
  REQUIRE(rig.SetAddress(kText0).status == DfuStatus::kOk);
  REQUIRE(rig.Chunk(2, std::vector<uint8_t>(64, 0x12)).status == DfuStatus::kOk);
  Status6 st = rig.Chunk(2, std::vector<uint8_t>(64, 0x34));
  CHECK(st.status == DfuStatus::kErrWrite);
  CHECK(rig.StatusString().find("write of 64 bytes at 0x08008000 failed") == 0);
  // All-0xff data is not programmed (erased units are skipped), so the
  // read-back catches that the flash still holds the old bytes.
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  REQUIRE(rig.SetAddress(kText0).status == DfuStatus::kOk);
  st = rig.Chunk(2, std::vector<uint8_t>(64, 0xff));
  CHECK(st.status == DfuStatus::kErrVerify);
  CHECK(rig.StatusString() == "verify failed at 0x08008000: flash holds 0x12, expected 0xff");
}

TEST_CASE("flash failures become errERASE and errWRITE") {
  Rig rig;
  rig.internal.FailAfter(0);
  Status6 st = rig.ErasePage(kText0);
  CHECK(st.status == DfuStatus::kErrErase);
  CHECK(rig.StatusString() == "erase of 32768 bytes at 0x08008000 failed: fake flash: injected erase failure");
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  REQUIRE(rig.SetAddress(kText0).status == DfuStatus::kOk);
  rig.internal.FailAfter(0);
  st = rig.Chunk(2, std::vector<uint8_t>(8, 1));
  CHECK(st.status == DfuStatus::kErrWrite);
  // Upload from a memory that fails to read: stall, errTARGET.
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  rig.internal.CutPowerAfter(0, false);
  REQUIRE(rig.ErasePage(kText0).status == DfuStatus::kErrErase);
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  std::vector<uint8_t> b;
  CHECK(rig.In(DfuRequest::kUpload, 2, 64, &b).stall);
  CHECK(rig.GetStatus().status == DfuStatus::kErrTarget);
}

TEST_CASE("mass erase skips the bootloader and filesystem regions") {
  bootloader::DfuOptions options;
  options.max_poll_timeout_ms = 100000;
  Rig rig(options);
  auto fs = Fill(rig, kFilesystem, 256 * 1024, 21);
  Fill(rig, kText0, 0x1b8000, 22);
  Fill(rig, kQspiBase, kQspiSize, 23);
  Status6 first;
  Status6 st = rig.Command({0x41}, &first);
  CHECK(first.state == DfuState::kDnbusy);
  // Internal: 3 x 32K (450 ms) + 128K (1300) + 6 x 256K (2600) = 18250 ms;
  // QSPI: 2 MiB in 64 KiB blocks = 32 x 150 ms = 4800 ms.
  CHECK(first.poll_ms == 18250 + 4800);
  CHECK(st.state == DfuState::kDnloadIdle);
  CHECK(st.status == DfuStatus::kOk);
  CHECK(rig.BootloaderIntact());
  CHECK(rig.Peek(kFilesystem, fs.size()) == fs);
  CHECK(AllErased(rig.Peek(kText0, 0x1b8000)));
  CHECK(AllErased(rig.qspi_bytes));
  // One Erase call per contiguous run: internal sectors 1-10, all of QSPI.
  CHECK(rig.internal.counters().erases == 1);
  CHECK(rig.internal.counters().sectors_erased == 10);
  CHECK(rig.qspi.counters().erases == 1);
  // The default cap keeps the reported value bounded.
  Rig capped;
  Status6 c;
  capped.Command({0x41}, &c);
  CHECK(c.poll_ms == 10000);
}

// PYBD-SF6 with flash that is not the package's: text1 becomes a reserved
// region "radio", and the filesystem region is dropped (its 256 KiB unlisted).
Board BoardWithReservedAndUnlisted() {
  Board b = PybdBoard();
  uint8_t kept = 0;
  for (uint8_t i = 0; i < b.region_count; ++i) {
    Region r = b.regions[i];
    if (r.role == RegionRole::kFilesystem) continue;
    if (std::string_view(r.name) == "text1") {
      std::strcpy(r.name, "radio");
      r.role = RegionRole::kReserved;
    }
    b.regions[kept++] = r;
  }
  b.region_count = kept;
  return b;
}

constexpr const char* kReadOnly = " is read-only (bootloader, reserved or in no region)";

TEST_CASE("reserved and unlisted flash: 'a' in the layout, erase and write refused with errADDRESS") {
  Rig rig(bootloader::DfuOptions{}, BoardWithReservedAndUnlisted());
  REQUIRE(rig.init_ok);
  auto unlisted = Fill(rig, kFilesystem, 256 * 1024, 41);
  auto radio = Fill(rig, kText1, 1024 * 1024, 42);
  std::vector<uint8_t> b;
  REQUIRE_FALSE(rig.In(0x80, 6, (3 << 8) | bootloader::kStringLayout, 0x0409, 255, &b).stall);
  std::string layout;
  for (size_t i = 2; i + 1 < b.size(); i += 2) layout.push_back(static_cast<char>(b[i]));
  CHECK(layout == "@Internal Flash  /0x08000000/01*032Ka,03*032Kg,01*128Kg,06*256Kg,01*256Ka"
                  "/0x90000000/256*04Ka,256*04Kg");
  for (uint32_t a : {kFilesystem, kFilesystem + 0x12345, kText1, kText1 + 0xfffff}) {
    CAPTURE(a);
    Status6 st = rig.ErasePage(a);
    CHECK(st.state == DfuState::kError);
    CHECK(st.status == DfuStatus::kErrAddress);
    char want[100];
    std::snprintf(want, sizeof want, "address 0x%08x%s", a, kReadOnly);
    CHECK(rig.StatusString() == want);
    REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  }
  // Writes: inside, and a block that starts in TEXT0 and runs into unlisted flash (refused
  // whole, naming the first read-only byte).
  for (uint32_t a : {kFilesystem, kText1 + 4096, kFilesystem - 1024}) {
    CAPTURE(a);
    REQUIRE(rig.SetAddress(a).status == DfuStatus::kOk);
    Status6 st = rig.Chunk(2, std::vector<uint8_t>(2048, 0));
    CHECK(st.status == DfuStatus::kErrAddress);
    char want[100];
    std::snprintf(want, sizeof want, "address 0x%08x%s", a < kFilesystem ? kFilesystem : a, kReadOnly);
    CHECK(rig.StatusString() == want);
    REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  }
  CHECK(AllErased(rig.Peek(kFilesystem - 1024, 1024)));
  CHECK(rig.internal.counters().erases + rig.qspi.counters().erases == 0);
  // Upload still reads them (readable).
  REQUIRE(rig.SetAddress(kText1).status == DfuStatus::kOk);
  REQUIRE(rig.AbortToIdle().state == DfuState::kDfuIdle);
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 2, 2048, &b).stall);
  CHECK(b == std::vector<uint8_t>(radio.begin(), radio.begin() + 2048));
  // Mass erase skips them, erases what the package may write.
  Fill(rig, kText0, 4096, 43);
  Fill(rig, kRomfs, 4096, 44);
  REQUIRE(rig.AbortToIdle().state == DfuState::kDfuIdle);
  const Status6 mass = rig.Command({0x41});
  REQUIRE_FALSE(mass.stalled);
  REQUIRE(mass.status == DfuStatus::kOk);
  REQUIRE(mass.state == DfuState::kDnloadIdle);
  CHECK(rig.BootloaderIntact());
  CHECK(rig.Peek(kFilesystem, unlisted.size()) == unlisted);
  CHECK(rig.Peek(kText1, radio.size()) == radio);
  CHECK(AllErased(rig.Peek(kText0, 4096)));
  CHECK(AllErased(rig.Peek(kRomfs, 4096)));
}

TEST_CASE("read-unprotect is accepted and does nothing; UPLOAD block 0 lists the commands") {
  Rig rig;
  Status6 st = rig.Command({0x92});
  CHECK(st.status == DfuStatus::kOk);
  CHECK(st.state == DfuState::kDnloadIdle);
  CHECK(rig.internal.operations() + rig.qspi.operations() == 0);
  REQUIRE(rig.AbortToIdle().state == DfuState::kDfuIdle);
  std::vector<uint8_t> b;
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 0, 2048, &b).stall);
  CHECK(b == std::vector<uint8_t>{0x00, 0x21, 0x41, 0x92, 0x48});
  // Short reply: the upload is over, back in dfuIDLE.
  CHECK(rig.GetState() == DfuState::kDfuIdle);
  // Exactly 4 asked: stays in dfuUPLOAD-IDLE.
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 0, 4, &b).stall);
  CHECK(rig.GetState() == DfuState::kUploadIdle);
}

TEST_CASE("malformed and unknown DfuSe commands: errUNKNOWN with the reason") {
  Rig rig;
  Status6 st = rig.Command({0x21, 0x00, 0x80});
  CHECK(st.status == DfuStatus::kErrUnknown);
  CHECK(rig.StatusString() == "DfuSe command 0x21 needs 5 bytes, got 3");
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  st = rig.Command({0x41, 1, 2});
  CHECK(rig.StatusString() == "DfuSe command 0x41 needs 5 bytes, got 3");
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  st = rig.Command({0x92, 0});
  CHECK(st.status == DfuStatus::kErrUnknown);
  REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  st = rig.Command({0x55, 1, 2, 3, 4});
  CHECK(st.status == DfuStatus::kErrUnknown);
  CHECK(rig.StatusString() == "unknown DfuSe command 0x55");
}

TEST_CASE("upload: short read at the end of a memory, an empty block past it (never a STALL)") {
  Rig rig;
  auto tail = Fill(rig, 0x081fff00, 256, 31);
  REQUIRE(rig.SetAddress(0x081fff00).status == DfuStatus::kOk);
  REQUIRE(rig.AbortToIdle().state == DfuState::kDfuIdle);
  std::vector<uint8_t> b;
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 2, 2048, &b).stall);
  CHECK(b == tail);
  CHECK(rig.GetState() == DfuState::kDfuIdle);  // short: upload over
  // Block 3 would start past the end of internal flash: an empty block ends the upload.
  std::vector<uint8_t> c(1);
  CHECK_FALSE(rig.In(DfuRequest::kUpload, 3, 2048, &c).stall);
  CHECK(c.empty());
  Status6 st = rig.GetStatus();
  CHECK(st.state == DfuState::kDfuIdle);
  CHECK(st.status == DfuStatus::kOk);
  // A whole block that ends exactly at the end, then the next one: full, then empty.
  auto last = Fill(rig, 0x081ff800, 0x700, 32);  // up to the 256-byte tail filled above
  last.insert(last.end(), tail.begin(), tail.end());
  REQUIRE(rig.SetAddress(0x081ff800).status == DfuStatus::kOk);
  REQUIRE(rig.AbortToIdle().state == DfuState::kDfuIdle);
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 2, 2048, &b).stall);
  CHECK(b == last);
  CHECK(rig.GetState() == DfuState::kUploadIdle);
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 3, 2048, &c).stall);
  CHECK(c.empty());
  CHECK(rig.GetState() == DfuState::kDfuIdle);
  // The bootloader region is readable (layout letter 'a').
  REQUIRE(rig.SetAddress(kInternalBase).status == DfuStatus::kOk);
  REQUIRE(rig.AbortToIdle().state == DfuState::kDfuIdle);
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 2, 2048, &b).stall);
  CHECK(b == std::vector<uint8_t>(rig.bootloader_image.begin(), rig.bootloader_image.begin() + 2048));
}

TEST_CASE("ABORT returns to dfuIDLE from dfuDNLOAD-IDLE, dfuUPLOAD-IDLE and dfuIDLE") {
  Rig rig;
  REQUIRE(rig.SetAddress(kText0).state == DfuState::kDnloadIdle);
  CHECK_FALSE(rig.Out(DfuRequest::kAbort, 0).stall);
  CHECK(rig.GetState() == DfuState::kDfuIdle);
  std::vector<uint8_t> b;
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 2, 64, &b).stall);
  CHECK(rig.GetState() == DfuState::kUploadIdle);
  CHECK_FALSE(rig.Out(DfuRequest::kAbort, 0).stall);
  CHECK(rig.GetState() == DfuState::kDfuIdle);
  CHECK_FALSE(rig.Out(DfuRequest::kAbort, 0).stall);
  CHECK(rig.GetState() == DfuState::kDfuIdle);
}

// Requests the state table does not allow: dfu_protocol_test.cpp, exhaustively.
TEST_CASE("malformed requests stall and enter dfuERROR (errSTALLEDPKT)") {
  struct Case {
    const char* name;
    void (*setup)(Rig&);
    ControlReply (*request)(Rig&);
  };
  auto idle = [](Rig&) {};
  const Case cases[] = {
      {"DNLOAD block 1", idle, [](Rig& r) { return r.Out(DfuRequest::kDnload, 1, {1, 2, 3, 4}); }},
      {"UPLOAD block 1", idle,
       [](Rig& r) {
         std::vector<uint8_t> b;
         return r.In(DfuRequest::kUpload, 1, 16, &b);
       }},
      {"DNLOAD longer than wTransferSize", idle,
       [](Rig& r) { return r.Out(DfuRequest::kDnload, 2, std::vector<uint8_t>(2049, 0)); }},
      {"UPLOAD longer than wTransferSize", idle,
       [](Rig& r) {
         std::vector<uint8_t> b;
         return r.In(DfuRequest::kUpload, 2, 4096, &b);
       }},
      {"request 7", idle, [](Rig& r) { return r.Out(7, 0, {}); }},
      {"GETSTATUS sent as OUT", idle, [](Rig& r) { return r.Out(DfuRequest::kGetStatus, 0); }},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Rig rig;
    c.setup(rig);
    const uint32_t ops = rig.internal.operations() + rig.qspi.operations();
    CHECK(c.request(rig).stall);
    Status6 st = rig.GetStatus();
    CHECK(st.state == DfuState::kError);
    CHECK(st.status == DfuStatus::kErrStalledPacket);
    CHECK(st.istring == bootloader::kStringStatus);
    CHECK_FALSE(rig.StatusString().empty());
    // Pending work was dropped, nothing was written.
    CHECK_FALSE(rig.dev().work_pending());
    CHECK(rig.dev().Poll() == false);
    CHECK(rig.internal.operations() + rig.qspi.operations() == ops);
    // Only CLRSTATUS (or GETSTATUS/GETSTATE) is accepted in dfuERROR.
    CHECK(rig.Out(DfuRequest::kAbort, 0).stall);
    CHECK(rig.GetState() == DfuState::kError);
    CHECK_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
    CHECK(rig.GetState() == DfuState::kDfuIdle);
  }
}

TEST_CASE("the stall reason is readable as the status string") {
  Rig rig;
  REQUIRE(rig.Out(DfuRequest::kClrStatus, 0).stall);
  CHECK(rig.StatusString() == "CLRSTATUS is not allowed in dfuIDLE");
}

TEST_CASE("leave: zero-length DNLOAD, GETSTATUS reports dfuMANIFEST, reset after that reply") {
  Rig rig;
  REQUIRE(rig.SetAddress(kText0).state == DfuState::kDnloadIdle);
  CHECK_FALSE(rig.Out(DfuRequest::kDnload, 2, {}).stall);
  CHECK_FALSE(rig.dev().reset_requested());  // not before the status went out
  Status6 st = rig.GetStatus();
  CHECK(st.state == DfuState::kManifest);
  CHECK(st.status == DfuStatus::kOk);
  CHECK(st.reset_after_status);
  CHECK(rig.dev().reset_requested());
  CHECK(rig.dev().state() == DfuState::kManifestWaitReset);
  // Waiting for the reset: further requests stall without changing state.
  CHECK(rig.Out(DfuRequest::kDnload, 0, Rig::Cmd(0x21, kText0)).stall);
  CHECK(rig.dev().state() == DfuState::kManifestWaitReset);
  Status6 again = rig.GetStatus();
  CHECK(again.state == DfuState::kManifestWaitReset);
  CHECK(again.reset_after_status);
  // A bus reset now means: reset the device.
  CHECK(rig.dev().BusReset());
}

TEST_CASE("leave right after ABORT (dfu-util -s :leave without an address)") {
  Rig rig;
  REQUIRE(rig.GetState() == DfuState::kDfuIdle);
  CHECK_FALSE(rig.Out(DfuRequest::kDnload, 2, {}).stall);
  Status6 st = rig.GetStatus();
  CHECK(st.state == DfuState::kManifest);
  CHECK(st.reset_after_status);
}

TEST_CASE("bus reset outside manifestation drops pending work and returns to dfuIDLE") {
  Rig rig;
  Fill(rig, kText0, 16, 2);
  REQUIRE_FALSE(rig.Out(DfuRequest::kDnload, 0, Rig::Cmd(0x41, kText0)).stall);
  REQUIRE(rig.GetStatus().state == DfuState::kDnbusy);
  CHECK_FALSE(rig.dev().BusReset());
  CHECK(rig.dev().state() == DfuState::kDfuIdle);
  CHECK(rig.dev().Poll() == false);
  CHECK(rig.internal.operations() == 0);
}

TEST_CASE("standard requests") {
  Rig rig;
  std::vector<uint8_t> b;
  SetupPacket set_address{0x00, 5, 12, 0, 0};
  CHECK_FALSE(rig.dev().HandleControl(set_address, {}, {}).stall);
  CHECK(rig.dev().usb_address() == 12);
  SetupPacket set_config{0x00, 9, 1, 0, 0};
  CHECK_FALSE(rig.dev().HandleControl(set_config, {}, {}).stall);
  CHECK(rig.dev().configuration() == 1);
  CHECK_FALSE(rig.In(0x80, 8, 0, 0, 1, &b).stall);
  CHECK(b == std::vector<uint8_t>{1});
  SetupPacket bad_config{0x00, 9, 2, 0, 0};
  CHECK(rig.dev().HandleControl(bad_config, {}, {}).stall);
  CHECK_FALSE(rig.In(0x80, 0, 0, 0, 2, &b).stall);
  CHECK(b == std::vector<uint8_t>{0, 0});
  SetupPacket set_alt0{0x01, 11, 0, 0, 0};
  CHECK_FALSE(rig.dev().HandleControl(set_alt0, {}, {}).stall);
  SetupPacket set_alt1{0x01, 11, 1, 0, 0};
  CHECK(rig.dev().HandleControl(set_alt1, {}, {}).stall);
  CHECK_FALSE(rig.In(0x81, 10, 0, 0, 1, &b).stall);
  CHECK(b == std::vector<uint8_t>{0});
  // Vendor requests and class requests to another interface stall and do
  // not disturb the DFU state.
  CHECK(rig.In(0xc0, 1, 0, 0, 4, &b).stall);
  CHECK(rig.In(0xa1, 3, 0, 1, 6, &b).stall);
  CHECK(rig.GetState() == DfuState::kDfuIdle);
  CHECK(rig.dev().BusReset() == false);
  CHECK(rig.dev().configuration() == 0);
}

TEST_CASE("GETSTATUS truncated by a short wLength") {
  Rig rig;
  std::vector<uint8_t> b;
  ControlReply r = rig.In(DfuRequest::kGetStatus, 0, 3, &b);
  CHECK_FALSE(r.stall);
  CHECK(r.length == 3);
}
