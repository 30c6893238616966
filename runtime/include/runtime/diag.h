// Diag: a fixed-size text buffer where parsers say *where* they failed,
// e.g. "target 0, element 3 at 0x08004000: size runs past end of file".
// No heap, no printf; truncates silently when full (always NUL-terminated).
#pragma once

#include <cstddef>
#include <cstdint>

namespace onedfu::runtime {

class Diag {
 public:
  static constexpr size_t kCapacity = 160;

  Diag& Str(const char* text);
  Diag& Dec(uint64_t value);
  // "0x" followed by at least `min_digits` lower-case hex digits.
  Diag& Hex(uint64_t value, int min_digits = 8);
  void Clear();

  const char* c_str() const { return text_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  void Put(char c);

  char text_[kCapacity] = {};
  size_t size_ = 0;
};

// Write into `diag` only when it is non-null; parsers take an optional Diag*.
inline Diag* DiagClear(Diag* diag) {
  if (diag) diag->Clear();
  return diag;
}

}  // namespace onedfu::runtime
