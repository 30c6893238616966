// Bounds-checked little-endian cursor over untrusted bytes, plus
// little-endian store helpers for writers. Every read either succeeds fully
// or fails with kOutOfRange and leaves the cursor where it was.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "runtime/status.h"

namespace onedfu::runtime {

using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

class ByteReader {
 public:
  constexpr explicit ByteReader(ByteSpan bytes) : bytes_(bytes) {}

  constexpr size_t position() const { return pos_; }
  constexpr size_t remaining() const { return bytes_.size() - pos_; }
  constexpr bool empty() const { return remaining() == 0; }
  constexpr ByteSpan rest() const { return bytes_.subspan(pos_); }

  Result<uint8_t> U8();
  Result<uint16_t> U16();
  Result<uint32_t> U32();
  // A view of the next `n` bytes (no copy); advances past them.
  Result<ByteSpan> Bytes(size_t n);
  Status Skip(size_t n);
  // True (and advances) when the next bytes equal `literal` (no NUL).
  bool Consume(const char* literal);

 private:
  ByteSpan bytes_;
  size_t pos_ = 0;
};

constexpr uint16_t LoadLe16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
constexpr uint32_t LoadLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
constexpr void StoreLe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
constexpr void StoreLe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

}  // namespace onedfu::runtime
