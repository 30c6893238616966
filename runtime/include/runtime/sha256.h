// SHA-256 (FIPS 180-4). Streaming and one-shot; no heap. A portable
// implementation everywhere, plus on x86-64 host builds an SHA-NI path chosen
// at run time when the CPU supports it (both give identical digests).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "runtime/byte_reader.h"
#include "runtime/flash_memory.h"
#include "runtime/status.h"

namespace onedfu::runtime {

inline constexpr size_t kSha256Size = 32;       // digest length, bytes
inline constexpr size_t kSha256BlockSize = 64;  // compression block, bytes

using Sha256Hash = std::array<uint8_t, kSha256Size>;

class Sha256 {
 public:
  Sha256() { Reset(); }

  // Back to the initial state (as if freshly constructed).
  void Reset();
  // Absorb `data` (any length, including 0). Must not be called after Final
  // without Reset.
  void Update(ByteSpan data);
  // Pad, write the 32-byte digest to `out` and leave the object finalized
  // (call Reset to reuse it).
  void Final(uint8_t out[kSha256Size]);
  Sha256Hash Final();

  // True when this build/CPU uses the SHA-NI instructions.
  static bool HardwareAccelerated();

 private:
  uint32_t state_[8];
  uint8_t buffer_[kSha256BlockSize];
  uint64_t total_bytes_;  // message length so far, bytes
  size_t buffered_;       // bytes pending in buffer_, < kSha256BlockSize
};

// One-shot digest of `data`.
Sha256Hash Sha256Digest(ByteSpan data);

// Absorbs the `length` bytes of `flash` at `address` into `sha` through reads
// of at most 256 bytes on the stack, mapped memory too: the copy costs a small
// part of the hashing, and hashing in place (FlashMemory::Mapped) cost 80 more
// bytes of Cortex-M7 text. The one flash-range hasher of the device (boot
// decision, DfuSe hash command). The caller keeps the range inside the
// memory; a failed Read's status otherwise.
Status Sha256UpdateFlash(Sha256& sha, FlashMemory& flash, uint32_t address, uint32_t length);

// Lower-case hex of `hash` into `out`: 64 digits and a NUL.
void HexDigest(const Sha256Hash& hash, char out[65]);

namespace internal {
// Compress `blocks` consecutive 64-byte blocks into `state`; exposed so tests
// can cross-check the two paths. The hardware one requires
// Sha256::HardwareAccelerated() (otherwise it falls back to portable).
void Sha256CompressPortable(uint32_t state[8], const uint8_t* data, size_t blocks);
void Sha256CompressHardware(uint32_t state[8], const uint8_t* data, size_t blocks);
}  // namespace internal

}  // namespace onedfu::runtime
