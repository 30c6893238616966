// A trusting simulated board (onedfu-sim run --trust) updated by the real
// dfu-util: signed packages boot, unsigned and rolled-back ones wait in DFU
// mode saying why, and stats.json's boots[].verify_us shows the verified-once
// boot cost for a full-size PYBD-SF6 package.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "host/file_io.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using onedfu::testing::RunShell;

const std::string kSim = ONEDFU_SIM_EXE;
const std::string kOnedfu = ONEDFU_CLI_EXE;
const std::string kDfuUtil = ONEDFU_DFU_UTIL;
const fs::path kSource = ONEDFU_SOURCE_DIR;

nlohmann::json Stats(const fs::path& state) {
  auto bytes = onedfu::host::ReadFile(state / "stats.json");
  REQUIRE(bytes.ok());
  return nlohmann::json::parse(bytes->begin(), bytes->end());
}

// Flashes `dfu` with dfu-util on the trusting board in `state`; returns the last boot.
nlohmann::json FlashAndBoot(const fs::path& state, const std::string& trust, const fs::path& dfu) {
  auto run = RunShell(kSim + " run --state " + state.string() + " " + trust + " -- " + kDfuUtil + " -a 0 -D " +
                      dfu.string() + " -s :leave");
  CHECK_MESSAGE(run.status == 0, run.output);
  return Stats(state)["boots"].back();
}

nlohmann::json PowerOn(const fs::path& state, const std::string& trust) {
  auto run = RunShell(kSim + " run --state " + state.string() + " " + trust + " -- true");
  CHECK_MESSAGE(run.status == 0, run.output);
  return Stats(state)["boots"].back();
}

}  // namespace

TEST_CASE("trusting board: signed boots, unsigned and rolled-back packages wait in DFU mode, key rotation") {
  onedfu::testing::TempDir dir;
  const std::string k1 = (dir.path / "k1").string(), k2 = (dir.path / "k2").string();
  REQUIRE(RunShell(kOnedfu + " keygen --out " + k1).status == 0);
  REQUIRE(RunShell(kOnedfu + " keygen --out " + k2).status == 0);
  const std::string demo = (kSource / "manifests/examples/pybd-sf6-demo.json").string();
  auto pack = [&](const std::string& name, const std::string& flags) {
    const fs::path out = dir.path / name;
    auto r = RunShell(kOnedfu + " pack " + demo + " " + flags + " -o " + out.string());
    REQUIRE_MESSAGE(r.status == 0, r.output);
    return out;
  };
  const fs::path v2 = pack("v2.dfu", "--sign " + k1 + ".pem --security-counter 2 --version 2.0");
  const fs::path v1 = pack("v1.dfu", "--sign " + k1 + ".pem --security-counter 1 --version 1.0");
  const fs::path plain = pack("plain.dfu", "--security-counter 9");
  const fs::path by_k2 = pack("k2.dfu", "--sign " + k2 + ".pem --security-counter 3 --version 3.0");
  const fs::path state = dir.path / "board";
  const std::string trust = "--trust " + k1 + ".pub.pem";

  auto boot = FlashAndBoot(state, trust, v2);
  CHECK(boot["mode"] == "application");
  CHECK(boot["hashes_skipped"] == false);
  boot = PowerOn(state, trust);
  CHECK(boot["mode"] == "application");
  CHECK(boot["hashes_skipped"] == true);
  CHECK(boot["bytes_hashed"] == 0);

  // onedfu flash reads the board's counter first and refuses the older package untouched.
  auto refused = RunShell(kSim + " run --state " + state.string() + " " + trust + " -- " + kOnedfu + " flash " +
                          v1.string());
  CHECK(refused.status != 0);
  CHECK_MESSAGE(refused.output.find("rollback: " + v1.string() + " has security counter 1, the board has booted counter 2") !=
                    std::string::npos,
                refused.output);
  CHECK(PowerOn(state, trust)["message"].get<std::string>().find("package 2.0") == 0);

  boot = FlashAndBoot(state, trust, plain);
  CHECK(boot["mode"] == "dfu");
  CHECK(boot["reason"] == "unsigned boot record");

  boot = FlashAndBoot(state, trust, v1);  // the board booted counter 2
  CHECK(boot["mode"] == "dfu");
  CHECK(boot["reason"] == "rollback refused");
  CHECK(boot["message"] == "rollback: security counter 1 is below the board's 2");

  boot = FlashAndBoot(state, trust, by_k2);
  CHECK(boot["reason"] == "bad signature");
  // Key rotation: a bootloader with both keys boots the k2 package.
  boot = PowerOn(state, trust + " --trust " + k2 + ".pub.pem");
  CHECK(boot["mode"] == "application");
  // Re-flashing the current package always works.
  boot = FlashAndBoot(state, trust, v2);
  CHECK(boot["reason"] == "rollback refused");  // counter 3 was booted with the k2 package
  CHECK(RunShell(kSim + " run --state " + state.string() + " --trust " + (dir.path / "none.pem").string() + " -- true")
            .status == 125);
}

TEST_CASE("boot cost: a full-size PYBD-SF6 package is hashed once; later boots are modeled at <= 50 ms") {
  onedfu::testing::TempDir dir;
  const fs::path inputs = onedfu::testing::MakeProductInputs(dir.path / "product");
  const std::string key = (dir.path / "k").string();
  REQUIRE(RunShell(kOnedfu + " keygen --out " + key).status == 0);
  const fs::path dfu = dir.path / "p.dfu";
  auto packed = RunShell(kOnedfu + " pack " + (inputs / "product.json").string() + " --sign " + key +
                         ".pem --security-counter 1 -o " + dfu.string());
  REQUIRE_MESSAGE(packed.status == 0, packed.output);
  const fs::path state = dir.path / "board";
  const std::string trust = "--trust " + key + ".pub.pem";
  auto first = FlashAndBoot(state, trust, dfu);
  REQUIRE(first["mode"] == "application");
  CHECK(first["bytes_hashed"].get<uint64_t>() > 3000000);
  const uint64_t first_us = first["verify_us"];
  auto later = PowerOn(state, trust);
  REQUIRE(later["mode"] == "application");
  const uint64_t later_us = later["verify_us"];
  MESSAGE("modeled verification: first boot " << first_us << " us, later boots " << later_us << " us");
  CHECK(first_us > 500000);
  CHECK(later_us <= 50000);
  CHECK(later_us > 0);
}
