// The `onedfu` subcommands. Each parses its own options (Boost.Program_options)
// and returns the process exit status: 0 success, 1 the work failed (bad
// input, failed check), 2 bad usage.
#pragma once

#include <boost/program_options.hpp>
#include <optional>
#include <string>
#include <vector>

#include "host/expected.h"

namespace onedfu::cli {

using Args = std::vector<std::string>;  // arguments after the subcommand name

inline constexpr int kOk = 0;
inline constexpr int kFailed = 1;
inline constexpr int kUsage = 2;

// Parses `args` against `options` (+ positionals, + --help); prints help or a usage error.
// Returns nullopt with *exit_code set when the command must stop.
std::optional<boost::program_options::variables_map> ParseArgs(
    const char* usage, const Args& args, boost::program_options::options_description& options,
    const boost::program_options::positional_options_description& positional, int* exit_code);
// Prints "onedfu: <message>" to stderr; returns kFailed.
int Report(const host::Error& error);

int Pack(const Args& args);
int Inspect(const Args& args);
int Diff(const Args& args);
int Verify(const Args& args);
int Keygen(const Args& args);
int Romfs(const Args& args);
int Map(const Args& args);
int Flash(const Args& args);  // flash_commands.cpp
int List(const Args& args);

}  // namespace onedfu::cli
