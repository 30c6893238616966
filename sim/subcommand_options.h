// A small option parser for the onedfu-sim subcommands implemented in powercut.cpp and
// romfs_command.cpp: `--name value`, `--name=value`, flags (`--name`), and positionals, in
// any order; `--` ends the options. Host only, header-only, never throws.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace onedfu::sim {

struct SubcommandOptions {
  std::map<std::string, std::string> values;  // "--board" -> "pybd-sf6.json" (last one wins)
  std::set<std::string> flags;                // "--verbose"
  std::vector<std::string> positional;
  std::string error;                          // non-empty: what is wrong with the arguments

  bool Has(const std::string& name) const { return values.count(name) != 0; }
  std::string Value(const std::string& name, const std::string& fallback = "") const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
  bool Flag(const std::string& name) const { return flags.count(name) != 0; }
};

// `value_options` take a value, `flag_options` do not; anything else starting with "--" (or
// a single "-x") is an error. "-h" is reported as the flag "--help".
inline SubcommandOptions ParseSubcommandOptions(const std::vector<std::string>& args,
                                                const std::set<std::string>& value_options,
                                                const std::set<std::string>& flag_options) {
  SubcommandOptions out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.positional.insert(out.positional.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (a == "-h") {
      out.flags.insert("--help");
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
      } else if (i + 1 < args.size()) {
        out.values[name] = args[++i];
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

}  // namespace onedfu::sim
