#include "bootloader/dfuse_flash.h"

#include <cstring>

#include "runtime/flash_timing.h"

namespace onedfu::bootloader {

using runtime::Board;
using runtime::ByteSpan;
using runtime::Diag;
using runtime::FlashMemory;
using runtime::LoadLe32;
using runtime::MutableByteSpan;

namespace {

constexpr uint8_t kCommandList[] = {kDfuseGetCommands, kDfuseSetAddress, kDfuseErase, kDfuseReadUnprotect, kDfuseHash};

}  // namespace

DfuseFlash::DfuseFlash(const Board& board, std::span<FlashMemory* const> memories)
    : flash_(board, memories), address_pointer_(board.memory_count > 0 ? board.memories[0].base : 0) {}

const char* DfuseFlash::RefuseBlock(uint16_t block) const {
  return block == 1 ? "block 1 is undefined in DfuSe" : nullptr;
}

DfuStatus DfuseFlash::BlockAddress(uint16_t block, uint32_t* address, Diag* message) const {
  const uint64_t at = uint64_t{address_pointer_} + uint64_t{static_cast<uint16_t>(block - 2)} * kTransferSize;
  if (at > 0xffffffffu) {
    if (message) message->Str("address ").Hex(at).Str(" is outside every memory");
    return DfuStatus::kErrAddress;
  }
  *address = static_cast<uint32_t>(at);
  return DfuStatus::kOk;
}

uint64_t DfuseFlash::DownloadEstimateUs(uint16_t block, ByteSpan data) const {
  if (block >= 2) {
    uint32_t address = 0;
    if (BlockAddress(block, &address, nullptr) != DfuStatus::kOk) return 0;
    return flash_.WriteEstimateUs(address, data.size());
  }
  if (data.size() == 9 && data[0] == kDfuseHash) return runtime::HashTimeUs(flash_.board().boot_cost, LoadLe32(data.data() + 5));
  if (data.empty() || data[0] != kDfuseErase) return 0;
  if (data.size() == 1) return flash_.MassEraseEstimateUs();
  if (data.size() == 5) return flash_.EraseEstimateUs(LoadLe32(data.data() + 1));
  return 0;
}

DfuStatus DfuseFlash::Command(ByteSpan command, Diag& message) {
  const uint8_t op = command[0];
  const auto wrong_length = [&](size_t want) {
    message.Str("DfuSe command ").Hex(op, 2).Str(" needs ").Dec(want).Str(" bytes, got ").Dec(command.size());
    return DfuStatus::kErrUnknown;
  };
  DfuStatus st = DfuStatus::kOk;
  switch (op) {
    case kDfuseSetAddress: {
      if (command.size() != 5) return wrong_length(5);
      const uint32_t address = LoadLe32(command.data() + 1);
      st = flash_.CheckAddress(address);
      if (st == DfuStatus::kOk) address_pointer_ = address;
      break;
    }
    case kDfuseErase:
      if (command.size() == 1) {
        st = flash_.MassErase();
        break;
      }
      if (command.size() != 5) return wrong_length(5);
      st = flash_.ErasePageContaining(LoadLe32(command.data() + 1));
      break;
    case kDfuseReadUnprotect:
      if (command.size() != 1) return wrong_length(1);
      break;
    case kDfuseHash: {
      if (command.size() != 9) return wrong_length(9);
      st = flash_.Hash(LoadLe32(command.data() + 1), LoadLe32(command.data() + 5), hash_reply_ + 1);
      if (st == DfuStatus::kOk) hash_reply_[0] = kDfuseHash;
      break;
    }
    default:
      message.Str("unknown DfuSe command ").Hex(op, 2);
      return DfuStatus::kErrUnknown;
  }
  if (st != DfuStatus::kOk) message.Str(flash_.message());
  return st;
}

DfuStatus DfuseFlash::Download(uint16_t block, ByteSpan data, Diag& message) {
  if (data.empty()) return DfuStatus::kOk;
  hash_reply_[0] = 0;  // a hash result is for the UPLOAD right after its command only
  if (block == 0) return Command(data, message);
  uint32_t address = 0;
  if (DfuStatus st = BlockAddress(block, &address, &message); st != DfuStatus::kOk) return st;
  const DfuStatus st = flash_.Write(address, data);
  if (st != DfuStatus::kOk) message.Str(flash_.message());
  return st;
}

DfuStatus DfuseFlash::Upload(uint16_t block, MutableByteSpan out, size_t* length, Diag& message) {
  *length = 0;
  if (block == 0) {
    const bool hash = hash_reply_[0] == kDfuseHash;
    const uint8_t* reply = hash ? hash_reply_ : kCommandList;
    const size_t size = hash ? sizeof hash_reply_ : sizeof kCommandList;
    const size_t n = out.size() < size ? out.size() : size;
    if (n > 0) std::memcpy(out.data(), reply, n);
    hash_reply_[0] = 0;  // delivered (or cut short): gone
    *length = n;
    return DfuStatus::kOk;
  }
  // A block past 4 GiB is past the end of every memory: an empty block, the end of the data.
  uint32_t address = 0;
  if (BlockAddress(block, &address, nullptr) != DfuStatus::kOk) return DfuStatus::kOk;
  const DfuStatus st = flash_.Read(address, out, length);
  if (st != DfuStatus::kOk) message.Str(flash_.message());
  return st;
}

}  // namespace onedfu::bootloader
