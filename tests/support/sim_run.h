// Helpers for tests that drive the simulator as a child process: `onedfu-sim run --board B
// --state DIR -- COMMAND` (real peers and `onedfu flash` through the virtual USB bus), the
// board's flash files and stats.json afterwards. Needs ONEDFU_SIM_EXE, ONEDFU_SOURCE_DIR and
// ONEDFU_TEST_SCRATCH (tests/CMakeLists.txt defines them for the executables that use it).
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "host/dfuse_file.h"
#include "host/file_io.h"
#include "test_support.h"

extern char** environ;

namespace onedfu::test {

// Runs argv with stdout+stderr into `log`; returns the exit status (128 + signal if killed).
inline int Run(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<uint8_t> ReadBytes(const std::filesystem::path& path) {
  const std::string s = Slurp(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}

// One simulated PYBD-SF6 board (state directory) and the last command run against it.
struct Sim {
  static constexpr uint32_t kInternalBase = 0x08000000;
  static constexpr uint32_t kQspiBase = 0x90000000;

  std::filesystem::path board_file = std::filesystem::path(ONEDFU_SOURCE_DIR) / "manifests/boards/pybd-sf6.json";
  std::filesystem::path state;
  std::filesystem::path log;
  std::string output;
  int status = -1;

  explicit Sim(const std::string& name) : state(testing::Scratch(name) / "state"), log(state.parent_path() / "log.txt") {}

  // onedfu-sim run ... -- COMMAND
  // `sim_options` go before `--` (e.g. {"--unplug-after", "40"}).
  int RunWith(std::vector<std::string> command, bool enter_dfu = false, std::vector<std::string> sim_options = {}) {
    std::vector<std::string> argv = {ONEDFU_SIM_EXE, "run", "--board", board_file.string(), "--state",
                                     state.string(), "--timeout", "60000"};
    if (enter_dfu) argv.push_back("--enter-dfu");
    argv.insert(argv.end(), sim_options.begin(), sim_options.end());
    argv.push_back("--");
    argv.insert(argv.end(), command.begin(), command.end());
    status = Run(argv, log);
    output = Slurp(log);
    return status;
  }

  std::vector<uint8_t> Internal() const { return ReadBytes(state / "internal.bin"); }
  std::vector<uint8_t> Qspi() const { return ReadBytes(state / "qspi.bin"); }
  // Bytes at an absolute address from the memory files.
  std::vector<uint8_t> At(uint32_t address, size_t n) const {
    const bool qspi = address >= kQspiBase;
    const std::vector<uint8_t> mem = qspi ? Qspi() : Internal();
    const size_t off = address - (qspi ? kQspiBase : kInternalBase);
    if (off + n > mem.size()) return {};
    return std::vector<uint8_t>(mem.begin() + static_cast<std::ptrdiff_t>(off),
                                mem.begin() + static_cast<std::ptrdiff_t>(off + n));
  }
  nlohmann::json Stats() const { return nlohmann::json::parse(Slurp(state / "stats.json")); }
};

// Several simulated boards on one virtual bus: `onedfu-sim run --board B --state DIR1
// [OPTIONS1] --state DIR2 [OPTIONS2] ... -- COMMAND`; board k (0-based) is on bus path
// "1-<k+1>" with serial SIM00000000<k+1> (kept in its state directory).
struct SimBus {
  std::filesystem::path board_file = std::filesystem::path(ONEDFU_SOURCE_DIR) / "manifests/boards/pybd-sf6.json";
  std::filesystem::path dir;
  std::vector<Sim> boards;
  std::filesystem::path log;
  std::string output;
  int status = -1;

  SimBus(const std::string& name, size_t count) : dir(testing::Scratch(name)), log(dir / "log.txt") {
    for (size_t i = 0; i < count; ++i) {
      boards.emplace_back(name + "/board" + std::to_string(i + 1));
      boards.back().board_file = board_file;
    }
  }
  static std::string Serial(size_t k) {
    char text[16];
    std::snprintf(text, sizeof text, "SIM%09zu", k + 1);
    return text;
  }
  // `per_board[k]` go right after board k's --state; `sim_options` before the first --state.
  int RunWith(std::vector<std::string> command, std::vector<std::vector<std::string>> per_board = {},
              std::vector<std::string> sim_options = {}) {
    std::vector<std::string> argv = {ONEDFU_SIM_EXE, "run", "--board", board_file.string(), "--timeout", "60000"};
    argv.insert(argv.end(), sim_options.begin(), sim_options.end());
    for (size_t k = 0; k < boards.size(); ++k) {
      argv.push_back("--state");
      argv.push_back(boards[k].state.string());
      if (k < per_board.size()) argv.insert(argv.end(), per_board[k].begin(), per_board[k].end());
    }
    argv.push_back("--");
    argv.insert(argv.end(), command.begin(), command.end());
    status = Run(argv, log);
    output = Slurp(log);
    return status;
  }
};

// A package packed by the real `onedfu pack` (ONEDFU_CLI_EXE) and its elements as read back.
struct Package {
  std::filesystem::path file;
  std::vector<host::DfuseElement> elements;
};

// `onedfu pack [MANIFEST] EXTRA... -o <scratch>/packages/NAME`; the file must hold one target.
inline Package Pack(const std::string& name, const std::filesystem::path& manifest,
                    const std::vector<std::string>& extra) {
  static const std::filesystem::path dir = testing::Scratch("packages");
  Package p;
  p.file = dir / name;
  std::vector<std::string> argv = {ONEDFU_CLI_EXE, "pack", "-o", p.file.string()};
  if (!manifest.empty()) argv.push_back(manifest.string());
  argv.insert(argv.end(), extra.begin(), extra.end());
  REQUIRE(Run(argv, dir / (name + ".log")) == 0);
  auto bytes = host::ReadFile(p.file);
  REQUIRE(bytes.ok());
  auto image = host::ParseDfuse(bytes.value(), p.file.string());
  REQUIRE(image.ok());
  REQUIRE(image.value().targets.size() == 1);
  p.elements = image.value().targets[0].elements;
  return p;
}

// PYBD-SF6 facts the dfu-util checks below (and the tests of both bootloader builds) rely on.
inline constexpr uint32_t kPybdBootloaderSize = 32 * 1024;
inline constexpr uint32_t kPybdFilesystemOffset = 0x1c0000;  // board file: region "filesystem"
inline constexpr const char* kPybdLayout =
    "@Internal Flash  /0x08000000/01*032Ka,03*032Kg,01*128Kg,07*256Kg/0x90000000/512*04Kg";

// dfu-util checks every bootloader build must pass on PYBD-SF6, the host build of the core and
// the emulated Cortex-M binary alike; `sim_options` select the build (e.g. {"--emulate", ELF}).

// A forced download into the bootloader's sector fails and changes no byte of flash.
inline void CheckForcedBootloaderWriteRefused(Sim& sim, const std::vector<std::string>& sim_options) {
  REQUIRE(sim.RunWith({"true"}, false, sim_options) == 0);
  const std::vector<uint8_t> before = sim.Internal();
  const std::filesystem::path x = sim.state.parent_path() / "x.bin";
  std::ofstream(x, std::ios::binary) << std::string(512, 'X');
  const int status = sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-s", "0x08000000:force", "-D", x.string()}, false, sim_options);
  INFO(sim.output);
  CHECK(status != 0);
  CHECK(sim.Internal() == before);
  CHECK(sim.Stats()["flash"]["erases"] == 0);
  CHECK(sim.Stats()["flash"]["bytes_programmed"] == 0);
}

// On a flashed board with user data in the filesystem region, `:mass-erase:force` then a
// download keeps the bootloader and the filesystem byte for byte, writes the download and
// erases all of QSPI. Returns the run's stats.json for further checks.
inline nlohmann::json CheckMassEraseKeepsBootloaderAndFilesystem(Sim& sim, const std::vector<std::string>& sim_options) {
  {
    std::fstream f(sim.state / "internal.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kPybdFilesystemOffset);
    f << "user data in the filesystem region";
  }
  const std::vector<uint8_t> before = sim.Internal();
  const std::filesystem::path x = sim.state.parent_path() / "x.bin";
  std::ofstream(x, std::ios::binary) << std::string(512, 'X');
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-a", "0", "-s", "0x08008000:mass-erase:force", "-D", x.string()}, true,
                      sim_options) == 0);
  INFO(sim.output);
  const std::vector<uint8_t> after = sim.Internal();
  CHECK(std::equal(before.begin(), before.begin() + kPybdBootloaderSize, after.begin()));
  CHECK(std::equal(before.begin() + kPybdFilesystemOffset, before.end(), after.begin() + kPybdFilesystemOffset));
  CHECK(sim.At(0x08008000, 512) == std::vector<uint8_t>(512, 'X'));
  const std::vector<uint8_t> qspi = sim.Qspi();
  CHECK(std::all_of(qspi.begin(), qspi.end(), [](uint8_t b) { return b == 0xff; }));
  const nlohmann::json stats = sim.Stats();
  // Internal sectors 1..10 erased once each (not sector 0 = bootloader, not 11 = filesystem).
  CHECK(stats["flash"]["memories"][0]["sector_erases"].size() == 10);
  return stats;
}

}  // namespace onedfu::test
