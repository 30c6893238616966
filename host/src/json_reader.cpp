#include "host/json_reader.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

namespace onedfu::host::json_reader {

void Throw(const std::string& path, const std::string& message) { throw JsonFieldError(path, message); }

std::string Child(const std::string& path, std::string_view key) {
  std::string out = path;
  out += '/';
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Child(const std::string& path, size_t index) { return path + "/" + std::to_string(index); }

namespace {

// Where the parser is, so a duplicate key can be reported with its path.
struct Frame {
  bool array = false;
  std::string key;     // objects: the current member's key
  size_t index = 0;    // arrays: the current element's index
  std::set<std::string> keys;
};

std::string PathOfFrames(const std::vector<Frame>& frames, size_t count) {
  std::string path;
  for (size_t i = 0; i < count; ++i) {
    path = frames[i].array ? Child(path, frames[i].index) : Child(path, frames[i].key);
  }
  return path;
}

std::string StripNlohmannPrefix(const char* what) {
  std::string text = what;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find("] ");
    if (close != std::string::npos) text.erase(0, close + 2);
  }
  return text;
}

}  // namespace

Json ParseDocument(std::string_view text) {
  std::vector<Frame> frames;
  // Called for every parse event; keeps `frames` in step with the nesting.
  auto on_event = [&frames](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start: {
        Frame frame;
        frame.array = event == Json::parse_event_t::array_start;
        frames.push_back(std::move(frame));
        break;
      }
      case Json::parse_event_t::key: {
        Frame& top = frames.back();
        top.key = parsed.get<std::string>();
        if (!top.keys.insert(top.key).second) {
          Throw(PathOfFrames(frames, frames.size()), "duplicate key");
        }
        break;
      }
      case Json::parse_event_t::value:
        if (!frames.empty() && frames.back().array) ++frames.back().index;
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        frames.pop_back();
        if (!frames.empty() && frames.back().array) ++frames.back().index;
        break;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Json::parse_error& e) {
    Throw("", StripNlohmannPrefix(e.what()));
  }
}

size_t JsonNestingDepth(std::string_view text) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::string Describe(const std::string& source, const JsonFieldError& e) {
  if (e.path().empty()) return source + ": " + e.what();
  return source + ": " + e.path() + ": " + e.what();
}

Object::Object(const Json& value, std::string path) : value_(value), path_(std::move(path)) {
  if (!value_.is_object()) Throw(path_, "expected an object");
}

void Object::AllowOnly(std::initializer_list<std::string_view> allowed) const {
  for (auto it = value_.begin(); it != value_.end(); ++it) {
    bool known = false;
    for (std::string_view key : allowed) known = known || key == it.key();
    if (!known) Throw(PathOf(it.key()), "unknown key");
  }
}

const Json* Object::Find(std::string_view key) const {
  auto it = value_.find(std::string(key));
  return it == value_.end() ? nullptr : &*it;
}

const Json& Object::Require(std::string_view key) const {
  const Json* found = Find(key);
  if (found == nullptr) Throw(path_, "missing key \"" + std::string(key) + "\"");
  return *found;
}

std::string ReadString(const Json& value, const std::string& path) {
  if (!value.is_string()) Throw(path, "expected a string");
  return value.get<std::string>();
}

bool ReadBool(const Json& value, const std::string& path) {
  if (!value.is_boolean()) Throw(path, "expected true or false");
  return value.get<bool>();
}

bool ParseNumberText(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  uint64_t value = 0;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    for (char c : text.substr(2)) {
      int digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return false;
      }
      if (value >> 60 != 0) return false;
      value = value << 4 | static_cast<uint64_t>(digit);
    }
    *out = value;
    return true;
  }
  uint64_t scale = 1;
  if (text.back() == 'K') {
    scale = 1024;
    text.remove_suffix(1);
  } else if (text.back() == 'M') {
    scale = 1024 * 1024;
    text.remove_suffix(1);
  }
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  if (value > UINT64_MAX / scale) return false;
  *out = value * scale;
  return true;
}

uint64_t ReadNumber(const Json& value, const std::string& path, uint64_t max) {
  uint64_t n = 0;
  if (value.is_number_unsigned()) {
    n = value.get<uint64_t>();
  } else if (value.is_number_integer()) {
    Throw(path, "must not be negative");
  } else if (value.is_number_float()) {
    Throw(path, "must be a whole number");
  } else if (value.is_string()) {
    const std::string text = value.get<std::string>();
    if (!ParseNumberText(text, &n)) {
      Throw(path, "\"" + text + "\" is not a number (write 4096, \"0x1000\", \"4K\" or \"1M\")");
    }
  } else {
    Throw(path, "expected a number or a string such as \"0x1000\" or \"4K\"");
  }
  if (n > max) Throw(path, std::to_string(n) + " is larger than the maximum " + std::to_string(max));
  return n;
}

double ReadReal(const Json& value, const std::string& path, double max) {
  if (!value.is_number()) Throw(path, "expected a number");
  const double v = value.get<double>();
  if (!(v >= 0)) Throw(path, "must not be negative");
  if (!std::isfinite(v) || v > max) Throw(path, "is too large");
  return v;
}

}  // namespace onedfu::host::json_reader
