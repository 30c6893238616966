// The real Cortex-M bootloader binary (scripts/size: ONEDFU_BOOTLOADER_ELF) on the emulated
// STM32F767 (sim/emulator), driven by the unmodified dfu-util through `onedfu-sim run
// --emulate` on the umockdev bus: the dfu-util end-to-end checks the host build passes
// (tests/sim/peers_test.cpp), here against the binary a user flashes, and the jump into a test
// application (tests/emulator/test_app.c, its own Cortex-M build: ONEDFU_TEST_APP_ELF).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "board_config.h"
#include "doctest/doctest.h"
#include "emulated_device.h"
#include "host/board_json.h"
#include "runtime/boot_record.h"
#include "sim_board.h"
#include "sim_run.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace onedfu::test;

namespace {

constexpr const char* kLayout = onedfu::test::kPybdLayout;

// A Sim whose board runs the real bootloader ELF under emulation.
struct EmulatedSim : Sim {
  explicit EmulatedSim(const std::string& name) : Sim(name) {}
  static std::vector<std::string> Options() { return {"--emulate", ONEDFU_BOOTLOADER_ELF, "--verbose"}; }
  int Run(const std::vector<std::string>& command, bool enter_dfu = false) { return RunWith(command, enter_dfu, Options()); }
};

const Package& AppPackage() {
  static const Package p = Pack("emulator-test-app.dfu", {}, {"--board", std::string(ONEDFU_SOURCE_DIR) + "/manifests/boards/pybd-sf6.json",
                                                             "--firmware", ONEDFU_TEST_APP_ELF});
  return p;
}

bool FlashHolds(const Sim& sim, const Package& p) {
  for (const auto& e : p.elements) {
    if (sim.At(e.address, e.data.size()) != e.data) return false;
  }
  return true;
}

void FlashAppWithLeave(EmulatedSim& sim) {
  REQUIRE(sim.Run({ONEDFU_DFU_UTIL, "-a", "0", "-D", AppPackage().file.string(), "-s", ":leave"}) == 0);
  INFO(sim.output);
  REQUIRE(FlashHolds(sim, AppPackage()));
}

}  // namespace

TEST_CASE("emulated binary: the bootloader image is the ELF, dfu-util -l finds the layout") {
  EmulatedSim sim("emu_list");
  REQUIRE(sim.Run({ONEDFU_DFU_UTIL, "-l"}) == 0);
  INFO(sim.output);
  CHECK(sim.output.find(std::string("name=\"") + kLayout + "\"") != std::string::npos);
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["boots"][0]["mode"] == "dfu");
  CHECK(stats["boots"][0]["reason"] == "no boot record");
  CHECK(stats["boots"][0]["message"].get<std::string>().find("no record") != std::string::npos);
  CHECK(stats["flash"]["erases"] == 0);
  // The factory image: the ELF's vector table at the start of internal flash.
  const std::vector<uint8_t> vectors = sim.At(Sim::kInternalBase, 8);
  CHECK(vectors[3] == 0x20);              // initial MSP in DTCM RAM
  CHECK((vectors[4] & 1) == 1);           // Thumb reset handler
  CHECK(vectors[7] == 0x08);              // ... in internal flash
}

TEST_CASE("emulated binary: flash with :leave, the bootloader verifies and jumps into the test application") {
  EmulatedSim sim("emu_leave");
  FlashAppWithLeave(sim);
  INFO(sim.output);
  const nlohmann::json stats = sim.Stats();
  REQUIRE(stats["boots"].size() == 2);
  CHECK(stats["boots"][1]["cause"] == "leave");
  CHECK(stats["boots"][1]["mode"] == "application");
  CHECK(stats["boots"][1]["reason"] == "start application");
  const std::string message = stats["boots"][1]["message"];
  // The application's marks: its marker, the VTOR and the MSP it was entered with.
  CHECK(message.find("SCB_VTOR 0x08008000") != std::string::npos);
  CHECK(message.find("0x600df00d 0x08008000 0x20030000") != std::string::npos);
  CHECK(stats["flash"]["erases"].get<int>() >= 2);  // the TEXT0 sector and the record sector
  CHECK(stats["modeled_us"]["erase"].get<uint64_t>() > 0);
  // Next power-on: the record is valid, the application starts again, nothing enumerates.
  REQUIRE(sim.Run({"true"}) == 0);
  CHECK(sim.Stats()["boots"][0]["mode"] == "application");
}

TEST_CASE("emulated binary: dfu-util -U reads back what was flashed") {
  EmulatedSim sim("emu_upload");
  FlashAppWithLeave(sim);
  const fs::path out = sim.state.parent_path() / "out.bin";
  fs::remove(out);
  REQUIRE(sim.Run({ONEDFU_DFU_UTIL, "-a", "0", "-s", "0x08008000:1024", "-U", out.string()}, true) == 0);
  INFO(sim.output);
  const std::vector<uint8_t> read = ReadBytes(out);
  CHECK(read.size() == 1024);
  CHECK(read == sim.At(0x08008000, 1024));
  const auto& app = AppPackage().elements.front();
  REQUIRE(app.address == 0x08008000);
  CHECK(std::equal(app.data.begin(), app.data.begin() + std::min<size_t>(app.data.size(), 1024), read.begin()));
  CHECK(sim.Stats()["boots"][0]["reason"] == "forced DFU entry");
  CHECK(sim.Stats()["flash"]["erases"] == 0);
}

TEST_CASE("emulated binary: a forced write to the bootloader is refused and changes nothing") {
  EmulatedSim sim("emu_forced_bootloader");
  CheckForcedBootloaderWriteRefused(sim, EmulatedSim::Options());
}

TEST_CASE("emulated binary: :mass-erase:force keeps the bootloader and the filesystem") {
  EmulatedSim sim("emu_mass_erase");
  FlashAppWithLeave(sim);
  const nlohmann::json stats = CheckMassEraseKeepsBootloaderAndFilesystem(sim, EmulatedSim::Options());
  // The QSPI went through the W25Q model: 64 KiB block erases where aligned.
  CHECK(stats["flash"]["memories"][1]["block_erases"].get<int>() > 0);
}

TEST_CASE("emulated binary: the demo package flashes with dfu-util and the bootloader starts it") {
  EmulatedSim sim("emu_demo");
  const Package demo = Pack("emulator-demo.dfu", fs::path(ONEDFU_SOURCE_DIR) / "manifests/examples/pybd-sf6-demo.json", {});
  REQUIRE(sim.Run({ONEDFU_DFU_UTIL, "-a", "0", "-D", demo.file.string(), "-s", ":leave"}) == 0);
  INFO(sim.output);
  REQUIRE(FlashHolds(sim, demo));
  const nlohmann::json stats = sim.Stats();
  REQUIRE(stats["boots"].size() == 2);
  // The demo "firmware" is example bytes, not a program: the binary verified the record and
  // jumped (VTOR set), whatever the bytes then do.
  CHECK(stats["boots"][1]["mode"] == "application");
  CHECK(stats["boots"][1]["reason"] == "start application");
}

TEST_CASE("emulated binary: sampled power cuts during an update, then the board boots or waits, and re-flashing works") {
  const Package v2 = Pack("emulator-test-app-2.dfu", {}, {"--board", std::string(ONEDFU_SOURCE_DIR) + "/manifests/boards/pybd-sf6.json",
                                                         "--firmware", ONEDFU_TEST_APP_ELF, "--version", "2.0.0"});
  // Operation counts of the update: the TEXT0 erase + 4-byte programs on internal flash, the
  // record revoke, erase and page programs on the QSPI.
  const std::vector<std::string> cuts = {"internal:0", "internal:1", "internal:7", "qspi:0", "qspi:1", "qspi:3", "qspi:9"};
  for (const std::string& cut : cuts) {
    CAPTURE(cut);
    EmulatedSim sim("emu_powercut_" + cut.substr(0, cut.find(':')) + cut.substr(cut.find(':') + 1));
    FlashAppWithLeave(sim);
    (void)sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-D", v2.file.string(), "-s", ":leave"}, true,
                      {"--emulate", ONEDFU_BOOTLOADER_ELF, "--cut-power-after", cut});
    INFO(sim.output);
    CHECK(sim.output.find("power cut") != std::string::npos);
    // Power returns: a complete image starts, or the bootloader waits in DFU mode; never a crash.
    REQUIRE(sim.Run({"true"}) == 0);
    const nlohmann::json boot = sim.Stats()["boots"][0];
    CHECK(boot["reason"] != "emulation stopped");
    if (boot["mode"] == "application") {
      CHECK(boot["message"].get<std::string>().find("0x600df00d 0x08008000") != std::string::npos);
    } else {
      CHECK(boot["mode"] == "dfu");
    }
    // Re-flashing the update succeeds and the new image starts.
    REQUIRE(sim.Run({ONEDFU_DFU_UTIL, "-a", "0", "-D", v2.file.string(), "-s", ":leave"}, true) == 0);
    CHECK(FlashHolds(sim, v2));
    CHECK(sim.Stats()["boots"].back()["mode"] == "application");
  }
}

TEST_CASE("emulated binary: the application's DFU request word keeps the bootloader in DFU mode") {
  EmulatedSim sim("emu_dfu_request");
  FlashAppWithLeave(sim);  // a valid record: without the request the application starts
  auto board_file = onedfu::host::LoadBoardFile(std::string(ONEDFU_SOURCE_DIR) + "/manifests/boards/pybd-sf6.json");
  REQUIRE(board_file.ok());
  auto board = onedfu::sim::SimBoard::Open(board_file.value(), sim.state);
  REQUIRE(board.ok());
  onedfu::sim::emu::EmulatedDeviceOptions options;
  options.bootloader_elf = ONEDFU_BOOTLOADER_ELF;
  auto device = onedfu::sim::emu::EmulatedDevice::Create(*board.value(), options);
  REQUIRE(device.ok());
  device.value()->PowerOn(false);
  // What an application does before it resets into the bootloader (board_config.h).
  const uint32_t magic = onedfu::cortexm::kDfuEntryMagic;
  REQUIRE(device.value()->machine().WriteMemory(onedfu::sim::emu::kDfuEntryAddress, &magic, 4));
  const std::vector<uint8_t> descriptors = device.value()->DeviceAndConfigDescriptors();
  INFO(device.value()->error());
  REQUIRE(descriptors.size() > 18);
  CHECK(descriptors[1] == 1);  // a device descriptor: the bootloader enumerated
  CHECK(descriptors[8] == 0x83);
  CHECK(descriptors[9] == 0x04);  // VID 0x0483
  REQUIRE(device.value()->boots().size() == 1);
  CHECK_FALSE(device.value()->boots()[0].application);
  CHECK(device.value()->boots()[0].reason == "forced DFU entry");
  // The bootloader cleared the word: the next reset starts the application again.
  uint32_t word = 1;
  REQUIRE(device.value()->machine().ReadMemory(onedfu::sim::emu::kDfuEntryAddress, &word, 4));
  CHECK(word == 0);
}

TEST_CASE("emulated binary: pyusb reads the DFU functional descriptor, status and state from the binary") {
  EmulatedSim sim("emu_pyusb_info");
  const int status = sim.Run({ONEDFU_SYSTEM_PYTHON3, std::string(ONEDFU_SOURCE_DIR) + "/tests/emulator/pyusb_dfu_info.py",
                              kLayout, "no record"});
  INFO(sim.output);
  CHECK(status == 0);
  CHECK(sim.output.find("GET_DESCRIPTOR DFU functional: 09210bff0000081a01") != std::string::npos);
  CHECK(sim.output.find("wTransferSize 2048") != std::string::npos);
  CHECK(sim.output.find("CHECK FAILED") == std::string::npos);
  // Every reply came from the binary: the boot the stats report is the emulated one.
  CHECK(sim.Stats()["boots"][0]["reason"] == "no boot record");
  CHECK(sim.output.find("erase: bwPollTimeout 450 ms") != std::string::npos);  // pybd-sf6: 32K erase 450 ms

  // --poll-timeout-cap: the wire carries at most the cap, the binary still did the erase.
  EmulatedSim capped("emu_pyusb_poll_cap");
  std::vector<std::string> options = EmulatedSim::Options();
  options.insert(options.end(), {"--poll-timeout-cap", "0"});
  const int capped_status = capped.RunWith({ONEDFU_SYSTEM_PYTHON3, std::string(ONEDFU_SOURCE_DIR) + "/tests/emulator/pyusb_dfu_info.py",
                                            kLayout, "no record", "0"},
                                           false, options);
  INFO(capped.output);
  CHECK(capped_status == 0);
  CHECK(capped.output.find("erase: bwPollTimeout 0 ms") != std::string::npos);
  CHECK(capped.Stats()["flash"]["erases"] == 1);
}

TEST_CASE("emulated binary: pyusb DfuSe set-address + upload reads back the flashed application") {
  EmulatedSim sim("emu_pyusb_upload");
  FlashAppWithLeave(sim);
  const auto& text0 = AppPackage().elements.front();
  const fs::path expected = sim.state.parent_path() / "text0.bin";
  onedfu::testing::WriteBytes(expected, text0.data);
  const int status = sim.Run({ONEDFU_SYSTEM_PYTHON3, std::string(ONEDFU_SOURCE_DIR) + "/tests/sim/pyusb_upload.py",
                              "0x08008000", std::to_string(text0.data.size()), expected.string()},
                             true);
  INFO(sim.output);
  CHECK(status == 0);
  CHECK(sim.output.find("matches") != std::string::npos);
}

namespace {

// The demo package (manifests/examples/pybd-sf6-demo.json: its modules, assets, ROMFS and TEXT1)
// with the USB test application (ONEDFU_USB_APP_ELF) as its TEXT0 in place of the example
// bytes, which are no program: what the bootloader starts then answers on USB.
const Package& DemoWithUsbApp(const std::string& version) {
  static std::map<std::string, Package> made;
  if (auto it = made.find(version); it != made.end()) return it->second;
  const fs::path examples = fs::path(ONEDFU_SOURCE_DIR) / "manifests/examples";
  nlohmann::json demo = nlohmann::json::parse(Slurp(examples / "pybd-sf6-demo.json"));
  const auto absolute = [&](nlohmann::json& path) { path = (examples / path.get<std::string>()).string(); };
  REQUIRE(demo["firmware"][0] == "pybd-sf6-demo/firmware/text0.hex");
  demo["firmware"][0] = ONEDFU_USB_APP_ELF;
  absolute(demo["firmware"][1]["file"]);
  for (auto& m : demo["modules"]) absolute(m.contains("dir") ? m["dir"] : m["source"]);
  for (auto& a : demo["assets"]) absolute(a["source"]);
  absolute(demo["romfs"]["dir"]);
  demo["version"] = version;
  const fs::path json = onedfu::testing::Scratch("emu_demo_usb_app_" + version) / "demo-usb-app.json";
  std::ofstream(json) << demo.dump(2);
  return made.emplace(version, Pack("emulator-demo-usb-app-" + version + ".dfu", json, {})).first->second;
}

}  // namespace

TEST_CASE("emulated binary: onedfu flash of the demo package confirms the booted application on USB, then updates it through DETACH") {
  const Package& v1 = DemoWithUsbApp("1.0.0");
  EmulatedSim sim("emu_onedfu_flash");
  REQUIRE(sim.Run({ONEDFU_CLI_EXE, "flash", v1.file.string()}) == 0);
  INFO(sim.output);
  CHECK(FlashHolds(sim, v1));
  CHECK(sim.output.find("flashed 1.0.0; the board runs onedfu app 1.0.0") != std::string::npos);
  nlohmann::json stats = sim.Stats();
  REQUIRE(stats["boots"].size() == 2);
  CHECK(stats["boots"][1]["cause"] == "leave");
  CHECK(stats["boots"][1]["mode"] == "application");
  CHECK(stats["boots"][1]["reason"] == "start application");
  // The application's own words, read from the emulated RAM and from its USB interface string.
  const std::string message = stats["boots"][1]["message"];
  CHECK(message.find("0x05b0a991 0x08008000 0x20030000") != std::string::npos);
  CHECK(message.find("on USB: onedfu app 1.0.0, romfs: 1 image, ") != std::string::npos);

  // The board runs the application: onedfu flash DETACHes it (the application leaves the DFU
  // request word and resets), the bootloader stays in DFU mode, the update goes in, it boots.
  const Package& v2 = DemoWithUsbApp("2.0.0");
  REQUIRE(sim.Run({ONEDFU_CLI_EXE, "flash", v2.file.string()}) == 0);
  CHECK(sim.output.find("the board runs onedfu app 2.0.0") != std::string::npos);
  stats = sim.Stats();
  REQUIRE(stats["boots"].size() == 3);
  CHECK(stats["boots"][0]["mode"] == "application");
  CHECK(stats["boots"][1]["cause"] == "detach");
  CHECK(stats["boots"][1]["mode"] == "dfu");
  CHECK(stats["boots"][1]["reason"] == "forced DFU entry");
  CHECK(stats["boots"][2]["mode"] == "application");
  CHECK(stats["boots"][2]["message"].get<std::string>().find("on USB: onedfu app 2.0.0") != std::string::npos);
  // Only the record changed: its one 4 KiB sector is erased and rewritten.
  CHECK(stats["flash"]["memories"][1]["sector_erases"].contains("0x901ff000"));
  CHECK(stats["flash"]["memories"][0]["sector_erases"].empty());
}

// Issue 11, Size: the Cortex-M7 build of the boot decision with signature verification
// (scripts/size --signed: ONEDFU_SIGNED_BOOTLOADER_ELF, built with tests/data/keys/size.pub.pem)
// runs on the emulated CPU; the instructions from reset to the decision are counted (stats.json
// boots[].instructions, per function in instructions_by_function) and printed here.
TEST_CASE("emulated signed binary: a signed record boots on the Cortex-M7, a wrong key's and an unsigned one wait in DFU; instruction counts") {
  const std::string keys = std::string(ONEDFU_SOURCE_DIR) + "/tests/data/keys/";
  const std::vector<std::string> options = {"--emulate", ONEDFU_SIGNED_BOOTLOADER_ELF, "--trust", keys + "size.pub.pem", "--verbose"};
  const std::string board = std::string(ONEDFU_SOURCE_DIR) + "/manifests/boards/pybd-sf6.json";
  const fs::path scratch = onedfu::testing::Scratch("emu_signed_keys");
  REQUIRE(Run({ONEDFU_CLI_EXE, "keygen", "--out", (scratch / "other").string()}, scratch / "keygen.log") == 0);
  const Package good = Pack("emu-signed.dfu", {}, {"--board", board, "--firmware", ONEDFU_TEST_APP_ELF, "--sign", keys + "size.pem"});
  const Package wrong = Pack("emu-signed-other-key.dfu", {}, {"--board", board, "--firmware", ONEDFU_TEST_APP_ELF, "--sign",
                                                              (scratch / "other.pem").string()});
  const auto flash = [&](Sim& sim, const Package& p) {
    REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-D", p.file.string(), "-s", ":leave"}, false, options) == 0);
    INFO(sim.output);
    REQUIRE(FlashHolds(sim, p));
    const nlohmann::json boots = sim.Stats()["boots"];
    REQUIRE(boots.size() == 2);
    CHECK(boots[1]["cause"] == "leave");
    return boots[1];
  };
  const auto functions = [](const nlohmann::json& boot) {
    std::string text;
    for (const auto& [name, n] : boot["instructions_by_function"].items()) text += "  " + name + ": " + std::to_string(n.get<uint64_t>()) + "\n";
    return text;
  };

  Sim sim("emu_signed");
  const nlohmann::json first = flash(sim, good);
  CHECK(first["mode"] == "application");
  CHECK(first["reason"] == "start application");
  CHECK(first["message"].get<std::string>().find("0x600df00d 0x08008000") != std::string::npos);
  const uint64_t first_count = first["instructions"].get<uint64_t>();
  CHECK(first_count > 0);
  // The verification ran on the emulated CPU: Ed25519's field multiplication (runtime/ed25519.cpp)
  // is among the busiest functions.
  CHECK(functions(first).find("FeMul") != std::string::npos);
  // The next power-on trusts the verified marker: signature and CRC, no segment hashes.
  REQUIRE(sim.RunWith({"true"}, false, options) == 0);
  const nlohmann::json again = sim.Stats()["boots"][0];
  CHECK(again["mode"] == "application");
  const uint64_t again_count = again["instructions"].get<uint64_t>();
  CHECK(again_count > 0);
  MESSAGE("signed boot on the emulated Cortex-M7, first boot after the update: " << first_count << " instructions\n"
          << functions(first) << "next power-on (verified marker): " << again_count << " instructions\n" << functions(again));

  // One bit of the signature flipped on the board (the record CRC made right again): the
  // binary runs the whole Ed25519 check on the emulated CPU and refuses.
  const fs::path qspi_file = sim.state / "qspi.bin";
  std::vector<uint8_t> qspi = ReadBytes(qspi_file);
  const size_t record = 0x1ff000;  // pybd-sf6: region "record", the last QSPI sector
  REQUIRE(qspi.size() >= record + onedfu::runtime::kRecordSize);
  qspi[record + onedfu::runtime::kSignatureOffset] ^= 0x01;
  const uint32_t crc = onedfu::runtime::BootRecordCrc(onedfu::runtime::ByteSpan(qspi.data() + record, onedfu::runtime::kRecordSize));
  for (int i = 0; i < 4; ++i) qspi[record + onedfu::runtime::kCrcOffset + i] = static_cast<uint8_t>(crc >> (8 * i));
  onedfu::testing::WriteBytes(qspi_file, qspi);
  REQUIRE(sim.RunWith({"true"}, false, options) == 0);
  const nlohmann::json flipped = sim.Stats()["boots"][0];
  CHECK(flipped["mode"] == "dfu");
  CHECK(flipped["reason"] == "bad signature");
  CHECK(functions(flipped).find("FeMul") != std::string::npos);
  MESSAGE("flipped signature bit, refused after the full check: " << flipped["instructions"].get<uint64_t>() << " instructions; "
          << flipped["message"].get<std::string>());

  Sim other("emu_signed_wrong_key");
  const nlohmann::json refused = flash(other, wrong);
  CHECK(refused["mode"] == "dfu");
  CHECK(refused["reason"] == "bad signature");
  CHECK(refused["message"].get<std::string>().find("unknown key") != std::string::npos);
  CHECK(refused["instructions"].get<uint64_t>() > 0);
  MESSAGE("wrong key, refused: " << refused["instructions"].get<uint64_t>() << " instructions; DFU status string: "
          << refused["message"].get<std::string>());

  Sim plain("emu_signed_unsigned");
  const nlohmann::json unsigned_boot = flash(plain, AppPackage());
  CHECK(unsigned_boot["mode"] == "dfu");
  CHECK(unsigned_boot["reason"] == "unsigned boot record");
}
