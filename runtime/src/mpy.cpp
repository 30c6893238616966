#include "runtime/mpy.h"

#include "runtime/romfs.h"  // ReadRomfsVarUint: .mpy uses the same varuint encoding

namespace onedfu::runtime {
namespace {

// Indexed by the MpyArch code.
constexpr const char* kArchNames[] = {
    "none",    "x86",       "x64",       "armv6",     "armv6m",  "armv7m",  "armv7em",
    "armv7emsp", "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc",
};
static_assert(sizeof(kArchNames) / sizeof(kArchNames[0]) == kMpyArchMax + 1);

bool StrEqual(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

bool IsThumb(MpyArch arch) { return arch >= MpyArch::kArmV6M && arch <= MpyArch::kArmV7EMDP; }

}  // namespace

const char* MpyArchName(MpyArch arch) {
  const auto code = static_cast<uint8_t>(arch);
  if (code > kMpyArchMax) return "unknown";
  return kArchNames[code];
}

Result<MpyArch> ParseMpyArch(const char* name) {
  if (name == nullptr) return Status(StatusCode::kNotFound, "no arch name");
  for (uint8_t code = 0; code <= kMpyArchMax; ++code) {
    if (StrEqual(name, kArchNames[code])) return static_cast<MpyArch>(code);
  }
  return Status(StatusCode::kNotFound, "unknown mpy arch name");
}

Result<MpyHeader> ParseMpyHeader(ByteSpan file, Diag* diag) {
  DiagClear(diag);
  if (file.size() < kMpyHeaderSize) {
    if (diag) diag->Str(".mpy header: file is ").Dec(file.size()).Str(" bytes, shorter than the 4-byte header");
    return Status(StatusCode::kOutOfRange, "file shorter than the .mpy header");
  }
  if (file[0] != kMpyMagic) {
    if (diag) diag->Str(".mpy header: first byte is ").Hex(file[0], 2).Str(", not 'M'");
    return Status(StatusCode::kInvalidArgument, "not a .mpy file");
  }
  if (file[1] != kMpyVersion) {
    if (diag) diag->Str(".mpy header: format version ").Dec(file[1]).Str(" is not supported (need 6)");
    return Status(StatusCode::kUnimplemented, "unsupported .mpy version");
  }
  const uint8_t feature = file[2];
  if ((feature & 0x80) != 0) {
    if (diag) diag->Str(".mpy header: reserved bit 7 set in feature byte ").Hex(feature, 2);
    return Status(StatusCode::kInvalidArgument, "reserved .mpy feature bit set");
  }
  const uint8_t arch_code = (feature >> 2) & 0x0f;
  if (arch_code > kMpyArchMax) {
    if (diag) diag->Str(".mpy header: unknown native arch code ").Dec(arch_code);
    return Status(StatusCode::kUnimplemented, "unknown .mpy native arch");
  }

  MpyHeader header;
  header.version = file[1];
  header.sub_version = feature & 0x03;
  header.arch = static_cast<MpyArch>(arch_code);
  header.native = header.arch != MpyArch::kNone;
  header.small_int_bits = file[3];
  header.header_size = kMpyHeaderSize;
  if ((feature & kMpyFeatureArchFlags) != 0) {
    ByteReader reader(file.subspan(kMpyHeaderSize));
    auto flags = ReadRomfsVarUint(reader);
    if (!flags.ok()) {
      if (diag) diag->Str(".mpy header: arch flags varuint at offset 4 is truncated or too large");
      return flags.status();
    }
    header.arch_flags = flags.value();
    header.header_size += reader.position();
  }
  return header;
}

bool MpyArchCompatible(MpyArch file_arch, MpyArch firmware_arch) {
  if (file_arch == MpyArch::kNone) return true;
  if (firmware_arch == MpyArch::kNone) return false;
  if (IsThumb(file_arch) && IsThumb(firmware_arch)) return file_arch <= firmware_arch;
  return file_arch == firmware_arch;
}

Status CheckMpyForBoard(ByteSpan file, MpyArch board_arch, Diag* diag) {
  ONEDFU_TRY_ASSIGN(const MpyHeader header, ParseMpyHeader(file, diag));
  if (!header.native) return Status::Ok();
  if (header.sub_version != kMpySubVersion) {
    if (diag) {
      diag->Str(".mpy header: native code of sub-version ").Dec(header.sub_version).Str(" (need 6.3)");
    }
    return Status(StatusCode::kFailedPrecondition, "unsupported .mpy native sub-version");
  }
  if (!MpyArchCompatible(header.arch, board_arch)) {
    if (diag) {
      diag->Str("native code for ").Str(MpyArchName(header.arch)).Str(" cannot run on ");
      if (board_arch == MpyArch::kNone) {
        diag->Str("a board without native code support (no arch set)");
      } else {
        diag->Str(MpyArchName(board_arch));
      }
    }
    return Status(StatusCode::kFailedPrecondition, "native code for another arch");
  }
  return Status::Ok();
}

}  // namespace onedfu::runtime
