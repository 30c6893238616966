// memcpy, memset and memcmp for the Cortex-M size build, replacing
// newlib-nano's (568 bytes, of which memcpy alone is a 308-byte unrolled
// routine) with plain byte loops (about 100 bytes together).
//
// Why slower is fine here: the bootloader copies little. Boot verification
// hashes memory-mapped flash in place (Sha256 copies only partial 64-byte
// blocks); the DFU path copies at most one 2 KiB transfer block and one 2 KiB
// record at a time, microseconds next to the milliseconds a flash erase or
// program takes. Same contracts as the C library (C11 7.24).
//
// The loops must not be turned back into calls to themselves: GCC's loop
// distribution recognises copy/fill loops, hence no-tree-loop-distribute-patterns.
// `used` keeps the definitions through LTO, since the code generator emits
// calls to them (struct copies, zero-initialisation) after symbol resolution.
#include <cstddef>
#include <cstdint>

#define ONEDFU_MEM_ATTRIBUTES __attribute__((used, optimize("no-tree-loop-distribute-patterns")))

extern "C" {

ONEDFU_MEM_ATTRIBUTES void* memcpy(void* dst, const void* src, size_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  while (n--) *d++ = *s++;
  return dst;
}

ONEDFU_MEM_ATTRIBUTES void* memset(void* dst, int value, size_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  while (n--) *d++ = static_cast<uint8_t>(value);
  return dst;
}

ONEDFU_MEM_ATTRIBUTES int memcmp(const void* a, const void* b, size_t n) {
  const auto* x = static_cast<const uint8_t*>(a);
  const auto* y = static_cast<const uint8_t*>(b);
  for (; n > 0; --n, ++x, ++y) {
    if (*x != *y) return *x < *y ? -1 : 1;
  }
  return 0;
}

}  // extern "C"
