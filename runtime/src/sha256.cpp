// SHA-256 (FIPS 180-4): portable compression everywhere, SHA-NI on x86-64
// hosts when the CPU has it (picked at run time via CPUID, cached).
#include "runtime/sha256.h"

#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#define ONEDFU_SHA256_X86 1
#include <atomic>
#include <cpuid.h>
#include <immintrin.h>
#else
#define ONEDFU_SHA256_X86 0
#endif

namespace onedfu::runtime {
namespace {

alignas(16) constexpr uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr uint32_t kInitialState[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

constexpr uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

constexpr uint32_t LoadBe32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

constexpr void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

#if ONEDFU_SHA256_X86
// 1 = SHA-NI usable, 0 = not, -1 = not probed yet.
std::atomic<int> g_sha_ni{-1};

bool ProbeShaNi() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid(1, eax, ebx, ecx, edx);
  const bool ssse3 = (ecx >> 9) & 1u;
  const bool sse41 = (ecx >> 19) & 1u;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool sha = (ebx >> 29) & 1u;
  return ssse3 && sse41 && sha;
}

bool HaveShaNi() {
  int v = g_sha_ni.load(std::memory_order_relaxed);
  if (v < 0) {
    v = ProbeShaNi() ? 1 : 0;
    g_sha_ni.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

// The SHA-NI state layout keeps {A,B,E,F} and {C,D,G,H} in two registers.
// Each _mm_sha256rnds2_epu32 does two rounds with the two low words of its
// third operand (message word + round constant).
__attribute__((target("sha,sse4.1,ssse3"))) void CompressShaNi(uint32_t state[8],
                                                               const uint8_t* data,
                                                               size_t blocks) {
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
  __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
  __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
  __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
  __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
  __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);

  for (; blocks > 0; --blocks, data += kSha256BlockSize) {
    const __m128i abef_in = abef;
    const __m128i cdgh_in = cdgh;
    __m128i w[4];  // rolling window of message schedule, 4 words each
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {
      if (g < 4) {
        w[g] = _mm_shuffle_epi8(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * g)), byte_swap);
      } else {
        // W[4g..4g+3] from W[4g-16..4g-1].
        __m128i m = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
        m = _mm_add_epi32(m, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
        w[g & 3] = _mm_sha256msg2_epu32(m, w[(g + 3) & 3]);
      }
      __m128i wk = _mm_add_epi32(
          w[g & 3], _mm_load_si128(reinterpret_cast<const __m128i*>(kRoundConstants + 4 * g)));
      // Two rounds: the new ABEF lands in `cdgh`, and the old ABEF in `abef`
      // is the new CDGH; the next two rounds swap the roles back.
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
      wk = _mm_shuffle_epi32(wk, 0x0E);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
  }

  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  dcba = _mm_blend_epi16(feba, dchg, 0xF0);
  hgfe = _mm_alignr_epi8(dchg, feba, 8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), dcba);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), hgfe);
}
#endif

void Compress(uint32_t state[8], const uint8_t* data, size_t blocks) {
#if ONEDFU_SHA256_X86
  if (HaveShaNi()) {
    CompressShaNi(state, data, blocks);
    return;
  }
#endif
  internal::Sha256CompressPortable(state, data, blocks);
}

}  // namespace

namespace internal {

void Sha256CompressPortable(uint32_t state[8], const uint8_t* data, size_t blocks) {
  for (; blocks > 0; --blocks, data += kSha256BlockSize) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) w[i] = LoadBe32(data + 4 * i);
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t big_s1 = Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25);
      const uint32_t ch = (e & f) ^ (~e & g);
      const uint32_t t1 = h + big_s1 + ch + kRoundConstants[i] + w[i];
      const uint32_t big_s0 = Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22);
      const uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      const uint32_t t2 = big_s0 + maj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

void Sha256CompressHardware(uint32_t state[8], const uint8_t* data, size_t blocks) {
#if ONEDFU_SHA256_X86
  if (HaveShaNi()) {
    CompressShaNi(state, data, blocks);
    return;
  }
#endif
  Sha256CompressPortable(state, data, blocks);
}

}  // namespace internal

bool Sha256::HardwareAccelerated() {
#if ONEDFU_SHA256_X86
  return HaveShaNi();
#else
  return false;
#endif
}

void Sha256::Reset() {
  std::memcpy(state_, kInitialState, sizeof(state_));
  total_bytes_ = 0;
  buffered_ = 0;
}

void Sha256::Update(ByteSpan data) {
  if (data.empty()) return;  // data() may be null
  const uint8_t* p = data.data();
  size_t n = data.size();
  total_bytes_ += n;
  if (buffered_ > 0) {
    const size_t take = n < kSha256BlockSize - buffered_ ? n : kSha256BlockSize - buffered_;
    std::memcpy(buffer_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    n -= take;
    if (buffered_ < kSha256BlockSize) return;
    Compress(state_, buffer_, 1);
    buffered_ = 0;
  }
  const size_t blocks = n / kSha256BlockSize;
  if (blocks > 0) {
    Compress(state_, p, blocks);
    p += blocks * kSha256BlockSize;
    n -= blocks * kSha256BlockSize;
  }
  if (n > 0) {
    std::memcpy(buffer_, p, n);
    buffered_ = n;
  }
}

void Sha256::Final(uint8_t out[kSha256Size]) {
  const uint64_t bit_length = total_bytes_ * 8;
  buffer_[buffered_++] = 0x80;
  if (buffered_ > kSha256BlockSize - 8) {
    std::memset(buffer_ + buffered_, 0, kSha256BlockSize - buffered_);
    Compress(state_, buffer_, 1);
    buffered_ = 0;
  }
  std::memset(buffer_ + buffered_, 0, kSha256BlockSize - 8 - buffered_);
  StoreBe32(buffer_ + 56, static_cast<uint32_t>(bit_length >> 32));
  StoreBe32(buffer_ + 60, static_cast<uint32_t>(bit_length));
  Compress(state_, buffer_, 1);
  buffered_ = 0;
  for (int i = 0; i < 8; ++i) StoreBe32(out + 4 * i, state_[i]);
}

Sha256Hash Sha256::Final() {
  Sha256Hash out;
  Final(out.data());
  return out;
}

Sha256Hash Sha256Digest(ByteSpan data) {
  Sha256 h;
  h.Update(data);
  return h.Final();
}

Status Sha256UpdateFlash(Sha256& sha, FlashMemory& flash, uint32_t address, uint32_t length) {
  constexpr uint32_t kChunk = 256;
  // Inside the memory (the caller's contract), so offset + length fits 32 bits.
  const ByteSpan mapped = flash.Mapped();
  const uint32_t offset = address - flash.geometry().base;
  if (mapped.size() >= offset + length) {
    sha.Update(ByteSpan(mapped.data() + offset, length));
    return Status::Ok();
  }
  uint8_t chunk[kChunk];
  for (uint32_t done = 0; done < length;) {
    const uint32_t n = length - done < kChunk ? length - done : kChunk;
    ONEDFU_TRY(flash.Read(address + done, MutableByteSpan(chunk, n)));
    sha.Update(ByteSpan(chunk, n));
    done += n;
  }
  return Status::Ok();
}

void HexDigest(const Sha256Hash& hash, char out[65]) {
  constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < hash.size(); ++i) {
    out[2 * i] = kDigits[hash[i] >> 4];
    out[2 * i + 1] = kDigits[hash[i] & 0xf];
  }
  out[64] = '\0';
}

}  // namespace onedfu::runtime
