// ProbeBoard: the device behind onedfu-usb-probe and the transport tests that run real host
// tools (dfu-util -l/-U, pyusb) against it: the REAL bootloader core in DFU mode (DfuModeDevice,
// dfu_port.h) on a small board held in RAM, so a probe needs no state directory.
//
// The board (kBoardJson, parsed by host::ParseBoardJson like every board file): one memory,
// "Internal Flash" at 0x08000000, 4 sectors of 16 KiB, the bootloader in the first sector;
// USB 0483:df11, bcdDevice 0x2200. DfuSe layout "@Internal Flash  /0x08000000/01*016Ka,03*016Kg".
// Strings: manufacturer "onedfu", product "onedfu probe", serial kSerial.
// The flash starts holding PatternByte(offset) at every offset, so an UPLOAD reads a known stream.
// Host only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dfu_port.h"
#include "runtime/board.h"
#include "runtime/fake_flash.h"
#include "runtime/flash_memory.h"

namespace onedfu::sim {

class ProbeBoard {
 public:
  static constexpr const char* kBoardJson = R"({
    "id": "usb-probe",
    "usb": { "vid": "0x0483", "pid": "0xdf11", "bcd_device": "0x2200" },
    "memories": [ { "name": "internal", "label": "Internal Flash", "base": "0x08000000",
                    "sectors": "4*16K", "mapped": true } ],
    "regions": [
      { "name": "bootloader", "memory": "internal", "offset": 0, "size": "16K", "role": "bootloader" },
      { "name": "firmware", "memory": "internal", "offset": "16K", "size": "48K", "role": "firmware" } ]
  })";
  static constexpr const char* kLayout = "@Internal Flash  /0x08000000/01*016Ka,03*016Kg";
  static constexpr const char* kSerial = "PROBE0001";

  // Byte at `offset` of the flash: low byte of offset * 31 XOR offset >> 8.
  static uint8_t PatternByte(uint32_t offset) { return static_cast<uint8_t>((offset * 31u) ^ (offset >> 8)); }

  ProbeBoard();
  ProbeBoard(const ProbeBoard&) = delete;
  ProbeBoard& operator=(const ProbeBoard&) = delete;

  // False when the board did not parse or the bootloader refused it (error() says why).
  bool ok() const { return error_.empty() && device_ && device_->ok(); }
  std::string error() const { return !error_.empty() ? error_ : device_ ? device_->error() : ""; }

  DfuModeDevice& device() { return *device_; }

 private:
  runtime::Board board_;
  std::vector<uint8_t> storage_;
  std::unique_ptr<runtime::FakeFlash> flash_;
  std::vector<runtime::FlashMemory*> memories_;
  std::unique_ptr<DfuModeDevice> device_;
  std::string error_;
};

}  // namespace onedfu::sim
