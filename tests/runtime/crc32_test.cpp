#include "runtime/crc32.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

namespace {

using onedfu::runtime::ByteSpan;
using onedfu::runtime::Crc32;
using onedfu::runtime::Crc32Update;
using onedfu::runtime::DfuSuffixCrc;

ByteSpan Span(const char* s) { return ByteSpan(reinterpret_cast<const uint8_t*>(s), std::strlen(s)); }

// Bit-at-a-time reference (the textbook definition), independent of the tables.
uint32_t BitwiseUpdate(uint32_t c, ByteSpan data) {
  for (uint8_t b : data) {
    c ^= b;
    for (int i = 0; i < 8; ++i) c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  }
  return c;
}

}  // namespace

TEST_CASE("crc32: zlib-style check values") {
  // Expected values computed with python3 zlib.crc32 during development.
  CHECK(Crc32(Span("123456789")) == 0xCBF43926u);
  CHECK(Crc32(ByteSpan()) == 0u);
  CHECK(Crc32(Span("The quick brown fox jumps over the lazy dog")) == 0x414FA339u);
  std::vector<uint8_t> data;
  for (int rep = 0; rep < 4; ++rep) {
    for (int i = 0; i < 256; ++i) data.push_back(static_cast<uint8_t>(i));
  }
  data.push_back('x');
  data.push_back('y');
  data.push_back('z');
  CHECK(Crc32(data) == 0x1C505903u);  // bytes(range(256))*4 + b"xyz"
  std::vector<uint8_t> pattern(100000);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 3);
  CHECK(Crc32(pattern) == 0xF730CAA8u);
}

TEST_CASE("crc32: DfuSuffixCrc is the uninverted register") {
  CHECK(DfuSuffixCrc(Span("123456789")) == (~0xCBF43926u));
  CHECK(DfuSuffixCrc(ByteSpan()) == 0xFFFFFFFFu);
}

TEST_CASE("crc32: slicing-by-8 matches the bitwise definition at every length and alignment") {
  std::mt19937 rng(1234);
  std::vector<uint8_t> buf(4096 + 16);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t len = 0; len < 300; ++len) {
      const ByteSpan s(buf.data() + offset, len);
      const uint32_t seed = static_cast<uint32_t>(rng());
      REQUIRE(Crc32Update(seed, s) == BitwiseUpdate(seed, s));
    }
  }
  const ByteSpan big(buf.data() + 3, 4096);
  CHECK(Crc32Update(0xFFFFFFFFu, big) == BitwiseUpdate(0xFFFFFFFFu, big));
}

TEST_CASE("crc32: chained updates equal one update") {
  std::vector<uint8_t> buf(1000);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 31 + 1);
  const uint32_t whole = Crc32Update(0xFFFFFFFFu, buf);
  for (size_t split : {0, 1, 7, 8, 9, 500, 999, 1000}) {
    const ByteSpan all(buf);
    const uint32_t a = Crc32Update(0xFFFFFFFFu, all.first(split));
    CHECK(Crc32Update(a, all.subspan(split)) == whole);
  }
}

TEST_CASE("crc32: accelerated update equals the table-only path on random inputs") {
  MESSAGE("PCLMULQDQ in use: " << onedfu::runtime::Crc32HardwareAccelerated());
  std::mt19937 rng(99);
  std::vector<uint8_t> buf(70000);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (int round = 0; round < 2000; ++round) {
    const size_t offset = rng() % 64;
    const size_t len = round < 200 ? static_cast<size_t>(round) : rng() % (buf.size() - 64);
    const ByteSpan s(buf.data() + offset, len);
    const uint32_t seed = static_cast<uint32_t>(rng());
    REQUIRE(Crc32Update(seed, s) == onedfu::runtime::internal::Crc32UpdatePortable(seed, s));
  }
}

TEST_CASE("crc32: the nibble-table update (ONEDFU_CRC32_NIBBLE) matches the bitwise definition and the table path") {
  using onedfu::runtime::internal::Crc32UpdateNibble;
  using onedfu::runtime::internal::Crc32UpdatePortable;
  CHECK(~Crc32UpdateNibble(0xFFFFFFFFu, Span("123456789")) == 0xCBF43926u);
  CHECK(Crc32UpdateNibble(0x12345678u, ByteSpan()) == 0x12345678u);
  // Every single byte value from several register states (each table entry used).
  for (uint32_t seed : {0u, 0xFFFFFFFFu, 0x80000001u, 0xDEADBEEFu}) {
    for (int b = 0; b < 256; ++b) {
      const uint8_t byte = static_cast<uint8_t>(b);
      REQUIRE(Crc32UpdateNibble(seed, ByteSpan(&byte, 1)) == BitwiseUpdate(seed, ByteSpan(&byte, 1)));
    }
  }
  std::mt19937 rng(4321);
  std::vector<uint8_t> buf(4096 + 16);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t len = 0; len < 300; ++len) {
      const ByteSpan s(buf.data() + offset, len);
      const uint32_t seed = static_cast<uint32_t>(rng());
      const uint32_t want = BitwiseUpdate(seed, s);
      REQUIRE(Crc32UpdateNibble(seed, s) == want);
      REQUIRE(Crc32UpdatePortable(seed, s) == want);
    }
  }
  // A boot-record-sized input, chained in two pieces.
  const ByteSpan record(buf.data() + 5, 2048);
  const uint32_t first = Crc32UpdateNibble(0xFFFFFFFFu, record.first(12));
  CHECK(Crc32UpdateNibble(first, record.subspan(12)) == Crc32Update(0xFFFFFFFFu, record));
}
