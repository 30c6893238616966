// SHA-512 (FIPS 180-4). Streaming; no heap, constant memory (~220 bytes of
// state). It exists for Ed25519 verification (runtime/ed25519.h: RFC 8032
// hashes R || A || message with SHA-512); everything else hashes with SHA-256
// (runtime/sha256.h), whose interface this one mirrors.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "runtime/byte_reader.h"

namespace onedfu::runtime {

inline constexpr size_t kSha512Size = 64;        // digest length, bytes
inline constexpr size_t kSha512BlockSize = 128;  // compression block, bytes

using Sha512Hash = std::array<uint8_t, kSha512Size>;

class Sha512 {
 public:
  Sha512() { Reset(); }

  void Reset();
  // Absorb `data` (any length, including 0); not after Final without Reset.
  void Update(ByteSpan data);
  // Pad and write the 64-byte digest; the object is finalized afterwards.
  void Final(uint8_t out[kSha512Size]);

 private:
  uint64_t state_[8];
  uint8_t buffer_[kSha512BlockSize];
  uint64_t total_bytes_;  // message length so far, bytes (< 2^61 in practice)
  size_t buffered_;       // bytes pending in buffer_, < kSha512BlockSize
};

}  // namespace onedfu::runtime
