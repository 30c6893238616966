// Real, unmodified peers against `onedfu-sim run` through the virtual USB bus (DESIGN.md 8):
// Debian's dfu-util 0.11 and pyusb (/usr/bin/python3, python3-usb). Packages are packed with the
// built `onedfu` CLI from manifests/examples/pybd-sf6-demo.json (1.0.0) and the same with
// --version 2.0.0. What the flash must hold afterwards comes from parsing those .dfu files.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "host/dfuse_file.h"
#include "host/file_io.h"
#include "runtime/romfs.h"
#include "sim_run.h"

using namespace onedfu;

namespace {

namespace fs = std::filesystem;

const fs::path kSource = ONEDFU_SOURCE_DIR;
constexpr uint32_t kInternalBase = 0x08000000;
constexpr uint32_t kQspiBase = 0x90000000;
constexpr uint32_t kBootloaderSize = onedfu::test::kPybdBootloaderSize;
constexpr const char* kLayout = onedfu::test::kPybdLayout;

using test::ReadBytes;
using test::Run;
using test::Package;
using test::Pack;
using test::Sim;
using test::Slurp;

// The demo example, packed by `onedfu pack` with EXTRA flags.
Package PackDemo(const std::string& name, const std::vector<std::string>& extra) {
  return Pack(name, kSource / "manifests/examples/pybd-sf6-demo.json", extra);
}

const Package& Package1() {
  static const Package p = PackDemo("demo-1.0.0.dfu", {});
  return p;
}
const Package& Package2() {
  static const Package p = PackDemo("demo-2.0.0.dfu", {"--version", "2.0.0"});
  return p;
}

bool FlashHolds(const Sim& sim, const Package& p) {
  for (const auto& e : p.elements) {
    if (sim.At(e.address, e.data.size()) != e.data) return false;
  }
  return true;
}

// Files in the package's ROMFS element (the element inside the romfs region).
uint32_t RomfsFiles(const Package& p) {
  struct Counter final : runtime::RomfsReader::WalkVisitor {
    runtime::Status OnEntry(const char*, const runtime::RomfsEntry& e) override {
      if (!e.is_dir) ++files;
      return runtime::Status::Ok();
    }
    uint32_t files = 0;
  } counter;
  for (const auto& e : p.elements) {
    if (e.address != kQspiBase + 0x100000) continue;
    auto reader = runtime::RomfsReader::Open(e.data, nullptr);
    REQUIRE(reader.ok());
    REQUIRE(reader.value().Walk(counter, nullptr).ok());
  }
  return counter.files;
}

void FlashWithLeave(Sim& sim, const Package& p) {
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-D", p.file.string(), "-s", ":leave"}) == 0);
  REQUIRE(FlashHolds(sim, p));
}

}  // namespace

TEST_CASE("dfu-util -l on a blank board: Found DFU with the multi-zone layout") {
  Sim sim("peers_list_blank");
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-l"}) == 0);
  INFO(sim.output);
  CHECK(sim.output.find(std::string("Found DFU: [0483:df11]")) != std::string::npos);
  CHECK(sim.output.find(std::string("name=\"") + kLayout + "\"") != std::string::npos);
  CHECK(sim.output.find("Found Runtime") == std::string::npos);
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["boots"][0]["mode"] == "dfu");
  CHECK(stats["boots"][0]["reason"] == "no boot record");
  CHECK(stats["usb"]["control_transfers"].get<int>() > 0);
  CHECK(stats["flash"]["erases"] == 0);
}

TEST_CASE("dfu-util -a 0 -D pkg.dfu -s :leave flashes the package, the board boots it") {
  const Package& pkg = Package1();
  Sim sim("peers_flash_leave");
  REQUIRE(sim.RunWith({"true"}) == 0);  // power-on of a blank board: bootloader image placed
  const std::vector<uint8_t> bootloader_before = sim.At(kInternalBase, kBootloaderSize);
  REQUIRE(bootloader_before.size() == kBootloaderSize);
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-D", pkg.file.string(), "-s", ":leave"}) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, pkg));
  CHECK(sim.At(kInternalBase, kBootloaderSize) == bootloader_before);
  nlohmann::json stats = sim.Stats();
  REQUIRE(stats["boots"].size() == 2);
  CHECK(stats["boots"][0]["mode"] == "dfu");
  CHECK(stats["boots"][1]["cause"] == "leave");
  CHECK(stats["boots"][1]["mode"] == "application");
  // One sector per element: text0 in the 32 KiB sector at 0x08008000, text1, romfs and record
  // each within one 4 KiB QSPI sector (element sizes <= 8192 bytes at sector starts).
  for (const auto& e : pkg.elements) CHECK(e.data.size() <= (e.address < kQspiBase ? 32768u : 4096u));
  CHECK(stats["flash"]["erases"] == 4);
  CHECK(stats["flash"]["memories"][0]["sector_erases"]["0x08008000"] == 1);
  CHECK(stats["flash"]["memories"][1]["sector_erases"].size() == 3);
  CHECK(stats["modeled_us"]["erase"] == 450000 + 3 * 45000);
  CHECK(stats["modeled_us"]["total"].get<uint64_t>() > stats["modeled_us"]["erase"].get<uint64_t>());
  uint64_t payload = 0;
  for (const auto& e : pkg.elements) payload += e.data.size();
  CHECK(stats["usb"]["bytes_out"].get<uint64_t>() > payload);
  CHECK(stats["flash"]["bytes_programmed"].get<uint64_t>() <= payload + 4);

  // Next power-on: the application, with its DFU runtime interface.
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-l"}) == 0);
  CHECK(sim.output.find("Found Runtime: [0483:df11]") != std::string::npos);
  const std::string summary =
      "onedfu app 1.0.0, romfs: 1 image, " + std::to_string(RomfsFiles(pkg)) + " files";
  CHECK(sim.output.find("name=\"" + summary + "\"") != std::string::npos);
  CHECK(sim.output.find("Found DFU") == std::string::npos);
}

TEST_CASE("plain dfu-util -D on the runtime device detaches it and flashes the update") {
  const Package& pkg1 = Package1();
  const Package& pkg2 = Package2();
  Sim sim("peers_update_detach");
  FlashWithLeave(sim, pkg1);
  // -E 0: dfu-util reopens the device at once after DETACH (its default waits 5 s); the
  // simulated board is back, in its bootloader, as soon as the DETACH reply has gone out.
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-E", "0", "-D", pkg2.file.string()}) == 0);
  INFO(sim.output);
  CHECK(sim.output.find("Device really in Run-Time Mode") != std::string::npos);
  CHECK(FlashHolds(sim, pkg2));
  nlohmann::json stats = sim.Stats();
  REQUIRE(stats["boots"].size() == 2);
  CHECK(stats["boots"][0]["mode"] == "application");
  CHECK(stats["boots"][1]["cause"] == "detach");
  CHECK(stats["boots"][1]["mode"] == "dfu");
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-l"}) == 0);
  CHECK(sim.output.find("Found Runtime") != std::string::npos);
  CHECK(sim.output.find("onedfu app 2.0.0") != std::string::npos);
}

TEST_CASE("dfu-util -U reads back what was flashed") {
  const Package& pkg = Package1();
  Sim sim("peers_upload");
  FlashWithLeave(sim, pkg);
  const fs::path out = sim.state.parent_path() / "out.bin";
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-s", "0x90000000:4096", "-U", out.string()}, true) == 0);
  INFO(sim.output);
  const std::vector<uint8_t> read = ReadBytes(out);
  CHECK(read.size() == 4096);
  CHECK(read == sim.At(kQspiBase, 4096));
  for (const auto& e : pkg.elements) {
    if (e.address == kQspiBase) CHECK(std::equal(e.data.begin(), e.data.end(), read.begin()));
  }
  CHECK(sim.Stats()["flash"]["erases"] == 0);
}

TEST_CASE("dfu-util -U that runs into the end of a memory exits 0 with the bytes that exist") {
  Sim sim("peers_upload_end");
  REQUIRE(sim.RunWith({"true"}) == 0);
  {
    std::fstream q(sim.state / "qspi.bin", std::ios::in | std::ios::out | std::ios::binary);
    q.seekp(0x1ff000);
    for (int i = 0; i < 4096; ++i) q.put(static_cast<char>(i * 13 + 1));
    std::fstream f(sim.state / "internal.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0x1ff800);
    for (int i = 0; i < 2048; ++i) f.put(static_cast<char>(i * 5 + 2));
  }
  const fs::path up = sim.state.parent_path() / "up.bin";
  // 1 MiB asked, 4 KiB left in QSPI: two full blocks, then an empty one.
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-s", "0x901ff000:0x100000", "-U", up.string()}) == 0);
  INFO(sim.output);
  CHECK(ReadBytes(up) == sim.At(0x901ff000, 4096));
  // 4 KiB asked, 2 KiB left in internal flash.
  fs::remove(up);
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-s", "0x081ff800:4096", "-U", up.string()}) == 0);
  CHECK(ReadBytes(up) == sim.At(0x081ff800, 2048));
  // A length that ends inside the last block: a short block.
  fs::remove(up);
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-s", "0x901fff00:4096", "-U", up.string()}) == 0);
  CHECK(ReadBytes(up) == sim.At(0x901fff00, 256));
}

TEST_CASE("a forced write to the bootloader is refused and changes nothing") {
  Sim sim("peers_forced_bootloader");
  CheckForcedBootloaderWriteRefused(sim, {});
}

TEST_CASE("dfu-util :mass-erase:force leaves the bootloader and the filesystem intact") {
  const Package& pkg = Package1();
  Sim sim("peers_mass_erase");
  FlashWithLeave(sim, pkg);
  const nlohmann::json stats = CheckMassEraseKeepsBootloaderAndFilesystem(sim, {});
  // Everything else was erased: the rest of TEXT0 and all of QSPI (record included).
  const std::vector<uint8_t> text0_rest = sim.At(0x08008000 + 512, 0x1b8000 - 512);
  CHECK(std::all_of(text0_rest.begin(), text0_rest.end(), [](uint8_t b) { return b == 0xff; }));
  CHECK(stats["flash"]["memories"][0]["sector_erases"].contains("0x08000000") == false);
  CHECK(stats["flash"]["memories"][0]["sector_erases"].contains("0x081c0000") == false);
  // The record is gone: the next power-on stays in DFU mode.
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-l"}) == 0);
  CHECK(sim.output.find("Found DFU") != std::string::npos);
}

TEST_CASE("wb55: unlisted flash (the CPU2 radio stack) is 'a', a forced write is refused, mass erase skips it") {
  Sim sim("peers_wb55_unlisted");
  sim.board_file = kSource / "manifests/boards/wb55.json";
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-l"}) == 0);
  CHECK(sim.output.find("name=\"@Internal Flash  /0x08000000/08*04Ka,201*04Kg,47*04Ka\"") != std::string::npos);
  // The radio stack, as ST's FUS would have installed it: 0x080d1000-0x08100000.
  constexpr uint32_t kRadioOffset = 0xd1000;
  constexpr uint32_t kRadioSize = 0x100000 - kRadioOffset;
  {
    std::fstream f(sim.state / "internal.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kRadioOffset);
    for (uint32_t i = 0; i < kRadioSize; ++i) f.put(static_cast<char>(i * 7 + 3));
  }
  const std::vector<uint8_t> before = sim.Internal();
  const fs::path x = sim.state.parent_path() / "x.bin";
  std::ofstream(x, std::ios::binary) << std::string(512, 'X');
  const int status = sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-s", "0x080d1000:force", "-D", x.string()});
  INFO(sim.output);
  CHECK(status != 0);
  CHECK(sim.output.find("dfuERROR, status(8)") != std::string::npos);  // errADDRESS
  CHECK(sim.Internal() == before);
  CHECK(sim.Stats()["flash"]["erases"] == 0);
  CHECK(sim.Stats()["flash"]["bytes_programmed"] == 0);
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-s", "0x08008000:mass-erase:force", "-D", x.string()}) == 0);
  const std::vector<uint8_t> after = sim.Internal();
  REQUIRE(after.size() == before.size());
  CHECK(std::equal(before.begin() + kRadioOffset, before.end(), after.begin() + kRadioOffset));
  CHECK(std::equal(before.begin(), before.begin() + kBootloaderSize, after.begin()));
  CHECK(std::equal(after.begin() + kBootloaderSize, after.begin() + kBootloaderSize + 512, std::string(512, 'X').begin()));
  CHECK(sim.Stats()["flash"]["memories"][0]["sector_erases"].contains("0x080d1000") == false);
}

TEST_CASE("pyusb: DfuSe set-address + upload returns the flashed bytes") {
  const std::string python = ONEDFU_SYSTEM_PYTHON3;
  if (python.empty()) {
    MESSAGE("skipped: /usr/bin/python3 not found");
    return;
  }
  const Package& pkg = Package1();
  Sim sim("peers_pyusb");
  FlashWithLeave(sim, pkg);
  const auto& text0 = pkg.elements.front();
  REQUIRE(text0.address == 0x08008000);
  const fs::path expected = sim.state.parent_path() / "text0.bin";
  std::ofstream(expected, std::ios::binary)
      .write(reinterpret_cast<const char*>(text0.data.data()), static_cast<std::streamsize>(text0.data.size()));
  const int status = sim.RunWith({python, (fs::path(ONEDFU_SIM_TESTS_DIR) / "pyusb_upload.py").string(), "0x08008000",
                                  std::to_string(text0.data.size()), expected.string()},
                                 true);
  INFO(sim.output);
  CHECK(status == 0);
  CHECK(sim.output.find("matches") != std::string::npos);
}

TEST_CASE("assets-only update: dfu-util flashes a --base package onto a board running OLD, it boots, firmware untouched") {
  const fs::path dir = testing::Scratch("peers_base_update");
  const std::string inputs = std::string(ONEDFU_SOURCE_DIR) + "/scripts/make-product-inputs ";
  REQUIRE(std::system((inputs + (dir / "old").string() + " --shared " + ONEDFU_SHARED_DIR).c_str()) == 0);
  REQUIRE(std::system((inputs + (dir / "new").string() + " --grow-asset --shared " + ONEDFU_SHARED_DIR).c_str()) == 0);
  const fs::path old_dfu = dir / "old.dfu", new_dfu = dir / "assets.dfu";
  REQUIRE(Run({ONEDFU_CLI_EXE, "pack", (dir / "old/product.json").string(), "-o", old_dfu.string()}, dir / "p1.log") == 0);
  REQUIRE(Run({ONEDFU_CLI_EXE, "pack", "--base", old_dfu.string(), "--romfs", (dir / "new/romfs").string(),
               "--version", "1.0.2", "-o", new_dfu.string()}, dir / "p2.log") == 0);
  auto image = host::ParseDfuse(ReadBytes(new_dfu), new_dfu.string());
  REQUIRE(image.ok());
  const auto& elements = image.value().targets[0].elements;
  REQUIRE(elements.size() == 2);  // ROMFS + record: no firmware bytes in the package

  Sim sim("peers_base_update_board");
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-D", old_dfu.string(), "-s", ":leave"}) == 0);
  REQUIRE(sim.Stats()["boots"].back()["mode"] == "application");
  const std::vector<uint8_t> text0 = sim.At(0x08008000, 0x1b8000);
  const std::vector<uint8_t> text1 = sim.At(kQspiBase, 0x100000);
  const std::vector<uint8_t> romfs_before = sim.At(kQspiBase + 0x100000, 0xff000);

  // The board runs OLD: plain dfu-util detaches it and writes the ROMFS and the record.
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-D", new_dfu.string(), "-s", ":leave"}) == 0);
  INFO(sim.output);
  for (const auto& e : elements) CHECK(sim.At(e.address, e.data.size()) == e.data);
  CHECK(sim.At(0x08008000, 0x1b8000) == text0);
  CHECK(sim.At(kQspiBase, 0x100000) == text1);
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["boots"].back()["mode"] == "application");
  CHECK(stats["boots"].back()["reason"] == "start application");
  CHECK(stats["flash"]["memories"][0]["sector_erases"].size() == 0);  // internal flash (text0) never erased
  // dfu-util erases every page the ROMFS element covers; the bytes that differ are few.
  const std::vector<uint8_t> romfs_after = sim.At(kQspiBase + 0x100000, 0xff000);
  size_t changed = 0;
  for (size_t s = 0; s < romfs_after.size(); s += 4096) {
    changed += !std::equal(romfs_after.begin() + s, romfs_after.begin() + s + 4096, romfs_before.begin() + s);
  }
  MESSAGE("ROMFS sectors whose bytes changed: " << changed);
  CHECK(changed <= 3);
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-l"}) == 0);
  CHECK(sim.output.find("onedfu app 1.0.2") != std::string::npos);
}
