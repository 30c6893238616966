// `onedfu pack`: merge firmware, modules and assets into one DfuSe file.
//
// Pipeline: load the package JSON (optional) and flags -> board -> firmware
// segments -> ROMFS image -> check every placement rule -> boot record +
// JSON manifest -> DfuSe (one target, alt 0, elements sorted by address,
// padded to the write alignment, record last) -> temporary file -> rename.
// Nothing is written unless every rule holds.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "runtime/dfuse.h"
#include "host/expected.h"
#include "host/file_io.h"
#include "runtime/board.h"

namespace onedfu::packer {

using namespace host;  // the shared host utilities (Expected, Bytes, boards, files)

struct PackRequest {
  std::optional<std::filesystem::path> package;   // package JSON
  std::optional<std::filesystem::path> board;     // overrides the package's board
  std::vector<std::string> firmware_flags;        // "[ADDR:]FILE", added to the package's firmware
  std::optional<std::filesystem::path> romfs_dir; // added to the package's ROMFS tree
  std::optional<std::string> version;             // overrides the package's version
  std::optional<std::string> mpy_cross;           // overrides the package's mpy-cross
  std::optional<uint32_t> romfs_align;            // overrides the package's alignment
  // The package installed on the board (`--base OLD.dfu`): without firmware,
  // the record lists OLD's firmware segments (verified in place at boot, their
  // bytes are not in the output); the ROMFS is laid out against OLD's so that
  // unchanged files keep their addresses.
  std::optional<std::filesystem::path> base;
  // `--sign KEY.pem`: sign the boot record with this Ed25519 private key.
  std::optional<std::filesystem::path> sign_key;
  // `--security-counter N`: the record's anti-rollback counter (0 = none).
  uint32_t security_counter = 0;
};

// One element of the output, in address order.
struct PackedElement {
  uint32_t address = 0;
  Bytes data;          // padded to the memory's write alignment
  std::string region;  // region name on the board
  std::string origin;
  std::string sha256;  // hex, of `data`
};

struct PackedPackage {
  runtime::Board board;
  std::vector<PackedElement> elements;  // record element last
  std::string manifest_json;            // as stored after the boot record
  runtime::dfuse::Suffix suffix;        // vid/pid/bcdDevice (crc filled on write)
  std::string target_name;              // DfuSe target name
  std::vector<std::string> notes;       // what pack should tell the user (layout, compaction)
};

// Everything but the final write. Errors name the file, JSON path or address.
Expected<PackedPackage> BuildPackage(const PackRequest& request);

// BuildPackage, then streams the DfuSe file to a temporary file beside
// `output` and renames it into place.
Expected<PackedPackage> PackToFile(const PackRequest& request, const std::filesystem::path& output);

}  // namespace onedfu::packer
