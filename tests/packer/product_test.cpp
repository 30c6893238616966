// Packages at product size (issue 10), on the fixture of scripts/make-product-inputs:
// 1.5 MiB + 1 MiB firmware and a 240-file ROMFS; 2,000 files on every shipped board,
// 20,000 on test-large; the file index; assets-only updates with --base and the
// stable ROMFS layout (changed QSPI sectors counted).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "host/board_json.h"
#include "host/dfuse_file.h"
#include "host/file_io.h"
#include "packer/diff.h"
#include "packer/inspect.h"
#include "packer/pack.h"
#include "runtime/boot_record.h"
#include "test_support.h"

namespace onedfu::packer {
namespace {

namespace fs = std::filesystem;
using testing::MakeProductInputs;
using testing::RandomBytes;
using testing::TempDir;
using testing::WriteBytes;

const fs::path kSource = ONEDFU_SOURCE_DIR;
const fs::path kBoard = kSource / "manifests/boards/pybd-sf6.json";

std::string ErrorOf(const Expected<PackedPackage>& p) { return p.ok() ? "" : p.error().message; }

const PackedElement* ElementAt(const PackedPackage& p, uint32_t address) {
  for (const auto& e : p.elements) {
    if (e.address == address) return &e;
  }
  return nullptr;
}

std::set<std::string> TreeFiles(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.insert(fs::relative(e.path(), dir).generic_string());
  }
  return out;
}

// Sectors of `sector` bytes whose content differs between two images of a
// region (bytes past an image's end count as erased 0xff).
size_t ChangedSectors(const Bytes& a, const Bytes& b, size_t sector) {
  const size_t n = std::max(a.size(), b.size());
  size_t changed = 0;
  for (size_t s = 0; s < n; s += sector) {
    for (size_t i = s; i < std::min(n, s + sector); ++i) {
      if ((i < a.size() ? a[i] : 0xff) != (i < b.size() ? b[i] : 0xff)) {
        ++changed;
        break;
      }
    }
  }
  return changed;
}

struct Fixture {
  TempDir dir;
  fs::path base, grow;
  Fixture() {
    base = MakeProductInputs(dir.path / "base");
    grow = MakeProductInputs(dir.path / "grow", "--grow-asset");
  }
};

TEST_CASE("product size: 1.5 MiB + 1 MiB firmware and 240 files pack, inspect from the file index, verify") {
  Fixture fx;
  PackRequest request;
  request.package = fx.base / "product.json";
  const fs::path out = fx.dir.path / "product.dfu";
  auto packed = PackToFile(request, out);
  REQUIRE_MESSAGE(packed.ok(), ErrorOf(packed));
  const Bytes file = *ReadFile(out);
  auto inspection = Inspect(file, out.string(), &packed->board);
  REQUIRE(inspection.ok());
  REQUIRE(inspection->record);
  CHECK(inspection->index_problem.empty());
  std::set<std::string> indexed;
  for (const auto& f : inspection->index_files) indexed.insert(f.path);
  CHECK(indexed.size() == 240);
  CHECK(indexed == TreeFiles(fx.base / "romfs"));
  // The record element stays small and fixed in shape: the manifest has no per-file data.
  CHECK(inspection->manifest_json.size() < 2048);
  CHECK(ElementAt(*packed, 0x901ff000)->data.size() < 4096);
  const auto text = InspectionText(*inspection);
  CHECK(text.find("romfs files (from the file index") != std::string::npos);
  CHECK(text.find("icons/icon_017.bin") != std::string::npos);
  const auto j = nlohmann::json::parse(InspectionJson(*inspection));
  CHECK(j["files"].size() == 240);
  const Verification v = Verify(file, out.string(), packed->board);
  CHECK_MESSAGE(v.ok(), (v.failed.empty() ? "" : v.failed[0]));

  SUBCASE("verify: a file whose bytes disagree with the index is named") {
    auto image = ParseDfuse(file, "x.dfu");
    REQUIRE(image.ok());
    const auto f = std::find_if(inspection->index_files.begin(), inspection->index_files.end(),
                                [](const auto& r) { return r.path == "icons/icon_017.bin"; });
    REQUIRE(f != inspection->index_files.end());
    for (auto& e : image->targets[0].elements) {
      if (e.address == 0x90100000) e.data[f->offset + 5] ^= 0xff;
    }
    const Verification bad = Verify(SerializeDfuse(*image), "damaged.dfu", packed->board);
    CHECK_FALSE(bad.ok());
    bool named = false;
    for (const auto& line : bad.failed) {
      named |= line.find("ROMFS file icons/icon_017.bin does not match its SHA-256 in the file index") != std::string::npos;
    }
    CHECK(named);
  }
  SUBCASE("verify: a damaged index is refused") {
    auto image = ParseDfuse(file, "x.dfu");
    REQUIRE(image.ok());
    for (auto& e : image->targets[0].elements) {
      if (e.address == 0x90100000) e.data[inspection->record->index.address - 0x90100000 + 20] ^= 1;
    }
    const Verification bad = Verify(SerializeDfuse(*image), "damaged.dfu", packed->board);
    bool named = false;
    for (const auto& line : bad.failed) named |= line.find("file index at 0x") != std::string::npos;
    CHECK(named);
  }
}

TEST_CASE("2,000 files pack on every shipped board; 20,000 on test-large") {
  TempDir dir;
  const fs::path many = MakeProductInputs(dir.path / "many", "--many-files 2000");
  std::vector<fs::path> boards;
  for (const auto& e : fs::directory_iterator(kSource / "manifests/boards")) boards.push_back(e.path());
  REQUIRE(boards.size() >= 3);
  const auto pack_on = [&](const fs::path& board_file, const fs::path& romfs, size_t files) {
    CAPTURE(board_file);
    auto board = LoadBoardFile(board_file);
    REQUIRE(board.ok());
    const runtime::Region* firmware = board->FindRole(runtime::RegionRole::kFirmware);
    REQUIRE(firmware != nullptr);
    PackRequest request;
    request.board = board_file;
    request.romfs_dir = romfs;
    char flag[32];
    std::snprintf(flag, sizeof flag, "0x%08x:", board->RegionStart(*firmware));
    request.firmware_flags = {flag + WriteBytes(dir.path / "fw.bin", RandomBytes(4096, 3)).string()};
    const fs::path out = dir.path / "many.dfu";
    auto packed = PackToFile(request, out);
    REQUIRE_MESSAGE(packed.ok(), ErrorOf(packed));
    const Bytes bytes = *ReadFile(out);
    auto inspection = Inspect(bytes, out.string(), &packed->board);
    REQUIRE(inspection.ok());
    CHECK(inspection->index_files.size() == files);
    const Verification v = Verify(bytes, out.string(), packed->board);
    CHECK_MESSAGE(v.ok(), (v.failed.empty() ? "" : v.failed[0]));
  };
  for (const fs::path& board : boards) pack_on(board, many / "romfs", 2000);
  const fs::path huge = MakeProductInputs(dir.path / "huge", "--many-files 20000");
  pack_on(kSource / "tests/data/boards/test-large.json", huge / "romfs", 20000);
}

TEST_CASE("assets only: --romfs without firmware is refused; --base OLD keeps OLD's firmware in the record") {
  Fixture fx;
  PackRequest old_request;
  old_request.package = fx.base / "product.json";
  auto old_pkg = PackToFile(old_request, fx.dir.path / "old.dfu");
  REQUIRE_MESSAGE(old_pkg.ok(), ErrorOf(old_pkg));

  PackRequest bare;
  bare.board = kBoard;
  bare.romfs_dir = fx.grow / "romfs";
  auto refused = PackToFile(bare, fx.dir.path / "bare.dfu");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("no firmware") != std::string::npos);
  CHECK(refused.error().message.find("--base OLD.dfu") != std::string::npos);
  CHECK(refused.error().message.find("--firmware") != std::string::npos);
  CHECK_FALSE(fs::exists(fx.dir.path / "bare.dfu"));

  PackRequest update = bare;
  update.base = fx.dir.path / "old.dfu";
  update.version = "1.0.2";
  const fs::path out = fx.dir.path / "assets.dfu";
  auto packed = PackToFile(update, out);
  REQUIRE_MESSAGE(packed.ok(), ErrorOf(packed));
  REQUIRE(packed->elements.size() == 2);  // the ROMFS image and the record: no firmware bytes
  CHECK(packed->elements[0].address == 0x90100000);
  const Bytes file = *ReadFile(out);
  CHECK(file.size() < 600 * 1024);
  auto inspection = Inspect(file, out.string(), &packed->board);
  REQUIRE(inspection.ok());
  REQUIRE(inspection->record);
  const runtime::BootRecord& record = *inspection->record;
  auto old_file = ReadFile(fx.dir.path / "old.dfu");
  auto old_inspected = Inspect(*old_file, "old.dfu", &packed->board);
  REQUIRE(old_inspected.ok());
  const auto old_record = old_inspected->record;
  REQUIRE(old_record);
  size_t firmware = 0;
  for (uint32_t i = 0; i < record.segment_count; ++i) {
    const auto& s = record.segments[i];
    if (s.address == 0x90100000) continue;
    ++firmware;
    bool same = false;
    for (uint32_t k = 0; k < old_record->segment_count; ++k) same |= old_record->segments[k] == s;
    CHECK_MESSAGE(same, "segment at " << s.address);
  }
  CHECK(firmware == 2);
  const Verification v = Verify(file, out.string(), packed->board);
  CHECK_MESSAGE(v.ok(), (v.failed.empty() ? "" : v.failed[0]));
  bool noted = false;
  for (const auto& line : v.passed) noted |= line.find("2 installed firmware segment(s)") != std::string::npos;
  CHECK(noted);

  SUBCASE("stable layout: growing one 2 KiB file by 300 bytes changes at most 3 QSPI sectors of the ROMFS") {
    const Bytes& before = ElementAt(*old_pkg, 0x90100000)->data;
    const Bytes& after = ElementAt(*packed, 0x90100000)->data;
    CHECK(before.size() > 480 * 1024);
    const size_t changed = ChangedSectors(before, after, 4096);
    MESSAGE("ROMFS sectors changed by growing icons/icon_017.bin by 300 bytes: " << changed);
    CHECK(changed <= 3);
    REQUIRE(!packed->notes.empty());
    CHECK(packed->notes[0] == "ROMFS laid out against the base: 239 file(s) kept their address, 1 placed in free space");
    // Every unchanged file kept its address.
    std::map<std::string, uint32_t> old_offsets;
    auto old_inspection = Inspect(*old_file, "old.dfu", &packed->board);
    REQUIRE(old_inspection.ok());
    for (const auto& f : old_inspection->index_files) old_offsets[f.path] = f.offset;
    size_t same = 0;
    for (const auto& f : inspection->index_files) same += old_offsets[f.path] == f.offset;
    CHECK(same == 239);
  }
  SUBCASE("the same tree again changes nothing but the record") {
    PackRequest again = bare;
    again.romfs_dir = fx.base / "romfs";
    again.base = fx.dir.path / "old.dfu";
    auto same = PackToFile(again, fx.dir.path / "same.dfu");
    REQUIRE_MESSAGE(same.ok(), ErrorOf(same));
    CHECK(ElementAt(*same, 0x90100000)->data == ElementAt(*old_pkg, 0x90100000)->data);
  }
  SUBCASE("compaction when most of the image would be free, said in the notes") {
    TempDir small;
    fs::create_directories(small.path / "fonts");
    fs::copy(fx.base / "romfs/fonts", small.path / "fonts", fs::copy_options::recursive);
    PackRequest shrink = bare;
    shrink.romfs_dir = small.path;
    shrink.base = fx.dir.path / "old.dfu";
    auto compacted = PackToFile(shrink, fx.dir.path / "small.dfu");
    REQUIRE_MESSAGE(compacted.ok(), ErrorOf(compacted));
    bool said = false;
    for (const auto& n : compacted->notes) said |= n.find("ROMFS compacted") != std::string::npos;
    CHECK(said);
    CHECK(ElementAt(*compacted, 0x90100000)->data.size() < 200 * 1024);
    CHECK(Verify(*ReadFile(fx.dir.path / "small.dfu"), "small.dfu", compacted->board).ok());
  }
}

TEST_CASE("diff: files changed, sectors that differ per memory, modeled time from the board") {
  Fixture fx;
  PackRequest old_request;
  old_request.package = fx.base / "product.json";
  auto old_pkg = PackToFile(old_request, fx.dir.path / "old.dfu");
  REQUIRE_MESSAGE(old_pkg.ok(), ErrorOf(old_pkg));
  PackRequest update;
  update.board = kBoard;
  update.romfs_dir = fx.grow / "romfs";
  update.base = fx.dir.path / "old.dfu";
  REQUIRE(PackToFile(update, fx.dir.path / "new.dfu").ok());
  auto diff = DiffPackages(*ReadFile(fx.dir.path / "old.dfu"), "old.dfu", *ReadFile(fx.dir.path / "new.dfu"),
                           "new.dfu", old_pkg->board);
  REQUIRE_MESSAGE(diff.ok(), (diff.ok() ? "" : diff.error().message));
  const std::string report = DiffText(*diff);
  MESSAGE(report);
  CHECK(report.find("ROMFS files: 0 added, 0 removed, 1 changed") != std::string::npos);
  CHECK(report.find("changed  icons/icon_017.bin (2048 -> 2348 bytes, moved)") != std::string::npos);
  // 3 ROMFS sectors + the record sector, each 45 ms to erase on the QSPI.
  CHECK(report.find("memory qspi: 4 of 126 sector(s) the package touches differ") != std::string::npos);
  CHECK(report.find("modeled device time on pybd-sf6: 0.2") != std::string::npos);
  // The JSON view of the same diff.
  const auto j = nlohmann::json::parse(DiffJson(*diff));
  REQUIRE(j["romfs"]["files"].size() == 1);
  CHECK(j["romfs"]["files"][0] == nlohmann::json{{"path", "icons/icon_017.bin"}, {"change", "changed"}, {"old_size", 2048},
                                                 {"new_size", 2348}, {"moved", true}});
  const auto qspi = std::find_if(j["memories"].begin(), j["memories"].end(), [](const auto& m) { return m["name"] == "qspi"; });
  REQUIRE(qspi != j["memories"].end());
  CHECK((*qspi)["differ"]["sectors"] == 4);
  CHECK((*qspi)["dfu_util"]["sectors"] == 126);
  CHECK(j["device_us"]["differ"] == diff->DifferUs());
}

TEST_CASE("--base for another board is refused, naming both") {
  Fixture fx;
  PackRequest old_request;
  old_request.package = fx.base / "product.json";
  REQUIRE(PackToFile(old_request, fx.dir.path / "old.dfu").ok());
  PackRequest request;
  request.board = kSource / "manifests/boards/wb55.json";
  request.romfs_dir = fx.base / "romfs/data";
  request.base = fx.dir.path / "old.dfu";
  auto packed = PackToFile(request, fx.dir.path / "x.dfu");
  REQUIRE_FALSE(packed.ok());
  CHECK(packed.error().message.find("'pybd-sf6'") != std::string::npos);
  CHECK(packed.error().message.find("'wb55'") != std::string::npos);
}

}  // namespace
}  // namespace onedfu::packer
