// FileFlash: persistence in the file, FakeFlash's strictness and faults through it, the timing
// decorator (what completed calls cost, erases per sector), and the device's poll timeout
// agreeing with what the simulator charges.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "bootloader/dfu_device.h"
#include "file_flash.h"
#include "host/board_json.h"
#include "test_support.h"
#include "sim_board.h"

using namespace onedfu;
using onedfu::sim::FileFlash;

namespace {

// A QSPI-like memory: 32 x 4 KiB at 0x90000000, 4-byte writes, 256-byte pages at 700 us,
// 4 KiB erase 45 ms, 64 KiB block erase 150 ms.
runtime::Memory Qspi() {
  runtime::Memory m;
  std::strcpy(m.name, "qspi");
  m.base = 0x90000000;
  m.sectors[0] = {32, 4096};
  m.sector_group_count = 1;
  m.write_align = 4;
  m.mapped = true;
  m.erase_timings[0] = {4096, 45000};
  m.erase_timings[1] = {65536, 150000};
  m.erase_timing_count = 2;
  m.program_us = 700;
  m.program_bytes = 256;
  return m;
}

// Mixed sectors: 2 x 16 KiB + 1 x 64 KiB at 0x08000000.
runtime::Memory Internal() {
  runtime::Memory m;
  std::strcpy(m.name, "internal");
  m.base = 0x08000000;
  m.sectors[0] = {2, 16384};
  m.sectors[1] = {1, 65536};
  m.sector_group_count = 2;
  m.write_align = 4;
  m.mapped = true;
  m.erase_timings[0] = {16384, 300000};
  m.erase_timings[1] = {65536, 700000};
  m.erase_timing_count = 2;
  m.program_us = 16;
  m.program_bytes = 4;
  return m;
}

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

}  // namespace

TEST_CASE("a missing file is created erased, an existing one is reopened with its contents") {
  const auto dir = testing::Scratch("file_flash_create");
  const auto path = dir / "qspi.bin";
  {
    auto flash = FileFlash::Open(Qspi(), path);
    REQUIRE(flash.ok());
    CHECK(flash.value()->created());
    CHECK(std::filesystem::file_size(path) == 32u * 4096);
    const auto all = flash.value()->contents();
    CHECK(std::all_of(all.begin(), all.end(), [](uint8_t b) { return b == 0xff; }));
    REQUIRE(flash.value()->Write(0x90001000, Bytes(8, 1)).ok());
  }
  auto again = FileFlash::Open(Qspi(), path);
  REQUIRE(again.ok());
  CHECK_FALSE(again.value()->created());
  std::vector<uint8_t> out(8);
  REQUIRE(again.value()->Read(0x90001000, out).ok());
  CHECK(out == Bytes(8, 1));
  // The file holds the bytes at offset address - base.
  std::ifstream file(path, std::ios::binary);
  file.seekg(0x1000);
  std::vector<uint8_t> raw(8);
  file.read(reinterpret_cast<char*>(raw.data()), 8);
  CHECK(raw == Bytes(8, 1));
}

TEST_CASE("a file of the wrong size is refused with its path") {
  const auto dir = testing::Scratch("file_flash_size");
  const auto path = dir / "qspi.bin";
  std::ofstream(path, std::ios::binary) << "short";
  auto flash = FileFlash::Open(Qspi(), path);
  REQUIRE_FALSE(flash.ok());
  CHECK(flash.error().message.find(path.string()) != std::string::npos);
  CHECK(flash.error().message.find("131072") != std::string::npos);
}

TEST_CASE("strict: misaligned writes, writes to programmed bytes, erases off sector boundaries") {
  const auto dir = testing::Scratch("file_flash_strict");
  auto opened = FileFlash::Open(Internal(), dir / "internal.bin");
  REQUIRE(opened.ok());
  FileFlash& f = *opened.value();
  CHECK(f.Write(0x08000002, Bytes(4, 0)).code() == runtime::StatusCode::kInvalidArgument);
  CHECK(f.Write(0x08000000, Bytes(6, 0)).code() == runtime::StatusCode::kInvalidArgument);
  REQUIRE(f.Write(0x08000000, Bytes(8, 3)).ok());
  CHECK(f.Write(0x08000004, Bytes(4, 9)).code() == runtime::StatusCode::kFailedPrecondition);
  CHECK(f.Erase(0x08000000, 8192).code() == runtime::StatusCode::kInvalidArgument);
  CHECK(f.Erase(0x08002000, 16384).code() == runtime::StatusCode::kInvalidArgument);
  CHECK(f.Erase(0x08000000, 0).code() == runtime::StatusCode::kInvalidArgument);
  CHECK(f.Erase(0x08000000, 0x20000).code() == runtime::StatusCode::kOutOfRange);
  CHECK(f.Write(0x07fffffc, Bytes(4, 0)).code() == runtime::StatusCode::kOutOfRange);
  std::vector<uint8_t> past(8);
  CHECK(f.Read(0x08017ffc, past).code() == runtime::StatusCode::kOutOfRange);
  CHECK(f.counters().refused == 9);
  // Refused calls changed nothing and cost nothing.
  std::vector<uint8_t> out(8);
  REQUIRE(f.Read(0x08000000, out).ok());
  CHECK(out == Bytes(8, 3));
  CHECK(f.usage().erase_us == 0);
  CHECK(f.counters().erases == 0);
  // Sector 1 + sector 2 (mixed sizes) in one call.
  REQUIRE(f.Erase(0x08004000, 16384 + 65536).ok());
  REQUIRE(f.Erase(0x08000000, 16384).ok());
  REQUIRE(f.Read(0x08000000, out).ok());
  CHECK(out == std::vector<uint8_t>(8, 0xff));
  CHECK(f.counters().sectors_erased == 3);
  CHECK(f.usage().sector_erases == std::vector<uint32_t>{1, 1, 1});
  CHECK(f.usage().erase_us == 300000 + 700000 + 300000);
}

TEST_CASE("timing model: QSPI block erase when aligned, page program units") {
  const auto dir = testing::Scratch("file_flash_timing");
  auto opened = FileFlash::Open(Qspi(), dir / "qspi.bin");
  REQUIRE(opened.ok());
  FileFlash& f = *opened.value();
  // 64 KiB aligned: one block erase (150 ms) covering 16 sectors.
  REQUIRE(f.Erase(0x90000000, 65536).ok());
  CHECK(f.usage().erase_us == 150000);
  CHECK(f.usage().block_erases == 1);
  CHECK(f.counters().sectors_erased == 16);
  // 8 KiB not covering a 64 KiB block: two sector erases.
  REQUIRE(f.Erase(0x90011000, 8192).ok());
  CHECK(f.usage().erase_us == 150000 + 2 * 45000);
  CHECK(f.usage().sector_erases[17] == 1);
  CHECK(f.usage().sector_erases[18] == 1);
  CHECK(f.usage().sector_erases[16] == 0);
  // 2048 bytes at a page boundary: 8 pages; 8 bytes straddling a page boundary: 2 pages.
  REQUIRE(f.Write(0x90000000, Bytes(2048, 5)).ok());
  CHECK(f.usage().program_us == 8 * 700);
  REQUIRE(f.Write(0x900010fc, Bytes(8, 5)).ok());
  CHECK(f.usage().program_us == 10 * 700);
  CHECK(f.usage().program_units == 10);
  CHECK(f.counters().bytes_written == 2056);
  f.ResetUsage();
  CHECK(f.usage().erase_us == 0);
  CHECK(f.usage().sector_erases.size() == 32);
  CHECK(f.counters().sectors_erased == 0);
  CHECK(f.operations() == 0);
}

TEST_CASE("power cut: torn write keeps half, then everything fails until PowerOn") {
  const auto dir = testing::Scratch("file_flash_cut");
  auto opened = FileFlash::Open(Qspi(), dir / "qspi.bin");
  REQUIRE(opened.ok());
  FileFlash& f = *opened.value();
  f.CutPowerAfter(1, true);
  REQUIRE(f.Write(0x90000000, Bytes(16, 1)).ok());
  CHECK(f.Write(0x90000010, Bytes(16, 2)).code() == runtime::StatusCode::kUnavailable);
  CHECK_FALSE(f.powered());
  CHECK(f.Mapped().empty());
  std::vector<uint8_t> out(16);
  CHECK(f.Read(0x90000010, out).code() == runtime::StatusCode::kUnavailable);
  f.PowerOn();
  REQUIRE(f.Read(0x90000010, out).ok());
  std::vector<uint8_t> expect = Bytes(16, 2);
  std::fill(expect.begin() + 8, expect.end(), 0xff);
  CHECK(out == expect);
  CHECK(f.operations() == 2);
  // FailAfter: one transient failure, nothing written.
  f.FailAfter(0);
  CHECK(f.Write(0x90000020, Bytes(4, 3)).code() == runtime::StatusCode::kUnavailable);
  CHECK(f.powered());
  REQUIRE(f.Write(0x90000020, Bytes(4, 3)).ok());
}

TEST_CASE("timing decorator: refused and torn calls cost nothing, a torn erase wears what it erased") {
  const auto dir = testing::Scratch("file_flash_torn");
  auto opened = FileFlash::Open(Qspi(), dir / "qspi.bin");
  REQUIRE(opened.ok());
  FileFlash& f = *opened.value();
  // Torn erase of 16 KiB (4 sectors): the first 8 KiB = sectors 0 and 1 are erased wholly.
  f.CutPowerAfter(0, true);
  CHECK(f.Erase(0x90000000, 16384).code() == runtime::StatusCode::kUnavailable);
  CHECK(f.counters().erases == 1);
  CHECK(f.counters().sectors_erased == 2);
  CHECK(f.usage().sector_erases[0] == 1);
  CHECK(f.usage().sector_erases[1] == 1);
  CHECK(f.usage().sector_erases[2] == 0);
  CHECK(f.usage().erase_us == 0);
  f.PowerOn();
  // Torn write: half programmed, counted, no time.
  f.CutPowerAfter(0, true);
  CHECK(f.Write(0x90000000, Bytes(512, 1)).code() == runtime::StatusCode::kUnavailable);
  CHECK(f.counters().bytes_written == 256);
  CHECK(f.usage().program_us == 0);
  f.PowerOn();
  // Refused: nothing counted but `refused`, no time.
  CHECK(f.Erase(0x90000800, 4096).code() == runtime::StatusCode::kInvalidArgument);
  CHECK(f.counters().refused == 1);
  CHECK(f.usage().erase_us == 0);
  // An empty write is no operation (FakeFlash) and costs nothing.
  const uint32_t ops = f.operations();
  CHECK(f.Write(0x90000400, {}).ok());
  CHECK(f.operations() == ops);
  CHECK(f.usage().program_us == 0);
  // A completed call after power returns costs its modeled time.
  REQUIRE(f.Erase(0x90000000, 16384).ok());
  CHECK(f.usage().erase_us == 4 * 45000);
  CHECK(f.usage().sector_erases[0] == 2);
  CHECK(f.usage().sector_erases[3] == 1);
}

namespace {

// The bootloader core on a blank simulated PYBD-SF6 (FileFlash memories): what the device
// reports as bwPollTimeout for a DNLOAD, and what the simulated flash charged for its work.
struct DeviceOnSimBoard {
  runtime::Board board;
  std::unique_ptr<sim::SimBoard> sim;
  std::unique_ptr<bootloader::DfuDevice> device;

  explicit DeviceOnSimBoard(const std::string& name) {
    auto loaded = host::LoadBoardFile(std::filesystem::path(ONEDFU_SOURCE_DIR) / "manifests/boards/pybd-sf6.json");
    REQUIRE(loaded.ok());
    board = loaded.value();
    auto opened = sim::SimBoard::Open(board, testing::Scratch(name));
    REQUIRE(opened.ok());
    sim = std::move(opened.value());
    bootloader::DfuOptions options;
    options.max_poll_timeout_ms = 0xffffff;  // no cap: report the whole modeled time
    device = std::make_unique<bootloader::DfuDevice>(board, sim->memories(), bootloader::DeviceStrings{}, options);
    runtime::Diag diag;
    REQUIRE(device->Init(&diag).ok());
  }

  uint64_t ChargedUs() const {
    uint64_t total = 0;
    for (size_t i = 0; i < sim->memory_count(); ++i) {
      total += sim->flash(i).usage().erase_us + sim->flash(i).usage().program_us;
    }
    return total;
  }

  // GETSTATUS: {bState, bwPollTimeout}.
  std::pair<bootloader::DfuState, uint32_t> GetStatus() {
    std::vector<uint8_t> reply(6);
    const bootloader::ControlReply r = device->HandleControl({0xa1, 3, 0, 0, 6}, {}, reply);
    REQUIRE_FALSE(r.stall);
    return {static_cast<bootloader::DfuState>(reply[4]), reply[1] | (reply[2] << 8) | (reply[3] << 16)};
  }

  // One DNLOAD (block 0: a DfuSe command) and its busy GETSTATUS; runs the work and checks it
  // succeeded. Returns {reported poll timeout ms, microseconds the simulator charged}.
  std::pair<uint32_t, uint64_t> Dnload(uint16_t block, const std::vector<uint8_t>& data) {
    const bootloader::SetupPacket setup{0x21, 1, block, 0, static_cast<uint16_t>(data.size())};
    REQUIRE_FALSE(device->HandleControl(setup, data, {}).stall);
    const auto [busy, poll_ms] = GetStatus();
    REQUIRE(busy == bootloader::DfuState::kDnbusy);
    const uint64_t before = ChargedUs();
    REQUIRE(device->Poll());
    const uint64_t charged = ChargedUs() - before;
    const auto [idle, idle_poll] = GetStatus();
    INFO(device->status_text());
    REQUIRE(idle == bootloader::DfuState::kDnloadIdle);
    CHECK(idle_poll == 0);
    return {poll_ms, charged};
  }

  void SetAddress(uint32_t address) {
    std::vector<uint8_t> cmd{0x21, 0, 0, 0, 0};
    runtime::StoreLe32(cmd.data() + 1, address);
    CHECK(Dnload(0, cmd).second == 0);
  }
};

// bwPollTimeout is the modeled time in whole milliseconds, rounded up.
uint32_t Ms(uint64_t us) { return static_cast<uint32_t>((us + 999) / 1000); }

}  // namespace

TEST_CASE("the poll timeout the device reports is the time the simulated flash charges") {
  DeviceOnSimBoard rig("file_flash_poll");
  // Erase the 32 KiB sector containing an unaligned address (as dfu-util sends it).
  std::vector<uint8_t> erase{0x41, 0, 0, 0, 0};
  runtime::StoreLe32(erase.data() + 1, 0x08008123);
  auto [poll, charged] = rig.Dnload(0, erase);
  CHECK(charged == 450000);
  CHECK(poll == Ms(charged));
  // Mass erase: internal runs around the bootloader and filesystem sectors, QSPI in 64 KiB
  // block erases.
  std::tie(poll, charged) = rig.Dnload(0, {0x41});
  CHECK(charged == 3 * 450000 + 1300000 + 6 * 2600000 + 32 * 150000);
  CHECK(rig.sim->flash(1).usage().block_erases == 32);
  CHECK(poll == Ms(charged));
  // 2048 bytes at an address that is not on a 256-byte QSPI page: 9 pages.
  rig.SetAddress(0x90000010);
  std::tie(poll, charged) = rig.Dnload(2, Bytes(2048, 1));
  CHECK(charged == 9 * 700);
  CHECK(poll == Ms(charged));
  // A short last block whose length is not a multiple of the write unit: GuardedFlash writes
  // the whole units, then the padded tail, which programs its page a second time.
  rig.SetAddress(0x90001000);
  std::tie(poll, charged) = rig.Dnload(2, Bytes(1001, 2));
  CHECK(charged == (4 + 1) * 700);
  CHECK(poll == Ms(charged));
  // Internal flash: 32-bit words.
  rig.SetAddress(0x08008000);
  std::tie(poll, charged) = rig.Dnload(2, Bytes(2048, 3));
  CHECK(charged == 512 * 16);
  CHECK(poll == Ms(charged));
}
