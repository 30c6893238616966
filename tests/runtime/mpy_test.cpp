// .mpy header parsing and arch rules, checked against the real mpy-cross
// output in shared/testdata/mpy (expected values from its README table).
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "runtime/mpy.h"

using namespace onedfu::runtime;

namespace {

std::vector<uint8_t> ReadSample(const char* name) {
  const std::string path = std::string(ONEDFU_SHARED_DIR) + "/testdata/mpy/" + name;
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("mpy: headers of the real mpy-cross samples") {
  struct Sample {
    const char* file;
    MpyArch arch;
    uint8_t sub_version;
  };
  // README: plain 4d 06 00 1f, armv7emsp 4d 06 1f 1f, x64 4d 06 0b 1f, armv6m 4d 06 13 1f.
  const Sample samples[] = {
      {"plain_mod.mpy", MpyArch::kNone, 0},
      {"native_mod.armv7emsp.mpy", MpyArch::kArmV7EMSP, 3},
      {"native_mod.x64.mpy", MpyArch::kX64, 3},
      {"viper_mod.armv6m.mpy", MpyArch::kArmV6M, 3},
  };
  for (const Sample& s : samples) {
    CAPTURE(s.file);
    const auto bytes = ReadSample(s.file);
    Diag diag;
    auto header = ParseMpyHeader(bytes, &diag);
    REQUIRE_MESSAGE(header.ok(), diag.c_str());
    CHECK(header->version == 6);
    CHECK(header->arch == s.arch);
    CHECK(header->native == (s.arch != MpyArch::kNone));
    CHECK(header->sub_version == s.sub_version);
    CHECK(header->small_int_bits == 31);
    CHECK(header->arch_flags == 0);
    CHECK(header->header_size == 4);
  }
}

TEST_CASE("mpy: arch names round trip and match mpy-cross spelling") {
  const char* names[] = {"none",      "x86",       "x64",    "armv6",     "armv6m",  "armv7m", "armv7em",
                         "armv7emsp", "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc"};
  for (uint8_t code = 0; code <= kMpyArchMax; ++code) {
    const auto arch = static_cast<MpyArch>(code);
    CHECK(std::strcmp(MpyArchName(arch), names[code]) == 0);
    auto parsed = ParseMpyArch(names[code]);
    REQUIRE(parsed.ok());
    CHECK(parsed.value() == arch);
  }
  CHECK(std::strcmp(MpyArchName(static_cast<MpyArch>(13)), "unknown") == 0);
  CHECK(ParseMpyArch("ARMV7M").status().code() == StatusCode::kNotFound);
  CHECK(ParseMpyArch("armv7").status().code() == StatusCode::kNotFound);
  CHECK(ParseMpyArch("armv7emdpx").status().code() == StatusCode::kNotFound);
  CHECK(ParseMpyArch("").status().code() == StatusCode::kNotFound);
  CHECK(ParseMpyArch(nullptr).status().code() == StatusCode::kNotFound);
}

TEST_CASE("mpy: arch compatibility rules") {
  // Bytecode runs everywhere, even without native support.
  CHECK(MpyArchCompatible(MpyArch::kNone, MpyArch::kNone));
  CHECK(MpyArchCompatible(MpyArch::kNone, MpyArch::kXtensa));
  // Thumb: armv6m <= file <= firmware.
  CHECK(MpyArchCompatible(MpyArch::kArmV6M, MpyArch::kArmV7EMDP));
  CHECK(MpyArchCompatible(MpyArch::kArmV7EMSP, MpyArch::kArmV7EMDP));
  CHECK(MpyArchCompatible(MpyArch::kArmV7M, MpyArch::kArmV7M));
  CHECK_FALSE(MpyArchCompatible(MpyArch::kArmV7EMSP, MpyArch::kArmV7M));
  CHECK_FALSE(MpyArchCompatible(MpyArch::kArmV7EMDP, MpyArch::kArmV6M));
  // armv6 (ARM mode) is not in the Thumb range: exact match only.
  CHECK(MpyArchCompatible(MpyArch::kArmV6, MpyArch::kArmV6));
  CHECK_FALSE(MpyArchCompatible(MpyArch::kArmV6, MpyArch::kArmV7M));
  CHECK_FALSE(MpyArchCompatible(MpyArch::kArmV6M, MpyArch::kArmV6));
  // Others: exact.
  CHECK(MpyArchCompatible(MpyArch::kX64, MpyArch::kX64));
  CHECK_FALSE(MpyArchCompatible(MpyArch::kX86, MpyArch::kX64));
  CHECK_FALSE(MpyArchCompatible(MpyArch::kXtensa, MpyArch::kXtensaWin));
  CHECK_FALSE(MpyArchCompatible(MpyArch::kRv32Imc, MpyArch::kRv64Imc));
  // Native code needs a native firmware.
  CHECK_FALSE(MpyArchCompatible(MpyArch::kArmV6M, MpyArch::kNone));
  CHECK_FALSE(MpyArchCompatible(MpyArch::kX64, MpyArch::kArmV7EMDP));
}

TEST_CASE("mpy: CheckMpyForBoard with the real samples") {
  const auto plain = ReadSample("plain_mod.mpy");
  const auto x64 = ReadSample("native_mod.x64.mpy");
  const auto emsp = ReadSample("native_mod.armv7emsp.mpy");
  const auto v6m = ReadSample("viper_mod.armv6m.mpy");
  Diag diag;

  CHECK(CheckMpyForBoard(plain, MpyArch::kNone, &diag).ok());
  CHECK(CheckMpyForBoard(plain, MpyArch::kArmV7EMDP, &diag).ok());
  CHECK(CheckMpyForBoard(emsp, MpyArch::kArmV7EMDP, &diag).ok());
  CHECK(CheckMpyForBoard(v6m, MpyArch::kArmV7EMSP, &diag).ok());
  CHECK(CheckMpyForBoard(x64, MpyArch::kX64, &diag).ok());

  Status s = CheckMpyForBoard(x64, MpyArch::kArmV7EMDP, &diag);
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(std::string(diag.c_str()) == "native code for x64 cannot run on armv7emdp");

  s = CheckMpyForBoard(emsp, MpyArch::kArmV7M, &diag);
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(std::string(diag.c_str()) == "native code for armv7emsp cannot run on armv7m");

  s = CheckMpyForBoard(v6m, MpyArch::kNone, &diag);
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(std::string(diag.c_str()).find("native code for armv6m") == 0);
}

TEST_CASE("mpy: malformed and unsupported headers") {
  Diag diag;
  SUBCASE("too short") {
    const uint8_t bytes[] = {'M', 6, 0};
    CHECK(ParseMpyHeader(bytes, &diag).status().code() == StatusCode::kOutOfRange);
    CHECK(ParseMpyHeader({}, &diag).status().code() == StatusCode::kOutOfRange);
  }
  SUBCASE("bad magic") {
    const uint8_t bytes[] = {'C', 6, 0, 31};
    CHECK(ParseMpyHeader(bytes, &diag).status().code() == StatusCode::kInvalidArgument);
  }
  SUBCASE("other versions name the version") {
    const uint8_t v5[] = {'M', 5, 0, 31};
    CHECK(ParseMpyHeader(v5, &diag).status().code() == StatusCode::kUnimplemented);
    CHECK(std::string(diag.c_str()).find("version 5") != std::string::npos);
    const uint8_t v7[] = {'M', 7, 0, 31};
    CHECK(ParseMpyHeader(v7, &diag).status().code() == StatusCode::kUnimplemented);
    CHECK(std::string(diag.c_str()).find("version 7") != std::string::npos);
    CHECK(CheckMpyForBoard(v7, MpyArch::kArmV7EMDP, &diag).code() == StatusCode::kUnimplemented);
  }
  SUBCASE("arch codes beyond rv64imc") {
    const uint8_t bytes[] = {'M', 6, (13 << 2) | 3, 31};
    CHECK(ParseMpyHeader(bytes, &diag).status().code() == StatusCode::kUnimplemented);
    CHECK(std::string(diag.c_str()).find("13") != std::string::npos);
  }
  SUBCASE("reserved feature bit 7") {
    const uint8_t bytes[] = {'M', 6, 0x80 | (2 << 2) | 3, 31};
    CHECK(ParseMpyHeader(bytes, &diag).status().code() == StatusCode::kInvalidArgument);
  }
  SUBCASE("native code of another sub-version") {
    const uint8_t bytes[] = {'M', 6, (2 << 2) | 2, 31};
    auto header = ParseMpyHeader(bytes, &diag);
    REQUIRE(header.ok());
    CHECK(header->sub_version == 2);
    CHECK(CheckMpyForBoard(bytes, MpyArch::kX64, &diag).code() == StatusCode::kFailedPrecondition);
    CHECK(std::string(diag.c_str()).find("sub-version 2") != std::string::npos);
  }
}

TEST_CASE("mpy: arch flags varuint after the header") {
  Diag diag;
  // Feature 0x40 | rv32imc(11) << 2 | 3 = 0x6f; flags 0x81 0x00 = 128.
  const uint8_t with_flags[] = {'M', 6, 0x6f, 31, 0x81, 0x00, 0xaa};
  auto header = ParseMpyHeader(with_flags, &diag);
  REQUIRE_MESSAGE(header.ok(), diag.c_str());
  CHECK(header->arch == MpyArch::kRv32Imc);
  CHECK(header->arch_flags == 128);
  CHECK(header->header_size == 6);

  const uint8_t truncated[] = {'M', 6, 0x6f, 31, 0x81};
  CHECK(ParseMpyHeader(truncated, &diag).status().code() == StatusCode::kOutOfRange);
  const uint8_t missing[] = {'M', 6, 0x6f, 31};
  CHECK(ParseMpyHeader(missing, &diag).status().code() == StatusCode::kOutOfRange);
}
