#include "runtime/sha256.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using onedfu::runtime::ByteSpan;
using onedfu::runtime::HexDigest;
using onedfu::runtime::Sha256;
using onedfu::runtime::Sha256Digest;
using onedfu::runtime::Sha256Hash;
namespace internal = onedfu::runtime::internal;

ByteSpan Span(const std::string& s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string Hex(const Sha256Hash& h) {
  char out[65];
  HexDigest(h, out);
  return out;
}

// Digest with the portable compression function and a padding written here
// (FIPS 180-4 5.1.1), independent of Sha256's buffering.
Sha256Hash PortableDigest(ByteSpan data) {
  uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::vector<uint8_t> msg(data.begin(), data.end());
  const uint64_t bits = uint64_t{data.size()} * 8;
  msg.push_back(0x80);
  while (msg.size() % 64 != 56) msg.push_back(0);
  for (int i = 7; i >= 0; --i) msg.push_back(static_cast<uint8_t>(bits >> (8 * i)));
  internal::Sha256CompressPortable(state, msg.data(), msg.size() / 64);
  Sha256Hash out;
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<uint8_t>(state[i] >> (24 - 8 * j));
  }
  return out;
}

}  // namespace

TEST_CASE("sha256: FIPS 180 vectors") {
  MESSAGE("SHA-NI in use: " << Sha256::HardwareAccelerated());
  CHECK(Hex(Sha256Digest(Span("abc"))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Hex(Sha256Digest(ByteSpan())) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Hex(Sha256Digest(Span("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  CHECK(Hex(Sha256Digest(Span(million))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Same vectors through the portable path.
  CHECK(Hex(PortableDigest(Span("abc"))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Hex(PortableDigest(Span(million))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: a 100000-byte pattern (digest from python3 hashlib at dev time)") {
  std::vector<uint8_t> pattern(100000);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 3);
  CHECK(Hex(Sha256Digest(pattern)) ==
        "d96bab6a55ee326ba206dd4a85a6e95e14360d7fabbf448f03e689c24382b7d0");
}

TEST_CASE("sha256: dispatching digest equals the portable path on random data of many lengths") {
  std::mt19937 rng(42);
  std::vector<uint8_t> buf(5000);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t len = 0; len <= 300; ++len) {
    const ByteSpan s(buf.data() + (len % 5), len);
    REQUIRE(Sha256Digest(s) == PortableDigest(s));
  }
  for (size_t len : {511u, 512u, 513u, 1023u, 4096u, 4999u}) {
    const ByteSpan s(buf.data(), len);
    CHECK(Sha256Digest(s) == PortableDigest(s));
  }
}

TEST_CASE("sha256: hardware and portable compression agree block by block") {
  std::mt19937 rng(7);
  std::vector<uint8_t> data(64 * 9);
  for (int round = 0; round < 50; ++round) {
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    uint32_t a[8], h[8];
    for (int i = 0; i < 8; ++i) a[i] = h[i] = static_cast<uint32_t>(rng());
    const size_t blocks = 1 + static_cast<size_t>(round % 9);
    internal::Sha256CompressPortable(a, data.data(), blocks);
    internal::Sha256CompressHardware(h, data.data(), blocks);
    for (int i = 0; i < 8; ++i) REQUIRE(a[i] == h[i]);
  }
}

TEST_CASE("sha256: streaming in any piece size equals one shot; Reset reuses") {
  std::vector<uint8_t> buf(1500);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i ^ (i >> 3));
  const Sha256Hash whole = Sha256Digest(buf);
  Sha256 h;
  for (size_t piece : {1u, 3u, 63u, 64u, 65u, 127u, 1000u}) {
    h.Reset();
    for (size_t at = 0; at < buf.size(); at += piece) {
      h.Update(ByteSpan(buf).subspan(at, std::min(piece, buf.size() - at)));
    }
    h.Update(ByteSpan());
    uint8_t out[32];
    h.Final(out);
    CHECK(std::memcmp(out, whole.data(), 32) == 0);
  }
}

TEST_CASE("sha256: HexDigest") {
  Sha256Hash h{};
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint8_t>(i * 8 + 1);
  char out[65];
  out[64] = 'x';
  HexDigest(h, out);
  CHECK(std::string(out) ==
        "0109111921293139414951596169717981899199a1a9b1b9c1c9d1d9e1e9f1f9");
}
