// Ed25519 (RFC 8032, pure Ed25519) signature verification for the bootloader:
// no heap, constant memory (about 2.5 KiB of stack on the Cortex-M7 build,
// arm-none-eabi-g++ -Os -fstack-usage: Finish 1,368 bytes, point decoding
// 712, a field multiplication 240 and its carry 36; no tables beyond the
// curve constants), no data-dependent allocation; verification handles only
// public data, so it is not written to be constant-time.
//
// Why our own code: what Debian offers (libsodium, OpenSSL libcrypto,
// Nettle, mbedTLS's Debian build) is built for the host and for a hosted C
// library; none of them builds as a freestanding, heapless Cortex-M object
// from Debian's packages (they need malloc, threads/locking, an OS RNG or a
// libc with stdio), and the host side must not hand-write crypto (it uses
// OpenSSL, host/signing.h). This is verification only: no private key, no
// secret, ever touches the device.
//
// Checks (cofactorless, like OpenSSL and libsodium): S < L, the public key
// and R decode to curve points (canonical y < p) that are not of small order
// (like libsodium; OpenSSL accepts them), and [S]B - [k]A equals R, where
// k = SHA-512(R || A || message) mod L. Without the small-order check an
// all-zero key, R and S verify for about one message in four. Tested against
// the RFC 8032 section 7.1 vectors and OpenSSL's signatures.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "runtime/byte_reader.h"
#include "runtime/sha512.h"

namespace onedfu::runtime {

inline constexpr size_t kEd25519PublicKeySize = 32;  // bytes, RFC 8032 encoding
inline constexpr size_t kEd25519SignatureSize = 64;  // R (32) || S (32)

using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeySize>;

// Streaming verification, for a message that arrives in pieces:
//   Ed25519Verifier v(key, signature); v.Update(a); v.Update(b); ok = v.Finish();
class Ed25519Verifier {
 public:
  Ed25519Verifier(const Ed25519PublicKey& key, const uint8_t signature[kEd25519SignatureSize]);
  void Update(ByteSpan message_piece) { sha_.Update(message_piece); }
  // True only for a valid signature of the whole message by `key`. Once.
  [[nodiscard]] bool Finish();

 private:
  Sha512 sha_;
  Ed25519PublicKey key_;
  uint8_t signature_[kEd25519SignatureSize];
};

// One-shot: true when `signature` is a valid Ed25519 signature of `message` by `key`.
[[nodiscard]] bool Ed25519Verify(const Ed25519PublicKey& key, ByteSpan message,
                                 const uint8_t signature[kEd25519SignatureSize]);

}  // namespace onedfu::runtime
