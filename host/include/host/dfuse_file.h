// Host-side DfuSe file model built on the runtime parser/writer
// (runtime/dfuse.h): whole files in memory, owned bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "host/expected.h"
#include "host/file_io.h"
#include "runtime/dfuse.h"

namespace onedfu::host {

struct DfuseElement {
  uint32_t address = 0;
  Bytes data;
  friend bool operator==(const DfuseElement&, const DfuseElement&) = default;
};

struct DfuseTarget {
  uint8_t alt = 0;
  bool named = false;
  std::string name;  // <= 255 chars; empty and ignored when !named
  std::vector<DfuseElement> elements;
  friend bool operator==(const DfuseTarget&, const DfuseTarget&) = default;
};

struct DfuseImage {
  std::vector<DfuseTarget> targets;
  runtime::dfuse::Suffix suffix;          // crc = dwCRC as read; recomputed on write
  bool image_size_includes_suffix = false;  // as read; we always write without
};

// Parses a whole DfuSe file (suffix and CRC checked first). Errors read
// "<source_name>: target 0, element 3 at 0x08004000: ...".
Expected<DfuseImage> ParseDfuse(std::span<const uint8_t> bytes, const std::string& source_name);

// Serializes via runtime::dfuse::WriteFile: DFUImageSize without the suffix,
// suffix.crc recomputed, bcdDFU forced to 0x011A. Names longer than 255 chars are cut to 255; more than
// 255 targets or a file over 4 GiB cannot be written and yield an Error.
Expected<Bytes> SerializeDfuseChecked(const DfuseImage& image);
// Same, for images known to be valid (e.g. built by the packer or parsed):
// returns an empty vector if the image cannot be written.
Bytes SerializeDfuse(const DfuseImage& image);

}  // namespace onedfu::host
