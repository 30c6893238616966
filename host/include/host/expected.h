// Host-side error values. The packer library never lets an exception cross
// its API: adapters around Boost, nlohmann/json and the filesystem catch and
// turn them into an Error whose message names the file, JSON path or address
// at fault ("package.json: /modules/2/path: ...").
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "runtime/status.h"

namespace onedfu::host {

struct Error {
  std::string message;
};

// Either a T or an Error (std::expected arrives with C++23).
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}       // NOLINT: implicit by design
  Expected(Error error) : v_(std::move(error)) {}    // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// For operations that return nothing but may fail.
struct Done {};
using Outcome = Expected<Done>;
inline Outcome Success() { return Done{}; }

inline Error Fail(std::string message) { return Error{std::move(message)}; }
// "context: message"
inline Error Fail(const std::string& context, const Error& inner) {
  return Error{context + ": " + inner.message};
}

}  // namespace onedfu::host

// Propagate an Error from an Expected-returning call; declares `lhs` on success.
#define ONEDFU_PTRY_CONCAT_INNER(a, b) a##b
#define ONEDFU_PTRY_CONCAT(a, b) ONEDFU_PTRY_CONCAT_INNER(a, b)
#define ONEDFU_PTRY(lhs, expr) ONEDFU_PTRY_IMPL(ONEDFU_PTRY_CONCAT(onedfu_ptry_, __LINE__), lhs, expr)
#define ONEDFU_PTRY_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                     \
  if (!tmp.ok()) return tmp.error();     \
  lhs = std::move(tmp).value()
