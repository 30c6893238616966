// `onedfu inspect` and `onedfu verify`: what a .dfu holds, and whether it is
// intact and fits its board.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "host/dfuse_file.h"
#include "host/expected.h"
#include "host/romfs_build.h"
#include "host/signing.h"
#include "runtime/board.h"
#include "runtime/boot_record.h"

namespace onedfu::packer {

using namespace host;  // the shared host utilities (Expected, Bytes, boards, files)

struct InspectedElement {
  uint32_t address = 0;
  uint64_t size = 0;
  std::string region;  // "" when no board region holds it
  std::string sha256;  // hex
};

struct InspectedTarget {
  uint8_t alt = 0;
  std::string name;
  std::vector<InspectedElement> elements;
};

struct Inspection {
  std::vector<InspectedTarget> targets;
  runtime::dfuse::Suffix suffix;
  bool image_size_includes_suffix = false;
  std::optional<runtime::BootRecord> record;  // when an intact record element is present
  std::optional<uint32_t> record_address;
  std::string record_problem;                 // why a record-looking element did not decode
  std::string manifest_json;                  // "" when there is none
  std::vector<RomfsListing> romfs;            // the package's ROMFS tree
  std::string romfs_problem;
  std::vector<RomfsFileRecord> index_files;   // from the ROMFS file index the record locates
  std::string index_problem;                  // why it could not be read ("" = fine or none)
  std::string board_id;                       // of the board used for region names ("" = none)
};

// Parses `bytes` (the whole .dfu). Region names come from `board` when given.
Expected<Inspection> Inspect(std::span<const uint8_t> bytes, const std::string& source_name,
                             const runtime::Board* board);

// The JSON shape of `onedfu inspect --json`:
// {"targets":[{"alt":0,"name":"...","elements":[{"address":N,"size":N,"region":"...","sha256":"..."}]}],
//  "suffix":{"vid":N,"pid":N,"bcdDevice":N,"bcdDFU":N,"crc":N},"manifest":{...}|"TEXT"|null,
//  "record":{...}|null,"romfs":[{"path":"...","size":N,"offset":N}],
//  "files":[{"path":"...","size":N,"offset":N,"sha256":"..."}] (from the file index)}
// "manifest" is the manifest's JSON value, or its escaped text when it is not JSON or is nested
// deeper than host::json_reader::kMaxJsonDepth.
std::string InspectionJson(const Inspection& inspection);
std::string InspectionText(const Inspection& inspection);

// The checks of `onedfu verify`, each one line. ok() only when every check passed.
struct Verification {
  std::vector<std::string> passed;
  std::vector<std::string> failed;
  bool ok() const { return failed.empty(); }
};

// File CRC and structure, one intact unrevoked record in the last element
// at the start of the record region, manifest hash, every segment's SHA-256
// against the element bytes, every element listed in the record (record
// segments the file does not carry must be marked "installed" in the
// manifest: kept from a base package), ROMFS readable, its file index intact
// and listing exactly the image's files (offset, size, SHA-256), placement
// rules on `board` (CheckPlacements, including the erase-sector rule), board
// id match; and what the board takes: every target alt 0, suffix
// VID/PID/bcdDevice equal to the board's, every element address on its
// memory's write unit.
// With `trusted` keys (`verify --key`): also the record's Ed25519 signature,
// by one of them.
Verification Verify(std::span<const uint8_t> bytes, const std::string& source_name, const runtime::Board& board,
                    std::span<const host::Ed25519PublicKey> trusted = {});

}  // namespace onedfu::packer
