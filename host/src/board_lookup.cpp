#include "host/board_lookup.h"

#include <algorithm>
#include <vector>

#include "host/board_json.h"

namespace onedfu::host {

namespace fs = std::filesystem;

std::optional<fs::path> FindBoardById(const std::string& id) {
  if (id.empty()) return std::nullopt;
  const fs::path dir = DefaultBoardPath().parent_path();
  std::error_code ec;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".json") files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    auto board = LoadBoardFile(file);
    if (board.ok() && id == board->id) return file;
  }
  return std::nullopt;
}

Expected<runtime::Board> ResolveBoard(const std::optional<fs::path>& explicit_path, const std::string& id) {
  if (explicit_path) return LoadBoardFile(*explicit_path);
  if (auto found = FindBoardById(id)) return LoadBoardFile(*found);
  return LoadBoardFile(DefaultBoardPath());
}

}  // namespace onedfu::host
