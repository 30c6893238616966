// The package installed on a board, as `onedfu pack --base OLD.dfu` and
// `onedfu diff` read it: its boot record, its firmware segments, its ROMFS
// image and file index.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "host/dfuse_file.h"
#include "host/expected.h"
#include "host/romfs_build.h"
#include "runtime/boot_record.h"

namespace onedfu::packer {

using namespace host;  // the shared host utilities (Expected, Bytes, boards, files)

struct BasePackage {
  std::string source;                          // file name, for messages
  DfuseImage dfuse;                            // every element, in file order
  runtime::BootRecord record;
  std::vector<runtime::BootSegment> firmware;  // record segments other than the ROMFS image
  std::optional<RomfsBase> romfs;              // its ROMFS image, files and index
};

// Reads OLD.dfu: an intact boot record in the last element, the ROMFS element
// the record names (if any) and its files, from the record's file index when
// it has one (each checked against the image), else by walking the image.
// Errors name the file and what is missing or damaged.
Expected<BasePackage> ReadBasePackage(std::span<const uint8_t> bytes, const std::string& source_name);
Expected<BasePackage> LoadBasePackage(const std::filesystem::path& path);

}  // namespace onedfu::packer
