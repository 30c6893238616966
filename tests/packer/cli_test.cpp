// The `onedfu` command line: exit codes, messages naming the fault, the
// golden example package, and the JSON shape of `inspect --json`.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sys/wait.h>

#include "host/file_io.h"
#include "test_support.h"
#include "runtime/sha256.h"

namespace onedfu::packer {
namespace {

namespace fs = std::filesystem;
using testing::RandomBytes;
using testing::TempDir;
using testing::WriteBytes;
using namespace host;

const fs::path kSource = ONEDFU_SOURCE_DIR;
const std::string kOnedfu = std::string(ONEDFU_BINARY_DIR) + "/packer/onedfu";

// SHA-256 of the example package as packed by this version. It changes only
// when an input, the format or the tool version changes: update it on purpose,
// with the reason in the commit (its element bytes are checked against the
// inputs by dfuse-pack in the interop test below).
constexpr const char* kGoldenDemoSha256 = "753441d00d6abbb978eb8a3199eded2d1d7cb162c9c77e45cc8a9f915b7b1594";

using testing::CommandResult;

CommandResult Run(const std::string& command) { return testing::RunShell(command); }

std::string Sha256Hex(const Bytes& bytes) {
  char text[65];
  runtime::HexDigest(runtime::Sha256Digest(bytes), text);
  return text;
}

TEST_CASE("golden: the example package packs to pinned bytes, verifies, and inspects as JSON") {
  TempDir dir;
  const fs::path out = dir.path / "demo.dfu";
  const auto packed = Run(kOnedfu + " pack " + (kSource / "manifests/examples/pybd-sf6-demo.json").string() +
                          " -o " + out.string());
  REQUIRE_MESSAGE(packed.status == 0, packed.output);
  auto bytes = ReadFile(out);
  REQUIRE(bytes.ok());
  CHECK(Sha256Hex(*bytes) == kGoldenDemoSha256);

  const auto verified = Run(kOnedfu + " verify " + out.string());
  CHECK_MESSAGE(verified.status == 0, verified.output);
  CHECK(verified.output.find("verified") != std::string::npos);

  const auto inspected = Run(kOnedfu + " inspect --json " + out.string() + " 2>/dev/null");
  REQUIRE(inspected.status == 0);
  const auto j = nlohmann::json::parse(inspected.output);
  REQUIRE(j["targets"].size() == 1);
  CHECK(j["targets"][0]["alt"] == 0);
  const auto& elements = j["targets"][0]["elements"];
  REQUIRE(elements.size() == 4);
  CHECK(elements[0]["address"] == 0x08008000);
  CHECK(elements[0]["region"] == "text0");
  CHECK(elements[3]["region"] == "record");
  for (const auto& e : elements) CHECK(e["sha256"].get<std::string>().size() == 64);
  CHECK(j["suffix"]["vid"] == 0x0483);
  CHECK(j["suffix"]["pid"] == 0xdf11);
  CHECK(j["suffix"]["bcdDevice"] == 0x0200);
  CHECK(j["manifest"]["board"] == "pybd-sf6");
  CHECK(j["manifest"]["segments"].size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(j["manifest"]["segments"][i]["size"] == elements[i]["size"]);
  bool has_module = false;
  for (const auto& f : j["romfs"]) has_module |= f["path"] == "lib/plain_mod.mpy";
  CHECK(has_module);
}

TEST_CASE("the map command writes an SVG") {
  TempDir dir;
  REQUIRE(Run(kOnedfu + " pack " + (kSource / "manifests/examples/pybd-sf6-demo.json").string() + " -o " +
              (dir.path / "demo.dfu").string()).status == 0);
  const auto mapped = Run(kOnedfu + " map " + (dir.path / "demo.dfu").string() + " -o " + (dir.path / "m.svg").string());
  REQUIRE_MESSAGE(mapped.status == 0, mapped.output);
  CHECK(Run("xmllint --noout " + (dir.path / "m.svg").string()).status == 0);
}

TEST_CASE("romfs build and ls round trip through the CLI") {
  TempDir dir;
  const auto built = Run(kOnedfu + " romfs build " + (kSource / "manifests/examples/pybd-sf6-demo/modules").string() +
                         " -o " + (dir.path / "m.img").string());
  REQUIRE_MESSAGE(built.status == 0, built.output);
  const auto listed = Run(kOnedfu + " romfs ls " + (dir.path / "m.img").string());
  REQUIRE(listed.status == 0);
  CHECK(listed.output.find("plain_mod.mpy") != std::string::npos);
  CHECK(listed.output.find("native_mod.mpy") != std::string::npos);  // the armv7emsp variant, picked for armv7emdp
}

TEST_CASE("bad usage exits 2; bad input exits 1 naming the culprit, and no output appears") {
  TempDir dir;
  CHECK(Run(kOnedfu).status == 2);
  CHECK(Run(kOnedfu + " frobnicate").status == 2);
  CHECK(Run(kOnedfu + " pack --firmware x.bin").status == 2);  // no -o
  CHECK(Run(kOnedfu + " pack --help").status == 0);

  const auto missing = Run(kOnedfu + " pack --firmware 0x08008000:" + (dir.path / "nope.bin").string() + " -o " +
                           (dir.path / "o.dfu").string());
  CHECK(missing.status == 1);
  CHECK(missing.output.find("nope.bin") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path / "o.dfu"));

  Bytes junk(100, 0x5a);
  REQUIRE(WriteFileAtomic(dir.path / "junk.dfu", junk).ok());
  const auto bad = Run(kOnedfu + " verify " + (dir.path / "junk.dfu").string());
  CHECK(bad.status == 1);
  CHECK(bad.output.find("junk.dfu") != std::string::npos);
}

}  // namespace
}  // namespace onedfu::packer

namespace onedfu::packer {
namespace {

// These aborted onedfu with an uncaught JSON library exception (exit 134).
TEST_CASE("names that are not UTF-8: escaped where they are only shown, refused where MicroPython needs them") {
  TempDir dir;
  const fs::path fw = WriteBytes(dir.path / "fw\xff.bin", RandomBytes(100, 1));
  const fs::path out = dir.path / "a.dfu";
  const auto packed = Run(kOnedfu + " pack --firmware '0x08008000:" + fw.string() + "' -o " + out.string());
  REQUIRE_MESSAGE(packed.status == 0, packed.output);
  const auto inspected = Run(kOnedfu + " inspect --json " + out.string() + " 2>/dev/null");
  REQUIRE(inspected.status == 0);
  const auto j = nlohmann::json::parse(inspected.output);
  CHECK(j["manifest"]["segments"][0]["source"] == "fw\\xff.bin");
  CHECK(Run(kOnedfu + " verify " + out.string()).status == 0);

  WriteBytes(dir.path / "tree/ok.bin", RandomBytes(10, 2));
  WriteBytes(dir.path / "tree/x\xfe.bin", RandomBytes(10, 3));
  const auto romfs = Run(kOnedfu + " pack --romfs " + (dir.path / "tree").string() + " --firmware '0x08008000:" +
                         fw.string() + "' -o " + (dir.path / "b.dfu").string());
  CHECK(romfs.status == 1);
  CHECK(romfs.output.find("tree/x\\xfe.bin: ROMFS path \"x\\xfe.bin\" is not valid UTF-8") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path / "b.dfu"));

  const auto version = Run(kOnedfu + " pack --firmware '0x08008000:" + fw.string() + "' --version '1\xff' -o " +
                           (dir.path / "c.dfu").string());
  CHECK(version.status == 1);
  CHECK(version.output.find("--version \"1\\xff\": use printable ASCII only") != std::string::npos);
}

TEST_CASE("a DfuSe file from another tool with a target name, record strings or ROMFS names that are not UTF-8") {
  TempDir dir;
  for (const char* seed : {"non_utf8_target_name.dfu", "non_utf8_name_with_record.dfu", "non_utf8_romfs_name.dfu"}) {
    CAPTURE(seed);
    const std::string file = (kSource / "tests/fuzz/corpus/inspect" / seed).string();
    const auto json = Run(kOnedfu + " inspect --json " + file + " 2>/dev/null");
    REQUIRE_MESSAGE(json.status == 0, json.output);
    const auto j = nlohmann::json::parse(json.output);
    const bool odd_name = j["targets"][0]["name"].get<std::string>().find("\\xff") != std::string::npos;
    const bool odd_path = !j["romfs"].empty() && j["romfs"][0]["path"] == "\\xff\\xc0.bin";
    CHECK((odd_name || odd_path));
    const auto text = Run(kOnedfu + " inspect " + file);
    CHECK(text.status == 0);
    const auto verified = Run(kOnedfu + " verify " + file);
    CHECK((verified.status == 0 || verified.status == 1));
  }
}

}  // namespace
}  // namespace onedfu::packer
