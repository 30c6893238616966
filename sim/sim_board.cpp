#include "sim_board.h"

#include "bootloader/boot_state.h"

#include <cstring>
#include <string>
#include <system_error>

#include "runtime/byte_reader.h"

namespace onedfu::sim {
namespace {

constexpr uint32_t kInitialStackPointer = 0x20080000;  // top of a 512 KiB SRAM (STM32F7)
constexpr size_t kVectorWords = 16;                      // SP, reset, NMI, HardFault, ...

}  // namespace

std::vector<uint8_t> BootloaderImage(const runtime::Board& board) {
  const runtime::Region* region = board.FindRole(runtime::RegionRole::kBootloader);
  if (region == nullptr || region->size == 0) return {};
  const uint32_t start = board.RegionStart(*region);
  std::vector<uint8_t> image(kVectorWords * 4, 0);
  runtime::StoreLe32(image.data(), kInitialStackPointer);
  for (size_t i = 1; i < kVectorWords; ++i) {
    // Thumb handler addresses (bit 0 set) spread over the first KiB after the table.
    const uint32_t handler = start + 0x100 + static_cast<uint32_t>(i) * 0x20 + 1;
    runtime::StoreLe32(image.data() + i * 4, handler);
  }
  const std::string text = std::string("onedfu-sim bootloader ") + board.id;
  image.insert(image.end(), text.begin(), text.end());
  image.resize((image.size() + 255) / 256 * 256, 0x00);
  if (image.size() > region->size) image.resize(region->size);
  return image;
}

host::Expected<std::unique_ptr<SimBoard>> SimBoard::Open(const runtime::Board& board,
                                                           const std::filesystem::path& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return host::Fail(state_dir.string() + ": cannot create state directory: " + ec.message());
  std::unique_ptr<SimBoard> sim(new SimBoard());
  sim->board_ = board;
  sim->state_dir_ = state_dir;
  std::vector<bool> created(board.memory_count, false);
  for (uint8_t i = 0; i < board.memory_count; ++i) {
    const runtime::Memory& memory = board.memories[i];
    auto flash = FileFlash::Open(memory, state_dir / (std::string(memory.name) + ".bin"));
    if (!flash.ok()) return flash.error();
    created[i] = flash.value()->created();
    sim->created_ = sim->created_ || created[i];
    sim->pointers_.push_back(flash.value().get());
    sim->flashes_.push_back(std::move(flash.value()));
  }
  const runtime::Region* boot = board.FindRole(runtime::RegionRole::kBootloader);
  if (boot != nullptr && boot->memory < board.memory_count && created[boot->memory]) {
    const std::vector<uint8_t> image = BootloaderImage(board);
    if (!sim->flashes_[boot->memory]->Preload(board.RegionStart(*boot), image)) {
      return host::Fail(sim->flashes_[boot->memory]->path().string() +
                          ": bootloader image does not fit the memory");
    }
    sim->flashes_[boot->memory]->Sync();
  }
  return sim;
}

FileFlash* SimBoard::FlashAt(uint32_t address) {
  for (auto& flash : flashes_) {
    if (flash->geometry().Contains(address)) return flash.get();
  }
  return nullptr;
}

bootloader::BootDecision SimBoard::Boot(bool forced_dfu) {
  for (auto& flash : flashes_) {
    flash->ClearFaults();
    flash->PowerOn();
  }
  if (!trusting_) return bootloader::Decide(board_, pointers_, forced_dfu);
  return bootloader::TrustedBoot(board_, pointers_, forced_dfu, keys_);
}

void SimBoard::SetTrust(std::vector<runtime::Ed25519PublicKey> keys) {
  trusting_ = true;
  keys_ = std::move(keys);
}

uint32_t SimBoard::SecurityCounter() { return bootloader::BootSecurityCounter(board_, pointers_); }

std::vector<uint8_t> SimBoard::Peek(uint32_t address, uint32_t size) const {
  for (const auto& flash : flashes_) {
    const runtime::Memory& m = flash->geometry();
    if (m.Contains(address) && static_cast<uint64_t>(address) + size <= m.end()) {
      const runtime::ByteSpan bytes = flash->contents().subspan(address - m.base, size);
      return std::vector<uint8_t>(bytes.begin(), bytes.end());
    }
  }
  return {};
}

runtime::Result<runtime::BootRecord> SimBoard::ReadRecord() const {
  const runtime::Region* region = board_.FindRole(runtime::RegionRole::kRecord);
  if (region == nullptr) return runtime::Status(runtime::StatusCode::kNotFound, "no record region");
  const std::vector<uint8_t> bytes = Peek(board_.RegionStart(*region), runtime::kRecordSize);
  return runtime::DecodeBootRecord(bytes, nullptr);
}

void SimBoard::ResetUsage() {
  for (auto& flash : flashes_) flash->ResetUsage();
}

bool SimBoard::Sync() {
  bool ok = true;
  for (auto& flash : flashes_) ok = flash->Sync() && ok;
  return ok;
}

}  // namespace onedfu::sim
