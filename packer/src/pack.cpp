#include "packer/pack.h"

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>

#include "packer/board_json.h"
#include "packer/firmware_input.h"
#include "packer/layout.h"
#include "packer/package.h"
#include "packer/romfs_build.h"
#include "runtime/boot_record.h"
#include "runtime/sha256.h"

namespace onedfu::packer {

namespace fs = std::filesystem;
using runtime::Board;
using runtime::Memory;
using runtime::Region;
using runtime::RegionRole;

namespace {

constexpr const char* kToolName = "onedfu 0.1.0";

std::string HexOf(const runtime::Sha256Hash& hash) {
  char text[65];
  runtime::HexDigest(hash, text);
  return text;
}

// Pads `data` placed at `address` out to whole write units of `memory`, with
// the erased value, so the device never has to program a partial unit.
void PadToWriteUnits(const Memory& memory, uint32_t& address, Bytes& data) {
  const uint32_t align = std::max<uint32_t>(memory.write_align, 1);
  const uint32_t front = address % align;
  if (front != 0) {
    data.insert(data.begin(), front, memory.erased_value);
    address -= front;
  }
  const size_t tail = data.size() % align;
  if (tail != 0) data.insert(data.end(), align - tail, memory.erased_value);
}

struct Pending {
  uint32_t address = 0;
  Bytes data;
  std::string origin;
  std::string source;  // file name for the manifest
  RegionRole role = RegionRole::kFirmware;
};

Expected<PackageSpec> MergeSpec(const PackRequest& request) {
  PackageSpec spec;
  if (request.package) {
    ONEDFU_PTRY(spec, LoadPackageFile(*request.package));
  }
  for (const std::string& flag : request.firmware_flags) {
    ONEDFU_PTRY(FirmwareInput input, ParseFirmwareFlag(flag));
    spec.firmware.push_back(std::move(input));
  }
  if (request.romfs_dir) {
    if (spec.romfs_dir) return Fail("--romfs " + request.romfs_dir->string() + ": the package already names a ROMFS directory (" + spec.romfs_dir->string() + ")");
    spec.romfs_dir = request.romfs_dir;
  }
  if (request.version) spec.version = *request.version;
  if (request.mpy_cross) spec.mpy_cross = *request.mpy_cross;
  if (request.romfs_align) spec.romfs_align = *request.romfs_align;
  if (spec.firmware.empty() && spec.modules.empty() && spec.assets.empty() && !spec.romfs_dir) {
    return Fail("nothing to pack: give --firmware [ADDR:]FILE, --romfs DIR or a package JSON");
  }
  return spec;
}

Expected<std::vector<Pending>> LoadFirmwareSegments(const PackageSpec& spec) {
  std::vector<Pending> out;
  for (const FirmwareInput& input : spec.firmware) {
    ONEDFU_PTRY(std::vector<Segment> segments, LoadFirmware(input));
    for (Segment& s : segments) {
      out.push_back(Pending{s.address, std::move(s.data), s.origin, input.file.filename().string(),
                            RegionRole::kFirmware});
    }
  }
  return out;
}

struct RomfsBuilt {
  Bytes image;
  std::vector<RomfsListing> files;
};

Expected<RomfsBuilt> BuildPackageRomfs(const PackageSpec& spec, const Board& board) {
  RomfsBuildOptions options;
  options.data_align = spec.romfs_align;
  options.mpy_cross = spec.mpy_cross;
  if (board.arch[0] != '\0') {
    const auto arch = runtime::ParseMpyArch(board.arch);
    if (!arch.ok()) return Fail(std::string("board ") + board.id + ": unknown MicroPython arch '" + board.arch + "'");
    options.board_arch = arch.value();
  }
  std::vector<RomfsSource> sources;
  for (const auto* items : {&spec.modules, &spec.assets}) {
    for (const RomfsItem& item : *items) {
      if (!item.directory) {
        sources.push_back({item.target, item.source, item.origin});
        continue;
      }
      auto tree = CollectRomfsDir(item.source, options);
      if (!tree.ok()) return Fail(item.origin, tree.error());
      for (RomfsSource& s : tree.value()) {
        if (!item.target.empty()) s.target_path = item.target + "/" + s.target_path;
        s.origin = item.origin + ": " + s.origin;
        sources.push_back(std::move(s));
      }
    }
  }
  if (spec.romfs_dir) {
    ONEDFU_PTRY(std::vector<RomfsSource> tree, CollectRomfsDir(*spec.romfs_dir, options));
    for (RomfsSource& s : tree) sources.push_back(std::move(s));
  }
  RomfsBuilt built;
  if (sources.empty()) return built;
  ONEDFU_PTRY(built.image, BuildRomfs(std::move(sources), options));
  ONEDFU_PTRY(built.files, ListRomfs(built.image, "ROMFS image"));
  return built;
}

Expected<const Region*> RegionWithRole(const Board& board, RegionRole role, const char* what) {
  const Region* region = board.FindRole(role);
  if (!region) {
    return Fail(std::string("board ") + board.id + " has no " + runtime::RegionRoleName(role) + " region for " + what);
  }
  return region;
}

nlohmann::ordered_json ManifestJson(const PackageSpec& spec, const Board& board, const runtime::dfuse::Suffix& suffix,
                                    const std::vector<PackedElement>& elements, const std::vector<Pending>& pending,
                                    const RomfsBuilt& romfs) {
  nlohmann::ordered_json j;
  j["format"] = "onedfu-manifest";
  j["format_version"] = 1;
  j["name"] = spec.name;
  j["version"] = spec.version;
  j["board"] = board.id;
  j["arch"] = board.arch;
  j["usb"] = {{"vid", suffix.vid}, {"pid", suffix.pid}, {"bcd_device", suffix.bcd_device}};
  j["segments"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < elements.size(); ++i) {
    const PackedElement& e = elements[i];
    j["segments"].push_back({{"address", e.address},
                             {"size", pending[i].data.size()},
                             {"region", e.region},
                             {"sha256", e.sha256},
                             {"source", pending[i].source}});
  }
  if (!romfs.image.empty()) {
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    for (const RomfsListing& f : romfs.files) {
      if (f.is_dir) continue;
      files.push_back({{"path", f.path}, {"size", f.size}, {"offset", f.offset}});
    }
    j["romfs"] = {{"align", spec.romfs_align}, {"size", romfs.image.size()}, {"files", files}};
  } else {
    j["romfs"] = nullptr;
  }
  j["tool"] = kToolName;
  return j;
}

}  // namespace

Expected<PackedPackage> BuildPackage(const PackRequest& request) {
  ONEDFU_PTRY(PackageSpec spec, MergeSpec(request));

  fs::path board_path;
  if (request.board) {
    board_path = *request.board;
  } else if (spec.board) {
    board_path = *spec.board;
  } else {
    board_path = DefaultBoardPath();
  }
  ONEDFU_PTRY(Board board, LoadBoardFile(board_path));

  runtime::dfuse::Suffix suffix;
  suffix.vid = spec.vid.value_or(board.vid);
  suffix.pid = spec.pid.value_or(board.pid);
  suffix.bcd_device = spec.bcd_device.value_or(board.bcd_device);

  ONEDFU_PTRY(std::vector<Pending> pending, LoadFirmwareSegments(spec));
  ONEDFU_PTRY(RomfsBuilt romfs, BuildPackageRomfs(spec, board));
  if (!romfs.image.empty()) {
    ONEDFU_PTRY(const Region* region, RegionWithRole(board, RegionRole::kRomfs, "the ROMFS image"));
    if (!board.memories[region->memory].mapped) {
      return Fail(std::string("ROMFS region '") + region->name + "' lies in memory '" +
                  board.memories[region->memory].name + "', which is not memory-mapped: the VM could not use it in place");
    }
    if (romfs.image.size() > region->size) {
      return Fail("ROMFS image of " + std::to_string(romfs.image.size()) + " bytes does not fit region '" +
                  region->name + "' (" + std::to_string(region->size) + " bytes at " +
                  HexAddress(board.RegionStart(*region)) + ")");
    }
    pending.push_back(Pending{board.RegionStart(*region), romfs.image, "ROMFS image (" +
                              std::to_string(romfs.files.size()) + " entries)", "romfs", RegionRole::kRomfs});
  }
  if (pending.size() + 1 > runtime::kMaxSegments) {
    return Fail("the package has " + std::to_string(pending.size()) + " segments; a boot record holds at most " +
                std::to_string(runtime::kMaxSegments - 1) + " besides itself");
  }

  // Pad to whole write units first, so the rules see exactly what the device will program.
  std::vector<Placement> placements;
  for (Pending& p : pending) {
    const Memory* memory = board.MemoryAt(p.address);
    if (memory) PadToWriteUnits(*memory, p.address, p.data);
    placements.push_back(Placement{p.address, p.data.size(), p.origin, p.role});
  }
  ONEDFU_PTRY(const Region* record_region, RegionWithRole(board, RegionRole::kRecord, "the boot record"));
  const uint32_t record_address = board.RegionStart(*record_region);
  placements.push_back(Placement{record_address, runtime::kRecordSize, "boot record", RegionRole::kRecord});
  ONEDFU_PTRY(auto placed, CheckPlacements(board, placements));
  (void)placed;

  std::stable_sort(pending.begin(), pending.end(),
                   [](const Pending& a, const Pending& b) { return a.address < b.address; });

  // Hash every element; large packages hash on both cores.
  std::vector<std::future<runtime::Sha256Hash>> hashes;
  for (const Pending& p : pending) {
    hashes.push_back(std::async(p.data.size() > (1u << 20) ? std::launch::async : std::launch::deferred,
                                [&p] { return runtime::Sha256Digest(p.data); }));
  }
  PackedPackage out;
  runtime::BootRecord record;
  for (size_t i = 0; i < pending.size(); ++i) {
    Pending& p = pending[i];
    const runtime::Sha256Hash hash = hashes[i].get();
    record.segments[i] = runtime::BootSegment{p.address, static_cast<uint32_t>(p.data.size()), hash};
    if (p.role == RegionRole::kRomfs) {
      record.romfs = runtime::RomfsState{p.address, static_cast<uint32_t>(p.data.size()), hash};
    }
    out.elements.push_back(PackedElement{p.address, {}, RegionNameAt(board, p.address), p.origin, HexOf(hash)});
  }
  record.segment_count = static_cast<uint32_t>(pending.size());
  if (!runtime::SetBootText(record.board_id, board.id).ok()) return Fail(std::string("board id too long: ") + board.id);
  if (!runtime::SetBootText(record.package_version, spec.version.c_str()).ok()) {
    return Fail("version '" + spec.version + "' is longer than " + std::to_string(runtime::kBootTextSize - 1) + " characters");
  }

  out.manifest_json = ManifestJson(spec, board, suffix, out.elements, pending, romfs).dump(2) + "\n";
  for (size_t i = 0; i < pending.size(); ++i) out.elements[i].data = std::move(pending[i].data);
  const auto* manifest_bytes = reinterpret_cast<const uint8_t*>(out.manifest_json.data());
  record.manifest_length = static_cast<uint32_t>(out.manifest_json.size());
  record.manifest_sha256 = runtime::Sha256Digest({manifest_bytes, out.manifest_json.size()});

  PackedElement record_element;
  record_element.address = record_address;
  record_element.data.resize(runtime::kRecordSize);
  if (const auto s = runtime::EncodeBootRecord(record, record_element.data); !s.ok()) {
    return Fail(std::string("boot record: ") + s.message());
  }
  record_element.data.insert(record_element.data.end(), manifest_bytes, manifest_bytes + out.manifest_json.size());
  PadToWriteUnits(board.memories[record_region->memory], record_element.address, record_element.data);
  if (record_element.data.size() > record_region->size) {
    return Fail("boot record + manifest take " + std::to_string(record_element.data.size()) +
                " bytes; record region '" + record_region->name + "' holds " + std::to_string(record_region->size));
  }
  record_element.region = record_region->name;
  record_element.origin = "boot record + manifest";
  record_element.sha256 = HexOf(runtime::Sha256Digest(record_element.data));
  out.elements.push_back(std::move(record_element));

  out.target_name = spec.name.empty() ? std::string("onedfu ") + board.id : spec.name;
  if (out.target_name.size() > runtime::dfuse::kTargetNameSize) out.target_name.resize(runtime::dfuse::kTargetNameSize);
  out.suffix = suffix;
  out.board = board;
  return out;
}

namespace {

class FileSink final : public runtime::dfuse::Sink {
 public:
  explicit FileSink(AtomicFileWriter& writer) : writer_(writer) {}
  runtime::Status Write(runtime::ByteSpan bytes) override {
    Outcome written = writer_.Write(bytes);
    if (written.ok()) return runtime::Status::Ok();
    error_ = written.error().message;
    return runtime::Status(runtime::StatusCode::kUnavailable, "write failed");
  }
  const std::string& error() const { return error_; }

 private:
  AtomicFileWriter& writer_;
  std::string error_;
};

}  // namespace

Expected<PackedPackage> PackToFile(const PackRequest& request, const fs::path& output) {
  ONEDFU_PTRY(PackedPackage package, BuildPackage(request));
  std::vector<runtime::dfuse::WriterElement> elements;
  for (const PackedElement& e : package.elements) elements.push_back({e.address, e.data});
  const runtime::dfuse::WriterTarget target{0, package.target_name.c_str(), elements};

  ONEDFU_PTRY(auto writer, AtomicFileWriter::Open(output));
  FileSink sink(*writer);
  if (const auto s = runtime::dfuse::WriteFile({&target, 1}, package.suffix, sink); !s.ok()) {
    return Fail(sink.error().empty() ? output.string() + ": " + s.message() : sink.error());
  }
  ONEDFU_PTRY(auto committed, writer->Commit());
  (void)committed;
  return package;
}

}  // namespace onedfu::packer
