// `onedfu flash` and `onedfu list` against the simulated board through the virtual USB bus:
// `onedfu-sim run --board pybd-sf6 --state DIR -- onedfu flash PKG` (umockdev + the real
// libusb Linux backend, as dfu-util sees it; tests/sim/peers_test.cpp). What the flash must
// hold comes from parsing the packed .dfu files; what the device did from stats.json.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "host/dfuse_file.h"
#include "host/file_io.h"
#include "sim_run.h"

using namespace onedfu;

namespace {

namespace fs = std::filesystem;
using test::Package;
using test::Pack;
using test::Run;
using test::Sim;
using test::Slurp;

const fs::path kSource = ONEDFU_SOURCE_DIR;
constexpr uint32_t kRecordAddress = 0x901ff000;  // pybd-sf6 region "record" (one 4 KiB sector)

// A copy of the demo example folder (+ manifest) in which `edit(dir)` changed input files.
template <typename Edit>
fs::path EditedExample(const std::string& name, Edit edit) {
  const fs::path dir = testing::Scratch("inputs-" + name);
  fs::copy(kSource / "manifests/examples/pybd-sf6-demo", dir / "pybd-sf6-demo", fs::copy_options::recursive);
  fs::copy_file(kSource / "manifests/examples/pybd-sf6-demo.json", dir / "pybd-sf6-demo.json");
  edit(dir / "pybd-sf6-demo");
  return dir / "pybd-sf6-demo.json";
}

// Flips the bits of the byte at `offset` of `file`.
void FlipByte(const fs::path& file, std::streamoff offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(offset);
  const int c = f.get();
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0xff));
}

const Package& V1() {
  static const Package p = Pack("demo-1.0.0.dfu", kSource / "manifests/examples/pybd-sf6-demo.json", {});
  return p;
}
const Package& V2() {
  static const Package p = Pack("demo-2.0.0.dfu", kSource / "manifests/examples/pybd-sf6-demo.json", {"--version", "2.0.0"});
  return p;
}

bool FlashHolds(const Sim& sim, const Package& p) {
  for (const auto& e : p.elements) {
    if (sim.At(e.address, e.data.size()) != e.data) return false;
  }
  return true;
}

// The element whose bytes differ between two packages of the same layout.
std::vector<uint32_t> ChangedElements(const Package& a, const Package& b) {
  std::vector<uint32_t> out;
  for (const auto& e : b.elements) {
    const auto same = std::find(a.elements.begin(), a.elements.end(), e);
    if (same == a.elements.end()) out.push_back(e.address);
  }
  return out;
}

int Flash(Sim& sim, const Package& p, std::vector<std::string> extra = {}, bool enter_dfu = false) {
  std::vector<std::string> command = {ONEDFU_CLI_EXE, "flash", p.file.string()};
  command.insert(command.end(), extra.begin(), extra.end());
  return sim.RunWith(command, enter_dfu);
}

bool Contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

void FlashBlank(Sim& sim, const Package& p) {
  REQUIRE(Flash(sim, p) == 0);
  INFO(sim.output);
  REQUIRE(FlashHolds(sim, p));
}

}  // namespace

TEST_CASE("onedfu flash onto a blank board: nothing erased, verified, record last, boots the package") {
  const Package& pkg = V1();
  Sim sim("flash_blank");
  REQUIRE(Flash(sim, pkg) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, pkg));
  CHECK(Contains(sim.output, "flashed 1.0.0; the board runs onedfu app 1.0.0"));
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["flash"]["erases"] == 0);  // a blank board: every sector is erased already
  uint64_t payload = 0;
  for (const auto& e : pkg.elements) payload += e.data.size();
  CHECK(stats["flash"]["bytes_programmed"].get<uint64_t>() <= payload);
  REQUIRE(stats["boots"].size() == 2);
  CHECK(stats["boots"][1]["cause"] == "leave");
  CHECK(stats["boots"][1]["mode"] == "application");
}

TEST_CASE("onedfu flash on a board running its application: DETACH, update, only the record changes") {
  const Package& v1 = V1();
  const Package& v2 = V2();
  Sim sim("flash_detach");
  FlashBlank(sim, v1);
  REQUIRE(ChangedElements(v1, v2) == std::vector<uint32_t>{kRecordAddress});
  REQUIRE(Flash(sim, v2) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, v2));
  CHECK(Contains(sim.output, "the board runs onedfu app 2.0.0"));
  const nlohmann::json stats = sim.Stats();
  REQUIRE(stats["boots"].size() == 3);
  CHECK(stats["boots"][0]["mode"] == "application");
  CHECK(stats["boots"][1]["cause"] == "detach");
  CHECK(stats["boots"][1]["mode"] == "dfu");
  CHECK(stats["boots"][2]["mode"] == "application");
  // Only the record changed: its one 4 KiB sector is erased and rewritten.
  CHECK(stats["flash"]["erases"] == 1);
  CHECK(stats["flash"]["memories"][1]["sector_erases"].contains("0x901ff000"));
  CHECK(stats["flash"]["memories"][0]["sector_erases"].empty());
}

TEST_CASE("onedfu flash of the installed package again: up to date, no erase, no program, exit 0") {
  const Package& pkg = V1();
  Sim sim("flash_same");
  FlashBlank(sim, pkg);
  const std::vector<uint8_t> internal = sim.Internal();
  const std::vector<uint8_t> qspi = sim.Qspi();
  REQUIRE(Flash(sim, pkg) == 0);
  INFO(sim.output);
  CHECK(Contains(sim.output, "up to date"));
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["flash"]["erases"] == 0);
  CHECK(stats["flash"]["bytes_programmed"] == 0);
  CHECK(stats["boots"].back()["mode"] == "application");
  CHECK(sim.Internal() == internal);
  CHECK(sim.Qspi() == qspi);
}

TEST_CASE("onedfu flash after one asset changed: only the ROMFS sector and the record are rewritten") {
  const Package& v1 = V1();
  const Package v11 = Pack("demo-asset.dfu", EditedExample("asset", [](const fs::path& dir) {
                             FlipByte(dir / "assets/font8x8.bin", 100);
                           }), {"--version", "1.1.0"});
  Sim sim("flash_asset");
  FlashBlank(sim, v1);
  const std::vector<uint32_t> changed = ChangedElements(v1, v11);
  REQUIRE(changed.size() == 2);  // the ROMFS image and the record
  REQUIRE(Flash(sim, v11) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, v11));
  CHECK(Contains(sim.output, "onedfu app 1.1.0"));
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["flash"]["memories"][0]["sector_erases"].empty());  // internal flash untouched
  CHECK(stats["flash"]["erases"].get<int>() <= 3);                 // ROMFS sector(s) + record
  CHECK(stats["flash"]["bytes_programmed"].get<int>() <= 3 * 4096);
}

TEST_CASE("onedfu flash after the QSPI firmware changed: its sector and the record only") {
  const Package& v1 = V1();
  const Package v12 = Pack("demo-fw.dfu", EditedExample("fw", [](const fs::path& dir) {
                            FlipByte(dir / "firmware/text1.bin", 2000);
                          }), {"--version", "1.2.0"});
  Sim sim("flash_firmware");
  FlashBlank(sim, v1);
  REQUIRE(ChangedElements(v1, v12) == std::vector<uint32_t>{0x90000000, kRecordAddress});
  REQUIRE(Flash(sim, v12) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, v12));
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["flash"]["erases"] == 2);
  CHECK(stats["flash"]["memories"][1]["sector_erases"].contains("0x90000000"));
  CHECK(stats["flash"]["memories"][1]["sector_erases"].contains("0x901ff000"));
}

TEST_CASE("onedfu flash: the board unplugged mid-flash, then the same command again completes") {
  const Package& v1 = V1();
  const Package v11 = Pack("demo-unplug.dfu", EditedExample("unplug", [](const fs::path& dir) {
                             FlipByte(dir / "assets/font8x8.bin", 10);
                             FlipByte(dir / "firmware/text1.bin", 10);
                           }), {"--version", "1.1.0"});
  Sim sim("flash_unplug");
  FlashBlank(sim, v1);
  // How many transfers the whole update takes, on a copy of the board.
  Sim probe("flash_unplug_probe");
  fs::create_directories(probe.state);
  for (const char* f : {"internal.bin", "qspi.bin"}) fs::copy_file(sim.state / f, probe.state / f);
  REQUIRE(Flash(probe, v11) == 0);
  const auto transfers = probe.Stats()["usb"]["control_transfers"].get<uint64_t>();
  // Cut at two thirds: past the read-back and the erases, inside the write or verify passes.
  const int status = sim.RunWith({ONEDFU_CLI_EXE, "flash", v11.file.string()}, false,
                                 {"--unplug-after", std::to_string(transfers * 2 / 3)});
  INFO(sim.output);
  CHECK(status == 1);
  CHECK(Contains(sim.output, "the board disconnected during"));
  CHECK(Contains(sim.output, "again to complete the update"));
  CHECK(sim.Stats()["flash"]["erases"].get<int>() >= 1);  // it was cut after a change
  // The next power-on: the old record was revoked by the first change, so DFU mode.
  REQUIRE(Flash(sim, v11) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, v11));
  CHECK(sim.Stats()["boots"][0]["mode"] == "dfu");
  CHECK(Contains(sim.output, "onedfu app 1.1.0"));
}

TEST_CASE("onedfu flash refuses a package for another board before any change") {
  const Package& v1 = V1();
  Sim sim("flash_wrong_board");
  FlashBlank(sim, v1);
  const std::vector<uint8_t> internal = sim.Internal();
  const std::vector<uint8_t> qspi = sim.Qspi();

  SUBCASE("another memory layout (pybv10 package)") {
    const Package other = Pack("pybv10.dfu", kSource / "manifests/examples/pybv10-demo.json", {});
    CHECK(Flash(sim, other) == 1);
    INFO(sim.output);
    CHECK(Contains(sim.output, "memory layout differs"));
    CHECK(Contains(sim.output, "pybv10"));
  }
  SUBCASE("the same layout, another board id") {
    const fs::path dir = testing::Scratch("board-other");
    std::string board = Slurp(kSource / "manifests/boards/pybd-sf6.json");
    board.replace(board.find("\"pybd-sf6\""), 10, "\"pybd-sf6-rev-b\"");
    const fs::path board_file = dir / "pybd-sf6-rev-b.json";
    std::ofstream(board_file) << board;
    const Package other = Pack("rev-b.dfu", kSource / "manifests/examples/pybd-sf6-demo.json", {"--board", board_file.string()});
    CHECK(Flash(sim, other, {"--board", board_file.string()}) == 1);
    INFO(sim.output);
    CHECK(Contains(sim.output, "wrong board"));
    CHECK(Contains(sim.output, "'pybd-sf6'"));
    CHECK(Contains(sim.output, "'pybd-sf6-rev-b'"));
  }
  CHECK(sim.Internal() == internal);
  CHECK(sim.Qspi() == qspi);
  CHECK(sim.Stats()["flash"]["erases"] == 0);
  CHECK(sim.Stats()["flash"]["bytes_programmed"] == 0);
}

TEST_CASE("onedfu flash prints the device's error status and string (errADDRESS)") {
  // A board file that puts firmware where the simulated board keeps its bootloader; with
  // --plain-dfuse (no layout check) the device itself must refuse the erase.
  const fs::path dir = testing::Scratch("lowboot");
  nlohmann::json board = nlohmann::json::parse(Slurp(kSource / "manifests/boards/pybd-sf6.json"));
  board["id"] = "pybd-sf6-lowboot";
  board["regions"] = nlohmann::json::parse(R"([
    {"name": "text0", "memory": "internal", "offset": "0x0", "size": "0x1c0000", "role": "firmware"},
    {"name": "bootloader", "memory": "internal", "offset": "0x1c0000", "size": "256K", "role": "bootloader"},
    {"name": "record", "memory": "qspi", "offset": "0x1ff000", "size": "4K", "role": "record"}])");
  const fs::path board_file = dir / "lowboot.json";
  std::ofstream(board_file) << board.dump();
  std::ofstream(dir / "fw.bin", std::ios::binary) << std::string(4096, 'F');
  const Package pkg = Pack("lowboot.dfu", {}, {"--board", board_file.string(), "--firmware",
                                               "0x08000000:" + (dir / "fw.bin").string(), "--version", "1.0.0"});
  Sim sim("flash_device_error");
  REQUIRE(sim.RunWith({"true"}) == 0);
  const std::vector<uint8_t> internal = sim.Internal();
  CHECK(Flash(sim, pkg, {"--board", board_file.string(), "--plain-dfuse"}) == 1);
  INFO(sim.output);
  CHECK(Contains(sim.output, "erase of the sector at 0x08000000: the device reports errADDRESS in dfuERROR: "
                             "address 0x08000000 is read-only (bootloader, reserved or in no region)"));
  CHECK(sim.Internal() == internal);
}

TEST_CASE("onedfu flash refuses a damaged package without touching the device") {
  const Package& v1 = V1();
  const fs::path damaged = testing::Scratch("damaged") / "damaged.dfu";
  fs::copy_file(v1.file, damaged);
  FlipByte(damaged, 400);  // inside the first element: hash and file CRC no longer match
  Sim sim("flash_damaged");
  const int status = sim.RunWith({ONEDFU_CLI_EXE, "flash", damaged.string()});
  INFO(sim.output);
  CHECK(status == 1);
  CHECK(Contains(sim.output, "NOT valid"));
  CHECK(Contains(sim.output, "nothing was sent to any device"));
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["usb"]["control_transfers"] == 0);
  CHECK(stats["flash"]["bytes_programmed"] == 0);
}

TEST_CASE("onedfu flash --plain-dfuse: full write in dfu-util's order, as for a bootloader without record") {
  const Package& v1 = V1();
  Sim ours("flash_plain");
  REQUIRE(Flash(ours, v1, {"--plain-dfuse"}) == 0);
  INFO(ours.output);
  CHECK(FlashHolds(ours, v1));
  CHECK(Contains(ours.output, "full write"));
  Sim peer("flash_plain_dfu_util");
  REQUIRE(peer.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-D", v1.file.string(), "-s", ":leave"}) == 0);
  // The same sectors erased as dfu-util erases, and the board boots it.
  CHECK(ours.Stats()["flash"]["memories"] == peer.Stats()["flash"]["memories"]);
  CHECK(ours.Stats()["boots"].back()["mode"] == "application");
}

TEST_CASE("onedfu flash --dry-run prints the plan and changes nothing") {
  const Package& v1 = V1();
  const Package& v2 = V2();
  Sim sim("flash_dry_run");
  FlashBlank(sim, v1);
  const std::vector<uint8_t> qspi = sim.Qspi();
  REQUIRE(Flash(sim, v2, {"--dry-run"}, true) == 0);
  INFO(sim.output);
  CHECK(Contains(sim.output, "dry run: nothing was changed"));
  CHECK(Contains(sim.output, "record qspi: erase 1 sector(s), write 1 sector(s)"));
  CHECK(Contains(sim.output, "modeled device time 0.0"));  // 45 ms erase + program
  CHECK(sim.Qspi() == qspi);
  CHECK(sim.Stats()["flash"]["erases"] == 0);
}

TEST_CASE("onedfu flash --json: JSON lines with phase, done, total and a final result") {
  const Package& v1 = V1();
  Sim sim("flash_json");
  REQUIRE(Flash(sim, v1, {"--json"}) == 0);
  std::istringstream lines(sim.output);
  std::string line;
  std::vector<nlohmann::json> records;
  while (std::getline(lines, line)) {
    if (!line.empty() && line[0] == '{') records.push_back(nlohmann::json::parse(line));
  }
  REQUIRE(!records.empty());
  bool saw_write = false;
  for (const auto& r : records) {
    if (r.contains("phase") && r["phase"] == "write" && r.contains("result")) {
      saw_write = true;
      CHECK(r["done"] == r["total"]);
    }
  }
  CHECK(saw_write);
  CHECK(records.back()["result"] == "ok");
  CHECK(records.back()["up_to_date"] == false);
}

TEST_CASE("onedfu flash names what it saw when the chosen board is not there") {
  Sim sim("flash_no_device");
  CHECK(Flash(sim, V1(), {"--path", "9-9"}) == 1);
  INFO(sim.output);
  CHECK(Contains(sim.output, "no board 0483:df11 at path 9-9 found"));
  CHECK(Contains(sim.output, "1-1 0483:df11 serial SIM000000001"));
}

TEST_CASE("onedfu list: the board in DFU mode with its installed package, then in application mode") {
  const Package& v1 = V1();
  Sim sim("list");
  FlashBlank(sim, v1);
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "list", "--json"}, true) == 0);
  INFO(sim.output);
  const nlohmann::json dfu = nlohmann::json::parse(sim.output);
  REQUIRE(dfu.size() == 1);
  CHECK(dfu[0]["path"] == "1-1");
  CHECK(dfu[0]["serial"] == "SIM000000001");
  CHECK(dfu[0]["vid_pid"] == "0483:df11");
  CHECK(dfu[0]["mode"] == "dfu");
  CHECK(dfu[0]["board"] == "pybd-sf6");
  CHECK(dfu[0]["installed"]["valid"] == true);
  CHECK(dfu[0]["installed"]["board"] == "pybd-sf6");
  CHECK(dfu[0]["installed"]["name"] == "pybd-sf6-demo");
  CHECK(dfu[0]["installed"]["version"] == "1.0.0");
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "list"}) == 0);
  CHECK(Contains(sim.output, "1-1 0483:df11 serial SIM000000001 runtime \"onedfu app 1.0.0"));
}

TEST_CASE("onedfu flash with a bootloader without the hash command: read-back instead, still a correct update") {
  const Package& v1 = V1();
  const Package& v2 = V2();
  Sim sim("flash_no_hash");
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "flash", v1.file.string()}, false, {"--no-hash-command"}) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, v1));
  nlohmann::json stats = sim.Stats();
  CHECK(stats["usb"]["hash_requests"] == 0);
  CHECK(stats["usb"]["bytes_in"].get<uint64_t>() > 4096);  // learnt and verified by DfuSe UPLOAD
  CHECK(stats["flash"]["erases"] == 0);
  CHECK(stats["boots"].back()["mode"] == "application");
  // The update: the record sector only, found by read-back.
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "flash", v2.file.string()}, false, {"--no-hash-command"}) == 0);
  CHECK(FlashHolds(sim, v2));
  stats = sim.Stats();
  CHECK(stats["usb"]["hash_requests"] == 0);
  CHECK(stats["flash"]["erases"] == 1);
  CHECK(stats["boots"].back()["mode"] == "application");
}

TEST_CASE("onedfu flash with the hash command: nothing read back on a blank board") {
  const Package& v1 = V1();
  Sim sim("flash_hash");
  REQUIRE(Flash(sim, v1) == 0);
  INFO(sim.output);
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["usb"]["hash_requests"].get<uint64_t>() > 0);
  CHECK(stats["modeled_us"]["hash"].get<uint64_t>() > 0);
  // UPLOADs are the command list, the hash replies and the boot-time strings only: well under
  // one 2 KiB block per hash request.
  CHECK(stats["usb"]["bytes_in"].get<uint64_t>() < 64 * stats["usb"]["hash_requests"].get<uint64_t>() + 1024);
}

TEST_CASE("onedfu flash with a foreign DfuSe bootloader (no record use, no hash command): full write") {
  const Package& v1 = V1();
  Sim sim("flash_foreign");
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "flash", v1.file.string()}, false, {"--foreign-bootloader"}) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, v1));
  CHECK(Contains(sim.output, "plain DfuSe bootloader (STMicroelectronics): full write"));
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["usb"]["hash_requests"] == 0);
  CHECK(stats["boots"].back()["mode"] == "application");
}

TEST_CASE("onedfu flash on an application without WillDetach: DETACH, then a USB reset") {
  const Package& v1 = V1();
  const Package& v2 = V2();
  Sim sim("flash_no_will_detach");
  FlashBlank(sim, v1);
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "flash", v2.file.string()}, false, {"--app-no-will-detach"}) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, v2));
  const nlohmann::json stats = sim.Stats();
  REQUIRE(stats["boots"].size() == 3);
  CHECK(stats["boots"][0]["mode"] == "application");
  CHECK(stats["boots"][1]["cause"] == "reset");  // not "detach": the host had to reset the bus
  CHECK(stats["boots"][1]["mode"] == "dfu");
  CHECK(stats["boots"][2]["mode"] == "application");
  CHECK(stats["usb"]["resets"].get<uint64_t>() >= 1);
}

TEST_CASE("onedfu flash: Ctrl-C (SIGINT) stops between transfers, the board waits in DFU mode, a re-run completes") {
  const Package& v1 = V1();
  const Package v12 = Pack("demo-sigint.dfu", EditedExample("sigint", [](const fs::path& dir) {
                             FlipByte(dir / "assets/font8x8.bin", 20);
                             FlipByte(dir / "firmware/text1.bin", 20);
                           }), {"--version", "1.2.0"});
  Sim sim("flash_sigint");
  FlashBlank(sim, v1);
  // How many transfers the whole update takes, on a copy of the board.
  Sim probe("flash_sigint_probe");
  fs::create_directories(probe.state);
  for (const char* f : {"internal.bin", "qspi.bin"}) fs::copy_file(sim.state / f, probe.state / f);
  REQUIRE(Flash(probe, v12) == 0);
  const auto transfers = probe.Stats()["usb"]["control_transfers"].get<uint64_t>();
  // SIGINT at two thirds (inside the writes or the check), the board stays on the bus.
  const int status = sim.RunWith({ONEDFU_CLI_EXE, "flash", v12.file.string()}, false,
                                 {"--interrupt-after", std::to_string(transfers * 2 / 3)});
  INFO(sim.output);
  CHECK(status != 0);
  CHECK(Contains(sim.output, "interrupted"));
  CHECK(Contains(sim.output, "again to complete the update"));
  const nlohmann::json stopped = sim.Stats();
  CHECK(stopped["flash"]["erases"].get<int>() >= 1);  // stopped after a change
  CHECK(stopped["boots"].size() == 2);                // no leave: no reboot into a half image
  CHECK(!FlashHolds(sim, v12));
  // Power-on after the interrupted update: the old record was revoked, so DFU mode, never the
  // half-written image; the re-run completes.
  REQUIRE(Flash(sim, v12) == 0);
  INFO(sim.output);
  CHECK(sim.Stats()["boots"][0]["mode"] == "dfu");
  CHECK(FlashHolds(sim, v12));
  CHECK(Contains(sim.output, "onedfu app 1.2.0"));
}

TEST_CASE("onedfu flash and list without permission on the device node: the device and the udev fix") {
  // The real libusb opens the umockdev node, made unreadable as on a desktop without the udev
  // rules: mode 0000, and for root without CAP_DAC_OVERRIDE (setpriv), so open() fails with
  // EACCES, which libusb reports as LIBUSB_ERROR_ACCESS.
  const std::string deny =
      "chmod 000 \"$UMOCKDEV_DIR\"/dev/bus/usb/001/*; "
      "if [ \"$(id -u)\" = 0 ]; then exec setpriv --bounding-set=-dac_override,-dac_read_search \"$@\"; fi; exec \"$@\"";
  const Package& v1 = V1();
  Sim sim("flash_no_permission");
  REQUIRE(sim.RunWith({"true"}) == 0);
  const std::vector<uint8_t> qspi = sim.Qspi();
  for (const bool list : {false, true}) {
    CAPTURE(list);
    std::vector<std::string> command = {"sh", "-c", deny, "sh", ONEDFU_CLI_EXE};
    if (list) {
      command.push_back("list");
    } else {
      command.insert(command.end(), {"flash", v1.file.string()});
    }
    const int status = sim.RunWith(command);
    INFO(sim.output);
    CHECK(status == (list ? 0 : 1));
    CHECK(Contains(sim.output, "LIBUSB_ERROR_ACCESS"));
    CHECK(Contains(sim.output, "no permission to open the USB device 1-1 0483:df11 (/dev/bus/usb/001/002)"));
    CHECK(Contains(sim.output, "manifests/udev/60-onedfu.rules"));
    CHECK(Contains(sim.output, "sudo cp manifests/udev/60-onedfu.rules /etc/udev/rules.d/ && "
                               "sudo udevadm control --reload-rules && sudo udevadm trigger"));
    CHECK(sim.Stats()["usb"]["control_transfers"] == 0);  // nothing reached the device
  }
  CHECK(sim.Qspi() == qspi);
  // The shipped rules file exists and covers the board's VID:PID.
  const std::string rules = Slurp(kSource / "manifests/udev/60-onedfu.rules");
  CHECK(Contains(rules, "ATTRS{idVendor}==\"0483\", ATTRS{idProduct}==\"df11\""));
}

TEST_CASE("onedfu flash: several boards without a choice is an error listing them; --serial picks one") {
  const Package& v1 = V1();
  test::SimBus bus("flash_several", 2);
  REQUIRE(bus.RunWith({ONEDFU_CLI_EXE, "flash", v1.file.string()}) == 1);
  INFO(bus.output);
  CHECK(Contains(bus.output, "2 boards 0483:df11 found; choose one with --serial S or --path BUS-PORT"));
  CHECK(Contains(bus.output, "1-1 0483:df11 serial SIM000000001"));
  CHECK(Contains(bus.output, "1-2 0483:df11 serial SIM000000002"));
  for (const Sim& b : bus.boards) CHECK(b.Stats()["flash"]["bytes_programmed"] == 0);
  REQUIRE(bus.RunWith({ONEDFU_CLI_EXE, "flash", v1.file.string(), "--serial", "SIM000000002"}) == 0);
  CHECK(FlashHolds(bus.boards[1], v1));
  CHECK(bus.boards[0].Stats()["flash"]["bytes_programmed"] == 0);
  CHECK(!FlashHolds(bus.boards[0], v1));
}

TEST_CASE("onedfu flash with no board on the bus says so") {
  Sim sim("flash_empty_bus");
  // The board is plugged in long after the command has ended: the bus is empty meanwhile.
  CHECK(sim.RunWith({ONEDFU_CLI_EXE, "flash", V1().file.string()}, false, {"--plug-delay", "30000"}) == 1);
  INFO(sim.output);
  CHECK(Contains(sim.output, "no board 0483:df11 found: no DFU-capable USB device on the bus"));
}

TEST_CASE("onedfu flash --full rewrites every sector the package touches") {
  const Package& v1 = V1();
  Sim sim("flash_full");
  FlashBlank(sim, v1);
  REQUIRE(Flash(sim, v1, {"--full"}) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, v1));
  const nlohmann::json stats = sim.Stats();
  // text0 (one 32 KiB sector), text1, ROMFS and record (one 4 KiB sector each).
  CHECK(stats["flash"]["erases"] == 4);
  CHECK(stats["flash"]["memories"][0]["sector_erases"].contains("0x08008000"));
  CHECK(stats["boots"].back()["mode"] == "application");
}

TEST_CASE("onedfu flash: errWRITE from the device prints its status string; the re-run completes") {
  const Package& v1 = V1();
  Sim sim("flash_err_write");
  // The first write to each memory fails once (the bootloader reports errWRITE).
  CHECK(sim.RunWith({ONEDFU_CLI_EXE, "flash", v1.file.string()}, false, {"--flash-error-at", "1"}) == 1);
  INFO(sim.output);
  CHECK(Contains(sim.output, "write of 2048 bytes at 0x08008000: the device reports errWRITE in dfuERROR: "
                             "write of 2048 bytes at 0x08008000 failed: fake flash: injected write failure"));
  CHECK(Contains(sim.output, "the update did not complete and nothing half-written boots"));
  CHECK(Contains(sim.output, "again to complete the update"));
  CHECK(sim.Stats()["boots"].size() == 1);  // no leave
  CHECK(sim.At(kRecordAddress, 16) == std::vector<uint8_t>(16, 0xff));  // the record was not written
  REQUIRE(Flash(sim, v1) == 0);
  CHECK(FlashHolds(sim, v1));
  CHECK(sim.Stats()["boots"].back()["mode"] == "application");
}

TEST_CASE("onedfu flash: a board that does not come back after DETACH is a timeout naming it") {
  const Package& v1 = V1();
  Sim sim("flash_timeout");
  FlashBlank(sim, v1);
  // The cable is pulled after the first transfer in DFU mode: during the host's first look at
  // the board back from DETACH, so it never shows up with its serial.
  CHECK(sim.RunWith({ONEDFU_CLI_EXE, "flash", V2().file.string(), "--timeout", "1"}, false, {"--unplug-after", "1"}) == 1);
  INFO(sim.output);
  CHECK(Contains(sim.output, "timeout: the board (serial SIM000000001) did not come back in DFU mode after DETACH "
                             "within 1.0 s (--timeout)"));
  CHECK(sim.Stats()["flash"]["bytes_programmed"] == 0);
}

TEST_CASE("onedfu flash reports the bootloader's reason when the board stays in DFU mode after the update") {
  // A bootloader that trusts a key boots only signed packages: the demo is not signed.
  const fs::path dir = testing::Scratch("flash_stays_dfu_key");
  REQUIRE(Run({ONEDFU_CLI_EXE, "keygen", "--out", (dir / "k").string()}, dir / "keygen.log") == 0);
  Sim sim("flash_stays_dfu");
  CHECK(sim.RunWith({ONEDFU_CLI_EXE, "flash", V1().file.string()}, false, {"--trust", (dir / "k.pub.pem").string()}) == 1);
  INFO(sim.output);
  CHECK(Contains(sim.output, "the board stayed in DFU mode after the update: "));
  CHECK(Contains(sim.output, "boot record is not signed"));
  CHECK(Contains(sim.output, "the package was written and checked, but the bootloader does not start it"));
  CHECK(FlashHolds(sim, V1()));
}

TEST_CASE("onedfu list --json of a blank board: the DfuSe layout, no valid record and why") {
  Sim sim("list_blank");
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "list", "--json"}) == 0);
  INFO(sim.output);
  const nlohmann::json list = nlohmann::json::parse(sim.output);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["mode"] == "dfu");
  CHECK(list[0]["onedfu"] == true);
  CHECK(list[0]["name"] == "@Internal Flash  /0x08000000/01*032Ka,03*032Kg,01*128Kg,07*256Kg/"
                           "0x90000000/512*04Kg");
  CHECK(list[0]["installed"]["valid"] == false);
  CHECK(list[0]["installed"]["problem"] == "no boot record");
}

TEST_CASE("onedfu flash on a terminal: a progress bar per phase with bytes, rate and ETA") {
  Sim sim("flash_terminal");
  // script(1) gives the command a pseudo-terminal, as a user's shell has.
  const std::string command = std::string(ONEDFU_CLI_EXE) + " flash " + V1().file.string();
  REQUIRE(sim.RunWith({"script", "-qec", command, "/dev/null"}) == 0);
  INFO(sim.output);
  for (const char* phase : {"read", "write", "verify"}) {
    CAPTURE(phase);
    CHECK(Contains(sim.output, std::string("\r\033[K") + phase));
  }
  CHECK(Contains(sim.output, "/s  ETA "));
  CHECK(Contains(sim.output, "[####"));
  CHECK(Contains(sim.output, "flashed 1.0.0"));
}

TEST_CASE("onedfu flash writes one set-address per contiguous run, then consecutive block numbers") {
  Sim sim("flash_blocks");
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "flash", V1().file.string()}, false, {"--trace"}) == 0);
  // Trace lines: "usb: NODE ctrl 21 01 VALUE 0000 LENGTH -> ok 0" for every DNLOAD.
  std::istringstream lines(sim.output);
  std::string line;
  int set_addresses = 0;
  int blocks = 0;
  int expected = -1;  // the next block number; -1: none allowed before a set-address
  bool consecutive = true;
  while (std::getline(lines, line)) {
    const auto at = line.find(" ctrl 21 01 ");
    if (at == std::string::npos) continue;
    const unsigned value = std::stoul(line.substr(at + 12, 4), nullptr, 16);
    const unsigned length = std::stoul(line.substr(at + 22, 4), nullptr, 16);
    if (value == 0) {
      if (length == 5) ++set_addresses;
      expected = length == 5 ? 2 : -1;  // another command (hash, leave) ends the run
      continue;
    }
    ++blocks;
    consecutive = consecutive && static_cast<int>(value) == expected;
    ++expected;
  }
  INFO(sim.output);
  CHECK(consecutive);
  // Blank board: text0 (8 KiB), text1 (4 KiB), the ROMFS image (2396 bytes sent), the record
  // (3124 bytes): 4 runs of 4 + 2 + 2 + 2 blocks, and the set-address of the leave.
  CHECK(blocks == 10);
  CHECK(set_addresses == 5);
}

TEST_CASE("onedfu flash --app-id: an application with its own USB ids is found, DETACHed and updated") {
  const Package& v1 = V1();
  Sim sim("flash_app_id");
  const std::vector<std::string> app_ids = {"--app-usb-id", "f055:9800"};  // MicroPython's runtime ids
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "flash", v1.file.string()}, false, app_ids) == 0);
  REQUIRE(FlashHolds(sim, v1));
  // The application is not the board's 0483:df11: without --app-id it is not taken for it.
  CHECK(sim.RunWith({ONEDFU_CLI_EXE, "flash", V2().file.string()}, false, app_ids) == 1);
  CHECK(Contains(sim.output, "no board 0483:df11 found; DFU-capable devices seen:\n  1-1 f055:9800 serial SIM000000001 (application)"));
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "flash", V2().file.string(), "--app-id", "f055:9800"}, false, app_ids) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, V2()));
  const nlohmann::json stats = sim.Stats();
  REQUIRE(stats["boots"].size() == 3);
  CHECK(stats["boots"][1]["cause"] == "detach");
  CHECK(stats["boots"][2]["mode"] == "application");
  CHECK(sim.RunWith({ONEDFU_CLI_EXE, "flash", V2().file.string(), "--app-id", "f055"}) == 2);
  CHECK(Contains(sim.output, "--app-id: VID:PID in hex"));
}

TEST_CASE("onedfu flash waits the bwPollTimeout the device reports, and only that") {
  const Package& v1 = V1();
  const Package& v2 = V2();
  Sim sim("flash_poll");
  FlashBlank(sim, v1);
  const auto final_result = [](const std::string& output) {
    std::istringstream lines(output);
    std::string line;
    nlohmann::json last;
    while (std::getline(lines, line)) {
      if (!line.empty() && line[0] == '{') last = nlohmann::json::parse(line);
    }
    return last;
  };
  // The simulator reports modeled poll timeouts (capped at 1 s): the record sector's erase is
  // 45 ms (pybd-sf6 QSPI 4 KiB), so the host waits at least that long in all.
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "flash", v2.file.string(), "--json"}, false, {"--poll-timeout-cap", "1000"}) == 0);
  INFO(sim.output);
  const nlohmann::json polled = final_result(sim.output);
  REQUIRE(polled["result"] == "ok");
  CHECK(polled["poll_ms"].get<uint64_t>() >= 45);
  CHECK(polled["poll_ms"].get<uint64_t>() <= sim.Stats()["modeled_us"]["total"].get<uint64_t>() / 1000 + 1);
  // Reporting 0 (the default): the host never sleeps.
  REQUIRE(Flash(sim, v1, {"--json"}) == 0);
  CHECK(final_result(sim.output)["poll_ms"] == 0);
}

TEST_CASE("onedfu flash: a device asking to stay busy longer than --timeout is reported, not waited for") {
  // bwPollTimeout is 24 bits (up to 4.6 hours a poll): the flasher bounds one operation's waits
  // by --timeout. The simulator reports the modeled erase times (cap 1 s); the record sector's
  // erase alone is 45 ms, over a 20 ms limit.
  const Package& v1 = V1();
  const Package& v2 = V2();
  Sim sim("flash_busy_limit");
  const std::vector<std::string> polls = {"--poll-timeout-cap", "1000"};
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "flash", v1.file.string()}, false, polls) == 0);
  CHECK(sim.RunWith({ONEDFU_CLI_EXE, "flash", v2.file.string(), "--timeout", "0.02"}, false, polls) == 1);
  INFO(sim.output);
  CHECK(Contains(sim.output, "ms (bwPollTimeout), over the 20 ms one operation may take (--timeout); the board stays in DFU mode"));
  // Nothing half-written boots; the customer's re-run with the default limit completes.
  REQUIRE(sim.RunWith({ONEDFU_CLI_EXE, "flash", v2.file.string()}, false, polls) == 0);
  CHECK(FlashHolds(sim, v2));
}
