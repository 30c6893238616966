// onedfu-board-header: boards as C++ constants (host/board_header.h).
//   onedfu-board-header -o OUT.h BOARD.json...      write the header
//   onedfu-board-header --capacities BOARD.json...  print the ONEDFU_BOARD_MAX_* flags that fit
// Exit 0 on success, 1 when a board or the output fails (the message names
// the file), 2 on a usage error.
#include <cstdio>
#include <string>
#include <vector>

#include "host/board_header.h"
#include "host/board_json.h"
#include "host/file_io.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: onedfu-board-header -o OUT.h BOARD.json...\n"
               "       onedfu-board-header --capacities BOARD.json...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace onedfu::host;
  std::string out;
  bool capacities = false;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-o" && i + 1 < argc) {
      out = argv[++i];
    } else if (arg == "--capacities") {
      capacities = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return Usage();
    } else {
      files.push_back(arg);
    }
  }
  if (files.empty() || capacities == !out.empty()) return Usage();

  std::vector<BoardSource> boards;
  for (const std::string& file : files) {
    auto board = LoadBoardFile(file);
    if (!board) {
      std::fprintf(stderr, "onedfu-board-header: %s\n", board.error().message.c_str());
      return 1;
    }
    boards.push_back({std::filesystem::path(file).filename().string(), *board});
  }
  if (capacities) {
    std::printf("%s\n", BoardCapacityFlags(boards).c_str());
    return 0;
  }
  auto header = BoardHeader(boards);
  if (!header) {
    std::fprintf(stderr, "onedfu-board-header: %s\n", header.error().message.c_str());
    return 1;
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(header->data());
  if (auto written = WriteFileAtomic(out, {bytes, header->size()}); !written) {
    std::fprintf(stderr, "onedfu-board-header: %s\n", written.error().message.c_str());
    return 1;
  }
  return 0;
}
