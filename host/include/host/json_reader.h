// Internal to the packer library: strict reading of our JSON files (board
// layouts, package manifests) with nlohmann/json. Every problem throws a
// JsonFieldError carrying the JSON pointer of the offending value; the public
// parse functions catch it (and nlohmann's own exceptions) and return an
// Error "<source>: <path>: <message>". Nothing here escapes the library.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace onedfu::host::json_reader {

using Json = nlohmann::json;

class JsonFieldError : public std::runtime_error {
 public:
  JsonFieldError(std::string path, const std::string& message)
      : std::runtime_error(message), path_(std::move(path)) {}
  // JSON pointer ("/memories/1/timing"); "" for the whole document.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

[[noreturn]] void Throw(const std::string& path, const std::string& message);

// "<path>/<key>" with the key escaped as in RFC 6901 ('~' -> "~0", '/' -> "~1").
std::string Child(const std::string& path, std::string_view key);
std::string Child(const std::string& path, size_t index);

// Parses a whole document. Syntax errors throw with path "" and say where
// (line and column); duplicate keys in one object are errors naming the key's path.
Json ParseDocument(std::string_view text);

// "<source>: <path>: <message>" (or "<source>: <message>" for the document).
std::string Describe(const std::string& source, const JsonFieldError& e);

// A JSON object at `path`: unknown keys are errors, required keys must exist.
class Object {
 public:
  // Throws "expected an object" unless `value` is an object.
  Object(const Json& value, std::string path);

  // Throws "<path>/<key>: unknown key" for the first key (in sorted order) not in `allowed`.
  void AllowOnly(std::initializer_list<std::string_view> allowed) const;

  const Json* Find(std::string_view key) const;
  // Throws "<path>: missing key \"<key>\"".
  const Json& Require(std::string_view key) const;
  std::string PathOf(std::string_view key) const { return Child(path_, key); }
  const std::string& path() const { return path_; }
  const Json& json() const { return value_; }

 private:
  const Json& value_;
  std::string path_;
};

std::string ReadString(const Json& value, const std::string& path);
bool ReadBool(const Json& value, const std::string& path);
// An unsigned integer: a JSON number, or a string "0x1b8000", "4096", "32K" or
// "1M" (K = 1024, M = 1024 * 1024). Throws when above `max`.
uint64_t ReadNumber(const Json& value, const std::string& path, uint64_t max);
// A non-negative JSON number (integer or fraction); throws when above `max`.
double ReadReal(const Json& value, const std::string& path, double max);

// The text grammar of ReadNumber; false on bad syntax or overflow of 64 bits.
bool ParseNumberText(std::string_view text, uint64_t* out);

// nlohmann/json copies, compares and dumps a value recursively, one stack frame per level of
// nesting: JSON from outside (a manifest inside a .dfu) nested deeper than this is not turned
// into a Json value (a 100000-deep manifest overflowed the stack of `onedfu inspect --json`).
inline constexpr size_t kMaxJsonDepth = 64;
// The deepest nesting of arrays and objects in `text` (brackets inside strings do not count);
// meaningful for valid JSON, a bound for anything else.
size_t JsonNestingDepth(std::string_view text);

}  // namespace onedfu::host::json_reader
