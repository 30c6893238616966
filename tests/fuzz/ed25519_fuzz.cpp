// Fuzzes the device's Ed25519 verification (runtime/ed25519.h).
// Input: byte 0 picks the mode.
//  - even: key (32) || signature (64) || message, all from the input.
//  - odd:  the rest is XORed into RFC 8032 TEST 2 (key || signature || the
//          1-byte message), so the fuzzer works next to a valid signature.
// Invariants (trap on violation):
//  - streaming (split where the input says) and one-shot verification agree;
//  - in the odd mode the signature verifies exactly when nothing was changed
//    (a hit otherwise would be a forgery or a bug in the checks);
//  - a signature that verifies stops verifying when the message grows a byte.
#include <cstdint>
#include <cstring>

#include "fuzz_check.h"
#include "runtime/ed25519.h"

using onedfu::fuzz::FuzzCheck;
using namespace onedfu::runtime;

namespace {

constexpr uint8_t kTest2[32 + 64 + 1] = {
    0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc, 0x9c, 0x98, 0x2c,
    0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c, 0x92, 0xa0, 0x09, 0xa9, 0xf0, 0xd4,
    0xca, 0xb8, 0x72, 0x0e, 0x82, 0x0b, 0x5f, 0x64, 0x25, 0x40, 0xa2, 0xb2, 0x7b, 0x54, 0x16, 0x50, 0x3f, 0x8f, 0xb3,
    0x76, 0x22, 0x23, 0xeb, 0xdb, 0x69, 0xda, 0x08, 0x5a, 0xc1, 0xe4, 0x3e, 0x15, 0x99, 0x6e, 0x45, 0x8f, 0x36, 0x13,
    0xd0, 0xf1, 0x1d, 0x8c, 0x38, 0x7b, 0x2e, 0xae, 0xb4, 0x30, 0x2a, 0xee, 0xb0, 0x0d, 0x29, 0x16, 0x12, 0xbb, 0x0c,
    0x00, 0x72};

bool Streamed(const Ed25519PublicKey& key, const uint8_t* sig, ByteSpan message, size_t split) {
  Ed25519Verifier v(key, sig);
  if (split > message.size()) split = message.size();
  v.Update(message.first(split));
  v.Update(message.subspan(split));
  return v.Finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t buf[32 + 64 + 256];
  size_t n = 0;
  bool changed = false;
  if (data[0] & 1) {
    std::memcpy(buf, kTest2, sizeof kTest2);
    n = sizeof kTest2;
    for (size_t i = 1; i < size && i - 1 < n; ++i) {
      buf[i - 1] ^= data[i];
      changed |= data[i] != 0;
    }
  } else {
    n = size - 1 < sizeof buf ? size - 1 : sizeof buf;
    if (n < 96) return 0;
    std::memcpy(buf, data + 1, n);
  }
  Ed25519PublicKey key;
  std::memcpy(key.data(), buf, 32);
  const uint8_t* sig = buf + 32;
  const ByteSpan message(buf + 96, n - 96);
  const bool ok = Ed25519Verify(key, message, sig);
  FuzzCheck(Streamed(key, sig, message, data[0] >> 1) == ok);
  if (data[0] & 1) FuzzCheck(ok == !changed);
  if (ok && n < sizeof buf) {
    buf[n] = 0;
    FuzzCheck(!Ed25519Verify(key, ByteSpan(buf + 96, n - 95), sig));
  }
  return 0;
}
