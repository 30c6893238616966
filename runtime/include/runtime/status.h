// Errors as values for embedded-safe code: no exceptions, no heap.
//
// Status carries a code and a static message (a string literal, never owned).
// Result<T> carries either a T or a non-OK Status. ONEDFU_TRY propagates a
// failed Status or Result out of the calling function.
//
// Codes:
//   kOk                  success
//   kInvalidArgument     malformed input: bad magic, bad field value, bad syntax
//   kOutOfRange          an offset, length or address runs past its bounds
//   kDataLoss            a checksum or hash does not match (CRC-32, SHA-256)
//   kNotFound            a lookup found nothing
//   kResourceExhausted   a fixed-capacity buffer or table is full
//   kFailedPrecondition  the operation is not allowed in the current state
//   kPermissionDenied    the target is protected (bootloader region, ...)
//   kUnimplemented       a valid but unsupported feature (format version, ...)
//   kInternal            a broken invariant of our own (a bug)
//   kUnavailable         the device or medium did not respond (power cut, I/O)
#pragma once

#include <cstdint>

namespace onedfu::runtime {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,
  kOutOfRange,
  kDataLoss,
  kNotFound,
  kResourceExhausted,
  kFailedPrecondition,
  kPermissionDenied,
  kUnimplemented,
  kInternal,
  kUnavailable,
};

// Short lower-case name of a code, e.g. "out of range".
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  constexpr Status() = default;
  constexpr Status(StatusCode code, const char* message) : code_(code), message_(message) {}

  static constexpr Status Ok() { return Status(); }

  constexpr bool ok() const { return code_ == StatusCode::kOk; }
  constexpr StatusCode code() const { return code_; }
  // Static text; never null.
  constexpr const char* message() const { return message_; }

  // Explicitly discard a status where failure is acceptable.
  constexpr void IgnoreError() const {}

  friend constexpr bool operator==(const Status& a, const Status& b) { return a.code_ == b.code_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  const char* message_ = "";
};

// Either a value or an error. T must be default-constructible and copyable.
template <typename T>
class [[nodiscard]] Result {
 public:
  constexpr Result(const T& value) : value_(value) {}  // NOLINT: implicit by design
  constexpr Result(Status status) : status_(status) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "Result of an OK status");
  }

  constexpr bool ok() const { return status_.ok(); }
  constexpr Status status() const { return status_; }
  constexpr const T& value() const { return value_; }
  constexpr T& value() { return value_; }
  constexpr const T& operator*() const { return value_; }
  constexpr const T* operator->() const { return &value_; }

 private:
  Status status_;
  T value_{};
};

namespace internal {
constexpr Status StatusOf(const Status& s) { return s; }
template <typename T>
constexpr Status StatusOf(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace onedfu::runtime

#define ONEDFU_CONCAT_INNER(a, b) a##b
#define ONEDFU_CONCAT(a, b) ONEDFU_CONCAT_INNER(a, b)

// Return the status of `expr` (a Status or Result) from the caller if it failed.
#define ONEDFU_TRY(expr)                                                           \
  do {                                                                             \
    if (auto onedfu_try_s = ::onedfu::runtime::internal::StatusOf(expr);           \
        !onedfu_try_s.ok())                                                        \
      return onedfu_try_s;                                                         \
  } while (0)

// `ONEDFU_TRY_ASSIGN(auto x, ResultExpr());` declares x from the value or returns the error.
#define ONEDFU_TRY_ASSIGN(lhs, expr) \
  ONEDFU_TRY_ASSIGN_IMPL(ONEDFU_CONCAT(onedfu_try_r_, __LINE__), lhs, expr)
#define ONEDFU_TRY_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = tmp.value()
