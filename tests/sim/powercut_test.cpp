// `onedfu-sim powercut` in-process: the real dfu-util is recorded once through the virtual USB
// (this process runs under umockdev-wrapper), then the sweep runs on it with and without the
// test-only faults that switch the bootloader's protections off.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <tuple>
#include <sstream>
#include <string>
#include <vector>

#include "host/dfuse_file.h"
#include "host/file_io.h"
#include "host/romfs_build.h"
#include "host/signing.h"
#include "packer/pack.h"
#include "runtime/byte_reader.h"
#include "runtime/region_store.h"
#include "powercut.h"
#include "test_support.h"
#include "umockdev_usb.h"

namespace fs = std::filesystem;

namespace onedfu::sim {
namespace {

const fs::path kSource = ONEDFU_SOURCE_DIR;
const fs::path kScratch = fs::path(ONEDFU_TEST_SCRATCH) / "powercut";
const std::string kBoard = (kSource / "manifests/boards/pybd-sf6.json").string();

// The demo package as 1.0.0 (OLD), and 2.0.0 (NEW) built from a copy whose QSPI firmware
// (text1.bin, grown and changed) and ROMFS file data/greeting.txt differ.
struct Packages {
  fs::path old_dfu;
  fs::path new_dfu;
};

Packages MakePackages() {
  fs::remove_all(kScratch);
  fs::create_directories(kScratch / "new");
  Packages p{kScratch / "old.dfu", kScratch / "new.dfu"};
  packer::PackRequest old_request;
  old_request.package = kSource / "manifests/examples/pybd-sf6-demo.json";
  old_request.version = "1.0.0";
  auto old_pkg = packer::PackToFile(old_request, p.old_dfu);
  REQUIRE_MESSAGE(old_pkg.ok(), old_pkg.error().message);

  const fs::path copy = kScratch / "new";
  fs::copy(kSource / "manifests/examples/pybd-sf6-demo.json", copy / "pybd-sf6-demo.json");
  fs::copy(kSource / "manifests/examples/pybd-sf6-demo", copy / "pybd-sf6-demo", fs::copy_options::recursive);
  auto text1 = host::ReadFile(copy / "pybd-sf6-demo/firmware/text1.bin");
  REQUIRE(text1.ok());
  for (size_t i = 0; i < text1->size(); i += 7) (*text1)[i] ^= 0x5a;
  text1->resize(text1->size() + 6000, 0x42);
  REQUIRE(host::WriteFileAtomic(copy / "pybd-sf6-demo/firmware/text1.bin", *text1).ok());
  {
    std::ofstream greeting(copy / "pybd-sf6-demo/romfs/data/greeting.txt", std::ios::binary | std::ios::trunc);
    greeting << "Hello from version 2 of the demo package, now with more words.\n";
  }
  packer::PackRequest new_request;
  new_request.package = copy / "pybd-sf6-demo.json";
  new_request.version = "2.0.0";
  auto new_pkg = packer::PackToFile(new_request, p.new_dfu);
  REQUIRE_MESSAGE(new_pkg.ok(), new_pkg.error().message);
  return p;
}

// The options every recording here uses: the real dfu-util, a minute at the most.
RecordOptions DfuUtilOptions() {
  RecordOptions options;
  options.dfu_util = ONEDFU_DFU_UTIL;
  options.timeout_ms = 60000;
  return options;
}

// Recording dfu-util is the slow part: do it once for the whole file.
struct Recorded {
  Packages packages;
  PowercutInput input;
  UpdateRecording recording;
};

const Recorded& Record() {
  static std::optional<Recorded> recorded;
  if (recorded) return *recorded;
  REQUIRE(UmockdevUsb::UnderWrapper());
  Packages packages = MakePackages();
  auto input = LoadPowercutInput(kBoard, packages.old_dfu, packages.new_dfu);
  REQUIRE_MESSAGE(input.ok(), input.error().message);
  auto recording = RecordUpdate(*input, DfuUtilOptions());
  REQUIRE_MESSAGE(recording.ok(), recording.error().message);
  recorded = Recorded{packages, std::move(input.value()), std::move(recording.value())};
  return *recorded;
}

// Records dfu-util's update from `from` to `to` on pybd-sf6 (the bootloader trusting `keys`).
std::pair<PowercutInput, UpdateRecording> RecordPair(const fs::path& from, const fs::path& to,
                                                     std::vector<runtime::Ed25519PublicKey> keys = {}) {
  auto input = LoadPowercutInput(kBoard, from, to);
  REQUIRE_MESSAGE(input.ok(), input.error().message);
  input->trust_keys = std::move(keys);
  auto recording = RecordUpdate(*input, DfuUtilOptions());
  REQUIRE_MESSAGE(recording.ok(), recording.error().message);
  return {std::move(input.value()), std::move(recording.value())};
}

fs::path Pack(const fs::path& manifest, const std::string& version, const fs::path& out,
              std::optional<fs::path> key = std::nullopt, uint32_t counter = 0) {
  packer::PackRequest request;
  request.package = manifest;
  request.version = version;
  request.sign_key = key;
  request.security_counter = counter;
  auto packed = packer::PackToFile(request, out);
  REQUIRE_MESSAGE(packed.ok(), packed.error().message);
  return out;
}

std::string LastLine(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::string last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

// The self-check idiom: sweeping `recording` with `options` (a test-only fault on, or a
// recording that breaks a rule) must complete, fail some cuts and print `expected` among its
// failure lines. Returns the result and those lines for the caller's further checks.
struct FailedSweep {
  SweepResult result;
  std::string lines;
};

FailedSweep SweepFails(const PowercutInput& input, const UpdateRecording& recording, const SweepOptions& options,
                       const std::string& expected) {
  std::ostringstream out;
  auto result = SweepPowerCuts(input, recording, options, out);
  REQUIRE_MESSAGE(result.ok(), result.error().message);
  INFO("expected failure line: " << expected << "\nfailure lines:\n" << out.str());
  CHECK(result->failures > 0);
  CHECK(out.str().find(expected) != std::string::npos);
  return {std::move(result.value()), out.str()};
}

}  // namespace

TEST_CASE("the recording holds dfu-util's update: DfuSe erase and set-address commands, data, leave") {
  const Recorded& r = Record();
  const UsbStream& update = r.recording.update;
  REQUIRE_FALSE(update.empty());
  size_t erases = 0;
  size_t set_address = 0;
  size_t data_bytes = 0;
  size_t set_interface = 0;
  bool leave = false;
  for (const UsbEvent& e : update) {
    if (e.kind == UsbEvent::Kind::kSetInterface) ++set_interface;
    if (e.kind != UsbEvent::Kind::kControl || e.setup.bmRequestType != 0x21 || e.setup.bRequest != 1) continue;
    CHECK_FALSE(e.stall);
    if (e.setup.wValue == 0 && e.data_out.size() == 5 && e.data_out[0] == 0x41) ++erases;
    if (e.setup.wValue == 0 && e.data_out.size() == 5 && e.data_out[0] == 0x21) ++set_address;
    if (e.setup.wValue >= 2) data_bytes += e.data_out.size();
    if (e.setup.wLength == 0) leave = true;
  }
  CHECK(set_interface >= 1);
  CHECK(erases > 0);
  CHECK(set_address > 0);
  CHECK(leave);
  // dfu-util sent every element of NEW (the device pads a short tail itself).
  size_t package_bytes = 0;
  for (const auto& e : r.input.to_elements) package_bytes += e.data.size();
  CHECK(data_bytes == package_bytes);
  // OLD went on a blank board, so its stream is a separate recording of the same shape.
  CHECK_FALSE(r.recording.old_stream.empty());
  CHECK(r.recording.old_flash != r.recording.blank_flash);
}

TEST_CASE("power-cut sweep over the two-package update: no failures; old, new and DFU outcomes") {
  const Recorded& r = Record();
  std::ostringstream out;
  auto result = SweepPowerCuts(r.input, r.recording, SweepOptions{}, out);
  REQUIRE_MESSAGE(result.ok(), result.error().message);
  INFO(out.str());
  CHECK(result->operations > 0);
  // NEW's first boot programs the verified marker (unsigned, no counter: nothing else).
  CHECK(result->boot_operations == 1);
  CHECK(result->boot_cuts == 3);
  CHECK(result->cuts == 3 * (result->operations + result->boot_operations));
  CHECK(result->failures == 0);
  // Boots are verified once: the power-on after a start skipped the hashes.
  CHECK(result->verified_once > 0);
  // The demo's base ROMFS image leaves room for a pushed one, in sectors NEW does not write.
  CHECK(r.recording.pushed_romfs_size > 0);
  CHECK(out.str().empty());  // no failure lines
  CHECK(result->booted_old + result->booted_new + result->stayed_dfu == result->cuts);
  // Before the first operation (the revoke) nothing changed: OLD boots. After the last one
  // (the manifest) the update is complete: NEW boots. Everything between waits in DFU mode.
  CHECK(result->booted_old >= 1);
  CHECK(result->booted_new >= 1);
  CHECK(result->stayed_dfu > 0);
  CHECK(result->dfu_reasons.count("revoked boot record") == 1);
  // Both memories were changed by the update.
  CHECK(result->operations_per_memory.size() == 2);
}

TEST_CASE("a first flash onto a blank board (no --from): boots NEW or stays in DFU mode after every cut") {
  const Recorded& r = Record();
  auto input = LoadPowercutInput(kBoard, fs::path(), r.packages.new_dfu);
  REQUIRE_MESSAGE(input.ok(), input.error().message);
  CHECK(input->from_elements.empty());
  auto recording = RecordUpdate(*input, DfuUtilOptions());
  REQUIRE_MESSAGE(recording.ok(), recording.error().message);
  CHECK(recording->old_stream.empty());
  CHECK(recording->old_flash == recording->blank_flash);
  SUBCASE("the sweep: 0 failures, never OLD") {
    std::ostringstream out;
    auto result = SweepPowerCuts(*input, *recording, SweepOptions{}, out);
    REQUIRE_MESSAGE(result.ok(), result.error().message);
    INFO(out.str());
    CHECK(result->cuts == 3 * (result->operations + result->boot_operations));
    CHECK(result->failures == 0);
    CHECK(result->booted_old == 0);
    CHECK(result->booted_new >= 1);
    CHECK(result->stayed_dfu + result->booted_new == result->cuts);
    CHECK(result->dfu_reasons.count("no boot record") + result->dfu_reasons.count("revoked boot record") >= 1);
  }
  SUBCASE("self-check: a boot that trusts the record starts a partial NEW on the blank board") {
    SweepOptions options;
    options.faults.trust_record = true;
    SweepFails(*input, *recording, options, "the board was blank (no OLD)");
  }
}

TEST_CASE("the sweep detects a brick when the bootloader neither revokes nor verifies") {
  const Recorded& r = Record();
  SweepOptions options;
  options.faults.skip_revoke = true;
  options.faults.trust_record = true;
  const FailedSweep failed = SweepFails(r.input, r.recording, options, "boots a partial image");
  CHECK(failed.result.failures < failed.result.cuts);
  CHECK(failed.lines.find("FAIL cut ") == 0);
}

TEST_CASE("each protection alone: without verification, or without the revoke (boots verified once), the sweep fails") {
  const Recorded& r = Record();
  SUBCASE("trusting an intact record boots NEW before its manifest is written") {
    SweepOptions options;
    options.faults.trust_record = true;
    SweepFails(r.input, r.recording, options, "boots a partial image");
  }
  SUBCASE("skipping the revoke: OLD's verified marker vouches for a half-written image (verified-once boot)") {
    SweepOptions options;
    options.faults.skip_revoke = true;
    // Boots after the first skip the hashes, so only the revoke kept a partial image from starting.
    const FailedSweep failed =
        SweepFails(r.input, r.recording, options, "boots a partial image (the boot decision accepted it)");
    INFO(failed.lines);
    CHECK(failed.result.failures < failed.result.cuts);
    CHECK(failed.result.dfu_reasons.count("revoked boot record") == 0);
  }
}

TEST_CASE("self-check: a bootloader that erases one sector too many fails the check of what NEW does not write") {
  const Recorded& r = Record();
  // Every sector neither package writes holds a pattern before OLD: unused space too.
  const FlashView blank = View(r.recording.blank_flash);
  const runtime::Region* romfs = r.input.board.FindRole(runtime::RegionRole::kRomfs);
  REQUIRE(romfs != nullptr);
  const uint32_t last = r.input.board.RegionStart(*romfs) + romfs->size - 1;
  const size_t offset = last - r.input.board.memories[romfs->memory].base;
  CHECK(std::count(blank[romfs->memory].begin() + static_cast<std::ptrdiff_t>(offset) - 4095,
                   blank[romfs->memory].begin() + static_cast<std::ptrdiff_t>(offset) + 1, 0xff) < 4096);
  SweepOptions options;
  options.faults.erase_extra = true;
  SweepFails(r.input, r.recording, options, "(a sector the update does not write)");
}

TEST_CASE("--double: a cut during the update, then one during the re-flash: 0 failures; protections off: failures") {
  const Recorded& r = Record();
  SweepOptions options;
  options.double_pairs = 40;
  options.seed = 3;
  std::ostringstream out;
  auto result = SweepPowerCuts(r.input, r.recording, options, out);
  REQUIRE_MESSAGE(result.ok(), result.error().message);
  INFO(out.str());
  CHECK(result->double_cuts == 40);
  CHECK(result->double_failures == 0);
  CHECK(result->double_short < 40);
  CHECK(result->cuts == 3 * (result->operations + result->boot_operations) + 40);
  options.faults.skip_revoke = true;
  options.faults.trust_record = true;
  CHECK(SweepFails(r.input, r.recording, options, "FAIL double cut ").result.double_failures > 0);
}

TEST_CASE("signed packages with security counters (OLD 1, NEW 2): 0 failures, cuts during the counter advance boot NEW") {
  const Recorded& r = Record();  // the NEW copy of the demo in kScratch/new
  const fs::path dir = kScratch / "trust";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto key = host::GenerateKeyPair(dir / "key");
  REQUIRE_MESSAGE(key.ok(), key.error().message);
  const fs::path old_dfu = Pack(kSource / "manifests/examples/pybd-sf6-demo.json", "1.0.0", dir / "old-signed.dfu",
                                key->private_pem, 1);
  const fs::path new_dfu = Pack(kScratch / "new/pybd-sf6-demo.json", "2.0.0", dir / "new-signed.dfu", key->private_pem, 2);
  const auto [input, recording] = RecordPair(old_dfu, new_dfu, {key->public_key});
  SUBCASE("the sweep: 0 failures; the first boot of NEW programs the marker, then the counter") {
    SweepOptions options;
    options.verbose = true;
    std::ostringstream out;
    auto result = SweepPowerCuts(input, recording, options, out);
    REQUIRE_MESSAGE(result.ok(), result.error().message);
    INFO(out.str());
    CHECK(result->failures == 0);
    CHECK(out.str().find("FAIL") == std::string::npos);
    CHECK(result->old_counter == 1);
    CHECK(result->new_counter == 2);
    CHECK(result->boot_operations == 2);
    CHECK(result->boot_cuts == 6);
    CHECK(result->boot_failures == 0);
    CHECK(result->cuts == 3 * (result->operations + result->boot_operations));
    CHECK(result->verified_once > 0);
    // The counter slot is boot op 1 (in the bootloader region's last 2 KiB): every cut of it
    // leaves a board that boots NEW.
    for (const char* mode : {"before", "after", "during (torn)"}) {
      const std::string line = std::string("cut ") + mode + " boot op 1/2 (internal write 0x08007";
      const size_t at = out.str().find(line);
      REQUIRE_MESSAGE(at != std::string::npos, line);
      CHECK(out.str().substr(at, out.str().find('\n', at) - at).find("): boots NEW") != std::string::npos);
    }
  }
  SUBCASE("self-check: a counter advance that erases the log first lets the counter go back") {
    SweepOptions options;
    options.faults.counter_rewrite = true;
    const FailedSweep failed =
        SweepFails(input, recording, options, "after the cut: the security counter went back: 0, OLD booted with 1");
    CHECK(failed.result.boot_failures > 0);
  }
  SUBCASE("the keys are the bootloader's: an unsigned NEW does not boot, so there is nothing to sweep") {
    auto unsigned_input = LoadPowercutInput(kBoard, old_dfu, r.packages.new_dfu);
    REQUIRE(unsigned_input.ok());
    unsigned_input->trust_keys = {key->public_key};
    auto bad = RecordUpdate(*unsigned_input, DfuUtilOptions());
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("new.dfu does not boot") != std::string::npos);
    CHECK(bad.error().message.find("not signed") != std::string::npos);
  }
}

TEST_CASE("ECC flash, counters 1 -> 2, --torn random: a counter slot torn by a cut faults when read, the counter holds") {
  const fs::path dir = kScratch / "ecc-counter";
  fs::remove_all(dir);
  const fs::path ecc_board = kSource / "tests/data/boards/test-ecc.json";
  std::vector<fs::path> packages;
  for (int v = 1; v <= 2; ++v) {
    const fs::path romfs = dir / ("r" + std::to_string(v));
    fs::create_directories(romfs);
    std::ofstream(romfs / "a.txt") << "version " << v << "\n";
    const fs::path firmware = dir / ("fw" + std::to_string(v) + ".bin");
    REQUIRE(host::WriteFileAtomic(firmware, std::vector<uint8_t>(60000, static_cast<uint8_t>('A' + v))).ok());
    packer::PackRequest request;
    request.board = ecc_board;
    request.firmware_flags = {"0x08020000:" + firmware.string()};
    request.romfs_dir = romfs;
    request.version = std::to_string(v) + ".0.0";
    request.security_counter = static_cast<uint32_t>(v);
    packages.push_back(dir / ("v" + std::to_string(v) + ".dfu"));
    auto packed = packer::PackToFile(request, packages.back());
    REQUIRE_MESSAGE(packed.ok(), packed.error().message);
  }
  auto input = LoadPowercutInput(ecc_board.string(), packages[0], packages[1]);
  REQUIRE_MESSAGE(input.ok(), input.error().message);
  auto recording = RecordUpdate(*input, DfuUtilOptions());
  REQUIRE_MESSAGE(recording.ok(), recording.error().message);
  SweepOptions options;
  options.torn = runtime::TornModel::kRandom;
  std::ostringstream out;
  auto result = SweepPowerCuts(*input, *recording, options, out);
  REQUIRE_MESSAGE(result.ok(), result.error().message);
  INFO(out.str());
  CHECK(result->old_counter == 1);
  CHECK(result->new_counter == 2);
  CHECK(result->boot_cuts == 6);
  CHECK(result->failures == 0);
}

TEST_CASE("a firmware-only update keeps a ROMFS image pushed at run time byte-identical; an extra erase fails that check") {
  Record();
  const fs::path dir = kScratch / "firmware-only";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path demo = kSource / "manifests/examples/pybd-sf6-demo";
  auto manifest = [&](const std::string& name, const std::string& text1_address) {
    const fs::path path = dir / name;
    std::ofstream(path) << R"({ "name": "fw-only", "version": "1.0.0", "board": "pybd-sf6", "firmware": [ ")"
                        << (demo / "firmware/text0.hex").string() << R"(", { "file": ")"
                        << (demo / "firmware/text1.bin").string() << R"(", "address": ")" << text1_address
                        << R"(" } ] })";
    return path;
  };
  // NEW moves text1 into TEXT1's last sector, right below the romfs region.
  const fs::path old_dfu = Pack(manifest("old.json", "0x90000000"), "1.0.0", dir / "old.dfu");
  const fs::path new_dfu = Pack(manifest("new.json", "0x900ff000"), "2.0.0", dir / "new.dfu");
  const auto [input, recording] = RecordPair(old_dfu, new_dfu);
  // No package writes the romfs region: the image is pushed at its start, as a RegionStore slot
  // holding a real ROMFS image (the packer's builder).
  REQUIRE(recording.pushed_romfs_size > 0);
  CHECK(recording.pushed_romfs_address == 0x90100000);
  const std::vector<uint8_t>& qspi = recording.old_flash[1];
  const uint32_t image_length = runtime::LoadLe32(qspi.data() + 0x100000 + runtime::kSlotImageLengthOffset);
  auto listing = host::ListRomfs(
      std::span<const uint8_t>(qspi).subspan(0x100000 + runtime::kSlotImageOffset, image_length), "pushed image");
  REQUIRE_MESSAGE(listing.ok(), listing.error().message);
  bool notes = false;
  for (const host::RomfsListing& entry : *listing) notes = notes || entry.path.find("notes.txt") != std::string::npos;
  CHECK(notes);
  {
    std::ostringstream out;
    auto result = SweepPowerCuts(input, recording, SweepOptions{}, out);
    REQUIRE_MESSAGE(result.ok(), result.error().message);
    INFO(out.str());
    CHECK(result->failures == 0);
    CHECK(result->booted_new >= 1);
  }
  SweepOptions options;
  options.faults.erase_extra = true;  // erasing 0x900ff000 erases the pushed image's sector too
  SweepFails(input, recording, options, "the ROMFS image pushed at run time (slot 0x90100000, ");
}

TEST_CASE("product size, signed, counters 1 -> 2: a sample of 40 operations + the first boot, 0 failures; no revoke: failures") {
  // OLD and NEW: the product-size fixture with different seeds (TEXT0 1.5 MiB, TEXT1 1 MiB and a
  // 240-file ROMFS all change), about 3.1 MB hashed at the first boot.
  const fs::path dir = kScratch / "product";
  fs::remove_all(dir);
  fs::create_directories(dir);
  testing::MakeProductInputs(dir / "old");
  testing::MakeProductInputs(dir / "new", "--seed 2");
  auto key = host::GenerateKeyPair(dir / "key");
  REQUIRE_MESSAGE(key.ok(), key.error().message);
  const fs::path old_dfu = Pack(dir / "old/product.json", "1.0.0", dir / "old.dfu", key->private_pem, 1);
  const fs::path new_dfu = Pack(dir / "new/product.json", "2.0.0", dir / "new.dfu", key->private_pem, 2);
  const auto [input, recording] = RecordPair(old_dfu, new_dfu, {key->public_key});
  SweepOptions options;
  options.sample = 40;
  std::ostringstream out;
  auto result = SweepPowerCuts(input, recording, options, out);
  REQUIRE_MESSAGE(result.ok(), result.error().message);
  INFO(out.str());
  CHECK(result->operations > 1000);
  CHECK(result->operations_cut == 40);
  CHECK(result->boot_operations == 2);
  CHECK(result->cuts == 3 * (40 + 2));
  CHECK(result->failures == 0);
  CHECK(result->new_counter == 2);
  CHECK(result->booted_new >= 1);
  CHECK(result->verified_once > 0);
  options.faults.skip_revoke = true;
  SweepFails(input, recording, options, "boots a partial image (the boot decision accepted it)");
}

TEST_CASE("an update that writes into the user's filesystem region fails the sweep") {
  const Recorded& r = Record();
  // NEW plus one element in the filesystem region (before the record, which stays last).
  auto bytes = host::ReadFile(r.packages.new_dfu);
  REQUIRE(bytes.ok());
  auto image = host::ParseDfuse(*bytes, "new.dfu");
  REQUIRE(image.ok());
  auto& elements = image->targets.at(0).elements;
  std::vector<uint8_t> data(2048);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 1);
  elements.insert(elements.end() - 1, host::DfuseElement{0x081c0000, data});
  const fs::path wipes_fs = kScratch / "new-writes-filesystem.dfu";
  REQUIRE(host::WriteFileAtomic(wipes_fs, host::SerializeDfuse(*image)).ok());

  auto input = LoadPowercutInput(kBoard, r.packages.old_dfu, wipes_fs);
  REQUIRE_MESSAGE(input.ok(), input.error().message);
  auto recording = RecordUpdate(*input, DfuUtilOptions());
  REQUIRE_MESSAGE(recording.ok(), recording.error().message);
  const FailedSweep failed = SweepFails(*input, *recording, SweepOptions{},
                                        "after flashing NEW again: filesystem region 'filesystem' changed at 0x081c0000");
  // Flashing it again after any cut rewrites the filesystem too: every cut fails.
  CHECK(failed.result.failures == failed.result.cuts);
  CHECK(failed.lines.find("after the cut: filesystem region 'filesystem' changed at 0x081c0000") != std::string::npos);
}

// ---- onedfu flash's own stream and the application-mode detach path

// Records `host` on the demo update (OLD -> NEW, or onto a blank board) once per combination.
const UpdateRecording& RecordHost(HostStream host, bool blank, bool app) {
  static std::map<std::tuple<HostStream, bool, bool>, UpdateRecording> recorded;
  const auto key = std::make_tuple(host, blank, app);
  if (auto it = recorded.find(key); it != recorded.end()) return it->second;
  const Recorded& r = Record();
  auto input = LoadPowercutInput(kBoard, blank ? fs::path() : r.packages.old_dfu, r.packages.new_dfu);
  REQUIRE_MESSAGE(input.ok(), input.error().message);
  RecordOptions options = DfuUtilOptions();
  options.host = host;
  options.app = app;
  options.onedfu = ONEDFU_CLI_EXE;
  auto recording = RecordUpdate(*input, options);
  REQUIRE_MESSAGE(recording.ok(), recording.error().message);
  return recorded.emplace(key, std::move(recording.value())).first->second;
}

const PowercutInput& BlankInput() {
  static std::optional<PowercutInput> input;
  if (!input) {
    auto loaded = LoadPowercutInput(kBoard, fs::path(), Record().packages.new_dfu);
    REQUIRE_MESSAGE(loaded.ok(), loaded.error().message);
    input = std::move(loaded.value());
  }
  return *input;
}

// DfuSe commands (DNLOAD block 0) of `stream` whose first byte is `command`.
size_t CountDfuseCommands(const UsbStream& stream, uint8_t command) {
  size_t n = 0;
  for (const UsbEvent& e : stream) {
    n += e.kind == UsbEvent::Kind::kControl && e.setup.bmRequestType == 0x21 && e.setup.bRequest == 1 &&
         e.setup.wValue == 0 && !e.data_out.empty() && e.data_out[0] == command;
  }
  return n;
}

TEST_CASE("--host onedfu-flash onto a blank board: the flasher's own stream, 0 failures; re-runs complete") {
  const UpdateRecording& recording = RecordHost(HostStream::kOnedfuFlash, true, false);
  // onedfu flash asks the board for hashes (dfu-util never does) and re-runs after a cut.
  CHECK(CountDfuseCommands(recording.update, 0x48) > 0);
  CHECK(CountDfuseCommands(Record().recording.update, 0x48) == 0);
  REQUIRE(recording.rerun.size() == 3);
  CHECK(recording.rerun[1] == "flash");
  CHECK(recording.detach.empty());
  SweepOptions options;
  options.rerun_sample = 5;
  std::ostringstream out;
  auto result = SweepPowerCuts(BlankInput(), recording, options, out);
  REQUIRE_MESSAGE(result.ok(), result.error().message);
  INFO(out.str());
  CHECK(result->operations > 0);
  CHECK(result->cuts == 3 * (result->operations + result->boot_operations));
  CHECK(result->failures == 0);
  CHECK(result->reruns == 5);
  CHECK(result->rerun_failures == 0);
  CHECK(result->booted_old == 0);
  CHECK(result->booted_new >= 1);
  CHECK(result->stayed_dfu + result->booted_new == result->cuts);
}

TEST_CASE("--host onedfu-flash OLD -> NEW: fewer operations than dfu-util (unchanged sectors skipped), 0 failures") {
  const Recorded& r = Record();
  const UpdateRecording& recording = RecordHost(HostStream::kOnedfuFlash, false, false);
  CHECK(CountDfuseCommands(recording.update, 0x48) > 0);
  SweepOptions options;
  options.rerun_sample = 5;
  std::ostringstream out;
  auto result = SweepPowerCuts(r.input, recording, options, out);
  REQUIRE_MESSAGE(result.ok(), result.error().message);
  INFO(out.str());
  CHECK(result->failures == 0);
  CHECK(result->reruns == 5);
  CHECK(result->rerun_failures == 0);
  CHECK(result->booted_old >= 1);
  CHECK(result->booted_new >= 1);
  CHECK(result->dfu_reasons.count("revoked boot record") == 1);
  std::ostringstream dfu_util_out;
  auto dfu_util = SweepPowerCuts(r.input, r.recording, SweepOptions{}, dfu_util_out);
  REQUIRE(dfu_util.ok());
  CHECK(result->operations < dfu_util->operations);  // the internal-flash firmware is unchanged: skipped
  CHECK(result->operations_per_memory.count("internal") == 0);
}

TEST_CASE("self-check: the onedfu-flash sweep fails with the bootloader's protections off") {
  const Recorded& r = Record();
  const UpdateRecording& recording = RecordHost(HostStream::kOnedfuFlash, false, false);
  SUBCASE("a boot that trusts the record starts a partial image") {
    SweepOptions options;
    options.faults.trust_record = true;
    options.rerun_sample = 1;
    SweepFails(r.input, recording, options, "boots a partial image");
  }
  SUBCASE("neither revoke nor verification: partial images boot (replayed without comparing the replies)") {
    SweepOptions options;
    options.faults.skip_revoke = true;
    options.faults.trust_record = true;
    options.rerun_sample = 1;
    const FailedSweep failed = SweepFails(r.input, recording, options, "boots a partial image");
    CHECK(failed.result.failures < failed.result.cuts);
  }
  SUBCASE("a bootloader that erases one sector too many: the cut and the re-run both show it") {
    SweepOptions options;
    options.faults.erase_extra = true;
    options.rerun_sample = 3;
    const FailedSweep failed = SweepFails(r.input, recording, options, "(a sector the update does not write)");
    CHECK(failed.result.rerun_failures > 0);
    CHECK(failed.lines.find("after re-running `") != std::string::npos);
  }
  SUBCASE("a re-run that flashes something else than NEW fails the re-run check") {
    UpdateRecording wrong = recording;
    wrong.rerun = {ONEDFU_CLI_EXE, "flash", r.packages.old_dfu.string()};
    SweepOptions options;
    options.rerun_sample = 2;
    const FailedSweep failed = SweepFails(r.input, wrong, options, "of NEW differs");
    CHECK(failed.result.reruns == 2);
    CHECK(failed.result.rerun_failures == 2);
  }
}

TEST_CASE("--app: the board runs OLD's application; the host detaches it and the DFU-mode stream is swept") {
  const Recorded& r = Record();
  for (HostStream host : {HostStream::kDfuUtil, HostStream::kOnedfuFlash}) {
    CAPTURE(static_cast<int>(host));
    const UpdateRecording& recording = RecordHost(host, false, true);
    // The application saw the DETACH (DFU class request 0 to the runtime interface), then the
    // board re-enumerated in DFU mode: the update starts after that plug-in.
    size_t detaches = 0;
    for (const UsbEvent& e : recording.detach) {
      detaches += e.kind == UsbEvent::Kind::kControl && e.setup.bmRequestType == 0x21 && e.setup.bRequest == 0;
    }
    CHECK(detaches == 1);
    CHECK(std::none_of(recording.update.begin(), recording.update.end(),
                       [](const UsbEvent& e) { return e.kind == UsbEvent::Kind::kPlug; }));
    SweepOptions options;
    options.rerun_sample = 3;
    std::ostringstream out;
    auto result = SweepPowerCuts(r.input, recording, options, out);
    REQUIRE_MESSAGE(result.ok(), result.error().message);
    INFO(out.str());
    CHECK(result->operations > 0);
    CHECK(result->failures == 0);
    CHECK(result->reruns == (host == HostStream::kOnedfuFlash ? 3u : 0u));
    CHECK(result->booted_old >= 1);
    CHECK(result->booted_new >= 1);
  }
}

TEST_CASE("onedfu-sim powercut --host onedfu-flash: usage") {
  const Recorded& r = Record();
  std::ostringstream out;
  std::ostringstream err;
  CHECK(RunPowercut({"--board", kBoard, "--to", r.packages.new_dfu.string(), "--app"}, out, err) == 2);
  CHECK(err.str().find("--app needs --from") != std::string::npos);
  err.str("");
  CHECK(RunPowercut({"--board", kBoard, "--to", r.packages.new_dfu.string(), "--host", "onedfu-flash", "--double", "3"},
                    out, err) == 2);
  CHECK(err.str().find("--double replays the recorded re-flash") != std::string::npos);
  err.str("");
  CHECK(RunPowercut({"--board", kBoard, "--to", r.packages.new_dfu.string(), "--host", "fwupd"}, out, err) == 2);
  CHECK(err.str().find("raw or onedfu-flash, not 'fwupd'") != std::string::npos);
}

TEST_CASE("onedfu-sim powercut: last line cuts=N failures=0, exit 0; with both faults failures > 0, exit 1") {
  const Recorded& r = Record();
  const std::vector<std::string> base = {"--board", kBoard, "--from", r.packages.old_dfu.string(), "--to",
                                         r.packages.new_dfu.string(), "--dfu-util", ONEDFU_DFU_UTIL};
  {
    std::ostringstream out;
    std::ostringstream err;
    const int status = RunPowercut(base, out, err);
    INFO(out.str() << err.str());
    CHECK(status == 0);
    const std::string last = LastLine(out.str());
    REQUIRE(last.rfind("cuts=", 0) == 0);
    const unsigned long cuts = std::stoul(last.substr(5));
    CHECK(cuts > 0);
    CHECK(last == "cuts=" + std::to_string(cuts) + " failures=0");
  }
  {
    std::vector<std::string> args = base;
    args.push_back("--unsafe-skip-revoke");
    args.push_back("--unsafe-trust-record");
    std::ostringstream out;
    std::ostringstream err;
    const int status = RunPowercut(args, out, err);
    INFO(out.str() << err.str());
    CHECK(status == 1);
    const std::string last = LastLine(out.str());
    const size_t at = last.find(" failures=");
    REQUIRE(at != std::string::npos);
    CHECK(std::stoul(last.substr(at + 10)) > 0);
    CHECK(out.str().find("WARNING: test-only faults on") != std::string::npos);
  }
}

TEST_CASE("onedfu-sim powercut: usage and input errors") {
  std::ostringstream out;
  std::ostringstream err;
  CHECK(RunPowercut({"--board", kBoard, "--from", "a.dfu"}, out, err) == 2);
  CHECK(err.str().find("--to is required") != std::string::npos);
  err.str("");
  CHECK(RunPowercut({"--bogus"}, out, err) == 2);
  CHECK(err.str().find("unknown option '--bogus'") != std::string::npos);
  err.str("");
  const fs::path missing = kScratch / "does-not-exist.dfu";
  CHECK(RunPowercut({"--board", kBoard, "--from", missing.string(), "--to", missing.string()}, out, err) == 1);
  CHECK(err.str().find("does-not-exist.dfu") != std::string::npos);
  out.str("");
  CHECK(RunPowercut({"--help"}, out, err) == 0);
  CHECK(out.str().find("usage: onedfu-sim powercut") == 0);
}

TEST_CASE("powercut refuses a package for another board's memory map") {
  const Recorded& r = Record();
  // pybv10 has no QSPI at 0x90000000: NEW's elements there lie in no memory.
  auto input = LoadPowercutInput((kSource / "manifests/boards/pybv10.json").string(), r.packages.old_dfu,
                                 r.packages.new_dfu);
  REQUIRE_FALSE(input.ok());
  CHECK(input.error().message.find("lies in no memory of board pybv10") != std::string::npos);
}

}  // namespace onedfu::sim
