// `onedfu pack` end to end through the library, checked by our own reader
// and by Debian's dfu-util tools (dfu-suffix --check, dfuse-pack -d).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "host/dfuse_file.h"
#include "host/file_io.h"
#include "test_support.h"
#include "packer/inspect.h"
#include "packer/pack.h"
#include "runtime/boot_record.h"

namespace onedfu::packer {
namespace {

namespace fs = std::filesystem;
using testing::RandomBytes;
using testing::TempDir;
using testing::WriteBytes;

const fs::path kSource = ONEDFU_SOURCE_DIR;
const fs::path kShared = ONEDFU_SHARED_DIR;
const fs::path kBoard = kSource / "manifests/boards/pybd-sf6.json";

int Run(const std::string& command) { return std::system((command + " > /dev/null 2>&1").c_str()); }

PackRequest QuickRequest(const fs::path& a, const fs::path& b) {
  PackRequest request;
  request.board = kBoard;
  request.firmware_flags = {"0x08008000:" + a.string(), "0x90000000:" + b.string()};
  request.version = "1.2.3";
  return request;
}

TEST_CASE("quick pack from --firmware flags: sorted elements, record last, bytes equal the inputs") {
  TempDir dir;
  const Bytes a = RandomBytes(70001, 1);  // odd size: padded to the 4-byte write unit
  const Bytes b = RandomBytes(4096, 2);
  const fs::path out = dir.path / "quick.dfu";
  auto packed = PackToFile(QuickRequest(WriteBytes(dir.path / "a.bin", a), WriteBytes(dir.path / "b.bin", b)), out);
  REQUIRE_MESSAGE(packed.ok(), (packed.ok() ? "" : packed.error().message));

  auto file = ReadFile(out);
  REQUIRE(file.ok());
  auto image = ParseDfuse(*file, out.string());
  REQUIRE(image.ok());
  REQUIRE(image->targets.size() == 1);
  CHECK(image->targets[0].alt == 0);
  CHECK_FALSE(image->image_size_includes_suffix);
  CHECK(image->suffix.vid == 0x0483);
  CHECK(image->suffix.pid == 0xdf11);
  const auto& elements = image->targets[0].elements;
  REQUIRE(elements.size() == 3);
  CHECK(elements[0].address == 0x08008000);
  CHECK(elements[0].data.size() == 70004);
  CHECK(std::equal(a.begin(), a.end(), elements[0].data.begin()));
  CHECK(elements[0].data[70001] == 0xff);  // padding is the erased value
  CHECK(elements[1].address == 0x90000000);
  CHECK(elements[1].data == b);
  CHECK(elements[2].address == 0x901ff000);  // the record region, last

  auto record = runtime::DecodeBootRecord(elements[2].data, nullptr);
  REQUIRE(record.ok());
  CHECK(std::string(record->board_id) == "pybd-sf6");
  CHECK(std::string(record->package_version) == "1.2.3");
  REQUIRE(record->segment_count == 2);
  CHECK(record->segments[0].sha256 == runtime::Sha256Digest(elements[0].data));
  CHECK(record->segments[1].length == 4096);
  CHECK(record->romfs.size == 0);

  const Verification v = Verify(*file, out.string(), packed->board);
  CHECK_MESSAGE(v.ok(), (v.failed.empty() ? "" : v.failed.front()));
}

TEST_CASE("dfu-util's own tools accept the output and dump the same bytes") {
  TempDir dir;
  const Bytes a = RandomBytes(150000, 3);
  const Bytes b = RandomBytes(9000, 4);
  const fs::path out = dir.path / "peer.dfu";
  auto packed = PackToFile(QuickRequest(WriteBytes(dir.path / "a.bin", a), WriteBytes(dir.path / "b.bin", b)), out);
  REQUIRE(packed.ok());
  CHECK(Run("dfu-suffix --check " + out.string()) == 0);
  // dfuse-pack -d dumps each element to <file>.target0.imageN.bin in the current directory.
  REQUIRE(Run("cd " + dir.path.string() + " && dfuse-pack -d peer.dfu") == 0);
  auto dumped_a = ReadFile(dir.path / "peer.dfu.target0.image0.bin");
  auto dumped_b = ReadFile(dir.path / "peer.dfu.target0.image1.bin");
  auto dumped_record = ReadFile(dir.path / "peer.dfu.target0.image2.bin");
  REQUIRE(dumped_a.ok());
  REQUIRE(dumped_b.ok());
  REQUIRE(dumped_record.ok());
  CHECK(*dumped_a == a);
  Bytes b_padded = b;  // 9000 is already a multiple of 4
  CHECK(*dumped_b == b_padded);
  CHECK(runtime::DecodeBootRecord(*dumped_record, nullptr).ok());
}

TEST_CASE("files made by dfuse-pack -b are firmware inputs") {
  TempDir dir;
  const Bytes a = RandomBytes(5000, 5);
  const Bytes b = RandomBytes(3000, 6);
  WriteBytes(dir.path / "a.bin", a);
  WriteBytes(dir.path / "b.bin", b);
  REQUIRE(Run("cd " + dir.path.string() + " && dfuse-pack -b 0x08008000:a.bin -b 0x90000000:b.bin in.dfu") == 0);
  PackRequest request;
  request.board = kBoard;
  request.firmware_flags = {(dir.path / "in.dfu").string()};
  auto packed = PackToFile(request, dir.path / "out.dfu");
  REQUIRE_MESSAGE(packed.ok(), (packed.ok() ? "" : packed.error().message));
  REQUIRE(packed->elements.size() == 3);
  CHECK(packed->elements[0].data == Bytes(a.begin(), a.end()));
  CHECK(packed->elements[1].data == b);
}

TEST_CASE("modules and assets become a ROMFS image in the romfs region") {
  TempDir dir;
  const fs::path tree = dir.path / "tree";
  fs::create_directories(tree / "lib");
  fs::copy_file(kShared / "testdata/mpy/plain_mod.mpy", tree / "lib/plain_mod.mpy");
  WriteBytes(tree / "fonts/big.bin", RandomBytes(20000, 7));
  PackRequest request;
  request.board = kBoard;
  request.romfs_dir = tree;
  request.firmware_flags = {"0x08008000:" + WriteBytes(dir.path / "fw.bin", RandomBytes(1024, 8)).string()};
  const fs::path out = dir.path / "romfs.dfu";
  auto packed = PackToFile(request, out);
  REQUIRE_MESSAGE(packed.ok(), (packed.ok() ? "" : packed.error().message));
  auto file = ReadFile(out);
  REQUIRE(file.ok());
  auto inspection = Inspect(*file, out.string(), &packed->board);
  REQUIRE(inspection.ok());
  REQUIRE(inspection->record);
  CHECK(inspection->record->romfs.address == 0x90100000);
  std::vector<std::string> files;
  for (const auto& f : inspection->romfs) {
    if (!f.is_dir) files.push_back(f.path);
  }
  CHECK(files == std::vector<std::string>{"fonts/big.bin", "lib/plain_mod.mpy"});
  for (const auto& f : inspection->romfs) CHECK(f.offset % 8 == 0);
  CHECK(inspection->manifest_json.find("\"romfs\"") != std::string::npos);
  CHECK(Verify(*file, out.string(), packed->board).ok());
}

TEST_CASE("same inputs, same bytes") {
  TempDir dir;
  const fs::path a = WriteBytes(dir.path / "a.bin", RandomBytes(3000, 9));
  const fs::path b = WriteBytes(dir.path / "b.bin", RandomBytes(3000, 10));
  REQUIRE(PackToFile(QuickRequest(a, b), dir.path / "1.dfu").ok());
  REQUIRE(PackToFile(QuickRequest(a, b), dir.path / "2.dfu").ok());
  CHECK(*ReadFile(dir.path / "1.dfu") == *ReadFile(dir.path / "2.dfu"));
}

TEST_CASE("a failed pack leaves an existing output untouched and no temporary file") {
  TempDir dir;
  const fs::path out = dir.path / "keep.dfu";
  WriteBytes(out, Bytes{1, 2, 3});
  PackRequest request;
  request.board = kBoard;
  request.firmware_flags = {"0x08000000:" + WriteBytes(dir.path / "boot.bin", RandomBytes(64, 11)).string()};
  auto packed = PackToFile(request, out);
  REQUIRE_FALSE(packed.ok());
  CHECK(packed.error().message.find("bootloader") != std::string::npos);
  CHECK(packed.error().message.find("boot.bin") != std::string::npos);
  CHECK(*ReadFile(out) == Bytes{1, 2, 3});
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) entries += e.is_regular_file();
  CHECK(entries == 2);  // keep.dfu and boot.bin only
}

TEST_CASE("errors name the file, field or address at fault") {
  TempDir dir;
  const fs::path fw = WriteBytes(dir.path / "fw.bin", RandomBytes(256, 12));
  struct Case {
    std::vector<std::string> flags;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"0x08008000:" + (dir.path / "missing.bin").string()}, "missing.bin"},
      {{fw.string()}, "fw.bin"},  // raw binary without an address
      {{"0x20000000:" + fw.string()}, "0x20000000"},
      {{"0x08008000:" + fw.string(), "0x08008080:" + fw.string()}, "overlaps"},
      {{"0x901ff000:" + fw.string()}, "record"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.expected);
    PackRequest request;
    request.board = kBoard;
    request.firmware_flags = c.flags;
    auto packed = PackToFile(request, dir.path / "x.dfu");
    REQUIRE_FALSE(packed.ok());
    CHECK(packed.error().message.find(c.expected) != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path / "x.dfu"));
  }
}

TEST_CASE("a ROMFS image too large for its region is refused before writing") {
  TempDir dir;
  WriteBytes(dir.path / "tree/huge.bin", RandomBytes(0x100000, 13));  // 1 MiB > 1020 KiB region
  PackRequest request;
  request.board = kBoard;
  request.romfs_dir = dir.path / "tree";
  auto packed = PackToFile(request, dir.path / "x.dfu");
  REQUIRE_FALSE(packed.ok());
  CHECK(packed.error().message.find("does not fit region 'romfs'") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path / "x.dfu"));
}

TEST_CASE("verify catches a damaged segment even when the file CRC is fixed up") {
  TempDir dir;
  const fs::path a = WriteBytes(dir.path / "a.bin", RandomBytes(2000, 14));
  const fs::path b = WriteBytes(dir.path / "b.bin", RandomBytes(2000, 15));
  auto packed = PackToFile(QuickRequest(a, b), dir.path / "v.dfu");
  REQUIRE(packed.ok());
  auto image = ParseDfuse(*ReadFile(dir.path / "v.dfu"), "v.dfu");
  REQUIRE(image.ok());
  image->targets[0].elements[0].data[100] ^= 0x01;
  const Bytes damaged = SerializeDfuse(*image);  // a valid file CRC over damaged content
  const Verification v = Verify(damaged, "damaged.dfu", packed->board);
  CHECK_FALSE(v.ok());
  bool named = false;
  for (const auto& line : v.failed) named |= line.find("0x08008000: SHA-256 does not match") != std::string::npos;
  CHECK(named);

  Bytes flipped = *ReadFile(dir.path / "v.dfu");
  flipped[300] ^= 0x40;  // plain corruption: the suffix CRC catches it
  CHECK_FALSE(Verify(flipped, "flipped.dfu", packed->board).ok());
}

}  // namespace
}  // namespace onedfu::packer

namespace onedfu::packer {
namespace {

TEST_CASE("the streaming writer (record filled while the file streams) equals BuildPackage + SerializeDfuse") {
  TempDir dir;
  PackRequest request = QuickRequest(WriteBytes(dir.path / "a.bin", RandomBytes(1536 << 10, 16)),
                                     WriteBytes(dir.path / "b.bin", RandomBytes(5000, 17)));
  request.romfs_dir = kSource / "manifests/examples/pybd-sf6-demo/romfs";
  auto built = BuildPackage(request);
  REQUIRE_MESSAGE(built.ok(), (built.ok() ? "" : built.error().message));
  DfuseImage image;
  image.suffix = built->suffix;
  image.targets.push_back(DfuseTarget{0, true, built->target_name, {}});
  for (const auto& e : built->elements) image.targets[0].elements.push_back({e.address, e.data});
  auto streamed = PackToFile(request, dir.path / "s.dfu");
  REQUIRE(streamed.ok());
  CHECK(*ReadFile(dir.path / "s.dfu") == SerializeDfuse(image));
  CHECK(streamed->manifest_json == built->manifest_json);
  CHECK(streamed->elements.back().sha256 == built->elements.back().sha256);
}

}  // namespace
}  // namespace onedfu::packer
