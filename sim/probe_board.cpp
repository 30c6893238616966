#include "probe_board.h"

#include "host/board_json.h"

namespace onedfu::sim {

ProbeBoard::ProbeBoard() {
  host::Expected<runtime::Board> board = host::ParseBoardJson(kBoardJson, "usb-probe board");
  if (!board) {
    error_ = board.error().message;
    return;
  }
  board_ = *board;
  const runtime::Memory& memory = board_.memories[0];
  storage_.resize(memory.size());
  for (uint32_t i = 0; i < storage_.size(); ++i) storage_[i] = PatternByte(i);
  flash_ = std::make_unique<runtime::FakeFlash>(memory, storage_);
  memories_ = {flash_.get()};
  DfuPortStrings strings;
  strings.product = "onedfu probe";
  strings.serial = kSerial;
  device_ = std::make_unique<DfuModeDevice>(board_, memories_, strings, bootloader::DfuOptions{});
}

}  // namespace onedfu::sim
