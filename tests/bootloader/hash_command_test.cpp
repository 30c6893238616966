// The onedfu DfuSe vendor command kDfuseHash (bootloader/dfu.h): SHA-256 of
// an address range in the UPLOAD of block 0 that follows it, on both
// memories of the PYBD-SF6 rig (mapped and not), bounded per request, with
// the poll timeout of the board cost model (runtime/flash_timing.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "rig.h"
#include "runtime/flash_timing.h"

using namespace onedfu;
using namespace onedfu::test;

namespace {

std::vector<uint8_t> HashCommand(uint32_t address, uint32_t length) {
  std::vector<uint8_t> c = Rig::Cmd(bootloader::kDfuseHash, address);
  for (int i = 0; i < 4; ++i) c.push_back(static_cast<uint8_t>(length >> (8 * i)));
  return c;
}

// The whole exchange a host makes: command, poll, ABORT, UPLOAD block 0.
// Returns the UPLOAD bytes (empty when the command failed); `first` gets the
// first GETSTATUS reply, `last` the final one.
std::vector<uint8_t> HashOf(Rig& rig, uint32_t address, uint32_t length, Status6* first = nullptr,
                            Status6* last = nullptr) {
  Status6 f;
  const Status6 st = rig.Command(HashCommand(address, length), &f);
  if (first) *first = f;
  if (last) *last = st;
  if (st.status != DfuStatus::kOk || st.state != DfuState::kDnloadIdle) return {};
  if (rig.AbortToIdle().state != DfuState::kDfuIdle) return {};
  std::vector<uint8_t> b;
  if (rig.In(DfuRequest::kUpload, 0, 2048, &b).stall) return {};
  return b;
}

std::vector<uint8_t> Reply(const std::vector<uint8_t>& data) {
  const runtime::Sha256Hash h = runtime::Sha256Digest(data);
  std::vector<uint8_t> r(bootloader::kDfuseHashReplySize, bootloader::kDfuseHash);
  std::copy(h.begin(), h.end(), r.begin() + 1);
  return r;
}

uint32_t ModelPollMs(const Board& board, uint32_t length) {
  return static_cast<uint32_t>((runtime::HashTimeUs(board.boot_cost, length) + 999) / 1000);
}

}  // namespace

TEST_CASE("hash command: listed in the command list, which stays a DfuSe list") {
  Rig rig;
  std::vector<uint8_t> b;
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 0, 2048, &b).stall);
  REQUIRE(!b.empty());
  CHECK(b[0] == bootloader::kDfuseGetCommands);
  CHECK(std::count(b.begin(), b.end(), bootloader::kDfuseHash) == 1);
}

TEST_CASE("hash command: a range inside internal flash and inside QSPI") {
  Rig rig;
  const std::vector<uint8_t> text0 = Pattern(5000, 3);
  const std::vector<uint8_t> romfs = Pattern(4096 * 3 + 17, 4);
  REQUIRE(rig.internal.Preload(kText0, text0));
  REQUIRE(rig.qspi.Preload(kRomfs, romfs));
  const uint32_t operations = rig.internal.operations() + rig.qspi.operations();

  Status6 first;
  CHECK(HashOf(rig, kText0, 5000, &first) == Reply(text0));
  CHECK(first.state == DfuState::kDnbusy);
  CHECK(HashOf(rig, kRomfs, static_cast<uint32_t>(romfs.size())) == Reply(romfs));
  // Part of a range, erased bytes, the (readable) bootloader region, length 0.
  CHECK(HashOf(rig, kText0 + 10, 100) == Reply(std::vector<uint8_t>(text0.begin() + 10, text0.begin() + 110)));
  CHECK(HashOf(rig, kText1, 4096) == Reply(std::vector<uint8_t>(4096, 0xff)));
  CHECK(HashOf(rig, kInternalBase, 2048) ==
        Reply(std::vector<uint8_t>(rig.bootloader_image.begin(), rig.bootloader_image.begin() + 2048)));
  CHECK(HashOf(rig, kText0, 0) == Reply({}));
  // The last bytes of a memory.
  CHECK(HashOf(rig, kQspiBase + kQspiSize - 64, 64) == Reply(std::vector<uint8_t>(64, 0xff)));
  // Hashing changes nothing.
  CHECK(rig.internal.operations() + rig.qspi.operations() == operations);
  CHECK(rig.BootloaderIntact());
}

TEST_CASE("hash command: an unmapped memory is hashed through bounded reads") {
  Board board = PybdBoard();
  board.memories[1].mapped = false;
  Rig rig(bootloader::DfuOptions{}, board);
  REQUIRE(rig.init_ok);
  const std::vector<uint8_t> data = Pattern(3000, 9);
  REQUIRE(rig.qspi.Preload(kText1 + 100, data));
  const uint64_t reads = rig.qspi.counters().reads;
  CHECK(HashOf(rig, kText1 + 100, 3000) == Reply(data));
  CHECK(rig.qspi.counters().reads == reads + (3000 + 255) / 256);
}

TEST_CASE("hash command: the result is for the next UPLOAD of block 0 only") {
  Rig rig;
  const std::vector<uint8_t> list{0x00, 0x21, 0x41, 0x92, 0x48};
  REQUIRE(HashOf(rig, kText0, 64).size() == bootloader::kDfuseHashReplySize);
  std::vector<uint8_t> b;
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 0, 2048, &b).stall);
  CHECK(b == list);  // once delivered, block 0 is the command list again
  // Another DNLOAD in between drops the result.
  REQUIRE(rig.Command(HashCommand(kText0, 64)).status == DfuStatus::kOk);
  REQUIRE(rig.SetAddress(kText0).status == DfuStatus::kOk);
  REQUIRE(rig.AbortToIdle().state == DfuState::kDfuIdle);
  REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 0, 2048, &b).stall);
  CHECK(b == list);
}

TEST_CASE("hash command: ranges outside every memory, spanning a memory's end or over the cap are errADDRESS") {
  Rig rig;
  struct Case {
    uint32_t address;
    uint32_t length;
    const char* text;
  };
  const Case cases[] = {
      {0x00000000, 16, "hash of 16 bytes at 0x00000000 failed: range not in one memory or over 64 KiB"},
      {0x08200000, 1, "hash of 1 bytes at 0x08200000 failed: range not in one memory or over 64 KiB"},
      {0x081fff00, 0x200, "hash of 512 bytes at 0x081fff00 failed: range not in one memory or over 64 KiB"},
      {0xffffff00, 0x1000, "hash of 4096 bytes at 0xffffff00 failed: range not in one memory or over 64 KiB"},
      {kText0, bootloader::kDfuseHashMaxLength + 1,
       "hash of 65537 bytes at 0x08008000 failed: range not in one memory or over 64 KiB"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.address);
    Status6 last;
    CHECK(HashOf(rig, c.address, c.length, nullptr, &last).empty());
    CHECK(last.status == DfuStatus::kErrAddress);
    CHECK(last.state == DfuState::kError);
    CHECK(rig.StatusString() == c.text);
    REQUIRE_FALSE(rig.Out(DfuRequest::kClrStatus, 0).stall);
    // No stale result: block 0 is the command list.
    std::vector<uint8_t> b;
    REQUIRE_FALSE(rig.In(DfuRequest::kUpload, 0, 2048, &b).stall);
    CHECK(b[0] == bootloader::kDfuseGetCommands);
  }
  // The cap itself is fine.
  CHECK(HashOf(rig, kText0, bootloader::kDfuseHashMaxLength) ==
        Reply(std::vector<uint8_t>(bootloader::kDfuseHashMaxLength, 0xff)));
}

TEST_CASE("hash command: a wrong command length is errUNKNOWN") {
  Rig rig;
  std::vector<uint8_t> short_command = HashCommand(kText0, 64);
  short_command.resize(5);
  const Status6 st = rig.Command(short_command);
  CHECK(st.status == DfuStatus::kErrUnknown);
  CHECK(rig.StatusString() == "DfuSe command 0x48 needs 9 bytes, got 5");
}

TEST_CASE("hash command: bwPollTimeout is the cost model's hash time, rounded up to ms") {
  Rig rig;
  for (uint32_t length : {0u, 1u, 4096u, 20000u, bootloader::kDfuseHashMaxLength}) {
    CAPTURE(length);
    Status6 first;
    REQUIRE(HashOf(rig, kText0, length, &first).size() == bootloader::kDfuseHashReplySize);
    CHECK(first.state == DfuState::kDnbusy);
    CHECK(first.poll_ms == ModelPollMs(rig.board, length));
  }
  // PYBD-SF6's boot_cost: 50 cycles per byte at 144 MHz, 356 us per KiB; 64 KiB is 22.8 ms of
  // work, reported as 23 ms.
  CHECK(runtime::HashUsPerKiB(rig.board.boot_cost) == 356);
  CHECK(ModelPollMs(rig.board, bootloader::kDfuseHashMaxLength) == 23);
  // With the cap at 0 (mboot's way) the host polls at once and gets the same digest.
  bootloader::DfuOptions zero;
  zero.max_poll_timeout_ms = 0;
  Rig quick(zero);
  Status6 first;
  CHECK(HashOf(quick, kText0, 4096, &first) == Reply(std::vector<uint8_t>(4096, 0xff)));
  CHECK(first.poll_ms == 0);
}
