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

// The demo package, and an update of it whose ROMFS gains data/added.txt, loses
// assets/logo32.pbm and changes data/greeting.txt (firmware unchanged).
struct DiffPair {
  fs::path old_dfu;
  fs::path new_dfu;
};

DiffPair PackDiffPair(const fs::path& dir) {
  const fs::path copy = dir / "new";
  fs::create_directories(copy);
  fs::copy(kSource / "manifests/examples/pybd-sf6-demo", copy / "pybd-sf6-demo", fs::copy_options::recursive);
  auto manifest = ReadFile(kSource / "manifests/examples/pybd-sf6-demo.json");
  REQUIRE(manifest.ok());
  std::string text(manifest->begin(), manifest->end());
  const std::string logo = ",\n    { \"source\": \"pybd-sf6-demo/assets/logo32.pbm\", \"target\": \"assets/logo32.pbm\" }";
  const size_t at = text.find(logo);
  REQUIRE(at != std::string::npos);
  text.erase(at, logo.size());
  REQUIRE(WriteFileAtomic(copy / "pybd-sf6-demo.json", Bytes(text.begin(), text.end())).ok());
  const std::string greeting = "Hello from the next version, a little longer.\n";
  REQUIRE(WriteFileAtomic(copy / "pybd-sf6-demo/romfs/data/greeting.txt", Bytes(greeting.begin(), greeting.end())).ok());
  WriteBytes(copy / "pybd-sf6-demo/romfs/data/added.txt", Bytes(300, 'a'));
  DiffPair p{dir / "old.dfu", dir / "new.dfu"};
  const auto old_packed = Run(kOnedfu + " pack " + (kSource / "manifests/examples/pybd-sf6-demo.json").string() +
                              " -o " + p.old_dfu.string());
  REQUIRE_MESSAGE(old_packed.status == 0, old_packed.output);
  const auto new_packed =
      Run(kOnedfu + " pack " + (copy / "pybd-sf6-demo.json").string() + " --version 2.0.0 -o " + p.new_dfu.string());
  REQUIRE_MESSAGE(new_packed.status == 0, new_packed.output);
  return p;
}

TEST_CASE("diff: the text report and --json say the same: files added, removed, changed; sectors per memory") {
  TempDir dir;
  const DiffPair p = PackDiffPair(dir.path);
  const auto text = Run(kOnedfu + " diff " + p.old_dfu.string() + " " + p.new_dfu.string());
  REQUIRE_MESSAGE(text.status == 0, text.output);
  INFO(text.output);
  CHECK(text.output.find("ROMFS files: 1 added, 1 removed, 1 changed\n") == 0);
  CHECK(text.output.find("  added    data/added.txt (300 bytes)\n") != std::string::npos);
  CHECK(text.output.find("  removed  assets/logo32.pbm (") != std::string::npos);
  CHECK(text.output.find("  changed  data/greeting.txt (") != std::string::npos);

  const fs::path out = dir.path / "diff.json";
  // Only stdout into the file (RunShell adds 2>&1 after the command).
  const auto json = Run("{ " + kOnedfu + " diff --json " + p.old_dfu.string() + " " + p.new_dfu.string() + " > " +
                        out.string() + "; }");
  REQUIRE_MESSAGE(json.status == 0, json.output);
  CHECK(json.output.empty());  // nothing on stderr
  auto bytes = ReadFile(out);
  REQUIRE(bytes.ok());
  nlohmann::json j;
  REQUIRE_NOTHROW(j = nlohmann::json::parse(bytes->begin(), bytes->end()));
  REQUIRE(j.is_object());
  CHECK(j["old"] == p.old_dfu.string());
  CHECK(j["new"] == p.new_dfu.string());
  CHECK(j["board"] == "pybd-sf6");
  CHECK(j["romfs"]["added"] == 1);
  CHECK(j["romfs"]["removed"] == 1);
  CHECK(j["romfs"]["changed"] == 1);
  REQUIRE(j["romfs"]["files"].size() == 3);
  for (const auto& f : j["romfs"]["files"]) {
    INFO(f.dump());
    const std::string path = f["path"];
    const std::string change = f["change"];
    CHECK(f["moved"].is_boolean());
    if (change == "added") {
      CHECK(path == "data/added.txt");
      CHECK(f["old_size"].is_null());
      CHECK(f["new_size"] == 300);
    } else if (change == "removed") {
      CHECK(path == "assets/logo32.pbm");
      CHECK(f["new_size"].is_null());
      CHECK(text.output.find("  removed  " + path + " (" + f["old_size"].dump() + " bytes)\n") != std::string::npos);
    } else {
      CHECK(change == "changed");
      CHECK(path == "data/greeting.txt");
      CHECK(f["new_size"] == 46);
      CHECK(text.output.find("  changed  " + path + " (" + f["old_size"].dump() + " -> 46 bytes" +
                             (f["moved"] == true ? ", moved)" : ")")) != std::string::npos);
    }
  }
  // Per memory the same numbers as the text; the internal flash (firmware unchanged) has no
  // sector to change, dfu-util would still erase and write it.
  REQUIRE(j["memories"].size() == 2);
  uint64_t differ_us = 0;
  uint64_t dfu_util_us = 0;
  for (const auto& m : j["memories"]) {
    INFO(m.dump());
    const auto& d = m["differ"];
    const auto& u = m["dfu_util"];
    CHECK(d["sectors"] <= u["sectors"]);
    CHECK(d["write_bytes"] <= u["write_bytes"]);
    CHECK(d["device_us"] <= u["device_us"]);
    const std::string line = "memory " + m["name"].get<std::string>() + ": " + d["sectors"].dump() + " of " +
                             u["sectors"].dump() + " sector(s) the package touches differ: erase " + d["sectors"].dump() +
                             ", write " + d["write_bytes"].dump() + " bytes (";
    CHECK(text.output.find(line) != std::string::npos);
    differ_us += d["device_us"].get<uint64_t>();
    dfu_util_us += u["device_us"].get<uint64_t>();
  }
  CHECK(j["memories"][0]["name"] == "internal");
  CHECK(j["memories"][0]["differ"]["sectors"] == 0);
  CHECK(j["memories"][0]["dfu_util"]["sectors"] > 0);
  CHECK(j["memories"][1]["name"] == "qspi");
  CHECK(j["memories"][1]["differ"]["sectors"] > 0);
  CHECK(j["device_us"]["differ"] == differ_us);
  CHECK(j["device_us"]["dfu_util"] == dfu_util_us);
  CHECK(differ_us < dfu_util_us);
}

TEST_CASE("diff: a missing file or one that is not a .dfu is an error naming it, nothing on stdout, exit 1") {
  TempDir dir;
  const DiffPair p = PackDiffPair(dir.path);
  const fs::path missing = dir.path / "missing.dfu";
  const fs::path junk = WriteBytes(dir.path / "junk.dfu", RandomBytes(100, 7));
  const fs::path tiny = WriteBytes(dir.path / "tiny.dfu", Bytes{'h', 'i'});
  const fs::path stdout_file = dir.path / "stdout.txt";
  struct Bad {
    fs::path old_dfu;
    fs::path new_dfu;
    fs::path named;
    std::string why;
  };
  for (const Bad& bad : {Bad{missing, p.new_dfu, missing, "cannot open"}, Bad{p.old_dfu, missing, missing, "cannot open"},
                         Bad{junk, p.new_dfu, junk, "suffix"}, Bad{p.old_dfu, junk, junk, "suffix"},
                         Bad{tiny, p.new_dfu, tiny, "shorter than the suffix"}}) {
    for (const char* form : {"", " --json"}) {
      const std::string command = kOnedfu + " diff" + form + " " + bad.old_dfu.string() + " " + bad.new_dfu.string();
      const auto r = Run("{ " + command + " > " + stdout_file.string() + "; }");
      INFO(command << ": " << r.output);
      CHECK(r.status == 1);
      CHECK(r.output.find("onedfu: " + bad.named.string() + ": ") == 0);
      CHECK(r.output.find(bad.why) != std::string::npos);
      CHECK(fs::file_size(stdout_file) == 0);
    }
  }
  // A board given for the update does not hide that OLD is not a package either.
  const auto with_board = Run(kOnedfu + " diff --json " + junk.string() + " " + p.new_dfu.string() + " --board " +
                              (kSource / "manifests/boards/pybd-sf6.json").string());
  CHECK(with_board.status == 1);
  CHECK(with_board.output.find(junk.string()) != std::string::npos);
  CHECK(Run(kOnedfu + " diff --json " + p.old_dfu.string()).status == 2);  // NEW missing from the command line
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
