// `onedfu-sim run` robustness (issue 12, items 11 and 12): one run per state directory (a second
// one is refused, naming the board in use), a SIGKILLed run leaves nothing stale that the next run
// does not clean (its umockdev testbed directory, noted in the state directory; stats.json never
// names an earlier command), and an argument that is not UTF-8 is recorded escaped, not a crash.
// Each case runs the real onedfu-sim as a child process; the command under it is a shell.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim_run.h"

using namespace onedfu;

namespace {

namespace fs = std::filesystem;
using test::Sim;
using test::Slurp;

std::vector<fs::path> Entries(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) found.push_back(entry.path());
  }
  return found;
}

}  // namespace

TEST_CASE("onedfu-sim run: a second run on the same --state is refused, naming the board in use") {
  Sim sim("run_lock");
  const fs::path inner_log = sim.state.parent_path() / "inner.log";
  // The command of the first run starts a second run on the same state directory, so the
  // first one holds the lock for the whole of the second (no timing involved).
  const std::string inner = std::string(ONEDFU_SIM_EXE) + " run --board " + sim.board_file.string() + " --state " +
                            sim.state.string() + " -- true > " + inner_log.string() + " 2>&1; echo $? >> " +
                            inner_log.string();
  REQUIRE(sim.RunWith({"sh", "-c", inner}) == 0);
  const std::string said = Slurp(inner_log);
  INFO(said);
  CHECK(said.find("onedfu-sim run: state directory " + sim.state.string() +
                  " is in use by another onedfu-sim (pid ") != std::string::npos);
  CHECK(said.find(", board pybd-sf6): wait for it to finish or use another --state") != std::string::npos);
  CHECK(said.find("\n125\n") != std::string::npos);
  // The first run's stats describe its own command; the lock went with it.
  CHECK(sim.Stats()["command"][0] == "sh");
  REQUIRE(sim.RunWith({"true"}) == 0);
  CHECK(sim.Stats()["command"][0] == "true");
}

TEST_CASE("onedfu-sim run killed by SIGKILL: no stale stats.json, its testbed directory is removed next run") {
  Sim sim("run_kill9");
  REQUIRE(sim.RunWith({"true", "previous-command"}) == 0);
  REQUIRE(fs::exists(sim.state / "stats.json"));
  CHECK_FALSE(fs::exists(sim.state / ".umockdev-testbed"));  // a run that ends removes its testbed
  // The command kills the simulator (its pid is in the lock file).
  const std::string kill = "kill -9 $(sed -n 's/^pid \\([0-9]*\\),.*/\\1/p' " + (sim.state / ".lock").string() + ")";
  CHECK(sim.RunWith({"sh", "-c", kill}) == 128 + 9);
  // No stats.json names the previous command ...
  CHECK_FALSE(fs::exists(sim.state / "stats.json"));
  // ... and the testbed directory it could not remove is noted in the state directory.
  std::string testbed = Slurp(sim.state / ".umockdev-testbed");
  while (!testbed.empty() && testbed.back() == '\n') testbed.pop_back();
  INFO(testbed);
  REQUIRE(fs::path(testbed).filename().string().rfind("umockdev.", 0) == 0);
  CHECK(fs::is_directory(testbed));
  // The next run removes it and writes its own stats.
  REQUIRE(sim.RunWith({ONEDFU_DFU_UTIL, "-l"}) == 0);
  CHECK(sim.output.find("Found DFU: [0483:df11]") != std::string::npos);
  CHECK_FALSE(fs::exists(testbed));
  CHECK_FALSE(fs::exists(sim.state / ".umockdev-testbed"));
  CHECK(Entries(sim.state, ".stats.json.").empty());
  CHECK(sim.Stats()["command"][1] == "-l");
}

TEST_CASE("onedfu-sim run: an argument that is not UTF-8 is recorded escaped, the run exits with the command's status") {
  Sim sim("run_non_utf8");
  const std::string odd = std::string("name-\xff\xfe-") + "\xc3\xa9";  // two stray bytes, then a valid U+00E9
  REQUIRE(sim.RunWith({"true", odd}) == 0);
  INFO(sim.output);
  const nlohmann::json stats = sim.Stats();
  CHECK(stats["command"][1] == "name-\\xff\\xfe-\xc3\xa9");
  CHECK(stats["exit_status"] == 0);
  CHECK(sim.RunWith({"sh", "-c", "exit 3", odd}) == 3);
  CHECK(sim.Stats()["exit_status"] == 3);
}
