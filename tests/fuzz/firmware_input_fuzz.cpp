// Fuzzes the firmware input loaders (sniffing, Intel HEX, ELF32, DfuSe, raw).
// Any result must be address-sorted, non-empty, non-overlapping segments below
// 4 GiB; Intel HEX results must survive a write (our own small writer here)
// and re-parse unchanged. A violation traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "packer/firmware_input.h"
#include "fuzz_check.h"

using onedfu::fuzz::FuzzCheck;

namespace {

using onedfu::host::Bytes;
using onedfu::packer::Segment;

void CheckSegments(const std::vector<Segment>& segments, const std::string& name) {
  FuzzCheck(!segments.empty());
  uint64_t previous_end = 0;
  for (const Segment& s : segments) {
    FuzzCheck(!s.data.empty());
    FuzzCheck(s.address >= previous_end);
    previous_end = uint64_t{s.address} + s.data.size();
    FuzzCheck(previous_end <= (uint64_t{1} << 32));
    FuzzCheck(s.origin.compare(0, name.size(), name) == 0);
  }
}

// Writes segments as Intel HEX: 04 records at 64 KiB boundaries, 32-byte 00 records, 01.
std::string WriteHex(const std::vector<Segment>& segments) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  auto record = [&out](uint8_t type, uint16_t offset, const uint8_t* data, size_t n) {
    uint8_t sum = static_cast<uint8_t>(n + (offset >> 8) + (offset & 0xff) + type);
    auto put = [&out](uint8_t b) {
      out += kDigits[b >> 4];
      out += kDigits[b & 15];
    };
    out += ':';
    put(static_cast<uint8_t>(n));
    put(static_cast<uint8_t>(offset >> 8));
    put(static_cast<uint8_t>(offset));
    put(type);
    for (size_t i = 0; i < n; ++i) {
      put(data[i]);
      sum = static_cast<uint8_t>(sum + data[i]);
    }
    put(static_cast<uint8_t>(-sum));
    out += '\n';
  };
  int64_t upper = -1;
  for (const Segment& s : segments) {
    size_t pos = 0;
    while (pos < s.data.size()) {
      const uint64_t address = uint64_t{s.address} + pos;
      if (static_cast<int64_t>(address >> 16) != upper) {
        upper = static_cast<int64_t>(address >> 16);
        const uint8_t u[2] = {static_cast<uint8_t>(upper >> 8), static_cast<uint8_t>(upper)};
        record(0x04, 0, u, 2);
      }
      size_t n = s.data.size() - pos;
      if (n > 32) n = 32;
      const size_t to_boundary = 0x10000 - (address & 0xffff);
      if (n > to_boundary) n = to_boundary;
      record(0x00, static_cast<uint16_t>(address & 0xffff), s.data.data() + pos, n);
      pos += n;
    }
  }
  record(0x01, 0, nullptr, 0);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  const std::string name = "in.fw";
  const auto format = onedfu::packer::SniffFirmwareFormat(bytes);

  auto segments = onedfu::packer::ParseFirmware(bytes, name, std::nullopt);
  if (segments.ok()) {
    FuzzCheck(format != onedfu::packer::FirmwareFormat::kRaw);
    CheckSegments(*segments, name);
    if (format == onedfu::packer::FirmwareFormat::kIntelHex) {
      // Parsing merges touching records, so the segments are maximal runs:
      // writing and re-reading them gives exactly the same runs.
      const std::string text = WriteHex(*segments);
      auto again = onedfu::packer::ParseIntelHex(Bytes(text.begin(), text.end()), name);
      FuzzCheck(again.ok());
      FuzzCheck(again->size() == segments->size());
      for (size_t i = 0; i < again->size(); ++i) {
        FuzzCheck((*again)[i].address == (*segments)[i].address);
        FuzzCheck((*again)[i].data == (*segments)[i].data);
      }
    }
  } else {
    FuzzCheck(segments.error().message.compare(0, name.size(), name) == 0);
  }

  // With an address: raw input becomes exactly one segment holding the input.
  auto placed = onedfu::packer::ParseFirmware(bytes, name, 0x08000000u);
  if (format == onedfu::packer::FirmwareFormat::kRaw) {
    FuzzCheck(placed.ok() == (size > 0 && size <= 0xf8000000u));
    if (placed.ok()) {
      FuzzCheck(placed->size() == 1 && (*placed)[0].address == 0x08000000u);
      FuzzCheck((*placed)[0].data == Bytes(bytes.begin(), bytes.end()));
    }
  } else {
    FuzzCheck(!placed.ok());
  }
  return 0;
}
