// Which board file describes a package, when the user did not say.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "host/expected.h"
#include "runtime/board.h"

namespace onedfu::host {

// The board whose "id" is `id` among the installed/source board files, or
// nullopt when none matches (unreadable files are skipped).
std::optional<std::filesystem::path> FindBoardById(const std::string& id);

// `explicit_path` when given; else the board named by `id` when found; else
// the default board.
Expected<runtime::Board> ResolveBoard(const std::optional<std::filesystem::path>& explicit_path, const std::string& id);

}  // namespace onedfu::host
