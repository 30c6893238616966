// Firmware inputs: format sniffing, raw binaries, Intel HEX (records built
// here with their own checksum code), ELF32 (hand-made files for every error
// path, and a real arm-none-eabi-gcc build cross-checked against objcopy's
// HEX and binary output), and DfuSe files.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "elf_builder.h"
#include "host/dfuse_file.h"
#include "packer/firmware_input.h"
#include "runtime/byte_reader.h"

namespace onedfu::packer {
namespace {

namespace fs = std::filesystem;

const fs::path kExamples = fs::path(ONEDFU_SOURCE_DIR) / "manifests" / "examples";

Bytes ToBytes(const std::string& text) { return Bytes(text.begin(), text.end()); }

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed + i * 7);
  return out;
}

// One Intel HEX record: ":" LL AAAA TT DD.. CC with CC = two's complement of the byte sum.
std::string Record(uint8_t type, uint16_t offset, const Bytes& payload) {
  Bytes body = {static_cast<uint8_t>(payload.size()), static_cast<uint8_t>(offset >> 8),
                static_cast<uint8_t>(offset), type};
  body.insert(body.end(), payload.begin(), payload.end());
  unsigned sum = 0;
  for (uint8_t b : body) sum += b;
  body.push_back(static_cast<uint8_t>(-sum));
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string line = ":";
  for (uint8_t b : body) {
    line += kDigits[b >> 4];
    line += kDigits[b & 15];
  }
  return line + "\n";
}
std::string Upper(uint16_t upper) { return Record(0x04, 0, {static_cast<uint8_t>(upper >> 8), static_cast<uint8_t>(upper)}); }
const std::string kEof = ":00000001FF\n";

std::string HexError(const std::string& text) {
  auto segments = ParseIntelHex(ToBytes(text), "t.hex");
  return segments.ok() ? std::string("ok") : segments.error().message;
}

// Joins segments that touch; returns (address, bytes) runs.
std::vector<std::pair<uint32_t, Bytes>> Merged(const std::vector<Segment>& segments) {
  std::vector<std::pair<uint32_t, Bytes>> runs;
  for (const Segment& s : segments) {
    if (!runs.empty() && uint64_t{runs.back().first} + runs.back().second.size() == s.address) {
      runs.back().second.insert(runs.back().second.end(), s.data.begin(), s.data.end());
    } else {
      runs.emplace_back(s.address, s.data);
    }
  }
  return runs;
}

// ---- ELF32 builder (tests/support/elf_builder.h) ---------------------------

using testing::MakeElf;
using testing::ProgramHeader;

std::string ElfError(const Bytes& elf) {
  auto segments = ParseElf32(elf, "t.elf");
  return segments.ok() ? std::string("ok") : segments.error().message;
}

bool HaveTool(const char* tool) { return std::system((std::string(tool) + " --version >/dev/null 2>&1").c_str()) == 0; }

Bytes ReadAll(const fs::path& path) {
  auto bytes = ReadFile(path);
  REQUIRE_MESSAGE(bytes.ok(), (bytes.ok() ? "" : bytes.error().message));
  return *bytes;
}

// ---- Sniffing and raw ------------------------------------------------------

TEST_CASE("firmware: formats are sniffed by content") {
  CHECK(SniffFirmwareFormat(ToBytes("DfuSe\x01")) == FirmwareFormat::kDfuse);
  CHECK(SniffFirmwareFormat(MakeElf({}, {})) == FirmwareFormat::kElf);
  CHECK(SniffFirmwareFormat(ToBytes(Upper(0x0800) + kEof)) == FirmwareFormat::kIntelHex);
  CHECK(SniffFirmwareFormat(ToBytes("\xef\xbb\xbf\r\n  :00000001FF\r\n")) == FirmwareFormat::kIntelHex);
  // A vector table is binary even when it happens to start with ':'.
  CHECK(SniffFirmwareFormat(Bytes{':', 0x00, 0x02, 0x20, 0x41, 0x80, 0x00, 0x08}) == FirmwareFormat::kRaw);
  CHECK(SniffFirmwareFormat(ToBytes(":0000")) == FirmwareFormat::kRaw);  // too short for a record
  CHECK(SniffFirmwareFormat(Pattern(64, 1)) == FirmwareFormat::kRaw);
  CHECK(SniffFirmwareFormat({}) == FirmwareFormat::kRaw);
  CHECK(std::string(FirmwareFormatName(FirmwareFormat::kIntelHex)) == "Intel HEX");
}

TEST_CASE("firmware: a raw binary needs an address") {
  const Bytes data = Pattern(300, 3);
  auto no_address = ParseFirmware(data, "fw.bin", std::nullopt, "pkg.json: /firmware/1");
  REQUIRE_FALSE(no_address.ok());
  CHECK(no_address.error().message ==
        "fw.bin: a raw binary needs a load address: give ADDR:FILE (--firmware 0x08008000:fw.bin) or \"address\" "
        "in the package (pkg.json: /firmware/1)");
  auto placed = ParseFirmware(data, "fw.bin", 0x90000000u);
  REQUIRE(placed.ok());
  REQUIRE(placed->size() == 1);
  CHECK((*placed)[0].address == 0x90000000u);
  CHECK((*placed)[0].data == data);
  CHECK((*placed)[0].origin == "fw.bin");
  CHECK(ParseFirmware(data, "fw.bin", 0xffffff00u).error().message == "fw.bin: 300 bytes at 0xffffff00 run past 4 GiB");
  CHECK(ParseFirmware(Bytes(256, 1), "fw.bin", 0xffffff00u).ok());  // ends exactly at 4 GiB
  CHECK(ParseFirmware({}, "fw.bin", 0x08000000u).error().message == "fw.bin: empty file");
}

TEST_CASE("firmware: an address on a self-describing format is refused") {
  auto hex = ParseFirmware(ToBytes(Upper(0x0800) + Record(0, 0, {1, 2}) + kEof), "fw.hex", 0x08000000u, "--firmware");
  REQUIRE_FALSE(hex.ok());
  CHECK(hex.error().message ==
        "fw.hex: a Intel HEX file carries its own addresses; remove the address 0x08000000 (--firmware)");
  auto elf = ParseFirmware(MakeElf({}, {}), "fw.elf", 0x08000000u);
  REQUIRE_FALSE(elf.ok());
  CHECK(elf.error().message.find("fw.elf: a ELF file carries its own addresses") == 0);
}

TEST_CASE("firmware: LoadFirmware reads the file and names it") {
  const fs::path missing = "/nonexistent/fw.bin";
  auto result = LoadFirmware(FirmwareInput{missing, 0x08000000u, "--firmware"});
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("/nonexistent/fw.bin") == 0);

  const fs::path bin = kExamples / "pybd-sf6-demo/firmware/text1.bin";
  auto loaded = LoadFirmware(FirmwareInput{bin, 0x90000000u, "pkg"});
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 1);
  CHECK((*loaded)[0].data == ReadAll(bin));
  CHECK((*loaded)[0].origin == bin.string());
}

// ---- Intel HEX -------------------------------------------------------------

TEST_CASE("firmware hex: contiguous records merge, gaps split, origins give the line") {
  const Bytes a = Pattern(16, 1), b = Pattern(16, 2), c = Pattern(8, 3);
  const std::string text = Upper(0x0800) + Record(0, 0x8000, a) + Record(0, 0x8010, b) + Record(0, 0x9000, c) +
                           Record(0x05, 0, {0x08, 0x00, 0x80, 0x41}) + kEof;
  auto segments = ParseIntelHex(ToBytes(text), "t.hex");
  REQUIRE_MESSAGE(segments.ok(), (segments.ok() ? "" : segments.error().message));
  REQUIRE(segments->size() == 2);
  Bytes ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  CHECK((*segments)[0].address == 0x08008000u);
  CHECK((*segments)[0].data == ab);
  CHECK((*segments)[0].origin == "t.hex: line 2");
  CHECK((*segments)[1].address == 0x08009000u);
  CHECK((*segments)[1].data == c);
  CHECK((*segments)[1].origin == "t.hex: line 4");
}

TEST_CASE("firmware hex: records out of order still merge") {
  const Bytes a = Pattern(16, 1), b = Pattern(16, 2), c = Pattern(16, 3);
  const std::string text = Upper(0x0800) + Record(0, 0x20, c) + Record(0, 0x00, a) + Record(0, 0x10, b) + kEof;
  auto segments = ParseIntelHex(ToBytes(text), "t.hex");
  REQUIRE(segments.ok());
  REQUIRE(segments->size() == 1);
  Bytes all = a;
  all.insert(all.end(), b.begin(), b.end());
  all.insert(all.end(), c.begin(), c.end());
  CHECK((*segments)[0].address == 0x08000000u);
  CHECK((*segments)[0].data == all);
}

TEST_CASE("firmware hex: CRLF, blank lines, lower case and a record across 64 KiB") {
  const Bytes a = Pattern(16, 9), b = Pattern(4, 10);
  std::string text = Upper(0x0800) + "\n" + Record(0, 0xfff8, a) + Upper(0x0801) + Record(0, 0x0008, b) + kEof;
  for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string crlf;
  for (char ch : text) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  auto segments = ParseIntelHex(ToBytes(crlf), "t.hex");
  REQUIRE_MESSAGE(segments.ok(), (segments.ok() ? "" : segments.error().message));
  REQUIRE(segments->size() == 1);  // linear mode: 0x0800fff8 + 16 runs on into 0x08010008
  CHECK((*segments)[0].address == 0x0800fff8u);
  Bytes ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  CHECK((*segments)[0].data == ab);
}

TEST_CASE("firmware hex: segment addresses (type 02) wrap inside the 64 KiB segment") {
  const Bytes a = Pattern(16, 5);
  const std::string text = Record(0x02, 0, {0x10, 0x00}) + Record(0, 0xfff8, a) + kEof;
  auto segments = ParseIntelHex(ToBytes(text), "t.hex");
  REQUIRE(segments.ok());
  REQUIRE(segments->size() == 2);
  CHECK((*segments)[0].address == 0x10000u);  // the wrapped tail
  CHECK((*segments)[0].data == Bytes(a.begin() + 8, a.end()));
  CHECK((*segments)[1].address == 0x1fff8u);
  CHECK((*segments)[1].data == Bytes(a.begin(), a.begin() + 8));
}

TEST_CASE("firmware hex: errors name the file and line") {
  const std::string good = Record(0, 0x0000, {1, 2, 3});
  std::string bad_sum = good;
  bad_sum[bad_sum.size() - 2] = bad_sum[bad_sum.size() - 2] == '0' ? '1' : '0';
  CHECK(HexError(Upper(0x0800) + bad_sum + kEof).find("t.hex: line 2: checksum 0x") == 0);
  CHECK(HexError(Upper(0x0800) + ":0300000001020301\n" + kEof) == "t.hex: line 2: checksum 0x01, expected 0xf7");
  CHECK(HexError(":0400000001020300\n" + kEof) ==
        "t.hex: line 1: byte count 4 does not match the 3 data bytes of the record");
  CHECK(HexError(":0300000001020\n" + kEof) == "t.hex: line 1: odd number of hex digits");
  CHECK(HexError(":03000000010G0301\n" + kEof) == "t.hex: line 1: not a hex digit at column 13");
  CHECK(HexError(":000000\n" + kEof) == "t.hex: line 1: record shorter than 5 bytes");
  CHECK(HexError("00000001FF\n") == "t.hex: line 1: expected ':' at the start of a record");
  CHECK(HexError(good) == "t.hex: no end-of-file record (type 01); the file may be truncated");
  CHECK(HexError(good + kEof + good) == "t.hex: line 3: record after the end-of-file record");
  CHECK(HexError(Record(0x06, 0, {}) + kEof) == "t.hex: line 1: unknown record type 0x06");
  CHECK(HexError(Record(0x04, 0, {0x08}) + kEof) == "t.hex: line 1: address record (type 0x04) needs 2 data bytes");
  CHECK(HexError(Record(0x05, 0, {0x08}) + kEof) ==
        "t.hex: line 1: start address record (type 0x05) needs 4 data bytes");
  CHECK(HexError(Record(0x01, 0, {0x08}) + kEof) == "t.hex: line 1: end-of-file record with data");
  CHECK(HexError(Upper(0xffff) + Record(0, 0xfff8, Pattern(16, 0)) + kEof) ==
        "t.hex: line 2: data runs past the 4 GiB address space");
  CHECK(HexError(Upper(0x0800) + Record(0, 0x10, Pattern(16, 0)) + Record(0, 0x18, Pattern(4, 0)) + kEof) ==
        "t.hex: line 3: data at 0x08000018 overlaps data from line 2 (0x08000010..0x0800001f)");
  CHECK(HexError(Upper(0x0800) + Record(0, 0x10, Pattern(16, 0)) + Record(0, 0x08, Pattern(9, 0)) + kEof) ==
        "t.hex: line 3: data at 0x08000008 overlaps data from line 2 (0x08000010..0x0800001f)");
  CHECK(HexError(kEof) == "t.hex: no data");
}

TEST_CASE("firmware hex: the example text0.hex matches objcopy's reading of it") {
  const fs::path hex = kExamples / "pybd-sf6-demo/firmware/text0.hex";
  auto segments = LoadFirmware(FirmwareInput{hex, std::nullopt, "test"});
  REQUIRE_MESSAGE(segments.ok(), (segments.ok() ? "" : segments.error().message));
  REQUIRE(segments->size() == 1);
  CHECK((*segments)[0].address == 0x08008000u);
  // The vector table the script writes: initial SP, then the reset handler with the Thumb bit.
  REQUIRE((*segments)[0].data.size() >= 8);
  CHECK(runtime::LoadLe32((*segments)[0].data.data()) == 0x20080000u);
  CHECK(runtime::LoadLe32((*segments)[0].data.data() + 4) == 0x08008041u);
  if (!HaveTool("arm-none-eabi-objcopy")) {
    MESSAGE("arm-none-eabi-objcopy not found: cross-check skipped");
    return;
  }
  const fs::path out = fs::path(ONEDFU_BINARY_DIR) / "firmware_input_test" / "text0.bin";
  fs::create_directories(out.parent_path());
  REQUIRE(std::system(("arm-none-eabi-objcopy -I ihex -O binary '" + hex.string() + "' '" + out.string() + "'").c_str()) ==
          0);
  CHECK((*segments)[0].data == ReadAll(out));
}

// ---- ELF -------------------------------------------------------------------

TEST_CASE("firmware elf: PT_LOAD file bytes at p_paddr; .bss and other headers ignored") {
  const Bytes text = Pattern(64, 1), data = Pattern(8, 2);
  const uint32_t base = 52 + 32 * 4;
  const Bytes payload = [&] {
    Bytes p = text;
    p.insert(p.end(), data.begin(), data.end());
    return p;
  }();
  const Bytes elf = MakeElf({{1, base, 0x08020000, 0x08020000, 64, 64},
                             {1, base + 64, 0x20000000, 0x08020040, 8, 0x408},  // .data + .bss
                             {1, 0, 0x20001000, 0x20001000, 0, 0x100},         // .bss only
                             {4, base, 0, 0, 8, 8}},                             // PT_NOTE
                            payload);
  auto segments = ParseElf32(elf, "t.elf");
  REQUIRE_MESSAGE(segments.ok(), (segments.ok() ? "" : segments.error().message));
  REQUIRE(segments->size() == 2);
  CHECK((*segments)[0].address == 0x08020000u);
  CHECK((*segments)[0].data == text);
  CHECK((*segments)[0].origin == "t.elf: PT_LOAD 0");
  CHECK((*segments)[1].address == 0x08020040u);  // load address, not the RAM address
  CHECK((*segments)[1].data == data);            // file bytes only: no .bss zeros
  CHECK((*segments)[1].origin == "t.elf: PT_LOAD 1");
  // Sorted by address whatever the header order.
  const Bytes swapped = MakeElf({{1, base + 64, 0x20000000, 0x08020040, 8, 8}, {1, base, 0x08020000, 0x08020000, 64, 64}},
                                Bytes(32, 0xee));  // 32 filler bytes: headers are 2 here, not 4
  auto reordered = ParseElf32(swapped, "t.elf");
  REQUIRE_FALSE(reordered.ok());  // offsets now point past the smaller file's data
  const uint32_t base2 = 52 + 32 * 2;
  Bytes payload2 = text;
  payload2.insert(payload2.end(), data.begin(), data.end());
  auto sorted = ParseElf32(
      MakeElf({{1, base2 + 64, 0x20000000, 0x08020040, 8, 8}, {1, base2, 0x08020000, 0x08020000, 64, 64}}, payload2),
      "t.elf");
  REQUIRE(sorted.ok());
  REQUIRE(sorted->size() == 2);
  CHECK((*sorted)[0].address == 0x08020000u);
  CHECK((*sorted)[0].origin == "t.elf: PT_LOAD 1");
}

TEST_CASE("firmware elf: malformed files give clear errors") {
  const Bytes payload = Pattern(32, 4);
  const uint32_t base = 52 + 32;
  Bytes elf64 = MakeElf({{1, base, 0, 0x08000000, 32, 32}}, payload);
  elf64[4] = 2;
  CHECK(ElfError(elf64) == "t.elf: 64-bit ELF is not supported (firmware images are ELF32)");
  Bytes big = MakeElf({{1, base, 0, 0x08000000, 32, 32}}, payload);
  big[5] = 2;
  CHECK(ElfError(big) == "t.elf: big-endian ELF is not supported");
  const Bytes header_only = MakeElf({}, {});
  CHECK(ElfError(Bytes(header_only.begin(), header_only.begin() + 40)) == "t.elf: ELF header truncated");
  CHECK(ElfError(MakeElf({}, payload)) == "t.elf: no program headers (an object file? give the linked firmware)");
  CHECK(ElfError(MakeElf({{1, base, 0, 0x08000000, 33, 33}}, payload)) ==
        "t.elf: PT_LOAD 0: file bytes 0x00000054..0x00000074 run past the end of the file (116 bytes)");
  CHECK(ElfError(MakeElf({{1, 0xffffffff, 0, 0x08000000, 2, 2}}, payload)).find("t.elf: PT_LOAD 0: file bytes") == 0);
  CHECK(ElfError(MakeElf({{1, base, 0, 0x08000000, 32, 16}}, payload)) ==
        "t.elf: PT_LOAD 0: p_filesz 32 is larger than p_memsz 16");
  CHECK(ElfError(MakeElf({{1, base, 0, 0xfffffff0, 32, 32}}, payload)) ==
        "t.elf: PT_LOAD 0: load address 0xfffffff0 + 32 bytes runs past 4 GiB");
  CHECK(ElfError(MakeElf({{1, base, 0, 0, 0, 64}}, payload)) == "t.elf: no PT_LOAD program header with file bytes");
  CHECK(ElfError(MakeElf({{1, base, 0, 0x08000000, 32, 32}, {1, base, 0, 0x08000010, 16, 16}}, payload)) ==
        "t.elf: PT_LOAD 1 at 0x08000010 overlaps t.elf: PT_LOAD 0 (0x08000000..0x0800001f)");
  // Headers that share file bytes would copy them once each (65534 headers over a large file:
  // gigabytes); refused once the copies exceed the file.
  const Bytes shared_payload = Pattern(100, 5);
  const uint32_t shared_base = 52 + 3 * 32;
  CHECK(ElfError(MakeElf({{1, shared_base, 0, 0x08000000, 100, 100},
                          {1, shared_base, 0, 0x08001000, 100, 100},
                          {1, shared_base, 0, 0x08002000, 100, 100}},
                         shared_payload)) ==
        "t.elf: PT_LOAD 2: the PT_LOAD segments up to here hold 300 file bytes, more than the file's 248 "
        "(program headers that share file bytes are not supported)");
  Bytes table_out = MakeElf({{1, base, 0, 0x08000000, 32, 32}}, payload);
  runtime::StoreLe16(&table_out[44], 20);  // 20 headers do not fit
  CHECK(ElfError(table_out) == "t.elf: program header table (20 entries at offset 52) runs past the end of the file");
  Bytes small_entries = MakeElf({{1, base, 0, 0x08000000, 32, 32}}, payload);
  runtime::StoreLe16(&small_entries[42], 16);
  CHECK(ElfError(small_entries) == "t.elf: program header size 16 is smaller than 32");
  Bytes xnum = MakeElf({{1, base, 0, 0x08000000, 32, 32}}, payload);
  runtime::StoreLe16(&xnum[44], 0xffff);
  CHECK(ElfError(xnum) == "t.elf: extended program header count (PN_XNUM) is not supported");
}

// Compares LoadFirmware on an ELF with objcopy's Intel HEX and binary views of it.
void CrossCheckWithObjcopy(const fs::path& elf, const fs::path& work) {
  auto from_elf = LoadFirmware(FirmwareInput{elf, std::nullopt, "test"});
  REQUIRE_MESSAGE(from_elf.ok(), (from_elf.ok() ? "" : from_elf.error().message));
  for (const Segment& s : *from_elf) CHECK(s.address < 0x20000000u);  // load addresses only, never RAM
  const fs::path hex = work / (elf.stem().string() + ".hex");
  const fs::path bin = work / (elf.stem().string() + ".bin");
  REQUIRE(std::system(("arm-none-eabi-objcopy -O ihex '" + elf.string() + "' '" + hex.string() + "'").c_str()) == 0);
  REQUIRE(std::system(("arm-none-eabi-objcopy -O binary '" + elf.string() + "' '" + bin.string() + "'").c_str()) == 0);
  auto from_hex = LoadFirmware(FirmwareInput{hex, std::nullopt, "test"});
  REQUIRE_MESSAGE(from_hex.ok(), (from_hex.ok() ? "" : from_hex.error().message));
  const auto elf_runs = Merged(*from_elf);
  const auto hex_runs = Merged(*from_hex);
  CHECK(elf_runs == hex_runs);
  REQUIRE(elf_runs.size() == 1);  // the demo is one contiguous flash image
  CHECK(elf_runs[0].second == ReadAll(bin));
}

TEST_CASE("firmware elf: the committed pybv10 demo.elf agrees with objcopy") {
  const fs::path elf = kExamples / "pybv10-demo/firmware/demo.elf";
  auto segments = LoadFirmware(FirmwareInput{elf, std::nullopt, "test"});
  REQUIRE_MESSAGE(segments.ok(), (segments.ok() ? "" : segments.error().message));
  REQUIRE(segments->size() >= 2);  // code, then .data's initial values stored after it
  CHECK(segments->front().address == 0x08020000u);
  CHECK(runtime::LoadLe32(segments->front().data.data()) == 0x20020000u);  // _estack from demo.ld
  if (!HaveTool("arm-none-eabi-objcopy")) {
    MESSAGE("arm-none-eabi-objcopy not found: cross-check skipped");
    return;
  }
  const fs::path work = fs::path(ONEDFU_BINARY_DIR) / "firmware_input_test";
  fs::create_directories(work);
  CrossCheckWithObjcopy(elf, work);
}

TEST_CASE("firmware elf: a fresh arm-none-eabi-gcc build agrees with objcopy") {
  if (!HaveTool("arm-none-eabi-gcc") || !HaveTool("arm-none-eabi-objcopy")) {
    MESSAGE("arm-none-eabi-gcc/objcopy not found: test skipped");
    return;
  }
  const fs::path src = kExamples / "pybv10-demo/firmware/src";
  const fs::path work = fs::path(ONEDFU_BINARY_DIR) / "firmware_input_test";
  fs::create_directories(work);
  const fs::path elf = work / "fresh.elf";
  const std::string cmd = "arm-none-eabi-gcc -mcpu=cortex-m7 -mthumb -O2 -g -ffreestanding -nostdlib -Wl,-T,'" +
                          (src / "demo.ld").string() + "' -o '" + elf.string() + "' '" + (src / "demo.c").string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  CrossCheckWithObjcopy(elf, work);
}

// ---- DfuSe -----------------------------------------------------------------

TEST_CASE("firmware dfuse: every element of every target becomes a segment") {
  DfuseImage image;
  image.targets.resize(2);
  image.targets[0].elements = {{0x90000000, Pattern(40, 1)}, {0x08008000, Pattern(24, 2)}};
  image.targets[1].alt = 1;
  image.targets[1].elements = {{0x08020000, Pattern(8, 3)}};
  const Bytes file = SerializeDfuse(image);
  REQUIRE_FALSE(file.empty());
  CHECK(SniffFirmwareFormat(file) == FirmwareFormat::kDfuse);
  auto segments = ParseFirmware(file, "in.dfu", std::nullopt);
  REQUIRE_MESSAGE(segments.ok(), (segments.ok() ? "" : segments.error().message));
  REQUIRE(segments->size() == 3);
  CHECK((*segments)[0].address == 0x08008000u);
  CHECK((*segments)[0].data == Pattern(24, 2));
  CHECK((*segments)[0].origin == "in.dfu: target 0, element 1");
  CHECK((*segments)[1].address == 0x08020000u);
  CHECK((*segments)[1].origin == "in.dfu: target 1, element 0");
  CHECK((*segments)[2].address == 0x90000000u);
  CHECK((*segments)[2].data == Pattern(40, 1));

  Bytes corrupt = file;
  corrupt[20] ^= 0xff;  // breaks the CRC
  auto bad = ParseFirmware(corrupt, "in.dfu", std::nullopt);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("in.dfu: ") == 0);

  DfuseImage overlapping;
  overlapping.targets.resize(1);
  overlapping.targets[0].elements = {{0x08000000, Pattern(32, 1)}, {0x08000010, Pattern(32, 2)}};
  auto overlap = ParseFirmware(SerializeDfuse(overlapping), "in.dfu", std::nullopt);
  REQUIRE_FALSE(overlap.ok());
  CHECK(overlap.error().message ==
        "in.dfu: target 0, element 1 at 0x08000010 overlaps in.dfu: target 0, element 0 (0x08000000..0x0800001f)");
  CHECK(ParseFirmware(file, "in.dfu", 0x08000000u).error().message ==
        "in.dfu: a DfuSe file carries its own addresses; remove the address 0x08000000");
}

}  // namespace
}  // namespace onedfu::packer

namespace onedfu::packer {
namespace {

TEST_CASE("firmware hex: records in any order give the same segments (descending order is no longer quadratic)") {
  // 64 KiB in 16-byte records, across a 64 KiB boundary, with a gap: two runs.
  std::vector<std::pair<uint32_t, Bytes>> records;
  for (uint32_t a = 0x0800c000; a < 0x08014000; a += 16) records.emplace_back(a, Pattern(16, static_cast<uint8_t>(a >> 4)));
  for (uint32_t a = 0x08020000; a < 0x08028000; a += 16) records.emplace_back(a, Pattern(16, static_cast<uint8_t>(a >> 3)));
  const auto text = [](const std::vector<std::pair<uint32_t, Bytes>>& in) {
    std::string out;
    for (const auto& [address, data] : in) {
      out += Upper(static_cast<uint16_t>(address >> 16)) + Record(0, static_cast<uint16_t>(address), data);
    }
    return out + kEof;
  };
  auto ascending = ParseIntelHex(ToBytes(text(records)), "up.hex");
  REQUIRE(ascending.ok());
  REQUIRE(ascending->size() == 2);
  CHECK(ascending->at(0).address == 0x0800c000);
  CHECK(ascending->at(0).data.size() == 0x8000);
  CHECK(ascending->at(1).data.size() == 0x8000);

  std::vector<std::pair<uint32_t, Bytes>> descending(records.rbegin(), records.rend());
  auto down = ParseIntelHex(ToBytes(text(descending)), "down.hex");
  REQUIRE(down.ok());
  std::vector<std::pair<uint32_t, Bytes>> shuffled = records;
  std::mt19937 rng(7);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  auto mixed = ParseIntelHex(ToBytes(text(shuffled)), "mixed.hex");
  REQUIRE(mixed.ok());
  for (const auto* other : {&*down, &*mixed}) {
    REQUIRE(other->size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      CHECK(other->at(i).address == ascending->at(i).address);
      CHECK(other->at(i).data == ascending->at(i).data);
    }
  }
  // The line a run starts at is where its lowest-address data came from.
  CHECK(down->at(0).origin == "down.hex: line " + std::to_string(2 * descending.size()));
}

}  // namespace
}  // namespace onedfu::packer
