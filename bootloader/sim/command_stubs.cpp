// Placeholders for onedfu-sim subcommands whose sources are not in this tree yet (CMake defines
// ONEDFU_SIM_HAS_POWERCUT / ONEDFU_SIM_HAS_ROMFS when powercut.cpp / romfs_command.cpp exist).
#include <cstdio>

#include "sim_commands.h"

namespace onedfu::sim {

#ifndef ONEDFU_SIM_HAS_POWERCUT
int PowercutCommand(const std::vector<std::string>& args) {
  (void)args;
  std::fputs("onedfu-sim powercut: not built into this onedfu-sim\n", stderr);
  return 2;
}
#endif

#ifndef ONEDFU_SIM_HAS_ROMFS
int RomfsCommand(const std::vector<std::string>& args) {
  (void)args;
  std::fputs("onedfu-sim romfs: not built into this onedfu-sim\n", stderr);
  return 2;
}
#endif

}  // namespace onedfu::sim
