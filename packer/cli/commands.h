// The `onedfu` subcommands. Each parses its own options (Boost.Program_options)
// and returns the process exit status: 0 success, 1 the work failed (bad
// input, failed check), 2 bad usage.
#pragma once

#include <string>
#include <vector>

namespace onedfu::cli {

using Args = std::vector<std::string>;  // arguments after the subcommand name

int Pack(const Args& args);
int Inspect(const Args& args);
int Diff(const Args& args);
int Verify(const Args& args);
int Romfs(const Args& args);
int Map(const Args& args);

}  // namespace onedfu::cli
