// RunChildProcess (sim/child_process.h): exit statuses, a command that cannot start, the
// environment it is given, and a command that runs past its timeout and is killed.
#include "child_process.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace onedfu::sim {
namespace {

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin"};

TEST_CASE("RunChildProcess returns the exit status of a command that exits") {
  std::string error;
  CHECK(RunChildProcess({"sh", "-c", "exit 0"}, kEnv, 0, &error) == 0);
  CHECK(RunChildProcess({"sh", "-c", "exit 7"}, kEnv, 60000, &error) == 7);
  CHECK(RunChildProcess({"sh", "-c", "kill -TERM $$"}, kEnv, 0, &error) == 128 + 15);
  CHECK(error.empty());
}

TEST_CASE("RunChildProcess gives the child exactly the environment passed") {
  std::string error;
  const std::string script = "test \"$ONEDFU_CHILD_TEST\" = yes && test -z \"$HOME\"";
  CHECK(RunChildProcess({"sh", "-c", script}, {"PATH=/usr/bin:/bin", "ONEDFU_CHILD_TEST=yes"}, 0, &error) == 0);
  CHECK(RunChildProcess({"sh", "-c", script}, kEnv, 0, &error) == 1);
}

TEST_CASE("RunChildProcess reports a command that cannot start") {
  std::string error;
  CHECK(RunChildProcess({"/nonexistent/onedfu-no-such-command"}, kEnv, 0, &error) == -1);
  CHECK(error.find("cannot run /nonexistent/onedfu-no-such-command: ") == 0);
  error.clear();
  CHECK(RunChildProcess({}, kEnv, 0, &error) == -1);
  CHECK(error == "RunChildProcess: empty command");
}

TEST_CASE("RunChildProcess kills a command that runs past its timeout") {
  std::string error;
  CHECK(RunChildProcess({"sleep", "30"}, kEnv, 100, &error) == -1);
  CHECK(error == "sleep did not finish within 100 ms and was killed");
  error.clear();
  CHECK(RunChildProcess({"true"}, kEnv, 100, &error) == 0);  // the next command runs normally
  CHECK(error.empty());
}

}  // namespace
}  // namespace onedfu::sim
