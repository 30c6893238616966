// Boards as C++ constants: the header onedfu-board-header generates from
// manifests/boards/*.json at build time, for code that cannot parse JSON (the
// Cortex-M port) and for the tests. The JSON stays the one source of a board,
// read by the one parser (board_json.h); the header only prints what it read.
//
// The header holds, per board, `inline constexpr runtime::Board k<Id>` (id
// "pybd-sf6" -> kPybdSf6) with every field spelt out in designated
// initializers, a static_assert per capacity it needs (a build with smaller
// ONEDFU_BOARD_MAX_* fails naming the capacity and the file), and
// kGeneratedBoards: every constant with the file it came from.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "host/expected.h"
#include "runtime/board.h"

namespace onedfu::host {

struct BoardSource {
  std::string file;  // as named in the header, e.g. "pybd-sf6.json"
  runtime::Board board;
};

// "pybd-sf6" -> "kPybdSf6": 'k', then each run of letters and digits between
// '-', '_' and '.' with its first letter upper-cased.
std::string BoardConstantName(std::string_view id);

// The header text. Error when two boards map to the same constant name
// (naming both files).
Expected<std::string> BoardHeader(const std::vector<BoardSource>& boards);

// The smallest ONEDFU_BOARD_MAX_* capacities that hold every board, as
// compiler flags on one line: "-DONEDFU_BOARD_MAX_NAME_LENGTH=14 ...". A
// flash-tight build with constant boards passes them to every translation unit.
std::string BoardCapacityFlags(const std::vector<BoardSource>& boards);

}  // namespace onedfu::host
