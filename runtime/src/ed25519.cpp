// Ed25519 verification (runtime/ed25519.h). Field elements mod p = 2^255 - 19
// are ten signed limbs in radix 2^25.5 (int32 storage, int64 column sums: one
// multiply-accumulate per limb pair on a Cortex-M7); points are extended
// twisted Edwards coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z, with the
// complete addition (a = -1) and a dedicated doubling. Scalars mod L are
// reduced bit by bit in 32-bit words. Constants (d, 2d, sqrt(-1), the base
// point, L) are RFC 8032 section 5.1's.
#include "runtime/ed25519.h"

#include <cstring>

namespace onedfu::runtime {
namespace {

// Limb i holds 26 bits (i even) or 25 bits (i odd): the value is
// sum of v[i] * 2^ceil(25.5 i), i = 0..9 (2^0, 2^26, 2^51, ..., 2^230).
constexpr int LimbBits(int i) { return 26 - (i & 1); }

struct Fe {
  int32_t v[10];
};

struct Point {
  Fe x, y, z, t;
};

// A point prepared as the second operand of an addition: (Y + X, Y - X, 2Z, 2dT).
struct Cached {
  Fe ypx, ymx, z2, t2d;
};

// Rounding carries limb 0 to 9, the carry out of limb 9 folded into limb 0
// times 19 (2^255 = 19 mod p), then limb 0 into limb 1 once more: every limb
// ends centred on zero, |limb| <= 2^(bits - 1) (limb 1: plus a few units).
// Unrolled, so every shift is by a constant (a rolled loop shifting 64-bit
// values by a variable count cost about 500 Cortex-M7 instructions a call).
constexpr void CarryWide(Fe& o, int64_t h[10]) {
#pragma GCC unroll 10
  for (int i = 0; i < 10; ++i) {
    const int bits = LimbBits(i);
    const int64_t carry = (h[i] + (int64_t{1} << (bits - 1))) >> bits;
    h[i] -= carry * (int64_t{1} << bits);
    if (i < 9) {
      h[i + 1] += carry;
    } else {
      h[0] += 19 * carry;
    }
  }
  const int64_t carry = (h[0] + (int64_t{1} << 25)) >> 26;
  h[0] -= carry * (int64_t{1} << 26);
  h[1] += carry;
  for (int i = 0; i < 10; ++i) o.v[i] = static_cast<int32_t>(h[i]);
}

// The curve constants are written as RFC 8032's values in 16-bit little-endian
// words (the byte encodings, two bytes a word) and split into carried limbs at
// compile time.
constexpr Fe FromWords(const uint16_t (&w)[16]) {
  int64_t h[10] = {};
  int bit = 0;
  for (int i = 0; i < 10; ++i) {
    for (int k = 0; k < LimbBits(i); ++k, ++bit) h[i] |= int64_t{(w[bit >> 4] >> (bit & 15)) & 1} << k;
  }
  Fe o = {};
  CarryWide(o, h);
  return o;
}

constexpr Fe kD = FromWords({0x78a3, 0x1359, 0x4dca, 0x75eb, 0xd8ab, 0x4141, 0x0a4d, 0x0070, 0xe898, 0x7779, 0x4079, 0x8cc7, 0xfe73, 0x2b6f, 0x6cee, 0x5203});
constexpr Fe kD2 = FromWords({0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0, 0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406});
constexpr Fe kSqrtM1 = FromWords({0xa0b0, 0x4a0e, 0x1b27, 0xc4ee, 0xe478, 0xad2f, 0x1806, 0x2f43, 0xd7a7, 0x3dfb, 0x0099, 0x2b4d, 0xdf0b, 0x4fc1, 0x2480, 0x2b83});
constexpr Point kBase = {FromWords({0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c, 0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169}),
                         FromWords({0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666}),
                         {{1}},
                         FromWords({0xdda3, 0xa5b7, 0x8ab3, 0x6dde, 0x52f5, 0x7751, 0x9f80, 0x20f0, 0xe37d, 0x64ab, 0x4e8e, 0x66ea, 0x7665, 0xd78b, 0x5f0f, 0x6787})};
// L = 2^252 + 27742317777372353535851937790883648493, little-endian bytes and 32-bit words.
constexpr uint8_t kLBytes[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
constexpr uint32_t kLWords[8] = {0x5cf5d3edu, 0x5812631au, 0xa2f79cd6u, 0x14def9deu, 0x00000000u, 0x00000000u, 0x00000000u, 0x10000000u};

// Bounds. A "carried" element (FeMul's output, FeFromBytes's) has limbs of
// magnitude at most about 2^25 (26-bit limbs) or 2^24 (25-bit limbs), call it
// 1x. FeAdd and FeSub do not carry, so a sum of n carried elements is n x.
// FeMul takes inputs up to 3x: 19 * 3 * 2^25 < 2^31 keeps its 19-fold table in
// 32 bits, and each 64-bit column stays below 10 * (2 * 3 * 2^25) *
// (19 * 3 * 2^25) < 2^62. Every caller below states what it feeds in.
void FeAdd(Fe& o, const Fe& a, const Fe& b) {
  for (int i = 0; i < 10; ++i) o.v[i] = a.v[i] + b.v[i];
}

void FeSub(Fe& o, const Fe& a, const Fe& b) {
  for (int i = 0; i < 10; ++i) o.v[i] = a.v[i] - b.v[i];
}

// Radix 2^25.5 (ten limbs, the layout of the "ref10" Ed25519 code): 100
// products a multiplication, against 256 for sixteen 16-bit limbs. The
// product of limbs i and j lands on limb i + j with a factor 2 when i and j
// are both odd (their weights carry a half bit each), and on limb i + j - 10
// times 19 when i + j >= 10. With c[m] = 19 b[m] and c[m + 10] = b[m], limb k
// of the result is one 10-term sum, sum over i of a'[i] c[k + 10 - i], where
// a' = a for odd k and a with its odd limbs doubled for even k (an odd i
// pairs with an odd j exactly when k is even). The sum stays in a register
// pair, one SMLAL per product on a Cortex-M7; only the inner sum is unrolled
// (the signed image's text budget, issue 11).
void FeMul(Fe& o, const Fe& a, const Fe& b) {
  int32_t c[20];
  int32_t a2[10];
  for (int m = 0; m < 10; ++m) {
    c[m] = 19 * b.v[m];
    c[m + 10] = b.v[m];
    a2[m] = (m & 1) ? 2 * a.v[m] : a.v[m];
  }
  int64_t h[10];
  for (int k = 0; k < 10; ++k) {
    const int32_t* column = c + k + 10;
    const int32_t* left = (k & 1) ? a.v : a2;
    int64_t sum = 0;
#pragma GCC unroll 10
    for (int i = 0; i < 10; ++i) sum += int64_t{left[i]} * column[-i];
    h[k] = sum;
  }
  CarryWide(o, h);
}

void FeSquare(Fe& o, const Fe& a) { FeMul(o, a, a); }

// o = a^(2^times) * m: one step of an addition chain (o may alias a or m).
void FeSquareTimesMul(Fe& o, const Fe& a, int times, const Fe& m) {
  Fe t = a;
  for (int i = 0; i < times; ++i) FeSquare(t, t);
  FeMul(o, t, m);
}

// a^(2^252 - 3) = a^((p - 5) / 8), the square-root exponent of RFC 8032
// 5.1.3, by the usual addition chain through a^(2^250 - 1): 251 squarings
// and 11 multiplications (square-and-multiply over that exponent, nearly all
// ones, takes twice as many operations). x_n stands for a^(2^n - 1).
void FePowP58(Fe& o, const Fe& a) {
  Fe a2, a9, t, x10, x50, u;
  FeSquare(a2, a);                      // a^2
  FeSquareTimesMul(a9, a2, 2, a);       // a^9
  FeMul(t, a9, a2);                     // a^11
  FeSquareTimesMul(t, t, 1, a9);        // a^31 = x5
  FeSquareTimesMul(x10, t, 5, t);       // x10
  FeSquareTimesMul(t, x10, 10, x10);    // x20
  FeSquareTimesMul(u, t, 20, t);        // x40
  FeSquareTimesMul(x50, u, 10, x10);    // x50
  FeSquareTimesMul(t, x50, 50, x50);    // x100
  FeSquareTimesMul(u, t, 100, t);       // x200
  FeSquareTimesMul(u, u, 50, x50);      // x250
  FeSquareTimesMul(o, u, 2, a);         // 2^252 - 4 + 1
}

// Canonical little-endian encoding (value reduced below p). Inputs up to 3x.
void FeToBytes(uint8_t out[32], const Fe& a) {
  int64_t h[10];
  for (int i = 0; i < 10; ++i) h[i] = a.v[i];
  Fe carried;
  CarryWide(carried, h);
  // Now |value| < 2^255 + small. q = 1 when value + 19 >= 2^255 (value >= p)
  // and -1 when value < 0: adding 19 q and dropping bit 255 reduces it into [0, p).
  int32_t* t = carried.v;
  int32_t q = (19 * t[9] + (1 << 24)) >> 25;
  for (int i = 0; i < 10; ++i) q = (t[i] + q) >> LimbBits(i);
  t[0] += 19 * q;
  for (int i = 0; i < 9; ++i) {
    t[i + 1] += t[i] >> LimbBits(i);
    t[i] &= (1 << LimbBits(i)) - 1;
  }
  t[9] &= (1 << 25) - 1;
  uint64_t bits = 0;
  int held = 0;
  size_t n = 0;
  for (int i = 0; i < 10; ++i) {
    bits |= uint64_t(static_cast<uint32_t>(t[i])) << held;
    held += LimbBits(i);
    for (; held >= 8; held -= 8, bits >>= 8) out[n++] = static_cast<uint8_t>(bits);
  }
  out[n] = static_cast<uint8_t>(bits);  // the last 7 bits (bit 255 is 0)
}

// The low 255 bits of `in` (bit 255 is the caller's: the sign of x), carried.
void FeFromBytes(Fe& o, const uint8_t in[32]) {
  int64_t h[10];
  uint64_t bits = 0;
  int held = 0;
  size_t n = 0;
  for (int i = 0; i < 10; ++i) {
    for (; held < LimbBits(i); held += 8) bits |= uint64_t{in[n++]} << held;
    h[i] = static_cast<int64_t>(bits & ((uint64_t{1} << LimbBits(i)) - 1));
    bits >>= LimbBits(i);
    held -= LimbBits(i);
  }
  CarryWide(o, h);
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

void ToCached(Cached& c, const Point& p) {
  FeAdd(c.ypx, p.y, p.x);
  FeSub(c.ymx, p.y, p.x);
  FeAdd(c.z2, p.z, p.z);
  FeMul(c.t2d, p.t, kD2);
}

// Both formulas below end with the point x = E / G, y = H / F; its extended
// coordinates are (E F : G H : F G : E H), four multiplications.
void FromCompleted(Point& r, const Fe& e, const Fe& f, const Fe& g, const Fe& h) {
  FeMul(r.x, e, f);
  FeMul(r.y, g, h);
  FeMul(r.z, f, g);
  FeMul(r.t, e, h);
}

// r = p + q (r may alias p), the extended-coordinates addition for a = -1
// (8 multiplications). Complete: it holds for p == q and for the identity.
// Inputs 1x (p) and 2x (q's sums); E, F, G, H are at most 2x.
void PointAdd(Point& r, const Point& p, const Cached& q) {
  Fe a, b, c, d, e, f, g, h;
  FeSub(e, p.y, p.x);
  FeMul(a, e, q.ymx);
  FeAdd(e, p.y, p.x);
  FeMul(b, e, q.ypx);
  FeMul(c, p.t, q.t2d);
  FeMul(d, p.z, q.z2);
  FeSub(e, b, a);
  FeSub(f, d, c);
  FeAdd(g, d, c);
  FeAdd(h, b, a);
  FromCompleted(r, e, f, g, h);
}

// r = 2p (r may alias p), the dedicated doubling for a = -1 (8
// multiplications, 4 of them squarings, none by 2d): with A = X^2, B = Y^2,
// C = 2 Z^2, E = 2XY = (X + Y)^2 - A - B, G = B - A, F = C - G, H = A + B,
// 2p = (E F : G H : F G : E H) up to a common sign. Inputs 1x: E and F 3x,
// G and H 2x.
void PointDouble(Point& r, const Point& p) {
  Fe a, b, c, e, f, g, h;
  FeSquare(a, p.x);
  FeSquare(b, p.y);
  FeAdd(c, p.z, p.z);
  FeMul(c, c, p.z);
  FeAdd(e, p.x, p.y);
  FeSquare(e, e);
  FeAdd(h, a, b);
  FeSub(e, e, h);
  FeSub(g, b, a);
  FeSub(f, c, g);
  FromCompleted(r, e, f, g, h);
}

// True for the 8 points of small order (the identity and the torsion
// points): 8P is the identity exactly then, and that identity is the one
// point with X = 0 a point of order dividing 8 can reach.
bool SmallOrder(const Point& p) {
  Point q;
  PointDouble(q, p);
  PointDouble(q, q);
  PointDouble(q, q);
  return FeIsZero(q.x);
}

// RFC 8032 5.1.3: false when `in` is not a point's encoding (y >= p, x^2 has
// no root, or x = 0 with the sign bit set). Also false for the small-order
// points (SmallOrder): a key or R of small order is refused.
bool PointDecode(Point& out, const uint8_t in[32]) {
  Fe y;
  FeFromBytes(y, in);
  uint8_t canonical[32];
  FeToBytes(canonical, y);
  canonical[31] |= in[31] & 0x80;
  if (std::memcmp(canonical, in, 32) != 0) return false;  // y >= p
  const bool sign = (in[31] >> 7) != 0;

  const Fe one = {{1}};
  Fe y2, u, v, v3, t, x;
  FeSquare(y2, y);
  FeSub(u, y2, one);      // u = y^2 - 1
  FeMul(v, y2, kD);
  FeAdd(v, v, one);       // v = d y^2 + 1
  FeSquare(v3, v);
  FeMul(v3, v3, v);       // v^3
  FeSquare(t, v3);
  FeMul(t, t, v);         // v^7
  FeMul(t, t, u);         // u v^7
  FePowP58(t, t);
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
  return !SmallOrder(out);
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
  Point neg_a, r;
  if (!PointDecode(neg_a, key_.data()) || !PointDecode(r, signature_)) return false;
  const Fe zero = {};
  FeSub(neg_a.x, zero, neg_a.x);
  FeSub(neg_a.t, zero, neg_a.t);
  uint8_t k[32];
  ReduceModL(k, h);

  // [S]B + [k](-A), both scalars < 2^253: one shared doubling chain and, per
  // bit pair, at most one addition of B, -A or B - A (Straus' trick).
  Cached table[3];
  ToCached(table[0], kBase);
  ToCached(table[1], neg_a);
  Point b_minus_a;
  PointAdd(b_minus_a, kBase, table[1]);
  ToCached(table[2], b_minus_a);
  Point acc = {{}, {{1}}, {{1}}, {}};
  for (int bit = 252; bit >= 0; --bit) {
    PointDouble(acc, acc);
    const int pick = ((s[bit >> 3] >> (bit & 7)) & 1) | (((k[bit >> 3] >> (bit & 7)) & 1) << 1);
    if (pick != 0) PointAdd(acc, acc, table[pick - 1]);
  }
  // acc = R, compared projectively (R has Z = 1): X = x_R Z and Y = y_R Z.
  Fe x, y;
  FeMul(x, r.x, acc.z);
  FeMul(y, r.y, acc.z);
  return FeEqual(x, acc.x) && FeEqual(y, acc.y);
}

bool Ed25519Verify(const Ed25519PublicKey& key, ByteSpan message, const uint8_t signature[kEd25519SignatureSize]) {
  Ed25519Verifier verifier(key, signature);
  verifier.Update(message);
  return verifier.Finish();
}

}  // namespace onedfu::runtime
