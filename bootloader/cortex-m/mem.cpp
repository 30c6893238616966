// memcpy, memset and memcmp for the Cortex-M size build, replacing
// newlib-nano's (568 bytes, of which memcpy alone is a 308-byte unrolled
// routine) with small loops: memcpy (source and destination equally aligned)
// and memset move aligned 32-bit words between a byte head and tail, memcmp
// compares bytes.
//
// Why not newlib's unrolled copies: the bootloader copies little. Boot
// verification hashes memory-mapped flash in place (Sha256 copies only partial
// 64-byte blocks); the DFU path copies at most one 2 KiB transfer block and one
// 2 KiB record at a time. Why not plain byte loops either: a signed boot's
// zero-fills (Ed25519, SHA-512 padding) once spent 5.7 M of its 22.4 M emulated
// instructions in a byte-wise memset (issue 11). Same contracts as the C
// library (C11 7.24).
//
// The loops must not be turned back into calls to themselves: GCC's loop
// distribution recognises copy/fill loops, hence no-tree-loop-distribute-patterns.
// `used` keeps the definitions through LTO, since the code generator emits
// calls to them (struct copies, zero-initialisation) after symbol resolution.
#include <cstddef>
#include <cstdint>

// Word accesses may alias any object, as the bytes they replace do.
using Word = uint32_t __attribute__((may_alias));

#define ONEDFU_MEM_ATTRIBUTES __attribute__((used, optimize("no-tree-loop-distribute-patterns")))

extern "C" {

ONEDFU_MEM_ATTRIBUTES void* memcpy(void* dst, const void* src, size_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  if (((reinterpret_cast<uintptr_t>(d) ^ reinterpret_cast<uintptr_t>(s)) & 3) == 0) {
    for (; n > 0 && (reinterpret_cast<uintptr_t>(d) & 3) != 0; --n) *d++ = *s++;
    for (; n >= 4; n -= 4, d += 4, s += 4) *reinterpret_cast<Word*>(d) = *reinterpret_cast<const Word*>(s);
  }
  while (n--) *d++ = *s++;
  return dst;
}

ONEDFU_MEM_ATTRIBUTES void* memset(void* dst, int value, size_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto byte = static_cast<uint8_t>(value);
  for (; n > 0 && (reinterpret_cast<uintptr_t>(d) & 3) != 0; --n) *d++ = byte;
  const Word word = byte * 0x01010101u;
  for (; n >= 4; n -= 4, d += 4) *reinterpret_cast<Word*>(d) = word;
  while (n--) *d++ = byte;
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
