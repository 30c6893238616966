// Per-test scratch directories under the build tree (fresh for each call).
#pragma once

#include <filesystem>
#include <string>

namespace onedfu::test {

inline std::filesystem::path Scratch(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(ONEDFU_SIM_SCRATCH) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace onedfu::test
