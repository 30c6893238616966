#include "runtime/boot_record.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/crc32.h"

namespace {

using namespace onedfu::runtime;
using Bytes = std::vector<uint8_t>;

BootRecord Sample() {
  BootRecord r;
  r.flags = 0x5;
  REQUIRE(SetBootText(r.board_id, "PYBD_SF6").ok());
  REQUIRE(SetBootText(r.package_version, "1.24.0-preview+abc").ok());
  r.segment_count = 3;
  for (uint32_t i = 0; i < r.segment_count; ++i) {
    r.segments[i].address = 0x08020000 + i * 0x20000;
    r.segments[i].length = 1000 + i;
    const std::string tag = "segment" + std::to_string(i);
    r.segments[i].sha256 =
        Sha256Digest(ByteSpan(reinterpret_cast<const uint8_t*>(tag.data()), tag.size()));
  }
  r.romfs.address = 0x90000000;
  r.romfs.size = 0x10000;
  r.romfs.sha256 = Sha256Digest(ByteSpan());
  r.manifest_length = 777;
  r.manifest_sha256[0] = 0xab;
  r.manifest_sha256[31] = 0xcd;
  return r;
}

Bytes Encode(const BootRecord& r) {
  Bytes out(kRecordSize, 0x5a);
  REQUIRE(EncodeBootRecord(r, out).ok());
  return out;
}

void FixCrc(Bytes& b) { StoreLe32(b.data() + kCrcOffset, BootRecordCrc(b)); }

StatusCode DecodeCode(const Bytes& b, std::string* text = nullptr) {
  Diag diag;
  auto r = DecodeBootRecord(b, &diag);
  if (text) *text = diag.c_str();
  return r.status().code();
}

}  // namespace

TEST_CASE("boot record: encode/decode round trip") {
  const BootRecord in = Sample();
  const Bytes bytes = Encode(in);
  Diag diag;
  auto out = DecodeBootRecord(bytes, &diag);
  REQUIRE_MESSAGE(out.ok(), diag.c_str());
  CHECK(*out == in);
  CHECK(std::string(out->board_id) == "PYBD_SF6");
  CHECK(out->segments[2].length == 1002);
  CHECK_FALSE(IsRevoked(bytes));
  // Re-encoding the decoded record reproduces the bytes.
  CHECK(Encode(*out) == bytes);
}

TEST_CASE("boot record: byte layout at the documented offsets") {
  const BootRecord in = Sample();
  const Bytes b = Encode(in);
  CHECK(LoadLe32(&b[0]) == 0x1BCBE781u);
  CHECK(LoadLe32(&b[4]) == 1);
  CHECK(LoadLe32(&b[8]) == 2048);
  CHECK(LoadLe32(&b[16]) == 0x5);
  CHECK(LoadLe32(&b[20]) == 3);
  CHECK(LoadLe32(&b[24]) == 777);
  for (size_t i = 32; i < 64; ++i) CHECK(b[i] == 0xff);
  CHECK(std::memcmp(&b[64], "PYBD_SF6\0\0", 10) == 0);
  CHECK(std::memcmp(&b[96], "1.24.0-preview+abc", 18) == 0);
  CHECK(LoadLe32(&b[128]) == 0x90000000u);
  CHECK(LoadLe32(&b[132]) == 0x10000u);
  CHECK(std::memcmp(&b[136], in.romfs.sha256.data(), 32) == 0);
  CHECK(b[168] == 0xab);
  CHECK(b[199] == 0xcd);
  CHECK(LoadLe32(&b[256 + 40]) == 0x08040000u);
  CHECK(LoadLe32(&b[256 + 44]) == 1001u);
  CHECK(std::memcmp(&b[256 + 48], in.segments[1].sha256.data(), 32) == 0);
  for (size_t i = 256 + 3 * 40; i < 2048; ++i) REQUIRE(b[i] == 0);
  // CRC: zlib CRC-32 of the record without [12,16) and [32,64).
  Bytes covered(b.begin(), b.begin() + 12);
  covered.insert(covered.end(), b.begin() + 16, b.begin() + 32);
  covered.insert(covered.end(), b.begin() + 64, b.end());
  CHECK(LoadLe32(&b[12]) == Crc32(covered));
}

TEST_CASE("boot record: revoking by programming the revoke block") {
  Bytes b = Encode(Sample());
  const uint32_t crc_before = BootRecordCrc(b);
  SUBCASE("whole block to 0x00") {
    std::memset(&b[kRevokeOffset], kRevokedByte, kRevokeSize);
  }
  SUBCASE("a single bit cleared in the last byte") { b[kRevokeOffset + kRevokeSize - 1] = 0xfe; }
  CHECK(IsRevoked(b));
  CHECK(BootRecordCrc(b) == crc_before);  // the block is outside the CRC
  std::string text;
  CHECK(DecodeCode(b, &text) == StatusCode::kFailedPrecondition);
  CHECK(text == "boot record: revoked");
  CHECK_FALSE(IsRevoked(ByteSpan(b).first(40)));
}

TEST_CASE("boot record: decode errors") {
  const Bytes good = Encode(Sample());
  std::string text;
  SUBCASE("erased") {
    CHECK(DecodeCode(Bytes(kRecordSize, 0xff), &text) == StatusCode::kNotFound);
    CHECK(text == "boot record: erased (no record)");
  }
  SUBCASE("too short") {
    CHECK(DecodeCode(Bytes(good.begin(), good.begin() + 100), &text) == StatusCode::kOutOfRange);
    CHECK(text == "boot record: 100 bytes, need 2048");
  }
  SUBCASE("bad magic") {
    Bytes b = good;
    b[0] ^= 1;
    FixCrc(b);
    CHECK(DecodeCode(b, &text) == StatusCode::kInvalidArgument);
    CHECK(text == "boot record: magic 0x1bcbe780, expected 0x1bcbe781");
    CHECK(DecodeCode(Bytes(kRecordSize, 0x00)) == StatusCode::kInvalidArgument);
  }
  SUBCASE("future version") {
    Bytes b = good;
    StoreLe32(&b[kVersionOffset], 2);
    FixCrc(b);
    CHECK(DecodeCode(b, &text) == StatusCode::kUnimplemented);
    CHECK(text == "boot record: format version 2 not supported (1)");
  }
  SUBCASE("record size") {
    Bytes b = good;
    StoreLe32(&b[kRecordSizeOffset], 4096);
    FixCrc(b);
    CHECK(DecodeCode(b, &text) == StatusCode::kInvalidArgument);
    CHECK(text == "boot record: record size 4096, expected 2048");
  }
  SUBCASE("CRC mismatch") {
    Bytes b = good;
    b[300] ^= 0x10;
    CHECK(DecodeCode(b, &text) == StatusCode::kDataLoss);
    const uint32_t stored = LoadLe32(&b[kCrcOffset]);
    char expected[96];
    std::snprintf(expected, sizeof expected,
                  "boot record: CRC 0x%08x does not match computed 0x%08x", stored,
                  BootRecordCrc(b));
    CHECK(text == expected);
  }
  SUBCASE("segment count over the cap") {
    Bytes b = good;
    StoreLe32(&b[kSegmentCountOffset], kMaxSegments + 1);
    FixCrc(b);
    CHECK(DecodeCode(b, &text) == StatusCode::kOutOfRange);
    CHECK(text == "boot record: segment count 33 over the cap of 32");
  }
  SUBCASE("segment wrapping past 4 GiB") {
    Bytes b = good;
    StoreLe32(&b[kSegmentsOffset + 4], 0xF8000000u);
    FixCrc(b);
    CHECK(DecodeCode(b, &text) == StatusCode::kOutOfRange);
    CHECK(text == "boot record: segment 0 at 0x08020000 length 4160749568 wraps past 4 GiB");
  }
  SUBCASE("reserved bytes") {
    Bytes b = good;
    b[2000] = 1;
    FixCrc(b);
    CHECK(DecodeCode(b, &text) == StatusCode::kInvalidArgument);
    CHECK(text == "boot record: reserved bytes not zero");
  }
  SUBCASE("unused segment slot") {
    Bytes b = good;
    b[kSegmentsOffset + 3 * kSegmentEntrySize] = 1;
    FixCrc(b);
    CHECK(DecodeCode(b, &text) == StatusCode::kInvalidArgument);
    CHECK(text == "boot record: unused segment 3 not zero");
  }
  SUBCASE("text without NUL") {
    Bytes b = good;
    std::memset(&b[kBoardIdOffset], 'x', kBootTextSize);
    FixCrc(b);
    CHECK(DecodeCode(b, &text) == StatusCode::kInvalidArgument);
    CHECK(text == "boot record: board id not NUL-terminated and zero-padded");
  }
}

TEST_CASE("boot record: a torn write never decodes as valid") {
  const Bytes good = Encode(Sample());
  // Flash programmed front to back, cut after k bytes; the rest is still erased.
  for (size_t k = 0; k < kRecordSize; k += 4) {
    Bytes torn(kRecordSize, 0xff);
    std::memcpy(torn.data(), good.data(), k);
    REQUIRE_FALSE(DecodeBootRecord(torn, nullptr).ok());
  }
}

TEST_CASE("boot record: encode errors") {
  BootRecord r = Sample();
  Bytes out(kRecordSize);
  SUBCASE("buffer too small") {
    CHECK(EncodeBootRecord(r, MutableByteSpan(out).first(kRecordSize - 1)).code() ==
          StatusCode::kOutOfRange);
  }
  SUBCASE("too many segments") {
    r.segment_count = kMaxSegments + 1;
    CHECK(EncodeBootRecord(r, out).code() == StatusCode::kOutOfRange);
  }
  SUBCASE("ROMFS wraps") {
    r.romfs.address = 0xFFFF0000u;
    r.romfs.size = 0x10001;
    CHECK(EncodeBootRecord(r, out).code() == StatusCode::kOutOfRange);
  }
  SUBCASE("unterminated text") {
    std::memset(r.package_version, 'v', kBootTextSize);
    CHECK(EncodeBootRecord(r, out).code() == StatusCode::kInvalidArgument);
  }
  SUBCASE("SetBootText limits") {
    CHECK(SetBootText(r.board_id, std::string(31, 'b').c_str()).ok());
    CHECK(std::string(r.board_id) == std::string(31, 'b'));
    CHECK(SetBootText(r.board_id, std::string(32, 'b').c_str()).code() ==
          StatusCode::kInvalidArgument);
    CHECK(SetBootText(r.board_id, nullptr).code() == StatusCode::kInvalidArgument);
  }
}
