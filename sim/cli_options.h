// The command line of onedfu-sim and onedfu-usb-probe, in one place: the exit codes, the option
// parser every subcommand uses (`--name value`, `--name=value`, flags (`--name`), and
// positionals, in any order; `--` ends the options) and the number parser. Host only,
// header-only, never throws.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace onedfu::sim {

// Exit codes of the simulator's commands (`run` returns the wrapped command's status instead
// of kExitOk/kExitFailure).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the work failed (bad input, failed check)
inline constexpr int kExitUsage = 2;    // bad command line
inline constexpr int kExitSetup = 125;  // the board or the virtual USB bus could not be set up

struct SubcommandOptions {
  std::map<std::string, std::string> values;  // "--board" -> "pybd-sf6.json" (last one wins)
  std::map<std::string, std::vector<std::string>> repeated;  // every value of each option, in order
  std::set<std::string> flags;                // "--verbose"
  std::vector<std::string> positional;
  std::vector<std::string> after_dashes;      // the arguments after `--` (e.g. a command)
  bool dashes = false;                        // `--` was given
  std::string error;                          // non-empty: what is wrong with the arguments

  bool Has(const std::string& name) const { return values.count(name) != 0; }
  std::string Value(const std::string& name, const std::string& fallback = "") const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
  bool Flag(const std::string& name) const { return flags.count(name) != 0; }
  // Every value given for a repeatable option (`--trust A --trust B`), in order.
  std::vector<std::string> All(const std::string& name) const {
    auto it = repeated.find(name);
    return it == repeated.end() ? std::vector<std::string>() : it->second;
  }
};

// `value_options` take a value, `flag_options` do not; anything else starting with "--" (or
// a single "-x") is an error. "-h" is reported as the flag "--help", "-v" as "--verbose" when
// that is a flag option.
inline SubcommandOptions ParseSubcommandOptions(const std::vector<std::string>& args,
                                                const std::set<std::string>& value_options,
                                                const std::set<std::string>& flag_options) {
  SubcommandOptions out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.dashes = true;
      out.after_dashes.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (a == "-h") {
      out.flags.insert("--help");
      continue;
    }
    if (a == "-v" && flag_options.count("--verbose")) {
      out.flags.insert("--verbose");
      continue;
    }
    if (a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      continue;
    }
    const size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    if (value_options.count(name)) {
      if (eq != std::string::npos) {
        out.values[name] = a.substr(eq + 1);
        out.repeated[name].push_back(out.values[name]);
      } else if (i + 1 < args.size()) {
        out.values[name] = args[++i];
        out.repeated[name].push_back(out.values[name]);
      } else {
        out.error = "option " + name + " needs a value";
        return out;
      }
    } else if (flag_options.count(name) && eq == std::string::npos) {
      out.flags.insert(name);
    } else {
      out.error = "unknown option '" + a + "'";
      return out;
    }
  }
  return out;
}

// A number of a command line: decimal, or hexadecimal after "0x"; at most `max`. False for
// anything else (empty, signs, trailing characters, too large).
inline bool ParseNumber(const std::string& text, unsigned long long max, unsigned long long* out) {
  const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  const size_t start = hex ? 2 : 0;
  if (text.size() == start) return false;
  unsigned long long value = 0;
  for (size_t i = start; i < text.size(); ++i) {
    const char c = text[i];
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (hex && c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (hex && c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return false;
    }
    const unsigned base = hex ? 16 : 10;
    if (value > (max - digit) / base) return false;
    value = value * base + digit;
  }
  *out = value;
  return true;
}

}  // namespace onedfu::sim
