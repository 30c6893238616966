// Helpers shared by the tests: temporary and scratch directories, data patterns, input files.
#pragma once

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>
#include <filesystem>
#include <random>
#include <string>

#include "host/file_io.h"
#include "hex.h"

namespace onedfu::testing {

// A fresh, empty directory, removed with its contents at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "onedfu-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// A fresh, empty directory `name` under this test executable's scratch folder in the build
// tree (ONEDFU_TEST_SCRATCH), kept after the test for inspection; emptied when asked for again.
inline std::filesystem::path Scratch(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(ONEDFU_TEST_SCRATCH) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// `n` pseudo-random bytes, the same for the same seed.
inline host::Bytes RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  host::Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// Writes `bytes` to `path` (creating folders) and returns `path`.
inline std::filesystem::path WriteBytes(const std::filesystem::path& path, const host::Bytes& bytes) {
  std::filesystem::create_directories(path.parent_path());
  REQUIRE(host::WriteFileAtomic(path, bytes).ok());
  return path;
}

}  // namespace onedfu::testing

namespace onedfu::testing {

// Writes the product-size fixture into `dir` with scripts/make-product-inputs
// (the one generator the suite and the benchmarks share); `args` are its
// options, e.g. "--grow-asset" or "--many-files 2000". Returns `dir`.
inline std::filesystem::path MakeProductInputs(const std::filesystem::path& dir, const std::string& args = "") {
  const std::string command = std::string(ONEDFU_SOURCE_DIR) + "/scripts/make-product-inputs '" + dir.string() +
                              "' --shared '" + ONEDFU_SHARED_DIR + "' " + args;
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, command);
  return dir;
}

// A shell command's exit status and its stdout + stderr.
struct CommandResult {
  int status = -1;  // -1 when it did not exit normally
  std::string output;
};

inline CommandResult RunShell(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  const int raw = ::pclose(pipe);
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return result;
}

}  // namespace onedfu::testing
