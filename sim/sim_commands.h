// onedfu-sim subcommands (host only, DESIGN.md 8). Each takes the arguments after its own
// name (argv[2..]) and returns the process exit status (0 = success, 2 = usage error,
// 1 = other failure; `run` returns the wrapped command's exit status).
#pragma once

#include <string>
#include <vector>

namespace onedfu::sim {

// `onedfu-sim run --board BOARD.json --state DIR [--enter-dfu] -- COMMAND ARGS...`
// (sim/run_command.cpp).
int RunCommandMain(const std::vector<std::string>& args);

// `onedfu-sim powercut ...` (sim/powercut_command.cpp).
int PowercutCommand(const std::vector<std::string>& args);

// `onedfu-sim romfs ...` (sim/romfs_command.cpp).
int RomfsCommand(const std::vector<std::string>& args);

}  // namespace onedfu::sim
