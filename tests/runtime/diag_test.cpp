// Diag: the fixed-size text parsers use to say where they failed.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "runtime/diag.h"
#include "runtime/status.h"

namespace onedfu::runtime {
namespace {

TEST_CASE("Diag formats decimal and hex like printf") {
  const uint64_t values[] = {0, 1, 9, 10, 99, 65535, 65536, 4294967295u, 4294967296ull, 1234567890123ull,
                             18446744073709551615ull};
  for (uint64_t v : values) {
    CAPTURE(v);
    Diag d;
    d.Dec(v);
    char expected[32];
    std::snprintf(expected, sizeof expected, "%llu", static_cast<unsigned long long>(v));
    CHECK(std::string(d.c_str()) == expected);
    Diag h;
    h.Hex(v);
    std::snprintf(expected, sizeof expected, "0x%08llx", static_cast<unsigned long long>(v));
    CHECK(std::string(h.c_str()) == expected);
  }
  Diag d;
  d.Str("element ").Dec(3).Str(" at ").Hex(0x8004000).Str(": ").Hex(0xab, 2);
  CHECK(std::string(d.c_str()) == "element 3 at 0x08004000: 0xab");
}

TEST_CASE("Diag truncates at capacity and stays NUL-terminated") {
  Diag d;
  for (int i = 0; i < 100; ++i) d.Str("0123456789");
  CHECK(d.size() == Diag::kCapacity - 1);
  CHECK(std::string(d.c_str()).size() == Diag::kCapacity - 1);
  d.Clear();
  CHECK(d.empty());
  CHECK(std::string(d.c_str()).empty());
  CHECK(DiagClear(nullptr) == nullptr);
}

TEST_CASE("Status and Result carry codes and values") {
  const Status bad(StatusCode::kOutOfRange, "runs past end");
  CHECK_FALSE(bad.ok());
  CHECK(std::string(StatusCodeName(bad.code())) == "out of range");
  const Result<int> value(7);
  REQUIRE(value.ok());
  CHECK(*value == 7);
  const Result<int> error(bad);
  CHECK_FALSE(error.ok());
  CHECK(error.status().code() == StatusCode::kOutOfRange);
  const Result<int> misuse{Status::Ok()};  // an OK status is not a value
  CHECK(misuse.status().code() == StatusCode::kInternal);
}

}  // namespace
}  // namespace onedfu::runtime
