// The device's Ed25519 verification (runtime/ed25519.h) against signatures
// made by OpenSSL (host/signing.h): both agree on every valid and damaged one.
#include <doctest/doctest.h>

#include "host/signing.h"
#include "runtime/ed25519.h"
#include "test_support.h"

namespace onedfu::host {
namespace {

TEST_CASE("records and messages signed by OpenSSL verify on the device code; damaged ones fail on both") {
  testing::TempDir dir;
  for (int k = 0; k < 3; ++k) {
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

}  // namespace
}  // namespace onedfu::host
