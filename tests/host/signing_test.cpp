// The device's Ed25519 verification (runtime/ed25519.h) against signatures
// made by OpenSSL (host/signing.h): both agree on every valid and damaged one.
#include <doctest/doctest.h>
#include <openssl/bn.h>

#include <algorithm>
#include <memory>

#include "host/signing.h"
#include "runtime/ed25519.h"
#include "test_support.h"

namespace onedfu::host {
namespace {

TEST_CASE("records and messages signed by OpenSSL verify on the device code; damaged ones fail on both") {
  testing::TempDir dir;
  // 24 fresh keys, 216 signatures: many random field values through the device's
  // radix-2^25.5 arithmetic and its carries.
  for (int k = 0; k < 24; ++k) {
    auto pair = GenerateKeyPair(dir.path / ("k" + std::to_string(k)));
    REQUIRE(pair.ok());
    auto key = LoadSigningKey(pair->private_pem);
    REQUIRE(key.ok());
    for (size_t length : {0u, 1u, 63u, 64u, 111u, 112u, 128u, 1536u, 5000u}) {
      CAPTURE(length);
      const Bytes message = testing::RandomBytes(length, static_cast<uint32_t>(length * 7 + k));
      auto signature = SignMessage(*key, message);
      REQUIRE(signature.ok());
      CHECK(VerifyMessage(key->public_key, message, *signature));
      CHECK(runtime::Ed25519Verify(key->public_key, message, signature->data()));
      auto bad = *signature;
      bad[length % 64] ^= 0x04;
      CHECK_FALSE(VerifyMessage(key->public_key, message, bad));
      CHECK_FALSE(runtime::Ed25519Verify(key->public_key, message, bad.data()));
      if (length > 0) {
        Bytes changed = message;
        changed[length / 2] ^= 0x01;
        CHECK_FALSE(runtime::Ed25519Verify(key->public_key, changed, signature->data()));
      }
    }
    // A signed boot record: the device verifies the pieces it streams.
    runtime::BootRecord record;
    REQUIRE(runtime::SetBootText(record.board_id, "pybd-sf6").ok());
    record.security_counter = static_cast<uint32_t>(k + 1);
    REQUIRE(SignBootRecord(*key, record).ok());
    Bytes bytes(runtime::kRecordSize);
    REQUIRE(runtime::EncodeBootRecord(record, bytes).ok());
    runtime::Ed25519Verifier verifier(key->public_key, record.signature.data());
    runtime::ForEachSignedPiece(bytes, [&](runtime::ByteSpan piece) { verifier.Update(piece); });
    CHECK(verifier.Finish());
  }
}

// A little-endian 32-byte scalar as an OpenSSL BIGNUM and back.
using Bignum = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
Bignum FromLe(const uint8_t* le, size_t size) {
  std::vector<uint8_t> be(le, le + size);
  std::reverse(be.begin(), be.end());
  return Bignum(BN_bin2bn(be.data(), static_cast<int>(be.size()), nullptr), &BN_free);
}

TEST_CASE("a signature with a small-order R satisfies the cofactorless equation: OpenSSL accepts it, the device refuses") {
  // RFC 8032 7.1 TEST 1's key: its secret scalar a is the clamped low half of
  // SHA-512(seed). With R = the identity (encoded y = 1) and S = k a mod L,
  // [S]B = R + [k]A holds for any message.
  const std::vector<uint8_t> seed = testing::FromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  runtime::Ed25519PublicKey public_key;
  const std::vector<uint8_t> pub = testing::FromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  std::copy(pub.begin(), pub.end(), public_key.begin());
  uint8_t expanded[runtime::kSha512Size];
  runtime::Sha512 sha;
  sha.Update(seed);
  sha.Final(expanded);
  expanded[0] &= 248;
  expanded[31] = static_cast<uint8_t>((expanded[31] & 127) | 64);

  const Bytes message = {'o', 'n', 'e', 'd', 'f', 'u'};
  Ed25519Signature signature{};
  signature[0] = 1;  // R: y = 1, x = 0
  runtime::Sha512 challenge;
  challenge.Update(runtime::ByteSpan(signature.data(), 32));
  challenge.Update(public_key);
  challenge.Update(message);
  uint8_t k[runtime::kSha512Size];
  challenge.Final(k);
  const uint8_t l[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                         0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), &BN_CTX_free);
  Bignum s(BN_new(), &BN_free);
  REQUIRE(BN_mod_mul(s.get(), FromLe(k, 64).get(), FromLe(expanded, 32).get(), FromLe(l, 32).get(), ctx.get()) == 1);
  REQUIRE(BN_bn2lebinpad(s.get(), signature.data() + 32, 32) == 32);

  CHECK(VerifyMessage(public_key, message, signature));
  CHECK_FALSE(runtime::Ed25519Verify(public_key, message, signature.data()));
}

}  // namespace
}  // namespace onedfu::host
