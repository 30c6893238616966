// MicroPython .mpy file header (format version 6, sub-version 3) and the
// native-code architecture rules that decide whether a .mpy can be imported
// by a given firmware. Embedded-safe: no heap.
//
// Header layout (4 bytes, then an optional varuint):
//   byte 0  'M' (0x4d)
//   byte 1  format version, 6
//   byte 2  feature byte: bit 7 reserved (0), bit 6 = arch flags follow (a
//           varuint after byte 3), bits 5..2 = native arch (MpyArch),
//           bits 1..0 = sub-version. A bytecode-only file has feature byte 0.
//   byte 3  small-int bits the file was compiled for (e.g. 31)
#pragma once

#include <cstdint>

#include "runtime/byte_reader.h"
#include "runtime/diag.h"
#include "runtime/status.h"

namespace onedfu::runtime {

inline constexpr uint8_t kMpyMagic = 'M';
inline constexpr uint8_t kMpyVersion = 6;
inline constexpr uint8_t kMpySubVersion = 3;
inline constexpr size_t kMpyHeaderSize = 4;  // bytes, without optional arch flags
inline constexpr uint8_t kMpyFeatureArchFlags = 0x40;

// Native-code architectures, with MicroPython's numeric codes (feature bits 5..2).
enum class MpyArch : uint8_t {
  kNone = 0,  // bytecode only / no native support
  kX86 = 1,
  kX64,
  kArmV6,
  kArmV6M,
  kArmV7M,
  kArmV7EM,
  kArmV7EMSP,
  kArmV7EMDP,
  kXtensa,
  kXtensaWin,
  kRv32Imc,
  kRv64Imc,
};
inline constexpr uint8_t kMpyArchMax = static_cast<uint8_t>(MpyArch::kRv64Imc);

// mpy-cross's -march spelling: "x86", "x64", "armv6", "armv6m", "armv7m",
// "armv7em", "armv7emsp", "armv7emdp", "xtensa", "xtensawin", "rv32imc",
// "rv64imc"; "none" for kNone; "unknown" for a value outside the enum.
const char* MpyArchName(MpyArch arch);
// Inverse of MpyArchName (exact, lower-case). kNotFound for anything else.
Result<MpyArch> ParseMpyArch(const char* name);

struct MpyHeader {
  uint8_t version = 0;
  uint8_t sub_version = 0;   // 0 for bytecode-only files
  MpyArch arch = MpyArch::kNone;
  bool native = false;       // arch != kNone
  uint8_t small_int_bits = 0;
  uint32_t arch_flags = 0;   // the varuint after byte 3 when feature bit 6 is set, else 0
  size_t header_size = 0;    // bytes consumed: 4, plus the arch-flags varuint
};

// Parses the header at the start of `file`.
//   kOutOfRange       shorter than the header (or its arch-flags varuint)
//   kInvalidArgument  not starting with 'M', or reserved feature bit set
//   kUnimplemented    format version other than 6 (Diag names the version),
//                     or an arch code MicroPython does not define
Result<MpyHeader> ParseMpyHeader(ByteSpan file, Diag* diag);

// True when native code for `file_arch` runs on a firmware built for
// `firmware_arch`: bytecode-only (kNone) runs everywhere; among the ARM Thumb
// archs (armv6m..armv7emdp) armv6m <= file <= firmware; otherwise an exact
// match. A firmware of kNone runs bytecode only.
bool MpyArchCompatible(MpyArch file_arch, MpyArch firmware_arch);

// Parses the header and checks the file can be imported on a board whose
// firmware is built for `board_arch` (kNone: no native code support).
//   ParseMpyHeader's codes, and
//   kFailedPrecondition  native code for an incompatible arch, or a native
//                        file with a sub-version other than 3 (Diag says
//                        e.g. "native code for x64 cannot run on armv7emdp")
Status CheckMpyForBoard(ByteSpan file, MpyArch board_arch, Diag* diag);

}  // namespace onedfu::runtime
