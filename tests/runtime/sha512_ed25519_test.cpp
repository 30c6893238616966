// SHA-512 (FIPS 180-4 / NIST example vectors) and Ed25519 verification
// (RFC 8032 section 7.1, TEST 1-3), the device code that signed boots use.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "runtime/ed25519.h"
#include "runtime/sha512.h"
#include "hex.h"

namespace onedfu::runtime {
namespace {

using testing::FromHex;

std::string Sha512Hex(ByteSpan data, size_t piece = 0) {
  Sha512 sha;
  if (piece == 0) {
    sha.Update(data);
  } else {
    for (size_t i = 0; i < data.size(); i += piece) sha.Update(data.subspan(i, std::min(piece, data.size() - i)));
  }
  uint8_t out[kSha512Size];
  sha.Final(out);
  static const char* kDigits = "0123456789abcdef";
  std::string hex;
  for (uint8_t b : out) {
    hex += kDigits[b >> 4];
    hex += kDigits[b & 15];
  }
  return hex;
}

ByteSpan Text(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

TEST_CASE("SHA-512: the standard's example vectors, any split of the input") {
  CHECK(Sha512Hex({}) ==
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
  CHECK(Sha512Hex(Text("abc")) ==
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  const std::string two_blocks =
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  const std::string expected =
      "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909";
  CHECK(Sha512Hex(Text(two_blocks)) == expected);
  for (size_t piece : {1u, 7u, 111u, 112u, 127u, 128u, 129u}) {
    CAPTURE(piece);
    CHECK(Sha512Hex(Text(two_blocks), piece) == expected);
  }
  const std::string million(1000000, 'a');
  CHECK(Sha512Hex(Text(million), 4096) ==
        "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
}

struct Vector {
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, TEST 1, 2 and 3.
constexpr Vector kRfc8032[] = {
    {"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

Ed25519PublicKey Key(const char* hex) {
  Ed25519PublicKey key{};
  const auto bytes = FromHex(hex);
  REQUIRE(bytes.size() == key.size());
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

TEST_CASE("Ed25519: RFC 8032 vectors verify; any flipped bit of key, message or signature does not") {
  for (const Vector& v : kRfc8032) {
    CAPTURE(v.public_key);
    const Ed25519PublicKey key = Key(v.public_key);
    const auto message = FromHex(v.message);
    const auto signature = FromHex(v.signature);
    REQUIRE(signature.size() == kEd25519SignatureSize);
    CHECK(Ed25519Verify(key, message, signature.data()));

    for (size_t bit = 0; bit < 8 * kEd25519SignatureSize; bit += 13) {
      auto bad = signature;
      bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      CHECK_FALSE(Ed25519Verify(key, message, bad.data()));
    }
    for (size_t bit = 0; bit < 256; bit += 29) {
      Ed25519PublicKey bad = key;
      bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      CHECK_FALSE(Ed25519Verify(bad, message, signature.data()));
    }
    auto longer = message;
    longer.push_back(0);
    CHECK_FALSE(Ed25519Verify(key, longer, signature.data()));
    if (!message.empty()) {
      auto flipped = message;
      flipped[0] ^= 0x80;
      CHECK_FALSE(Ed25519Verify(key, flipped, signature.data()));
    }
  }
}

TEST_CASE("Ed25519: streaming equals one-shot; malleable S and non-canonical encodings are refused") {
  const Vector& v = kRfc8032[2];
  const Ed25519PublicKey key = Key(v.public_key);
  const auto message = FromHex(v.message);
  auto signature = FromHex(v.signature);
  Ed25519Verifier streaming(key, signature.data());
  streaming.Update(ByteSpan(message).first(1));
  streaming.Update({});
  streaming.Update(ByteSpan(message).subspan(1));
  CHECK(streaming.Finish());

  // S + L verifies the same equation but is refused (S must be below L).
  const auto l = FromHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
  unsigned carry = 0;
  auto s_plus_l = signature;
  for (size_t i = 0; i < 32; ++i) {
    const unsigned sum = s_plus_l[32 + i] + l[i] + carry;
    s_plus_l[32 + i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
  }
  REQUIRE(carry == 0);
  CHECK_FALSE(Ed25519Verify(key, message, s_plus_l.data()));

  // A public key whose y is not below p (y = p + 1, an alias of y = 1) is refused.
  Ed25519PublicKey alias{};
  alias.fill(0xff);
  alias[0] = 0xee;
  alias[31] = 0x7f;
  CHECK_FALSE(Ed25519Verify(alias, message, signature.data()));
  // All-zero and all-0xff keys and signatures: false, never a crash.
  Ed25519PublicKey zeros{};
  Ed25519PublicKey ones{};
  ones.fill(0xff);
  std::vector<uint8_t> zero_sig(64, 0), ones_sig(64, 0xff);
  CHECK_FALSE(Ed25519Verify(zeros, message, zero_sig.data()));
  CHECK_FALSE(Ed25519Verify(ones, message, ones_sig.data()));
  CHECK_FALSE(Ed25519Verify(key, message, zero_sig.data()));
}

// The eight points of small order (identity, order 2, 4 and 8, each x sign),
// canonical encodings. With R = the identity and S = 0, a small-order key A
// passes the cofactorless equation whenever [k]A is the identity, about one
// message in ord(A) (the identity key: every message); the verification
// before this check accepted 9 to 64 of 64 one-byte messages for each of them.
// Small-order keys and R are refused outright, whatever the message.
TEST_CASE("Ed25519: small-order public keys and R are refused for every message") {
  const char* kSmallOrder[] = {"0100000000000000000000000000000000000000000000000000000000000000",
                               "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                               "0000000000000000000000000000000000000000000000000000000000000000",
                               "0000000000000000000000000000000000000000000000000000000000000080",
                               "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
                               "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
                               "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
                               "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"};
  for (const char* a : kSmallOrder) {
    CAPTURE(a);
    const Ed25519PublicKey key = Key(a);
    for (const char* r : kSmallOrder) {
      std::vector<uint8_t> signature = FromHex(r);
      signature.resize(kEd25519SignatureSize, 0);  // S = 0
      int accepted = 0;
      for (int m = 0; m < 64; ++m) {
        const uint8_t message[1] = {static_cast<uint8_t>(m)};
        accepted += Ed25519Verify(key, ByteSpan(message, 1), signature.data()) ? 1 : 0;
      }
      CHECK(accepted == 0);
    }
  }
  // A real key with a small-order R (and any S) is refused too.
  const Ed25519PublicKey key = Key(kRfc8032[0].public_key);
  std::vector<uint8_t> signature = FromHex(kRfc8032[0].signature);
  for (const char* r : kSmallOrder) {
    const std::vector<uint8_t> encoded = FromHex(r);
    std::copy(encoded.begin(), encoded.end(), signature.begin());
    CHECK_FALSE(Ed25519Verify(key, {}, signature.data()));
  }
}

}  // namespace
}  // namespace onedfu::runtime
