#include "packer/base_package.h"

#include "host/file_io.h"
#include "packer/layout.h"
#include "runtime/sha256.h"

namespace onedfu::packer {

Expected<BasePackage> ReadBasePackage(std::span<const uint8_t> bytes, const std::string& source_name) {
  BasePackage out;
  out.source = source_name;
  ONEDFU_PTRY(out.dfuse, ParseDfuse(bytes, source_name));
  if (out.dfuse.targets.empty() || out.dfuse.targets.back().elements.empty()) {
    return Fail(source_name + ": no elements, so no boot record");
  }
  const DfuseElement& last = out.dfuse.targets.back().elements.back();
  runtime::Diag diag;
  auto record = runtime::DecodeBootRecord(last.data, &diag);
  if (!record.ok()) {
    return Fail(source_name + ": last element at " + HexAddress(last.address) + " is no intact boot record: " +
                (diag.empty() ? record.status().message() : diag.c_str()));
  }
  out.record = record.value();
  for (uint32_t i = 0; i < out.record.segment_count; ++i) {
    const runtime::BootSegment& s = out.record.segments[i];
    if (out.record.romfs.size != 0 && s.address == out.record.romfs.address) continue;
    out.firmware.push_back(s);
  }
  if (out.record.romfs.size == 0) return out;

  const DfuseElement* romfs = nullptr;
  for (const DfuseTarget& t : out.dfuse.targets) {
    for (const DfuseElement& e : t.elements) {
      if (e.address == out.record.romfs.address) romfs = &e;
    }
  }
  const std::string where = source_name + ": ROMFS at " + HexAddress(out.record.romfs.address);
  if (romfs == nullptr) return Fail(where + ": the record names it but the file carries no element there");
  if (romfs->data.size() != out.record.romfs.size ||
      runtime::Sha256Digest(romfs->data) != out.record.romfs.sha256) {
    return Fail(where + ": size or SHA-256 does not match the boot record");
  }
  RomfsBase base;
  base.image = romfs->data;
  const runtime::IndexState& index = out.record.index;
  if (index.size != 0) {
    if (index.address < out.record.romfs.address ||
        uint64_t{index.address} + index.size > uint64_t{out.record.romfs.address} + base.image.size()) {
      return Fail(where + ": the file index at " + HexAddress(index.address) + " lies outside the image");
    }
    base.index_offset = index.address - out.record.romfs.address;
    base.index_size = index.size;
    if (runtime::Sha256Digest({base.image.data() + base.index_offset, index.size}) != index.sha256) {
      return Fail(where + ": the file index does not match its SHA-256 in the boot record");
    }
    ONEDFU_PTRY(base.files, ReadRomfsIndex(base.image, base.index_offset, base.index_size, where));
  } else {
    ONEDFU_PTRY(std::vector<RomfsListing> listing, ListRomfs(base.image, where));
    for (const RomfsListing& f : listing) {
      if (f.is_dir) continue;
      const std::span<const uint8_t> data(base.image.data() + f.offset, f.size);
      base.files.push_back({f.path, static_cast<uint32_t>(f.offset), static_cast<uint32_t>(f.size),
                            runtime::Sha256Digest(data)});
    }
  }
  out.romfs = std::move(base);
  return out;
}

Expected<BasePackage> LoadBasePackage(const std::filesystem::path& path) {
  ONEDFU_PTRY(Bytes bytes, ReadFile(path));
  return ReadBasePackage(bytes, path.string());
}

}  // namespace onedfu::packer
