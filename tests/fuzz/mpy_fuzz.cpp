// Fuzzes the .mpy header parser and the arch rules.
// Invariants (trap on violation):
//  - A parsed header agrees with the raw bytes it came from.
//  - Arch names round-trip through ParseMpyArch.
//  - CheckMpyForBoard fails exactly when parsing fails, or the file is native
//    code of the wrong sub-version or of an arch MpyArchCompatible refuses.
#include <cstdint>
#include <cstring>

#include "runtime/mpy.h"
#include "fuzz_check.h"

using onedfu::fuzz::FuzzCheck;

using namespace onedfu::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteSpan file(data, size);
  Diag diag;
  auto header = ParseMpyHeader(file, &diag);
  if (header.ok()) {
    FuzzCheck(size >= kMpyHeaderSize && header->header_size <= size);
    FuzzCheck(data[0] == 'M' && header->version == kMpyVersion && data[1] == kMpyVersion);
    FuzzCheck(header->sub_version == (data[2] & 3));
    FuzzCheck(static_cast<uint8_t>(header->arch) == ((data[2] >> 2) & 0x0f));
    FuzzCheck(header->native == (header->arch != MpyArch::kNone));
    FuzzCheck(header->small_int_bits == data[3]);
    // The arch-flags varuint (>= 1 byte) is present exactly when feature bit 6 says so.
    FuzzCheck(((data[2] & kMpyFeatureArchFlags) != 0) == (header->header_size > kMpyHeaderSize));
    if ((data[2] & kMpyFeatureArchFlags) == 0) FuzzCheck(header->arch_flags == 0);
  } else {
    FuzzCheck(!diag.empty());
  }

  for (uint8_t code = 0; code <= kMpyArchMax; ++code) {
    const auto board = static_cast<MpyArch>(code);
    const Status s = CheckMpyForBoard(file, board, &diag);
    if (!header.ok()) {
      FuzzCheck(s.code() == header.status().code());
      continue;
    }
    const bool expect_ok = !header->native ||
                           (header->sub_version == kMpySubVersion && MpyArchCompatible(header->arch, board));
    FuzzCheck(s.ok() == expect_ok);
    if (!s.ok()) FuzzCheck(s.code() == StatusCode::kFailedPrecondition && !diag.empty());
  }

  // Arch names: every byte of input picks an arch code to round-trip.
  for (size_t i = 0; i < size && i < 16; ++i) {
    const auto arch = static_cast<MpyArch>(data[i]);
    const char* name = MpyArchName(arch);
    FuzzCheck(name != nullptr && name[0] != '\0');
    auto parsed = ParseMpyArch(name);
    if (data[i] <= kMpyArchMax) {
      FuzzCheck(parsed.ok() && parsed.value() == arch);
    } else {
      FuzzCheck(std::strcmp(name, "unknown") == 0 && !parsed.ok());
    }
  }
  return 0;
}
