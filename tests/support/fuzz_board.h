// A harness's board (tests/fuzz/): its JSON text parsed once by the project's own parser
// (host/board_json.h). A text that is not a valid board traps (FuzzCheck): the harness is wrong.
#pragma once

#include <utility>

#include "fuzz_check.h"
#include "host/board_json.h"

namespace onedfu::fuzz {

// `kJson`: the board's JSON text, a constant of the harness; parsed on the first call.
template <const char* kJson>
const runtime::Board& FuzzBoard() {
  static const runtime::Board board = [] {
    auto parsed = host::ParseBoardJson(kJson, "fuzz-board.json");
    FuzzCheck(parsed.ok());
    return std::move(parsed).value();
  }();
  return board;
}

}  // namespace onedfu::fuzz
