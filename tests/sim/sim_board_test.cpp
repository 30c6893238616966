// SimBoard (state directory, bootloader image, boot decision) and the USB timing model.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include "host/board_json.h"
#include "runtime/byte_reader.h"
#include "test_support.h"
#include "sim_board.h"
#include "sim_device.h"
#include "stats.h"

using namespace onedfu;

namespace {

runtime::Board DefaultBoard() {
  auto board = host::LoadBoardFile(std::filesystem::path(ONEDFU_SOURCE_DIR) / "manifests/boards/pybd-sf6.json");
  REQUIRE(board.ok());
  return board.value();
}

}  // namespace

TEST_CASE("a blank board gets erased memories with the bootloader image in its region") {
  const runtime::Board board = DefaultBoard();
  const auto dir = testing::Scratch("board_blank") / "state";  // created by Open
  auto opened = sim::SimBoard::Open(board, dir);
  REQUIRE(opened.ok());
  sim::SimBoard& b = *opened.value();
  CHECK(b.created());
  REQUIRE(b.memory_count() == 2);
  CHECK(std::filesystem::exists(dir / "internal.bin"));
  CHECK(std::filesystem::exists(dir / "qspi.bin"));

  const std::vector<uint8_t> image = sim::BootloaderImage(board);
  REQUIRE(image.size() >= 64);
  // Vector table: initial SP in SRAM, Thumb reset handler inside the bootloader region.
  CHECK(runtime::LoadLe32(image.data()) == 0x20080000u);
  const uint32_t reset = runtime::LoadLe32(image.data() + 4);
  CHECK((reset & 1u) == 1u);
  CHECK(reset >= 0x08000000u);
  CHECK(reset < 0x08008000u);
  const std::string text(image.begin() + 64, image.end());
  CHECK(text.find("onedfu-sim bootloader pybd-sf6") == 0);

  CHECK(b.Peek(0x08000000, static_cast<uint32_t>(image.size())) == image);
  const auto rest = b.flash(0).contents().subspan(image.size());
  CHECK(std::all_of(rest.begin(), rest.end(), [](uint8_t v) { return v == 0xff; }));

  const bootloader::BootDecision d = b.Boot(false);
  CHECK_FALSE(d.start_application);
  CHECK(d.reason == bootloader::BootReason::kNoRecord);
  CHECK(b.Boot(true).reason == bootloader::BootReason::kForced);
}

TEST_CASE("the state persists: reopening does not rewrite the bootloader region") {
  const runtime::Board board = DefaultBoard();
  const auto dir = testing::Scratch("board_persist");
  {
    auto first = sim::SimBoard::Open(board, dir);
    REQUIRE(first.ok());
    // Change a byte of the bootloader region behind the board's back.
    const uint8_t marker[4] = {1, 2, 3, 4};
    REQUIRE(first.value()->flash(0).Preload(0x08001000, marker));
  }
  auto second = sim::SimBoard::Open(board, dir);
  REQUIRE(second.ok());
  CHECK_FALSE(second.value()->created());
  CHECK(second.value()->Peek(0x08001000, 4) == std::vector<uint8_t>{1, 2, 3, 4});
}

TEST_CASE("bootloader-mode device: descriptors from the board, layout string, stats per transfer") {
  const runtime::Board board = DefaultBoard();
  auto opened = sim::SimBoard::Open(board, testing::Scratch("board_device"));
  REQUIRE(opened.ok());
  sim::SimUsbDevice device(*opened.value());
  REQUIRE(device.PowerOn(false));
  CHECK_FALSE(device.application_mode());
  const std::vector<uint8_t> d = device.DeviceAndConfigDescriptors();
  REQUIRE(d.size() == 18 + 27);
  CHECK(d[8] == 0x83);  // idVendor 0x0483 from the board
  CHECK(d[9] == 0x04);
  CHECK(d[18 + 9 + 5] == 0xfe);  // interface class DFU
  CHECK(d[18 + 9 + 7] == 2);     // DFU mode protocol
  // GETSTATUS through the model.
  sim::SetupPacket getstatus{0xa1, 3, 0, 0, 6};
  std::vector<uint8_t> reply(6);
  const sim::ControlReply r = device.HandleControl(getstatus, {}, reply);
  REQUIRE_FALSE(r.stall);
  CHECK(r.length == 6);
  CHECK(reply[4] == 2);  // dfuIDLE
  CHECK(device.usage().control_transfers == 1);
  CHECK(device.usage().bytes_in == 6);
  CHECK(device.usage().packets == 3);  // SETUP + 1 data + status
  REQUIRE(device.boots().size() == 1);
  CHECK(device.boots()[0].reason == "no boot record");
}

TEST_CASE("USB timing model: 64-byte packets, 19 control packets per 1 ms frame") {
  CHECK(sim::ControlTransferPackets(0) == 2);
  CHECK(sim::ControlTransferPackets(64) == 3);
  CHECK(sim::ControlTransferPackets(65) == 4);
  CHECK(sim::ControlTransferPackets(2048) == 34);
  CHECK(sim::ControlPacketsUs(19) == 1000);
  CHECK(sim::ControlPacketsUs(38) == 2000);
  sim::UsbUsage u;
  u.CountControl(false, 2048, false);
  u.CountControl(true, 6, false);
  u.CountControl(true, 6, true);  // a stall moves no data
  CHECK(u.control_transfers == 3);
  CHECK(u.stalls == 1);
  CHECK(u.bytes_out == 2048);
  CHECK(u.bytes_in == 6);
  CHECK(u.bytes_on_wire() == 3 * 8 + 2054);
  CHECK(u.packets == 34 + 3 + 2);
}
