// Ed25519 verification (runtime/ed25519.h). Field elements mod p = 2^255 - 19
// are 16 signed limbs of 16 bits (int32 storage, int64 products: one
// multiply-accumulate per limb pair on a Cortex-M7); points are extended
// twisted Edwards coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z, and one
// complete addition formula (a = -1) serves for doubling too. Scalars mod L
// are reduced bit by bit in 32-bit words. Constants (d, 2d, sqrt(-1), the
// base point, L) are RFC 8032 section 5.1's, in this representation.
#include "runtime/ed25519.h"

#include <cstring>

namespace onedfu::runtime {
namespace {

struct Fe {
  int32_t v[16];
};

struct Point {
  Fe x, y, z, t;
};

constexpr Fe kD = {{0x78a3, 0x1359, 0x4dca, 0x75eb, 0xd8ab, 0x4141, 0x0a4d, 0x0070, 0xe898, 0x7779, 0x4079, 0x8cc7, 0xfe73, 0x2b6f, 0x6cee, 0x5203}};
constexpr Fe kD2 = {{0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0, 0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406}};
constexpr Fe kSqrtM1 = {{0xa0b0, 0x4a0e, 0x1b27, 0xc4ee, 0xe478, 0xad2f, 0x1806, 0x2f43, 0xd7a7, 0x3dfb, 0x0099, 0x2b4d, 0xdf0b, 0x4fc1, 0x2480, 0x2b83}};
constexpr Point kBase = {{{0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c, 0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169}},
                         {{0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666}},
                         {{1}},
                         {{0xdda3, 0xa5b7, 0x8ab3, 0x6dde, 0x52f5, 0x7751, 0x9f80, 0x20f0, 0xe37d, 0x64ab, 0x4e8e, 0x66ea, 0x7665, 0xd78b, 0x5f0f, 0x6787}}};
// L = 2^252 + 27742317777372353535851937790883648493, little-endian bytes and 32-bit words.
constexpr uint8_t kLBytes[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
constexpr uint32_t kLWords[8] = {0x5cf5d3edu, 0x5812631au, 0xa2f79cd6u, 0x14def9deu, 0x00000000u, 0x00000000u, 0x00000000u, 0x10000000u};
// Exponents, little-endian: p - 2 (inversion) and (p - 5) / 8 (square roots).
constexpr uint8_t kPMinus2[32] = {0xeb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
constexpr uint8_t kPMinus5Div8[32] = {0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};

void FeAdd(Fe& o, const Fe& a, const Fe& b) {
  for (int i = 0; i < 16; ++i) o.v[i] = a.v[i] + b.v[i];
}

void FeSub(Fe& o, const Fe& a, const Fe& b) {
  for (int i = 0; i < 16; ++i) o.v[i] = a.v[i] - b.v[i];
}

// One carry pass: limbs 1..15 into [0, 2^16), the top carry folded into limb
// 0 times 38 (2^256 = 38 mod p). Arithmetic shifts floor negative limbs, so
// the limb left behind is its low 16 bits. Unrolled with FeMul (below).
void Carry(int64_t t[16]) {
#pragma GCC unroll 15
  for (int i = 0; i < 15; ++i) {
    t[i + 1] += t[i] >> 16;
    t[i] &= 0xffff;
  }
  const int64_t c = t[15] >> 16;
  t[15] &= 0xffff;
  t[0] += 38 * c;
}

// Inputs: limbs of magnitude < 2^18 (carried values, or one add/sub of them).
// Product scanning: limb k of the result is column k of the schoolbook
// product plus 38 times column k + 16 (2^256 = 38 mod p). With c[m] = 38 b[m]
// (m < 16) and c[m] = b[m - 16] (m >= 16) both are one 16-term sum,
// t[k] = sum over i of a[i] c[k + 16 - i], kept in a register pair (one SMLAL
// per limb pair on a Cortex-M7) with no 31-limb array to zero or write back;
// |c[m]| < 38 * 2^18 fits 32 bits, |t[k]| < 16 * 2^18 * 38 * 2^18 < 2^46. Only
// the inner sum is unrolled: two loads and one SMLAL per product, as the fully
// unrolled form, in about a tenth of its Cortex-M text (the signed image's
// budget, issue 11); the rolled loops spent about 8 instructions per product,
// and a signed boot does some 5,500 multiplications (later boots within 50 ms).
void FeMul(Fe& o, const Fe& a, const Fe& b) {
  int32_t c[32];
  for (int m = 0; m < 16; ++m) {
    c[m] = 38 * b.v[m];
    c[m + 16] = b.v[m];
  }
  int64_t t[16];
  for (int k = 0; k < 16; ++k) {
    const int32_t* column = c + k + 16;
    int64_t sum = 0;
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) sum += int64_t{a.v[i]} * column[-i];
    t[k] = sum;
  }
  Carry(t);
  Carry(t);
  for (int i = 0; i < 16; ++i) o.v[i] = static_cast<int32_t>(t[i]);
}

void FeSquare(Fe& o, const Fe& a) { FeMul(o, a, a); }

// a^e for a 255-bit exponent e (little-endian bytes), square and multiply.
void FePow(Fe& o, const Fe& a, const uint8_t e[32]) {
  Fe r = {{1}};
  for (int bit = 254; bit >= 0; --bit) {
    FeSquare(r, r);
    if ((e[bit >> 3] >> (bit & 7)) & 1) FeMul(r, r, a);
  }
  o = r;
}

// Canonical little-endian encoding (value reduced below p).
void FeToBytes(uint8_t out[32], const Fe& a) {
  int64_t t[16];
  for (int i = 0; i < 16; ++i) t[i] = a.v[i];
  Carry(t);
  Carry(t);
  Carry(t);
  // Now 0 <= value < 2^256 = 2p + 38: subtract p at most twice.
  for (int round = 0; round < 2; ++round) {
    int64_t m[16];
    m[0] = t[0] - 0xffed;
    for (int i = 1; i < 16; ++i) {
      const int64_t borrow = (m[i - 1] >> 16) & 1;
      m[i - 1] &= 0xffff;
      m[i] = t[i] - (i == 15 ? 0x7fff : 0xffff) - borrow;
    }
    const bool negative = m[15] < 0;
    m[15] &= 0xffff;
    if (!negative) std::memcpy(t, m, sizeof t);
  }
  for (int i = 0; i < 16; ++i) {
    out[2 * i] = static_cast<uint8_t>(t[i]);
    out[2 * i + 1] = static_cast<uint8_t>(t[i] >> 8);
  }
}

// The low 255 bits of `in` (bit 255 is the caller's: the sign of x).
void FeFromBytes(Fe& o, const uint8_t in[32]) {
  for (int i = 0; i < 16; ++i) o.v[i] = in[2 * i] | (in[2 * i + 1] << 8);
  o.v[15] &= 0x7fff;
}

bool FeEqual(const Fe& a, const Fe& b) {
  uint8_t x[32], y[32];
  FeToBytes(x, a);
  FeToBytes(y, b);
  return std::memcmp(x, y, 32) == 0;
}

bool FeIsOdd(const Fe& a) {
  uint8_t x[32];
  FeToBytes(x, a);
  return (x[0] & 1) != 0;
}

bool FeIsZero(const Fe& a) {
  const Fe zero = {};
  return FeEqual(a, zero);
}

// r = p + q (r may alias p or q). Complete for a = -1 with non-square d, so
// it doubles as well (p == q) and handles the identity.
void PointAdd(Point& r, const Point& p, const Point& q) {
  Fe a, b, c, d, e, f, g, h, t0, t1;
  FeSub(t0, p.y, p.x);
  FeSub(t1, q.y, q.x);
  FeMul(a, t0, t1);
  FeAdd(t0, p.y, p.x);
  FeAdd(t1, q.y, q.x);
  FeMul(b, t0, t1);
  FeMul(t0, p.t, kD2);
  FeMul(c, t0, q.t);
  FeMul(t0, p.z, q.z);
  FeAdd(d, t0, t0);
  FeSub(e, b, a);
  FeSub(f, d, c);
  FeAdd(g, d, c);
  FeAdd(h, b, a);
  FeMul(r.x, e, f);
  FeMul(r.y, g, h);
  FeMul(r.t, e, h);
  FeMul(r.z, f, g);
}

// RFC 8032 5.1.3: false when `in` is not a point's encoding (y >= p, x^2 has
// no root, or x = 0 with the sign bit set).
bool PointDecode(Point& out, const uint8_t in[32]) {
  Fe y;
  FeFromBytes(y, in);
  uint8_t canonical[32];
  FeToBytes(canonical, y);
  canonical[31] |= in[31] & 0x80;
  if (std::memcmp(canonical, in, 32) != 0) return false;  // y >= p
  const bool sign = (in[31] >> 7) != 0;

  const Fe one = {{1}};
  Fe y2, u, v, v3, v7, x, t;
  FeSquare(y2, y);
  FeSub(u, y2, one);      // u = y^2 - 1
  FeMul(v, y2, kD);
  FeAdd(v, v, one);       // v = d y^2 + 1
  FeSquare(v3, v);
  FeMul(v3, v3, v);       // v^3
  FeSquare(v7, v3);
  FeMul(v7, v7, v);       // v^7
  FeMul(t, u, v7);
  FePow(t, t, kPMinus5Div8);
  FeMul(x, u, v3);
  FeMul(x, x, t);         // x = u v^3 (u v^7)^((p-5)/8)

  Fe check, neg_u;
  FeSquare(check, x);
  FeMul(check, check, v);
  const Fe zero = {};
  FeSub(neg_u, zero, u);
  if (!FeEqual(check, u)) {
    if (!FeEqual(check, neg_u)) return false;
    FeMul(x, x, kSqrtM1);
  }
  if (FeIsZero(x) && sign) return false;
  if (FeIsOdd(x) != sign) FeSub(x, zero, x);
  out.x = x;
  out.y = y;
  out.z = one;
  FeMul(out.t, x, y);
  return true;
}

void PointEncode(uint8_t out[32], const Point& p) {
  Fe zi, x, y;
  FePow(zi, p.z, kPMinus2);
  FeMul(x, p.x, zi);
  FeMul(y, p.y, zi);
  FeToBytes(out, y);
  if (FeIsOdd(x)) out[31] |= 0x80;
}

// True when the 256-bit little-endian s is below L.
bool BelowL(const uint8_t s[32]) {
  for (int i = 31; i >= 0; --i) {
    if (s[i] != kLBytes[i]) return s[i] < kLBytes[i];
  }
  return false;
}

// 512-bit little-endian h mod L into 32 bytes: r = 2r + bit, minus L when
// r >= L, from the top bit down (r < L < 2^253 throughout).
void ReduceModL(uint8_t out[32], const uint8_t h[64]) {
  uint32_t r[8] = {};
  for (int bit = 511; bit >= 0; --bit) {
    uint32_t carry = (h[bit >> 3] >> (bit & 7)) & 1;
    for (int i = 0; i < 8; ++i) {
      const uint32_t next = r[i] >> 31;
      r[i] = (r[i] << 1) | carry;
      carry = next;
    }
    bool ge = true;
    for (int i = 7; i >= 0; --i) {
      if (r[i] != kLWords[i]) {
        ge = r[i] > kLWords[i];
        break;
      }
    }
    if (!ge) continue;
    uint32_t borrow = 0;
    for (int i = 0; i < 8; ++i) {
      const uint64_t diff = uint64_t{r[i]} - kLWords[i] - borrow;
      r[i] = static_cast<uint32_t>(diff);
      borrow = static_cast<uint32_t>(diff >> 63);
    }
  }
  for (int i = 0; i < 8; ++i) StoreLe32(out + 4 * i, r[i]);
}

}  // namespace

Ed25519Verifier::Ed25519Verifier(const Ed25519PublicKey& key, const uint8_t signature[kEd25519SignatureSize])
    : key_(key) {
  std::memcpy(signature_, signature, kEd25519SignatureSize);
  sha_.Update(ByteSpan(signature_, 32));  // R
  sha_.Update(key_);                      // A
}

bool Ed25519Verifier::Finish() {
  uint8_t h[kSha512Size];
  sha_.Final(h);
  const uint8_t* s = signature_ + 32;
  if (!BelowL(s)) return false;
  Point neg_a;
  if (!PointDecode(neg_a, key_.data())) return false;
  const Fe zero = {};
  FeSub(neg_a.x, zero, neg_a.x);
  FeSub(neg_a.t, zero, neg_a.t);
  uint8_t k[32];
  ReduceModL(k, h);

  // [S]B + [k](-A), both scalars < 2^253, one shared doubling chain.
  Point acc = {{}, {{1}}, {{1}}, {}};
  for (int bit = 252; bit >= 0; --bit) {
    PointAdd(acc, acc, acc);
    if ((s[bit >> 3] >> (bit & 7)) & 1) PointAdd(acc, acc, kBase);
    if ((k[bit >> 3] >> (bit & 7)) & 1) PointAdd(acc, acc, neg_a);
  }
  uint8_t r[32];
  PointEncode(r, acc);
  return std::memcmp(r, signature_, 32) == 0;
}

bool Ed25519Verify(const Ed25519PublicKey& key, ByteSpan message, const uint8_t signature[kEd25519SignatureSize]) {
  Ed25519Verifier verifier(key, signature);
  verifier.Update(message);
  return verifier.Finish();
}

}  // namespace onedfu::runtime
