// host/json_reader.h helpers that take text from outside.
#include <doctest/doctest.h>

#include <string>

#include "host/json_reader.h"

using onedfu::host::json_reader::JsonNestingDepth;

TEST_CASE("json reader: nesting depth counts arrays and objects, not brackets in strings") {
  CHECK(JsonNestingDepth("") == 0);
  CHECK(JsonNestingDepth("42") == 0);
  CHECK(JsonNestingDepth(R"({"a": [1, {"b": []}], "c": {}})") == 4);
  CHECK(JsonNestingDepth(R"(["[[[{{", "\"[[", "\\"])") == 1);
  CHECK(JsonNestingDepth(std::string(100000, '[') + std::string(100000, ']')) == 100000);
  CHECK(JsonNestingDepth("]]]][") == 1);  // not JSON: still a bound
}
