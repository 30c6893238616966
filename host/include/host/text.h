// Text that comes from outside (file names, DfuSe target names, strings in a
// boot record written by another tool) on its way into JSON and messages.
// JSON (and nlohmann/json, which throws on it) needs valid UTF-8; these keep
// every byte visible instead.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace onedfu::host {

// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates,
// nothing above U+10FFFF), as JSON requires.
bool IsUtf8(std::string_view text);

// `text` with every byte that is not part of a well-formed UTF-8 sequence,
// and every ASCII control character (but line feeds and tabs when
// `keep_lines`: multi-line text), written as \xNN; valid UTF-8 without
// control characters comes back unchanged. The result is always valid UTF-8.
std::string EscapeText(std::string_view text, bool keep_lines = false);

}  // namespace onedfu::host
