#include "packer/inspect.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "host/json_reader.h"
#include "host/text.h"
#include "packer/layout.h"
#include "runtime/sha256.h"

namespace onedfu::packer {

using runtime::BootRecord;
using runtime::RegionRole;

namespace {

std::string HexOf(const runtime::Sha256Hash& hash) {
  char text[65];
  runtime::HexDigest(hash, text);
  return text;
}

bool LooksLikeRecord(const Bytes& data) {
  return data.size() >= runtime::kRecordSize && runtime::LoadLe32(data.data()) == runtime::kBootRecordMagic;
}

// The element holding the boot record: the last one that starts with the record magic.
const DfuseElement* FindRecordElement(const DfuseImage& image) {
  const DfuseElement* found = nullptr;
  for (const DfuseTarget& t : image.targets) {
    for (const DfuseElement& e : t.elements) {
      if (LooksLikeRecord(e.data)) found = &e;
    }
  }
  return found;
}

std::string ManifestOf(const DfuseElement& element, const BootRecord& record, std::string* problem) {
  const uint64_t end = static_cast<uint64_t>(runtime::kManifestOffset) + record.manifest_length;
  if (end > element.data.size()) {
    *problem = "manifest of " + std::to_string(record.manifest_length) + " bytes runs past the record element (" +
               std::to_string(element.data.size()) + " bytes)";
    return {};
  }
  const uint8_t* begin = element.data.data() + runtime::kManifestOffset;
  if (runtime::Sha256Digest({begin, record.manifest_length}) != record.manifest_sha256) {
    *problem = "manifest SHA-256 does not match the boot record";
  }
  return std::string(reinterpret_cast<const char*>(begin), record.manifest_length);
}

nlohmann::ordered_json RecordJson(const BootRecord& record, uint32_t address) {
  nlohmann::ordered_json segments = nlohmann::ordered_json::array();
  for (uint32_t i = 0; i < record.segment_count; ++i) {
    const auto& s = record.segments[i];
    segments.push_back({{"address", s.address}, {"length", s.length}, {"sha256", HexOf(s.sha256)}});
  }
  nlohmann::ordered_json romfs = nullptr;
  if (record.romfs.size != 0) {
    romfs = {{"address", record.romfs.address}, {"size", record.romfs.size}, {"sha256", HexOf(record.romfs.sha256)}};
  }
  return {{"address", address},
          {"board", EscapeText(record.board_id)},
          {"version", EscapeText(record.package_version)},
          {"segments", segments},
          {"romfs", romfs},
          {"manifest_length", record.manifest_length},
          {"manifest_sha256", HexOf(record.manifest_sha256)},
          {"security_counter", record.security_counter},
          {"signed", record.Signed()},
          {"key_fingerprint", record.Signed() ? nlohmann::ordered_json(KeyIdHex(record.key_id)) : nullptr}};
}

// `verify --key`: the record must be signed by one of `trusted` (OpenSSL checks).
void CheckSignature(const BootRecord& record, const Bytes& record_bytes, const std::string& source_name,
                    std::span<const host::Ed25519PublicKey> trusted, Verification& v) {
  if (!record.Signed()) {
    v.failed.push_back(source_name + ": the boot record is not signed");
    return;
  }
  for (const host::Ed25519PublicKey& key : trusted) {
    if (host::KeyId(key) != record.key_id) continue;
    if (!host::VerifyMessage(key, host::SignedMessageOf(record_bytes), record.signature)) {
      v.failed.push_back(source_name + ": boot record signature does not verify with key " +
                         host::KeyFingerprint(key));
      return;
    }
    v.passed.push_back("boot record signature valid (Ed25519, key " + host::KeyFingerprint(key) + ")");
    return;
  }
  v.failed.push_back(source_name + ": boot record signed by key " + KeyIdHex(record.key_id) +
                     ", not by a key given with --key");
}

// What the board itself would refuse or never see, before any record check:
// a target the host skips (alt != 0: `dfu-util -a 0` flashes only alt 0 and
// still exits 0), suffix IDs other than the board's (fwupd's converter
// writes ffff), and element addresses off the memory's write unit (the
// bootloader refuses such a write).
void CheckAsTheBoard(const DfuseImage& image, const std::string& source_name, const runtime::Board& board,
                     std::vector<std::string>& failed) {
  size_t index = 0;
  for (size_t t = 0; t < image.targets.size(); ++t) {
    const DfuseTarget& target = image.targets[t];
    if (target.alt != 0) {
      failed.push_back(source_name + ": target " + std::to_string(t) + " has alternate setting " +
                       std::to_string(target.alt) + "; board " + board.id +
                       " takes every memory through alt 0, so `dfu-util -a 0` would skip its " +
                       std::to_string(target.elements.size()) + " element(s)");
    }
    for (const DfuseElement& e : target.elements) {
      const runtime::Memory* memory = board.MemoryAt(e.address);
      if (memory && memory->write_align > 1 && e.address % memory->write_align != 0) {
        failed.push_back(source_name + ": element " + std::to_string(index) + " at " + HexAddress(e.address) +
                         " is not aligned to the " + std::to_string(memory->write_align) +
                         "-byte write unit of memory '" + memory->name + "': the bootloader refuses the write");
      }
      ++index;
    }
  }
  struct Field {
    const char* name;
    uint16_t file;
    uint16_t board;
  };
  const Field fields[] = {{"idVendor", image.suffix.vid, board.vid},
                          {"idProduct", image.suffix.pid, board.pid},
                          {"bcdDevice", image.suffix.bcd_device, board.bcd_device}};
  for (const Field& f : fields) {
    if (f.file == f.board) continue;
    char line[160];
    std::snprintf(line, sizeof line, ": suffix %s is 0x%04x, board %s's bootloader reports 0x%04x", f.name, f.file,
                  board.id, f.board);
    failed.push_back(source_name + line);
  }
}

// The ROMFS element the record names, or null.
const DfuseElement* FindRomfsElement(const DfuseImage& image, const BootRecord& record) {
  if (record.romfs.size == 0) return nullptr;
  for (const DfuseTarget& t : image.targets) {
    for (const DfuseElement& e : t.elements) {
      if (e.address == record.romfs.address) return &e;
    }
  }
  return nullptr;
}

// The files the record's file index lists, checked against its SHA-256.
Expected<std::vector<RomfsFileRecord>> IndexFiles(const DfuseImage& image, const BootRecord& record,
                                                  const std::string& source_name) {
  const DfuseElement* romfs = FindRomfsElement(image, record);
  const std::string where = source_name + ": file index at " + HexAddress(record.index.address);
  if (romfs == nullptr) return Fail(where + ": the file carries no ROMFS element at " + HexAddress(record.romfs.address));
  if (record.index.address < romfs->address ||
      uint64_t{record.index.address} + record.index.size > romfs->address + romfs->data.size()) {
    return Fail(where + " (" + std::to_string(record.index.size) + " bytes) lies outside the ROMFS image");
  }
  const uint32_t offset = record.index.address - romfs->address;
  if (runtime::Sha256Digest({romfs->data.data() + offset, record.index.size}) != record.index.sha256) {
    return Fail(where + ": SHA-256 does not match the boot record");
  }
  return ReadRomfsIndex(romfs->data, offset, record.index.size, where);
}

// Installed segments: what the manifest marks "installed" (kept from a base package).
std::vector<uint64_t> InstalledAddresses(const std::string& manifest) {
  std::vector<uint64_t> out;
  const auto j = nlohmann::json::parse(manifest, nullptr, false);
  if (!j.is_object() || !j.contains("segments") || !j["segments"].is_array()) return out;
  for (const auto& s : j["segments"]) {
    // Type-checked access only: value() would throw on a non-boolean "installed".
    if (s.is_object() && s.contains("installed") && s["installed"].is_boolean() && s["installed"].get<bool>() &&
        s.contains("address") && s["address"].is_number_unsigned()) {
      out.push_back(s["address"].get<uint64_t>());
    }
  }
  return out;
}

}  // namespace

Expected<Inspection> Inspect(std::span<const uint8_t> bytes, const std::string& source_name,
                             const runtime::Board* board) {
  ONEDFU_PTRY(DfuseImage image, ParseDfuse(bytes, source_name));
  Inspection out;
  out.suffix = image.suffix;
  out.image_size_includes_suffix = image.image_size_includes_suffix;
  if (board) out.board_id = board->id;
  for (const DfuseTarget& t : image.targets) {
    InspectedTarget target{t.alt, t.name, {}};
    for (const DfuseElement& e : t.elements) {
      target.elements.push_back(InspectedElement{e.address, e.data.size(), board ? RegionNameAt(*board, e.address) : "",
                                                 HexOf(runtime::Sha256Digest(e.data))});
    }
    out.targets.push_back(std::move(target));
  }
  const DfuseElement* record_element = FindRecordElement(image);
  if (!record_element) return out;
  out.record_address = record_element->address;
  runtime::Diag diag;
  const auto record = runtime::DecodeBootRecord(record_element->data, &diag);
  if (!record.ok()) {
    out.record_problem = diag.empty() ? record.status().message() : diag.c_str();
    return out;
  }
  out.record = record.value();
  out.manifest_json = ManifestOf(*record_element, record.value(), &out.record_problem);
  if (record->romfs.size != 0) {
    for (const DfuseTarget& t : image.targets) {
      for (const DfuseElement& e : t.elements) {
        if (e.address != record->romfs.address) continue;
        auto listing = ListRomfs(e.data, source_name + ": ROMFS element at " + HexAddress(e.address));
        if (listing.ok()) {
          out.romfs = std::move(listing).value();
        } else {
          out.romfs_problem = listing.error().message;
        }
      }
    }
  }
  if (record->index.size != 0) {
    auto files = IndexFiles(image, record.value(), source_name);
    if (files.ok()) {
      out.index_files = std::move(files).value();
    } else {
      out.index_problem = files.error().message;
    }
  }
  return out;
}

std::string InspectionJson(const Inspection& in) {
  nlohmann::ordered_json j;
  j["targets"] = nlohmann::ordered_json::array();
  for (const InspectedTarget& t : in.targets) {
    nlohmann::ordered_json elements = nlohmann::ordered_json::array();
    for (const InspectedElement& e : t.elements) {
      elements.push_back({{"address", e.address}, {"size", e.size}, {"region", e.region}, {"sha256", e.sha256}});
    }
    j["targets"].push_back({{"alt", t.alt}, {"name", EscapeText(t.name)}, {"elements", elements}});
  }
  j["suffix"] = {{"vid", in.suffix.vid},
                 {"pid", in.suffix.pid},
                 {"bcdDevice", in.suffix.bcd_device},
                 {"bcdDFU", in.suffix.bcd_dfu},
                 {"crc", in.suffix.crc}};
  j["manifest"] = nullptr;
  if (!in.manifest_json.empty()) {
    // Not JSON, or nested too deep to embed as a value (host/json_reader.h): the text, escaped.
    auto manifest = host::json_reader::JsonNestingDepth(in.manifest_json) <= host::json_reader::kMaxJsonDepth
                        ? nlohmann::ordered_json::parse(in.manifest_json, nullptr, false)
                        : nlohmann::ordered_json(nlohmann::ordered_json::value_t::discarded);
    j["manifest"] = manifest.is_discarded() ? nlohmann::ordered_json(EscapeText(in.manifest_json, true)) : std::move(manifest);
  }
  j["record"] = in.record ? RecordJson(*in.record, *in.record_address) : nlohmann::ordered_json(nullptr);
  if (!in.record_problem.empty()) j["record_problem"] = EscapeText(in.record_problem);
  j["romfs"] = nlohmann::ordered_json::array();
  for (const RomfsListing& f : in.romfs) {
    if (f.is_dir) continue;
    j["romfs"].push_back({{"path", EscapeText(f.path)}, {"size", f.size}, {"offset", f.offset}});
  }
  if (!in.romfs_problem.empty()) j["romfs_problem"] = EscapeText(in.romfs_problem);
  j["files"] = nlohmann::ordered_json::array();
  for (const RomfsFileRecord& f : in.index_files) {
    j["files"].push_back(
        {{"path", EscapeText(f.path)}, {"size", f.size}, {"offset", f.offset}, {"sha256", HexOf(f.sha256)}});
  }
  if (!in.index_problem.empty()) j["index_problem"] = EscapeText(in.index_problem);
  // Every string from the file is escaped above; replacing is the last guard, so dump never throws.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string InspectionText(const Inspection& in) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line, "suffix: vid 0x%04x  pid 0x%04x  bcdDevice 0x%04x  bcdDFU 0x%04x  crc 0x%08x%s\n",
                in.suffix.vid, in.suffix.pid, in.suffix.bcd_device, in.suffix.bcd_dfu, in.suffix.crc,
                in.image_size_includes_suffix ? "  (DFUImageSize counts the suffix)" : "");
  out << line;
  for (const InspectedTarget& t : in.targets) {
    out << "target alt " << int(t.alt) << " \"" << EscapeText(t.name) << "\": " << t.elements.size() << " element(s)\n";
    for (const InspectedElement& e : t.elements) {
      std::snprintf(line, sizeof line, "  0x%08x  %10llu bytes  %-12s %s\n", e.address,
                    static_cast<unsigned long long>(e.size), e.region.empty() ? "-" : e.region.c_str(),
                    e.sha256.c_str());
      out << line;
    }
  }
  if (in.record) {
    out << "boot record at " << HexAddress(*in.record_address) << ": board " << EscapeText(in.record->board_id)
        << ", version " << (in.record->package_version[0] ? EscapeText(in.record->package_version) : "(none)") << ", "
        << in.record->segment_count << " segment(s)\n";
    out << "  security counter " << in.record->security_counter << ", "
        << (in.record->Signed() ? "signed (Ed25519), key fingerprint " + KeyIdHex(in.record->key_id) : "unsigned")
        << "\n";
  } else {
    out << "boot record: " << (in.record_problem.empty() ? "none" : EscapeText(in.record_problem)) << "\n";
  }
  if (in.record && !in.record_problem.empty()) out << "  problem: " << EscapeText(in.record_problem) << "\n";
  if (!in.index_files.empty()) {
    out << "romfs files (from the file index at " << HexAddress(in.record->index.address) << ", "
        << in.record->index.size << " bytes): " << in.index_files.size() << "\n";
    for (const RomfsFileRecord& f : in.index_files) {
      std::snprintf(line, sizeof line, "  %-40s %8u bytes at +%-8u %.16s\n", EscapeText(f.path).c_str(), f.size, f.offset,
                    HexOf(f.sha256).c_str());
      out << line;
    }
  } else if (!in.romfs.empty()) {
    out << "romfs:\n";
    for (const RomfsListing& f : in.romfs) {
      if (f.is_dir) {
        out << "  " << EscapeText(f.path) << "/\n";
        continue;
      }
      std::snprintf(line, sizeof line, "  %-40s %8llu bytes at +%llu\n", EscapeText(f.path).c_str(),
                    static_cast<unsigned long long>(f.size), static_cast<unsigned long long>(f.offset));
      out << line;
    }
  }
  if (!in.romfs_problem.empty()) out << "romfs problem: " << EscapeText(in.romfs_problem) << "\n";
  if (!in.index_problem.empty()) out << "file index problem: " << EscapeText(in.index_problem) << "\n";
  if (!in.manifest_json.empty()) out << "manifest:\n" << EscapeText(in.manifest_json, true);
  return out.str();
}

Verification Verify(std::span<const uint8_t> bytes, const std::string& source_name, const runtime::Board& board,
                    std::span<const host::Ed25519PublicKey> trusted) {
  Verification v;
  auto parsed = ParseDfuse(bytes, source_name);
  if (!parsed.ok()) {
    v.failed.push_back(parsed.error().message);
    return v;
  }
  const DfuseImage& image = parsed.value();
  v.passed.push_back("DfuSe structure and suffix CRC intact");
  const size_t strict_failures = v.failed.size();
  CheckAsTheBoard(image, source_name, board, v.failed);
  if (v.failed.size() == strict_failures) {
    v.passed.push_back(std::string("targets, suffix IDs and write alignment suit board ") + board.id);
  }

  const DfuseElement* record_element = FindRecordElement(image);
  if (!record_element) {
    v.failed.push_back(source_name + ": no boot record element");
    return v;
  }
  const DfuseElement* last = nullptr;
  for (const DfuseTarget& t : image.targets) {
    if (!t.elements.empty()) last = &t.elements.back();
  }
  if (last != record_element) {
    v.failed.push_back(source_name + ": the boot record at " + HexAddress(record_element->address) +
                       " is not the last element, so a host would not write it last");
  }
  const runtime::Region* record_region = board.FindRole(RegionRole::kRecord);
  if (record_region && record_element->address != board.RegionStart(*record_region)) {
    v.failed.push_back(source_name + ": the boot record element at " + HexAddress(record_element->address) +
                       " is not at the start of record region '" + record_region->name + "' (" +
                       HexAddress(board.RegionStart(*record_region)) + "), the only place the bootloader reads it");
  }
  runtime::Diag diag;
  const auto record = runtime::DecodeBootRecord(record_element->data, &diag);
  if (!record.ok()) {
    v.failed.push_back(source_name + ": boot record at " + HexAddress(record_element->address) + ": " +
                       (diag.empty() ? record.status().message() : diag.c_str()));
    return v;
  }
  v.passed.push_back("boot record intact (CRC, magic, version, not revoked)");
  if (!trusted.empty()) CheckSignature(record.value(), record_element->data, source_name, trusted, v);
  std::string manifest_problem;
  const std::string manifest = ManifestOf(*record_element, record.value(), &manifest_problem);
  if (!manifest_problem.empty()) {
    v.failed.push_back(source_name + ": " + manifest_problem);
  } else if (!nlohmann::json::accept(manifest)) {
    v.failed.push_back(source_name + ": the manifest is not valid JSON");
  } else {
    v.passed.push_back("manifest intact (" + std::to_string(manifest.size()) + " bytes, SHA-256 matches)");
  }
  if (std::string(record->board_id) != board.id) {
    v.failed.push_back(source_name + ": package is for board '" + EscapeText(record->board_id) + "', checked against '" +
                       board.id + "'");
  }

  if (record->index.size != 0) {
    auto files = IndexFiles(image, record.value(), source_name);
    const DfuseElement* romfs = FindRomfsElement(image, record.value());
    if (!files.ok()) {
      v.failed.push_back(files.error().message);
    } else if (romfs != nullptr) {
      auto listing = ListRomfs(romfs->data, source_name + ": ROMFS at " + HexAddress(romfs->address));
      std::map<std::string, const RomfsFileRecord*> by_path;
      for (const RomfsFileRecord& f : *files) by_path[f.path] = &f;
      size_t problems = 0, tree_files = 0;
      for (const RomfsListing& f : listing.ok() ? *listing : std::vector<RomfsListing>{}) {
        if (f.is_dir) continue;
        ++tree_files;
        const auto it = by_path.find(f.path);
        std::string why;
        if (it == by_path.end()) {
          why = "is not in the file index";
        } else if (it->second->offset != f.offset || it->second->size != f.size) {
          why = "is at +" + std::to_string(f.offset) + " (" + std::to_string(f.size) + " bytes), the file index says +" +
                std::to_string(it->second->offset) + " (" + std::to_string(it->second->size) + " bytes)";
        } else if (runtime::Sha256Digest({romfs->data.data() + f.offset, f.size}) != it->second->sha256) {
          why = "does not match its SHA-256 in the file index";
        }
        if (!why.empty() && ++problems <= 10) v.failed.push_back(source_name + ": ROMFS file " + f.path + " " + why);
      }
      if (listing.ok() && tree_files != files->size()) {
        ++problems;
        v.failed.push_back(source_name + ": the file index lists " + std::to_string(files->size()) +
                           " files, the ROMFS tree holds " + std::to_string(tree_files));
      }
      if (listing.ok() && problems == 0) {
        v.passed.push_back("file index intact, lists the " + std::to_string(tree_files) +
                           " ROMFS file(s) with matching offset, size and SHA-256");
      }
    }
  }

  const std::vector<uint64_t> installed = InstalledAddresses(manifest);
  std::vector<Placement> placements;
  std::vector<bool> listed(record->segment_count, false);
  size_t element_count = 0;
  for (const DfuseTarget& t : image.targets) {
    for (const DfuseElement& e : t.elements) {
      const std::string index = "element " + std::to_string(element_count++);
      RegionRole role = RegionRole::kFirmware;
      std::string what = index + " at " + HexAddress(e.address);
      std::string origin = index;
      if (&e == record_element) {
        role = RegionRole::kRecord;
        what = "boot record";
        origin = index + " (boot record)";
      } else if (record->romfs.size != 0 && e.address == record->romfs.address) {
        role = RegionRole::kRomfs;
        what = "ROMFS image";
        origin = index + " (ROMFS image)";
        auto listing = ListRomfs(e.data, source_name + ": ROMFS at " + HexAddress(e.address));
        if (!listing.ok()) v.failed.push_back(listing.error().message);
      }
      placements.push_back(Placement{e.address, e.data.size(), origin, role});
      if (&e == record_element) continue;
      bool found = false;
      for (uint32_t i = 0; i < record->segment_count; ++i) {
        const auto& s = record->segments[i];
        if (s.address != e.address) continue;
        found = true;
        listed[i] = true;
        if (s.length != e.data.size()) {
          v.failed.push_back(source_name + ": " + what + ": " + std::to_string(e.data.size()) +
                             " bytes, the record says " + std::to_string(s.length));
        } else if (runtime::Sha256Digest(e.data) != s.sha256) {
          v.failed.push_back(source_name + ": " + what + ": SHA-256 does not match the boot record");
        }
      }
      if (!found) v.failed.push_back(source_name + ": " + what + " is not listed in the boot record");
    }
  }
  size_t installed_count = 0;
  for (uint32_t i = 0; i < record->segment_count; ++i) {
    const auto& s = record->segments[i];
    if (!listed[i] && std::find(installed.begin(), installed.end(), s.address) != installed.end()) {
      ++installed_count;
      const runtime::Region* region = board.RegionAt(s.address);
      if (region == nullptr || region->role != RegionRole::kFirmware ||
          uint64_t{s.address} + s.length > uint64_t{board.RegionStart(*region)} + region->size) {
        v.failed.push_back(source_name + ": installed segment at " + HexAddress(s.address) + " (" +
                           std::to_string(s.length) + " bytes) is not inside one firmware region");
      }
      continue;
    }
    if (!listed[i]) {
      v.failed.push_back(source_name + ": the boot record lists a segment at " +
                         HexAddress(record->segments[i].address) + " that the file does not carry");
    }
  }
  if (v.failed.empty()) {
    v.passed.push_back("all " + std::to_string(element_count - 1) + " segment(s) match their SHA-256");
  }
  if (installed_count != 0) {
    v.passed.push_back(std::to_string(installed_count) +
                       " installed firmware segment(s) listed without their bytes (kept from the base package; "
                       "the bootloader verifies them in place)");
  }
  const Outcome rules = CheckPlacements(board, placements);
  if (rules.ok()) {
    v.passed.push_back(std::string("layout rules hold on board ") + board.id);
  } else {
    // One failed check per rule broken (CheckPlacements puts one per line).
    const std::string& problems = rules.error().message;
    for (size_t start = 0; start <= problems.size();) {
      const size_t end = std::min(problems.find('\n', start), problems.size());
      v.failed.push_back(source_name + ": " + problems.substr(start, end - start));
      start = end + 1;
    }
  }
  return v;
}

}  // namespace onedfu::packer
