// Firmware inputs for the packer: raw binary, Intel HEX, ELF32 little-endian
// and DfuSe files, told apart by their content (never by extension), turned
// into address-sorted, non-overlapping segments.
//
//   raw      anything not recognised below; needs a load address (ADDR:FILE)
//   Intel    first non-blank line is ':' + hex digits; record types 00-05,
//   HEX      checksums verified, an end-of-file record required, contiguous
//            data merged into one segment, overlapping data refused
//   ELF      "\x7fELF", 32-bit little-endian: every PT_LOAD program header
//            with p_filesz > 0 becomes a segment at p_paddr (the load
//            address) holding the file bytes only, so .bss never appears
//   DfuSe    "DfuSe" prefix: every element of every target (ParseDfuse)
//
// An explicit address is accepted for raw input only. Errors name the file
// and the place in it ("fw.hex: line 12: checksum 0x3c, expected 0x3d").
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "host/expected.h"
#include "host/file_io.h"
#include "packer/package.h"

namespace onedfu::packer {

using namespace host;  // the shared host utilities (Expected, Bytes, boards, files)

struct Segment {
  uint32_t address = 0;
  Bytes data;          // never empty; address + size <= 4 GiB
  std::string origin;  // "fw.bin", "fw.hex: line 3", "fw.elf: PT_LOAD 1" (program
                       // header index), "fw.dfu: target 0, element 2"
};

enum class FirmwareFormat : uint8_t { kRaw, kIntelHex, kElf, kDfuse };

// "raw binary", "Intel HEX", "ELF", "DfuSe".
const char* FirmwareFormatName(FirmwareFormat format);

// Decides the format from the first bytes (see the table above).
FirmwareFormat SniffFirmwareFormat(std::span<const uint8_t> bytes);

// Reads input.file and parses it; segments sorted by address.
Expected<std::vector<Segment>> LoadFirmware(const FirmwareInput& input);

// The same for bytes in memory: `name` stands for the file in errors and
// origins, `address` is the load address of a raw binary, `origin` (may be
// empty) says where the input was declared and is added to address errors.
Expected<std::vector<Segment>> ParseFirmware(std::span<const uint8_t> bytes, const std::string& name,
                                             std::optional<uint32_t> address, const std::string& origin = "");

// The format parsers, for callers (and tests) that know the format.
Expected<std::vector<Segment>> ParseIntelHex(std::span<const uint8_t> text, const std::string& name);
Expected<std::vector<Segment>> ParseElf32(std::span<const uint8_t> bytes, const std::string& name);

}  // namespace onedfu::packer
