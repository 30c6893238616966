// Slicing-by-8 CRC-32 (reflected, polynomial 0xEDB88320). The 8 x 256 table is
// generated at compile time and lives in read-only memory (flash on a device).
// On x86-64 hosts with PCLMULQDQ, long inputs are folded 64 bytes at a time
// with carry-less multiplication first (chosen at run time, cached).
// Flash-tight builds pick a smaller table with a macro (see below).
#include "runtime/crc32.h"

#include <array>
#include <cstddef>

#if defined(__x86_64__) && defined(__GNUC__)
#define ONEDFU_CRC32_X86 1
#include <atomic>
#include <cpuid.h>
#include <immintrin.h>
#else
#define ONEDFU_CRC32_X86 0
#endif

namespace onedfu::runtime {
namespace {

constexpr uint32_t kPolynomial = 0xEDB88320u;  // reflected 0x04C11DB7

// ONEDFU_CRC32_SLICES: 8 (default, 8 KiB of tables, ~4x faster) or 1
// (1 KiB, byte at a time) for flash-tight bootloaders.
#ifndef ONEDFU_CRC32_SLICES
#define ONEDFU_CRC32_SLICES 8
#endif
static_assert(ONEDFU_CRC32_SLICES == 8 || ONEDFU_CRC32_SLICES == 1, "ONEDFU_CRC32_SLICES: 1 or 8");
constexpr size_t kSlices = ONEDFU_CRC32_SLICES;

// ONEDFU_CRC32_NIBBLE: 0 (default) or 1: the portable update runs four bits
// at a time from a 16-entry table (64 bytes, about half the speed of the
// 1 KiB table; the bootloader checksums one 2 KiB record per boot). Overrides
// ONEDFU_CRC32_SLICES. Crc32UpdateNibble exists in every build, for cross-checks.
#ifndef ONEDFU_CRC32_NIBBLE
#define ONEDFU_CRC32_NIBBLE 0
#endif
static_assert(ONEDFU_CRC32_NIBBLE == 0 || ONEDFU_CRC32_NIBBLE == 1, "ONEDFU_CRC32_NIBBLE: 0 or 1");

// kNibbleTable[i]: the register after shifting nibble i through 4 steps.
constexpr std::array<uint32_t, 16> MakeNibbleTable() {
  std::array<uint32_t, 16> t{};
  for (uint32_t i = 0; i < 16; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 4; ++bit) c = (c & 1u) ? (c >> 1) ^ kPolynomial : c >> 1;
    t[i] = c;
  }
  return t;
}

constexpr std::array<uint32_t, 16> kNibbleTable = MakeNibbleTable();
static_assert(kNibbleTable[8] == 0xEDB88320u, "CRC-32 nibble table generation");

using Table = std::array<std::array<uint32_t, 256>, kSlices>;

constexpr Table MakeTables() {
  Table t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1u) ? (c >> 1) ^ kPolynomial : c >> 1;
    t[0][i] = c;
  }
  // t[k][i]: the CRC of byte i followed by k zero bytes.
  for (size_t k = 1; k < kSlices; ++k) {
    for (uint32_t i = 0; i < 256; ++i) {
      const uint32_t prev = t[k - 1][i];
      t[k][i] = (prev >> 8) ^ t[0][prev & 0xffu];
    }
  }
  return t;
}

constexpr Table kTables = MakeTables();
static_assert(kTables[0][1] == 0x77073096u, "CRC-32 table generation");

#if ONEDFU_CRC32_X86
// 1 = PCLMULQDQ usable, 0 = not, -1 = not probed yet.
std::atomic<int> g_pclmul{-1};

bool HavePclmul() {
  int v = g_pclmul.load(std::memory_order_relaxed);
  if (v < 0) {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    v = (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && ((ecx >> 1) & 1u)) ? 1 : 0;
    g_pclmul.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

// Folding constants for the reflected polynomial (x^n mod P, bit-reflected,
// as used with PCLMULQDQ): low qword multiplies the low half, high qword the
// high half of a 128-bit lane.
//   fold by 512 bits: x^(512+32) mod P, x^(512-32) mod P
//   fold by 128 bits: x^(128+32) mod P, x^(128-32) mod P
constexpr uint64_t kFold512Lo = 0x154442bd4u, kFold512Hi = 0x1c6e41596u;
constexpr uint64_t kFold128Lo = 0x1751997d0u, kFold128Hi = 0x0ccaa009eu;

__attribute__((target("pclmul,sse2"))) inline __m128i Fold(__m128i x, __m128i k, __m128i next) {
  const __m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
  const __m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(lo, hi), next);
}

// Folds all whole 16-byte blocks of `data` (size >= 64) into one 128-bit
// remainder whose raw CRC (from state 0) equals the raw CRC of those blocks
// from `state`; returns the number of bytes consumed and the remainder bytes.
__attribute__((target("pclmul,sse2"))) size_t FoldBlocks(uint32_t state, const uint8_t* p,
                                                          size_t n, uint8_t out[16]) {
  auto load = [](const uint8_t* q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)); };
  __m128i x0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(static_cast<int>(state)));
  __m128i x1 = load(p + 16);
  __m128i x2 = load(p + 32);
  __m128i x3 = load(p + 48);
  size_t used = 64;
  const __m128i k512 = _mm_set_epi64x(static_cast<long long>(kFold512Hi),
                                      static_cast<long long>(kFold512Lo));
  for (; n - used >= 64; used += 64) {
    x0 = Fold(x0, k512, load(p + used));
    x1 = Fold(x1, k512, load(p + used + 16));
    x2 = Fold(x2, k512, load(p + used + 32));
    x3 = Fold(x3, k512, load(p + used + 48));
  }
  const __m128i k128 = _mm_set_epi64x(static_cast<long long>(kFold128Hi),
                                      static_cast<long long>(kFold128Lo));
  __m128i x = Fold(x0, k128, x1);
  x = Fold(x, k128, x2);
  x = Fold(x, k128, x3);
  for (; n - used >= 16; used += 16) x = Fold(x, k128, load(p + used));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), x);
  return used;
}
#endif

}  // namespace

namespace internal {

uint32_t Crc32UpdateNibble(uint32_t state, ByteSpan data) {
  uint32_t c = state;
  for (const uint8_t b : data) {
    c = (c >> 4) ^ kNibbleTable[(c ^ b) & 0xfu];
    c = (c >> 4) ^ kNibbleTable[(c ^ (b >> 4)) & 0xfu];
  }
  return c;
}

uint32_t Crc32UpdatePortable(uint32_t state, ByteSpan data) {
#if ONEDFU_CRC32_NIBBLE
  return Crc32UpdateNibble(state, data);
#else
  const uint8_t* p = data.data();
  size_t n = data.size();
  uint32_t c = state;
#if ONEDFU_CRC32_SLICES == 8
  while (n >= 8) {
    const uint32_t lo = c ^ LoadLe32(p);
    const uint32_t hi = LoadLe32(p + 4);
    c = kTables[7][lo & 0xffu] ^ kTables[6][(lo >> 8) & 0xffu] ^ kTables[5][(lo >> 16) & 0xffu] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xffu] ^ kTables[2][(hi >> 8) & 0xffu] ^
        kTables[1][(hi >> 16) & 0xffu] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
#endif
  while (n--) c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xffu];
  return c;
#endif
}

}  // namespace internal

bool Crc32HardwareAccelerated() {
#if ONEDFU_CRC32_X86
  return HavePclmul();
#else
  return false;
#endif
}

uint32_t Crc32Update(uint32_t state, ByteSpan data) {
#if ONEDFU_CRC32_X86
  if (data.size() >= 64 && HavePclmul()) {
    uint8_t rest[16];
    const size_t used = FoldBlocks(state, data.data(), data.size(), rest);
    const uint32_t c = internal::Crc32UpdatePortable(0, ByteSpan(rest, sizeof rest));
    return internal::Crc32UpdatePortable(c, data.subspan(used));
  }
#endif
  return internal::Crc32UpdatePortable(state, data);
}

}  // namespace onedfu::runtime
