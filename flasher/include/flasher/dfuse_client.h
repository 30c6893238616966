// DfuseClient: the host side of USB DFU 1.1 + ST DfuSe (DESIGN.md 6) over a DfuTransport, for a
// device already opened in DFU mode. Every request that makes the device work (DfuSe command,
// data block) is followed by GETSTATUS until the device leaves dfuDNBUSY, sleeping the
// bwPollTimeout it reports (honest poll), then checked for dfuDNLOAD-IDLE.
//
// Errors are host::Error values whose message says what was asked and what the device answered:
// "erase of the sector at 0x08020000: errERASE: <the device's status string>". A device that
// left the bus reads "the board disconnected (...)" and sets gone(). When `cancel` is set (e.g.
// by SIGINT) the next request is not sent and the call fails with interrupted() set.
#pragma once

#include <algorithm>
#include <atomic>
#include <optional>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bootloader/dfu.h"
#include "flasher/dfu_transport.h"
#include "host/expected.h"
#include "host/file_io.h"
#include "runtime/sha256.h"

namespace onedfu::flasher {

struct DfuStatusReply {
  bootloader::DfuStatus status = bootloader::DfuStatus::kOk;
  uint32_t poll_ms = 0;
  bootloader::DfuState state = bootloader::DfuState::kDfuIdle;
  uint8_t string_index = 0;
};

// Counts of what the client asked of the device.
struct ClientCounters {
  uint64_t requests = 0;       // control transfers sent
  uint64_t set_addresses = 0;
  uint64_t erases = 0;
  uint64_t blocks_out = 0;
  uint64_t bytes_out = 0;      // data block payload
  uint64_t bytes_in = 0;       // UPLOAD payload
  uint64_t hashes = 0;         // hash commands (kDfuseHash)
  uint64_t bytes_hashed = 0;   // bytes they covered
  uint64_t poll_ms_slept = 0;  // total bwPollTimeout honoured
};

class DfuseClient {
 public:
  // `busy_limit_ms`: the longest one operation may keep the device busy (the bwPollTimeouts it
  // asks for, summed); a device that asks for more is reported, not waited for (bwPollTimeout
  // is 24 bits: up to 4.6 hours per poll).
  static constexpr uint32_t kDefaultBusyLimitMs = 20000;
  DfuseClient(DfuTransport& transport, uint16_t transfer_size, const std::atomic<bool>* cancel,
              uint32_t busy_limit_ms = kDefaultBusyLimitMs);

  host::Expected<DfuStatusReply> GetStatus();
  // Brings the device to dfuIDLE: CLRSTATUS after an error, ABORT from the idle states. When
  // the last reply already told the state (dfuIDLE, dfuDNLOAD-IDLE, dfuUPLOAD-IDLE), no
  // GETSTATUS is sent: at most one ABORT.
  host::Outcome EnsureIdle();
  host::Outcome SetAddress(uint32_t address);
  // Erases the sector containing `address`.
  host::Outcome EraseSector(uint32_t address);
  // Writes `data` at `address`: one set-address, then blocks 2, 3, ... of transfer_size bytes
  // (the last may be shorter). `progress(bytes)` is called after each block.
  template <typename F>
  host::Outcome Write(uint32_t address, std::span<const uint8_t> data, F&& progress);
  // Reads out.size() bytes at `address` by DfuSe UPLOAD (set-address, ABORT, blocks 2, 3, ...).
  template <typename F>
  host::Outcome Read(uint32_t address, std::span<uint8_t> out, F&& progress);
  // The DfuSe command list (UPLOAD of block 0 in dfuIDLE), e.g. 00 21 41 92 48. A pending hash
  // result from an interrupted session (it starts with kDfuseHash) is dropped and the list read
  // again.
  host::Expected<std::vector<uint8_t>> Commands();
  // SHA-256 of [address, address + length) by the onedfu hash command (length at most
  // bootloader::kDfuseHashMaxLength): command, poll, ABORT, UPLOAD of block 0.
  host::Expected<runtime::Sha256Hash> Hash(uint32_t address, uint32_t length);
  // set-address `address` (the jump address for mboot-style loaders), zero-length DNLOAD, then
  // GETSTATUS must report dfuMANIFEST: the device resets after that reply.
  host::Outcome Leave(uint32_t address);
  // The device's status string (GETSTATUS iString, or the given index), "" when unreadable.
  std::string StatusText(uint8_t index);

  bool gone() const { return gone_; }
  bool interrupted() const { return interrupted_; }
  const ClientCounters& counters() const { return counters_; }

 private:
  static constexpr uint16_t kLastBlock = 0xffff;
  host::Outcome WriteBlock(uint16_t block, std::span<const uint8_t> data, uint32_t address);
  host::Outcome ReadBlock(uint16_t block, std::span<uint8_t> out, uint32_t address);
  // GETSTATUS until not dfuDNBUSY; fails unless the device reports dfuDNLOAD-IDLE.
  host::Outcome WaitDone(const std::string& what);
  host::Outcome Command(std::span<const uint8_t> bytes, const std::string& what);
  host::Error Failed(const std::string& what, const UsbStatus& status);
  host::Error DeviceError(const std::string& what, const DfuStatusReply& reply);
  bool Cancelled(const std::string& what, host::Error* error);

  DfuTransport& transport_;
  uint16_t transfer_size_;
  const std::atomic<bool>* cancel_;
  uint32_t busy_limit_ms_;
  bool gone_ = false;
  bool interrupted_ = false;
  std::optional<bootloader::DfuState> known_;  // the device's state as the last reply told it
  ClientCounters counters_;
};

// Hex address "0x08008000".
std::string Hex32(uint32_t value);

template <typename F>
host::Outcome DfuseClient::Write(uint32_t address, std::span<const uint8_t> data, F&& progress) {
  uint16_t block = kLastBlock;  // forces a set-address first
  for (size_t at = 0; at < data.size(); at += transfer_size_, ++block) {
    if (block == kLastBlock) {  // wBlockNum is 16 bits: a new set-address every 65534 blocks
      if (auto set = SetAddress(static_cast<uint32_t>(address + at)); !set.ok()) return set.error();
      block = 2;
    }
    const size_t n = std::min<size_t>(transfer_size_, data.size() - at);
    if (auto w = WriteBlock(block, data.subspan(at, n), static_cast<uint32_t>(address + at)); !w.ok()) return w.error();
    progress(n);
  }
  return host::Success();
}

template <typename F>
host::Outcome DfuseClient::Read(uint32_t address, std::span<uint8_t> out, F&& progress) {
  uint16_t block = kLastBlock;
  for (size_t at = 0; at < out.size(); at += transfer_size_, ++block) {
    if (block == kLastBlock) {
      if (auto idle = EnsureIdle(); !idle.ok()) return idle.error();
      if (auto set = SetAddress(static_cast<uint32_t>(address + at)); !set.ok()) return set.error();
      if (auto idle = EnsureIdle(); !idle.ok()) return idle.error();
      block = 2;
    }
    const size_t n = std::min<size_t>(transfer_size_, out.size() - at);
    if (auto r = ReadBlock(block, out.subspan(at, n), static_cast<uint32_t>(address + at)); !r.ok()) return r.error();
    progress(n);
  }
  return EnsureIdle();
}

}  // namespace onedfu::flasher
