#include "runtime/diag.h"
#include "runtime/status.h"

namespace onedfu::runtime {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kOutOfRange: return "out of range";
    case StatusCode::kDataLoss: return "data loss";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kResourceExhausted: return "resource exhausted";
    case StatusCode::kFailedPrecondition: return "failed precondition";
    case StatusCode::kPermissionDenied: return "permission denied";
    case StatusCode::kUnimplemented: return "unimplemented";
    case StatusCode::kInternal: return "internal";
    case StatusCode::kUnavailable: return "unavailable";
  }
  return "unknown";
}

void Diag::Put(char c) {
  if (size_ + 1 >= kCapacity) return;
  text_[size_++] = c;
  text_[size_] = '\0';
}

void Diag::Clear() {
  size_ = 0;
  text_[0] = '\0';
}

Diag& Diag::Str(const char* text) {
  while (text && *text) Put(*text++);
  return *this;
}

Diag& Diag::Dec(uint64_t value) {
  // Long division by 10 in 16-bit steps: every step divides a 32-bit number
  // (remainder < 10 shifted up by 16, plus one 16-bit chunk), so a 32-bit
  // target needs no 64-bit division routine (libgcc's __udivmoddi4 is 0.7 KB).
  char digits[20];
  int n = 0;
  do {
    uint32_t remainder = 0;
    uint64_t quotient = 0;
    for (int shift = 48; shift >= 0; shift -= 16) {
      const uint32_t part = (remainder << 16) | static_cast<uint32_t>((value >> shift) & 0xffffu);
      quotient |= static_cast<uint64_t>(part / 10) << shift;
      remainder = part % 10;
    }
    digits[n++] = static_cast<char>('0' + remainder);
    value = quotient;
  } while (value != 0);
  while (n > 0) Put(digits[--n]);
  return *this;
}

Diag& Diag::Hex(uint64_t value, int min_digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char digits[16];
  int n = 0;
  do {
    digits[n++] = kDigits[value & 0xf];
    value >>= 4;
  } while (value != 0 && n < 16);
  while (n < min_digits && n < 16) digits[n++] = '0';
  Put('0');
  Put('x');
  while (n > 0) Put(digits[--n]);
  return *this;
}

}  // namespace onedfu::runtime
