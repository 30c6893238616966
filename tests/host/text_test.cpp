// Text from outside on its way into JSON and messages (host/text.h).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "host/text.h"

namespace onedfu::host {
namespace {

TEST_CASE("IsUtf8: well-formed UTF-8 only, as JSON requires") {
  CHECK(IsUtf8(""));
  CHECK(IsUtf8("plain ascii"));
  CHECK(IsUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  CHECK_FALSE(IsUtf8("\xff"));
  CHECK_FALSE(IsUtf8("\xc3"));               // truncated
  CHECK_FALSE(IsUtf8("\xc0\xaf"));           // overlong '/'
  CHECK_FALSE(IsUtf8("\xe0\x80\xaf"));       // overlong
  CHECK_FALSE(IsUtf8("\xed\xa0\x80"));       // a surrogate
  CHECK_FALSE(IsUtf8("\xf4\x90\x80\x80"));   // above U+10FFFF
  CHECK_FALSE(IsUtf8("\xe2\x82"));           // truncated
  CHECK_FALSE(IsUtf8("a\x80z"));             // a lone continuation byte
}

TEST_CASE("EscapeText: odd bytes and control characters as \\xNN, the rest unchanged, always valid JSON text") {
  CHECK(EscapeText("fw.bin") == "fw.bin");
  CHECK(EscapeText("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(EscapeText("fw\xff.bin") == "fw\\xff.bin");
  CHECK(EscapeText("\xc3(") == "\\xc3(");
  CHECK(EscapeText("a\nb\tc\x7f") == "a\\x0ab\\x09c\\x7f");
  CHECK(EscapeText("a\nb\tc\x01", true) == "a\nb\tc\\x01");
  for (const std::string& odd : {std::string("\xff\xfe"), std::string("\xed\xa0\x80"), std::string("x\xf0\x9f\x98"), std::string("n\0ul", 4)}) {
    CAPTURE(odd);
    const std::string escaped = EscapeText(odd);
    CHECK(IsUtf8(escaped));
    CHECK_NOTHROW((void)nlohmann::json(escaped).dump());
  }
}

}  // namespace
}  // namespace onedfu::host
