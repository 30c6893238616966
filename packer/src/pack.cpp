#include "packer/pack.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <future>
#include <system_error>
#include <nlohmann/json.hpp>

#include "host/board_json.h"
#include "packer/base_package.h"
#include "packer/firmware_input.h"
#include "packer/layout.h"
#include "packer/package.h"
#include "host/romfs_build.h"
#include "host/text.h"
#include "runtime/boot_record.h"
#include "host/signing.h"
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
  if (request.version) {
    ONEDFU_PTRY(auto printable, CheckPackageVersion(*request.version, "--version"));
    (void)printable;
    spec.version = *request.version;
  }
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
      // The manifest is JSON: a file name that is not UTF-8 is recorded with its odd bytes as \xNN.
      out.push_back(Pending{s.address, std::move(s.data), s.origin, EscapeText(input.file.filename().string()),
                            RegionRole::kFirmware});
    }
  }
  return out;
}

struct RomfsBuilt {
  Bytes image;            // moved into the element list once placed
  size_t image_size = 0;  // bytes, unpadded
  std::vector<RomfsFileRecord> files;
  uint32_t index_offset = 0;  // of the file index, from the image start
  uint32_t index_size = 0;
  runtime::Sha256Hash index_sha256{};
};

Expected<RomfsBuilt> BuildPackageRomfs(const PackageSpec& spec, const Board& board, const RomfsBase* base,
                                       std::vector<std::string>& notes) {
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
  RomfsLayoutOptions layout;
  layout.base = base;
  if (const Region* region = board.FindRole(RegionRole::kRomfs)) {
    const Memory& memory = board.memories[region->memory];
    layout.capacity = region->size;
    layout.fill = memory.erased_value;
    if (auto sector = runtime::SectorContaining(memory, board.RegionStart(*region)); sector.ok()) {
      layout.sector_size = sector->size;
    }
  }
  ONEDFU_PTRY(RomfsIndexedImage romfs, BuildIndexedRomfs(std::move(sources), options, layout));
  if (base) {
    notes.push_back("ROMFS laid out against the base: " + std::to_string(romfs.kept) + " file(s) kept their address, " +
                    std::to_string(romfs.moved) + " placed in free space");
  }
  if (!romfs.compacted.empty()) {
    notes.push_back("ROMFS compacted (every file laid out afresh, addresses change): " + romfs.compacted);
  }
  built.image = std::move(romfs.image);
  built.files = std::move(romfs.files);
  built.index_offset = romfs.index_offset;
  built.index_size = romfs.index_size;
  built.index_sha256 = romfs.index_sha256;
  built.image_size = built.image.size();
  return built;
}

Expected<const Region*> RegionWithRole(const Board& board, RegionRole role, const char* what) {
  const Region* region = board.FindRole(role);
  if (!region) {
    return Fail(std::string("board ") + board.id + " has no " + runtime::RegionRoleName(role) + " region for " + what);
  }
  return region;
}

// Joins firmware segments of one region that are contiguous or share an
// erase sector (SharesEraseSector) into one element, a gap filled with the
// erased value: then no loader that erases per element wipes one with the
// next, and an ELF of many small contiguous load segments becomes one
// element. `pending` is sorted by address; overlaps are left for
// CheckPlacements to report.
void JoinSegments(const Board& board, std::vector<Pending>& pending) {
  struct Joined {
    Pending element;
    size_t parts = 1;              // segments joined into it
    std::vector<std::string> sources;  // distinct input files, in address order
  };
  std::vector<Joined> joined;
  for (Pending& p : pending) {
    if (!joined.empty()) {
      Joined& prev = joined.back();
      Pending& e = prev.element;
      const uint64_t prev_end = uint64_t{e.address} + e.data.size();
      const Memory* memory = board.MemoryAt(e.address);
      const Region* region = board.RegionAt(e.address);
      const bool joinable = e.role == RegionRole::kFirmware && p.role == RegionRole::kFirmware && memory &&
                            region && region == board.RegionAt(p.address) && prev_end <= p.address &&
                            (prev_end == p.address || SharesEraseSector(board, e.address, e.data.size(), p.address));
      if (joinable) {
        e.data.insert(e.data.end(), p.address - prev_end, memory->erased_value);
        e.data.insert(e.data.end(), p.data.begin(), p.data.end());
        if (++prev.parts == 2) e.origin += " + " + p.origin;
        if (std::find(prev.sources.begin(), prev.sources.end(), p.source) == prev.sources.end()) {
          prev.sources.push_back(p.source);
        }
        continue;
      }
    }
    std::vector<std::string> sources{p.source};
    joined.push_back(Joined{std::move(p), 1, std::move(sources)});
  }
  pending.clear();
  for (Joined& j : joined) {
    if (j.parts > 2) j.element.origin += " + " + std::to_string(j.parts - 2) + " more";
    j.element.source = j.sources.front();
    for (size_t i = 1; i < j.sources.size(); ++i) j.element.source += ", " + j.sources[i];
    pending.push_back(std::move(j.element));
  }
}

nlohmann::ordered_json ManifestJson(const PackageSpec& spec, const Board& board, const runtime::dfuse::Suffix& suffix,
                                    const std::vector<PackedElement>& elements, const std::vector<Pending>& pending,
                                    const RomfsBuilt& romfs, const std::vector<runtime::BootSegment>& installed,
                                    const std::string& base_name) {
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
  for (const runtime::BootSegment& s : installed) {
    j["segments"].push_back({{"address", s.address},
                             {"size", s.length},
                             {"region", RegionNameAt(board, s.address)},
                             {"sha256", HexOf(s.sha256)},
                             {"source", base_name},
                             {"installed", true}});
  }
  if (romfs.image_size != 0) {
    // Per-file data (paths, sizes, hashes) is in the file index, not here, so
    // the manifest stays small whatever the number of files.
    j["romfs"] = {{"align", spec.romfs_align},
                  {"size", romfs.image_size},
                  {"files", romfs.files.size()},
                  {"index", {{"offset", romfs.index_offset},
                             {"size", romfs.index_size},
                             {"sha256", HexOf(romfs.index_sha256)}}}};
  } else {
    j["romfs"] = nullptr;
  }
  j["tool"] = kToolName;
  return j;
}

// The suffix carries the IDs the board's bootloader enumerates with (verify
// refuses anything else).
Outcome CheckUsbIds(const runtime::dfuse::Suffix& suffix, const Board& board) {
  const struct {
    const char* key;
    uint16_t package;
    uint16_t board;
  } ids[] = {{"vid", suffix.vid, board.vid}, {"pid", suffix.pid, board.pid},
             {"bcd_device", suffix.bcd_device, board.bcd_device}};
  for (const auto& id : ids) {
    if (id.package == id.board) continue;
    char text[160];
    std::snprintf(text, sizeof text, "package usb.%s 0x%04x differs from board %s's 0x%04x", id.key, id.package,
                  board.id, id.board);
    return Fail(std::string(text) + ": the bootloader enumerates with the board's IDs");
  }
  return Success();
}

// Everything decided before any hashing: inputs loaded, padded, checked, sorted.
struct Prepared {
  PackageSpec spec;
  Board board;
  runtime::dfuse::Suffix suffix;
  std::vector<Pending> pending;  // sorted by address; the record is not among them
  RomfsBuilt romfs;              // file list (the image itself moved into `pending`)
  // --base without firmware: the installed firmware segments the record lists
  // (not carried by the file); base_name names the base package.
  std::vector<runtime::BootSegment> installed;
  std::string base_name;
  Region record_region;
  std::string target_name;
  std::vector<std::string> notes;
  std::optional<host::SigningKey> sign_key;
  uint32_t security_counter = 0;
};

Expected<Prepared> Prepare(const PackRequest& request) {
  Prepared out;
  ONEDFU_PTRY(out.spec, MergeSpec(request));
  const PackageSpec& spec = out.spec;

  fs::path board_path;
  if (request.board) {
    board_path = *request.board;
  } else if (spec.board) {
    board_path = *spec.board;
  } else {
    board_path = DefaultBoardPath();
  }
  ONEDFU_PTRY(out.board, LoadBoardFile(board_path));
  const Board& board = out.board;
  if (request.sign_key) {
    ONEDFU_PTRY(out.sign_key, host::LoadSigningKey(*request.sign_key));
  }
  out.security_counter = request.security_counter;

  out.suffix.vid = spec.vid.value_or(board.vid);
  out.suffix.pid = spec.pid.value_or(board.pid);
  out.suffix.bcd_device = spec.bcd_device.value_or(board.bcd_device);
  ONEDFU_PTRY(auto ids_match, CheckUsbIds(out.suffix, board));
  (void)ids_match;

  ONEDFU_PTRY(out.pending, LoadFirmwareSegments(spec));
  std::vector<Pending>& pending = out.pending;
  std::optional<BasePackage> base;
  if (request.base) {
    ONEDFU_PTRY(base, LoadBasePackage(*request.base));
    if (std::string(base->record.board_id) != board.id) {
      return Fail("--base " + request.base->string() + ": installed package is for board '" + base->record.board_id +
                  "', this package for '" + board.id + "'");
    }
    out.base_name = request.base->filename().string();
    if (spec.firmware.empty()) out.installed = base->firmware;
  }
  ONEDFU_PTRY(out.romfs, BuildPackageRomfs(spec, board, base && base->romfs ? &*base->romfs : nullptr, out.notes));
  if (!out.romfs.image.empty()) {
    ONEDFU_PTRY(const Region* region, RegionWithRole(board, RegionRole::kRomfs, "the ROMFS image"));
    if (!board.memories[region->memory].mapped) {
      return Fail(std::string("ROMFS region '") + region->name + "' lies in memory '" +
                  board.memories[region->memory].name + "', which is not memory-mapped: the VM could not use it in place");
    }
    if (out.romfs.image.size() > region->size) {
      return Fail("ROMFS image of " + std::to_string(out.romfs.image.size()) + " bytes does not fit region '" +
                  region->name + "' (" + std::to_string(region->size) + " bytes at " +
                  HexAddress(board.RegionStart(*region)) + ")");
    }
    pending.push_back(Pending{board.RegionStart(*region), std::move(out.romfs.image),
                              "ROMFS image (" + std::to_string(out.romfs.files.size()) + " files)", "romfs",
                              RegionRole::kRomfs});
  }
  std::stable_sort(pending.begin(), pending.end(),
                   [](const Pending& a, const Pending& b) { return a.address < b.address; });
  JoinSegments(board, pending);
  if (pending.size() + out.installed.size() + 1 > runtime::kMaxSegments) {
    return Fail("the package has " + std::to_string(pending.size() + out.installed.size()) +
                " segments; a boot record holds at most " +
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
  out.record_region = *record_region;
  placements.push_back(Placement{board.RegionStart(*record_region), runtime::kRecordSize, "boot record",
                                 RegionRole::kRecord});
  ONEDFU_PTRY(auto placed, CheckPlacements(board, placements));
  (void)placed;
  if (spec.firmware.empty() && out.installed.empty() && !request.base) {
    return Fail("no firmware: a package with only a ROMFS image would leave the board without a bootable "
                "application (its record would list no firmware, so the bootloader stays in DFU mode); give the "
                "firmware (--firmware [ADDR:]FILE or \"firmware\" in the package JSON), or --base OLD.dfu to keep "
                "the firmware of the package installed on the board");
  }
  if (const Region* firmware = board.FindRole(RegionRole::kFirmware)) {
    // The bootloader starts the application only when a segment holds the entry.
    const uint32_t entry = board.RegionStart(*firmware);
    bool bootable = false;
    for (const Pending& p : pending) bootable |= p.address <= entry && entry - p.address < p.data.size();
    for (const auto& s : out.installed) bootable |= s.address <= entry && entry - s.address < s.length;
    if (!bootable) {
      return Fail(std::string("no segment holds the application entry ") + HexAddress(entry) + " (start of region '" +
                  firmware->name + "'): the board would stay in DFU mode; give the firmware that starts there" +
                  (request.base ? "" : ", or --base OLD.dfu to keep the installed one"));
    }
  }
  if (spec.version.size() >= runtime::kBootTextSize) {
    return Fail("version '" + spec.version + "' is longer than " + std::to_string(runtime::kBootTextSize - 1) +
                " characters");
  }

  std::stable_sort(pending.begin(), pending.end(),
                   [](const Pending& a, const Pending& b) { return a.address < b.address; });
  out.target_name = spec.name.empty() ? std::string("onedfu ") + board.id : spec.name;
  if (out.target_name.size() > runtime::dfuse::kTargetNameSize) out.target_name.resize(runtime::dfuse::kTargetNameSize);
  return out;
}

// The record element (boot record + manifest, padded) for the given element hashes.
Expected<PackedElement> RecordElement(const Prepared& prepared, const std::vector<runtime::Sha256Hash>& hashes,
                                      std::vector<PackedElement>& elements, std::string& manifest_json) {
  const Board& board = prepared.board;
  runtime::BootRecord record;
  elements.clear();
  for (size_t i = 0; i < prepared.pending.size(); ++i) {
    const Pending& p = prepared.pending[i];
    record.segments[i] = runtime::BootSegment{p.address, static_cast<uint32_t>(p.data.size()), hashes[i]};
    if (p.role == RegionRole::kRomfs) {
      record.romfs = runtime::RomfsState{p.address, static_cast<uint32_t>(p.data.size()), hashes[i]};
    }
    elements.push_back(PackedElement{p.address, {}, RegionNameAt(board, p.address), p.origin, HexOf(hashes[i])});
    if (p.role == RegionRole::kRomfs && prepared.romfs.index_size != 0) {
      record.index = runtime::IndexState{p.address + prepared.romfs.index_offset, prepared.romfs.index_size,
                                         prepared.romfs.index_sha256};
    }
  }
  for (size_t i = 0; i < prepared.installed.size(); ++i) record.segments[prepared.pending.size() + i] = prepared.installed[i];
  record.segment_count = static_cast<uint32_t>(prepared.pending.size() + prepared.installed.size());
  if (!runtime::SetBootText(record.board_id, board.id).ok()) return Fail(std::string("board id too long: ") + board.id);
  if (!runtime::SetBootText(record.package_version, prepared.spec.version.c_str()).ok()) {
    return Fail("version '" + prepared.spec.version + "' does not fit the boot record");
  }
  manifest_json =
      ManifestJson(prepared.spec, board, prepared.suffix, elements, prepared.pending, prepared.romfs, prepared.installed,
                   prepared.base_name)
          .dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) +
      "\n";
  const auto* manifest_bytes = reinterpret_cast<const uint8_t*>(manifest_json.data());
  record.manifest_length = static_cast<uint32_t>(manifest_json.size());
  record.manifest_sha256 = runtime::Sha256Digest({manifest_bytes, manifest_json.size()});

  const Region& region = prepared.record_region;
  PackedElement out;
  out.address = board.RegionStart(region);
  out.data.resize(runtime::kRecordSize);
  record.security_counter = prepared.security_counter;
  if (prepared.sign_key) {
    ONEDFU_PTRY(Done signed_record, host::SignBootRecord(*prepared.sign_key, record));
    (void)signed_record;
  }
  if (const auto s = runtime::EncodeBootRecord(record, out.data); !s.ok()) {
    return Fail(std::string("boot record: ") + s.message());
  }
  out.data.insert(out.data.end(), manifest_bytes, manifest_bytes + manifest_json.size());
  PadToWriteUnits(board.memories[region.memory], out.address, out.data);
  if (out.data.size() + runtime::kVerifiedMarkerSize > region.size) {
    return Fail("boot record + manifest take " + std::to_string(out.data.size()) + " bytes; record region '" +
                region.name + "' holds " + std::to_string(region.size) + " (less the last " +
                std::to_string(runtime::kVerifiedMarkerSize) + ", kept erased for the bootloader's verified marker)");
  }
  out.region = region.name;
  out.origin = "boot record + manifest";
  out.sha256 = HexOf(runtime::Sha256Digest(out.data));
  return out;
}

std::vector<runtime::Sha256Hash> HashAll(const std::vector<Pending>& pending) {
  std::vector<runtime::Sha256Hash> hashes(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) hashes[i] = runtime::Sha256Digest(pending[i].data);
  return hashes;
}

PackedPackage Assemble(Prepared& prepared, std::vector<PackedElement> elements, PackedElement record,
                       std::string manifest_json) {
  PackedPackage out;
  for (size_t i = 0; i < elements.size(); ++i) elements[i].data = std::move(prepared.pending[i].data);
  elements.push_back(std::move(record));
  out.elements = std::move(elements);
  out.manifest_json = std::move(manifest_json);
  out.suffix = prepared.suffix;
  out.target_name = prepared.target_name;
  out.board = prepared.board;
  out.notes = prepared.notes;
  return out;
}

// Forwards the DfuSe stream to the file. When the stream reaches the record
// element's data, it first waits for the element hashes and fills the record
// buffer in place: the writer delivers the file in order and reads an
// element's data only after delivering its header, so hashing overlaps the
// CRC and the writing of everything before the record.
class RecordFillingSink final : public runtime::dfuse::Sink {
 public:
  RecordFillingSink(AtomicFileWriter& writer, uint64_t record_data_offset, std::function<Outcome()> fill)
      : writer_(writer), record_data_offset_(record_data_offset), fill_(std::move(fill)) {}

  runtime::Status Write(runtime::ByteSpan bytes) override {
    Outcome written = writer_.Write(bytes);
    if (!written.ok()) return Failed(written.error().message);
    offset_ += bytes.size();
    if (offset_ == record_data_offset_) {
      Outcome filled = fill_();
      if (!filled.ok()) return Failed(filled.error().message);
    }
    return runtime::Status::Ok();
  }
  const std::string& error() const { return error_; }

 private:
  runtime::Status Failed(std::string message) {
    error_ = std::move(message);
    return runtime::Status(runtime::StatusCode::kUnavailable, "write failed");
  }

  AtomicFileWriter& writer_;
  uint64_t record_data_offset_;
  std::function<Outcome()> fill_;
  uint64_t offset_ = 0;
  std::string error_;
};

}  // namespace

Expected<PackedPackage> BuildPackage(const PackRequest& request) {
  ONEDFU_PTRY(Prepared prepared, Prepare(request));
  const std::vector<runtime::Sha256Hash> hashes = HashAll(prepared.pending);
  std::vector<PackedElement> elements;
  std::string manifest;
  ONEDFU_PTRY(PackedElement record, RecordElement(prepared, hashes, elements, manifest));
  return Assemble(prepared, std::move(elements), std::move(record), std::move(manifest));
}

Expected<PackedPackage> PackToFile(const PackRequest& request, const fs::path& output) {
  ONEDFU_PTRY(Prepared prepared, Prepare(request));

  // The record's size does not depend on the hash values (fixed-width hex), so
  // a placeholder sizes it; the real one is filled in while the file streams.
  std::vector<PackedElement> elements;
  std::string manifest;
  ONEDFU_PTRY(PackedElement record,
              RecordElement(prepared, std::vector<runtime::Sha256Hash>(prepared.pending.size()), elements, manifest));
  // Hash on another thread while the file streams; without a thread, hash when the record is due.
  std::future<std::vector<runtime::Sha256Hash>> hashes;
  try {
    hashes = std::async(std::launch::async, [&prepared] { return HashAll(prepared.pending); });
  } catch (const std::system_error&) {
    hashes = std::async(std::launch::deferred, [&prepared] { return HashAll(prepared.pending); });
  }

  std::vector<runtime::dfuse::WriterElement> writer_elements;
  uint64_t record_data_offset = runtime::dfuse::kPrefixSize + runtime::dfuse::kTargetPrefixSize;
  for (const Pending& p : prepared.pending) {
    writer_elements.push_back({p.address, p.data});
    record_data_offset += runtime::dfuse::kElementHeaderSize + p.data.size();
  }
  record_data_offset += runtime::dfuse::kElementHeaderSize;
  writer_elements.push_back({record.address, record.data});
  const runtime::dfuse::WriterTarget target{0, prepared.target_name.c_str(), writer_elements};

  auto fill = [&]() -> Outcome {
    PackedElement real;
    {
      ONEDFU_PTRY(real, RecordElement(prepared, hashes.get(), elements, manifest));
    }
    if (real.data.size() != record.data.size() || real.address != record.address) {
      return Fail("internal: the boot record changed size while packing");
    }
    std::copy(real.data.begin(), real.data.end(), record.data.begin());
    record.sha256 = real.sha256;
    return Success();
  };

  ONEDFU_PTRY(auto writer, AtomicFileWriter::Open(output));
  RecordFillingSink sink(*writer, record_data_offset, fill);
  const auto written = runtime::dfuse::WriteFile({&target, 1}, prepared.suffix, sink);
  if (hashes.valid()) hashes.wait();  // never leave the hashing thread behind on an error path
  if (!written.ok()) return Fail(sink.error().empty() ? output.string() + ": " + written.message() : sink.error());
  ONEDFU_PTRY(auto committed, writer->Commit());
  (void)committed;
  return Assemble(prepared, std::move(elements), std::move(record), std::move(manifest));
}

}  // namespace onedfu::packer
