// Fuzzes the .mpy header parser and the arch rules.
// Invariants (trap on violation):
//  - A parsed header agrees with the raw bytes it came from.
//  - Arch names round-trip through ParseMpyArch.
//  - CheckMpyForBoard fails exactly when parsing fails, or the file is native
//    code of the wrong sub-version or of an arch MpyArchCompatible refuses.
#include <cstdint>
#include <cstring>

#include "runtime/mpy.h"

using namespace onedfu::runtime;

#define CHECK_OR_TRAP(cond) \
  do {                      \
    if (!(cond)) __builtin_trap(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteSpan file(data, size);
  Diag diag;
  auto header = ParseMpyHeader(file, &diag);
  if (header.ok()) {
    CHECK_OR_TRAP(size >= kMpyHeaderSize && header->header_size <= size);
    CHECK_OR_TRAP(data[0] == 'M' && header->version == kMpyVersion && data[1] == kMpyVersion);
    CHECK_OR_TRAP(header->sub_version == (data[2] & 3));
    CHECK_OR_TRAP(static_cast<uint8_t>(header->arch) == ((data[2] >> 2) & 0x0f));
    CHECK_OR_TRAP(header->native == (header->arch != MpyArch::kNone));
    CHECK_OR_TRAP(header->small_int_bits == data[3]);
    // The arch-flags varuint (>= 1 byte) is present exactly when feature bit 6 says so.
    CHECK_OR_TRAP(((data[2] & kMpyFeatureArchFlags) != 0) == (header->header_size > kMpyHeaderSize));
    if ((data[2] & kMpyFeatureArchFlags) == 0) CHECK_OR_TRAP(header->arch_flags == 0);
  } else {
    CHECK_OR_TRAP(!diag.empty());
  }

  for (uint8_t code = 0; code <= kMpyArchMax; ++code) {
    const auto board = static_cast<MpyArch>(code);
    const Status s = CheckMpyForBoard(file, board, &diag);
    if (!header.ok()) {
      CHECK_OR_TRAP(s.code() == header.status().code());
      continue;
    }
    const bool expect_ok = !header->native ||
                           (header->sub_version == kMpySubVersion && MpyArchCompatible(header->arch, board));
    CHECK_OR_TRAP(s.ok() == expect_ok);
    if (!s.ok()) CHECK_OR_TRAP(s.code() == StatusCode::kFailedPrecondition && !diag.empty());
  }

  // Arch names: every byte of input picks an arch code to round-trip.
  for (size_t i = 0; i < size && i < 16; ++i) {
    const auto arch = static_cast<MpyArch>(data[i]);
    const char* name = MpyArchName(arch);
    CHECK_OR_TRAP(name != nullptr && name[0] != '\0');
    auto parsed = ParseMpyArch(name);
    if (data[i] <= kMpyArchMax) {
      CHECK_OR_TRAP(parsed.ok() && parsed.value() == arch);
    } else {
      CHECK_OR_TRAP(std::strcmp(name, "unknown") == 0 && !parsed.ok());
    }
  }
  return 0;
}
