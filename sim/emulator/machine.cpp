#include "machine.h"

#include <unicorn/unicorn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cxxabi.h>
#include <fstream>
#include <iterator>

#include "otg_fs.h"
#include "peripherals.h"

namespace onedfu::sim::emu {
namespace {

constexpr uint32_t kRamBase = 0x20000000;
constexpr uint32_t kRamSize = 512 * 1024;   // DTCM 128K + SRAM1 368K + SRAM2 16K
constexpr uint64_t kCyclesPerAccess = 8;    // what one peripheral access costs in the clock

uint32_t Le32(const std::vector<uint8_t>& b, size_t at) {
  return b[at] | b[at + 1] << 8 | b[at + 2] << 16 | static_cast<uint32_t>(b[at + 3]) << 24;
}
uint16_t Le16(const std::vector<uint8_t>& b, size_t at) { return static_cast<uint16_t>(b[at] | b[at + 1] << 8); }

// A mapped page: up to two peripherals by offset range.
struct Page {
  Machine* machine;
  uint32_t base;
  struct Part {
    uint32_t from, to;  // offsets in the page, [from, to)
    Peripheral* peripheral;
  } parts[2];
  int count;
  const Part* Find(uint32_t offset) const {
    for (int i = 0; i < count; ++i) {
      if (offset >= parts[i].from && offset < parts[i].to) return &parts[i];
    }
    return nullptr;
  }
};

uint64_t MmioReadCb(uc_engine*, uint64_t offset, unsigned size, void* user) {
  auto* page = static_cast<Page*>(user);
  const Page::Part* part = page->Find(static_cast<uint32_t>(offset));
  if (part == nullptr) {
    page->machine->OnBadAccess("read of unmodeled peripheral address", page->base + static_cast<uint32_t>(offset), size);
    return 0;
  }
  return page->machine->MmioRead(*part->peripheral, static_cast<uint32_t>(offset) - part->from, size);
}

void MmioWriteCb(uc_engine*, uint64_t offset, unsigned size, uint64_t value, void* user) {
  auto* page = static_cast<Page*>(user);
  const Page::Part* part = page->Find(static_cast<uint32_t>(offset));
  if (part == nullptr) {
    page->machine->OnBadAccess("write of unmodeled peripheral address", page->base + static_cast<uint32_t>(offset), size);
    return;
  }
  page->machine->MmioWrite(*part->peripheral, static_cast<uint32_t>(offset) - part->from, size, static_cast<uint32_t>(value));
}

bool InvalidCb(uc_engine*, uc_mem_type type, uint64_t address, int size, int64_t value, void* user) {
  auto* m = static_cast<Machine*>(user);
  const uint32_t a = static_cast<uint32_t>(address);
  (void)value;
  const char* what = "access to unmapped address";
  switch (type) {
    case UC_MEM_READ_PROT:
    case UC_MEM_FETCH_PROT: what = "read of the QUADSPI window while QUADSPI is not in memory-mapped mode at"; break;
    case UC_MEM_WRITE_PROT: what = "store to read-only memory at"; break;
    case UC_MEM_READ_UNMAPPED: what = "read of unmapped address"; break;
    case UC_MEM_WRITE_UNMAPPED: what = "write of unmapped address"; break;
    case UC_MEM_FETCH_UNMAPPED: what = "instruction fetch from unmapped address"; break;
    default: break;
  }
  m->OnBadAccess(what, a, static_cast<unsigned>(size));
  return false;
}

// A CPU store into internal flash (mapped writable so that the store does not take Unicorn's
// protection-fault path, which retranslates the block: ~65 us per store, 4.4 s of CPU for
// 256 KiB). The FLASH model programs the FileFlash and mirrors it; Unicorn then stores the same
// value (a store the model refuses stops the run, and the next Reset reloads the mirror).
void FlashWriteCb(uc_engine*, uc_mem_type, uint64_t address, int size, int64_t value, void* user) {
  static_cast<Machine*>(user)->OnFlashStore(static_cast<uint32_t>(address), static_cast<unsigned>(size),
                                            static_cast<uint64_t>(value));
}

void BlockCb(uc_engine*, uint64_t address, uint32_t size, void* user) { static_cast<Machine*>(user)->OnBlock(address, size); }

void InterruptCb(uc_engine*, uint32_t number, void* user) {
  auto* m = static_cast<Machine*>(user);
  m->Fault("CPU exception " + std::to_string(number) + " (the port uses no interrupts; a fault or BKPT/SVC)");
  m->CheckStop();
}

}  // namespace

std::string Hex(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%08llx", static_cast<unsigned long long>(v));
  return text;
}

host::Expected<ElfImage> LoadElf(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return host::Error{path + ": cannot open"};
  const std::vector<uint8_t> b((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (b.size() < 52 || std::memcmp(b.data(), "\x7f" "ELF", 4) != 0) return host::Error{path + ": not an ELF file"};
  if (b[4] != 1 || b[5] != 1 || Le16(b, 18) != 40) return host::Error{path + ": not a 32-bit little-endian ARM ELF"};
  ElfImage image;
  const uint32_t phoff = Le32(b, 28), shoff = Le32(b, 32);
  const uint16_t phentsize = Le16(b, 42), phnum = Le16(b, 44), shentsize = Le16(b, 46), shnum = Le16(b, 48);
  for (uint16_t i = 0; i < phnum; ++i) {
    const size_t at = phoff + size_t{i} * phentsize;
    if (at + 32 > b.size()) return host::Error{path + ": program header " + std::to_string(i) + " runs past the end"};
    if (Le32(b, at) != 1) continue;  // PT_LOAD
    const uint32_t offset = Le32(b, at + 4), paddr = Le32(b, at + 12), filesz = Le32(b, at + 16);
    if (filesz == 0) continue;
    if (uint64_t{offset} + filesz > b.size()) return host::Error{path + ": segment " + std::to_string(i) + " runs past the end"};
    image.segments.push_back({paddr, std::vector<uint8_t>(b.begin() + offset, b.begin() + offset + filesz)});
  }
  if (image.segments.empty()) return host::Error{path + ": no loadable segment"};
  for (uint16_t i = 0; i < shnum; ++i) {
    const size_t at = shoff + size_t{i} * shentsize;
    if (at + 40 > b.size() || Le32(b, at + 4) != 2) continue;  // SHT_SYMTAB
    const uint32_t sym_off = Le32(b, at + 16), sym_size = Le32(b, at + 20), link = Le32(b, at + 24);
    const size_t str_at = shoff + size_t{link} * shentsize;
    if (str_at + 40 > b.size()) break;
    const uint32_t str_off = Le32(b, str_at + 16), str_size = Le32(b, str_at + 20);
    for (uint32_t s = 0; s + 16 <= sym_size && uint64_t{sym_off} + s + 16 <= b.size(); s += 16) {
      const size_t e = sym_off + s;
      if ((b[e + 12] & 0xf) != 2) continue;  // STT_FUNC
      const uint32_t name = Le32(b, e);
      if (name >= str_size || uint64_t{str_off} + str_size > b.size()) continue;
      const char* raw = reinterpret_cast<const char*>(b.data() + str_off + name);
      std::string text(raw, strnlen(raw, str_size - name));
      int status = 0;
      char* demangled = abi::__cxa_demangle(text.c_str(), nullptr, nullptr, &status);
      if (status == 0 && demangled != nullptr) text = demangled;
      std::free(demangled);
      image.functions.push_back({Le32(b, e + 4) & ~1u, Le32(b, e + 8), text});
    }
  }
  return image;
}

Machine::Machine(SimBoard& board) : board_(board), trace_(std::getenv("ONEDFU_EMU_TRACE") != nullptr) {}

Machine::~Machine() {
  if (cpu_.joinable()) {
    std::unique_lock<std::mutex> lock(mu_);
    Unwind(lock);
    quit_ = true;
    cv_.notify_all();
    lock.unlock();
    cpu_.join();
  }
  if (uc_ != nullptr) uc_close(uc_);
}

host::Expected<std::unique_ptr<Machine>> Machine::Create(SimBoard& board) {
  const runtime::Board& b = board.board();
  if (b.memory_count < 2 || !b.memories[0].mapped || !b.memories[1].mapped || b.memories[0].size() % 4096 != 0 ||
      b.memories[1].size() % 4096 != 0) {
    return host::Error{std::string("emulator: board '") + b.id +
                       "' is not the STM32F767 layout the port is built for (internal flash, then memory-mapped QSPI)"};
  }
  std::unique_ptr<Machine> m(new Machine(board));
  if (auto ok = m->Setup(); !ok.ok()) return ok.error();
  m->cpu_ = std::thread([raw = m.get()] { raw->CpuThread(); });
  m->Reset(true);
  return m;
}

host::Outcome Machine::Setup() {
  rcc_ = std::make_unique<RccModel>(*this);
  flash_ = std::make_unique<FlashModel>(*this);
  gpio_ = std::make_unique<GpioModel>(*this);
  qspi_ = std::make_unique<QspiModel>(*this);
  scs_ = std::make_unique<ScsModel>(*this);
  otg_ = std::make_unique<OtgFsModel>(*this);
  if (uc_open(UC_ARCH_ARM, static_cast<uc_mode>(UC_MODE_THUMB | UC_MODE_MCLASS), &uc_) != UC_ERR_OK) {
    return host::Error{"emulator: Unicorn cannot open an ARM M-class CPU"};
  }
  if (uc_ctl_set_cpu_model(uc_, UC_CPU_ARM_CORTEX_M7) != UC_ERR_OK) return host::Error{"emulator: no Cortex-M7 model in Unicorn"};
  const runtime::Memory& internal = board_.board().memories[0];
  const runtime::Memory& qspi = board_.board().memories[1];
  bool ok = uc_mem_map(uc_, internal.base, internal.size(), UC_PROT_ALL) == UC_ERR_OK &&
            uc_mem_map(uc_, kRamBase, kRamSize, UC_PROT_ALL) == UC_ERR_OK &&
            uc_mem_map(uc_, qspi.base, qspi.size(), UC_PROT_NONE) == UC_ERR_OK;
  const auto map_page = [&](uint32_t base, uint32_t size, std::initializer_list<Page::Part> parts) {
    auto* page = new Page{this, base, {}, 0};
    for (const Page::Part& p : parts) page->parts[page->count++] = p;
    pages_memory_.emplace_back(std::shared_ptr<void>(page, [](void* p) { delete static_cast<Page*>(p); }));
    ok = ok && uc_mmio_map(uc_, base, size, MmioReadCb, page, MmioWriteCb, page) == UC_ERR_OK;
  };
  map_page(0x40020000, 0x2000, {{0, 0x2000, gpio_.get()}});
  map_page(0x40023000, 0x1000, {{0x800, 0xc00, rcc_.get()}, {0xc00, 0x1000, flash_.get()}});
  map_page(0xa0001000, 0x1000, {{0, 0x1000, qspi_.get()}});
  map_page(0x50000000, 0x2000, {{0, 0x2000, otg_.get()}});
  map_page(0xe000e000, 0x1000, {{0, 0x1000, scs_.get()}});
  if (!ok) return host::Error{"emulator: cannot map the STM32F767 memory"};
  uc_hook hook;
  if (uc_hook_add(uc_, &hook, UC_HOOK_MEM_INVALID, reinterpret_cast<void*>(InvalidCb), this, 1, 0) != UC_ERR_OK ||
      uc_hook_add(uc_, &hook, UC_HOOK_INTR, reinterpret_cast<void*>(InterruptCb), this, 1, 0) != UC_ERR_OK ||
      uc_hook_add(uc_, &hook, UC_HOOK_MEM_WRITE, reinterpret_cast<void*>(FlashWriteCb), this, internal.base,
                  internal.end() - 1) != UC_ERR_OK) {
    return host::Error{"emulator: cannot install the memory hooks"};
  }
  return host::Success();
}

void Machine::AddSymbols(const ElfImage& image) {
  symbols_.insert(symbols_.end(), image.functions.begin(), image.functions.end());
}

void Machine::Reset(bool power_on) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    Unwind(lock);
    interrupted_ = false;
  }
  for (Peripheral* p : {static_cast<Peripheral*>(rcc_.get()), static_cast<Peripheral*>(flash_.get()),
                        static_cast<Peripheral*>(gpio_.get()), static_cast<Peripheral*>(qspi_.get()),
                        static_cast<Peripheral*>(scs_.get()), static_cast<Peripheral*>(otg_.get())}) {
    p->Reset();
  }
  if (power_on) {
    const std::vector<uint8_t> zero(kRamSize, 0);
    uc_mem_write(uc_, kRamBase, zero.data(), zero.size());
  }
  for (size_t i = 0; i < 2; ++i) {
    const runtime::Memory& memory = board_.board().memories[i];
    MirrorFlash(memory.base, memory.size());
  }
  SetQspiWindowReadable(false);
  int regs[] = {UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3, UC_ARM_REG_R4, UC_ARM_REG_R5,
                UC_ARM_REG_R6, UC_ARM_REG_R7, UC_ARM_REG_R8, UC_ARM_REG_R9, UC_ARM_REG_R10, UC_ARM_REG_R11,
                UC_ARM_REG_R12, UC_ARM_REG_PRIMASK, UC_ARM_REG_CONTROL};
  const uint32_t zero = 0;
  for (int r : regs) uc_reg_write(uc_, r, &zero);
  const uint32_t lr = 0xffffffff;
  uc_reg_write(uc_, UC_ARM_REG_LR, &lr);
  uint32_t vectors[2] = {0, 0};
  ReadMemory(board_.board().memories[0].base, vectors, sizeof vectors);
  uc_reg_write(uc_, UC_ARM_REG_MSP, &vectors[0]);
  uc_reg_write(uc_, UC_ARM_REG_SP, &vectors[0]);
  const uint32_t pc = vectors[1] & ~1u;
  uc_reg_write(uc_, UC_ARM_REG_PC, &pc);
  fault_.clear();
  reset_requested_ = false;
  timed_out_ = false;
}

bool Machine::RunUntil(const std::function<bool()>& until, unsigned max_wall_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!fault_.empty() || reset_requested_ || interrupted_) return false;
  if (until()) return true;
  until_ = &until;
  until_held_ = false;
  timed_out_ = false;
  cpu_turn_ = true;
  cv_.notify_all();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_wall_ms);
  if (!cv_.wait_until(lock, deadline, [&] { return !cpu_turn_; })) {
    timed_out_ = true;
    interrupted_ = true;
    Unwind(lock);
  }
  until_ = nullptr;
  return until_held_;
}

void Machine::Unwind(std::unique_lock<std::mutex>& lock) {
  if (!inside_emu_) {
    cpu_turn_ = false;
    return;
  }
  unwinding_ = true;
  uc_emu_stop(uc_);
  cpu_turn_ = true;  // releases an access paused in CheckStop
  cv_.notify_all();
  cv_.wait(lock, [&] { return !inside_emu_; });
  cpu_turn_ = false;
  unwinding_ = false;
}

void Machine::CpuThread() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return (cpu_turn_ && !inside_emu_) || quit_; });
    if (quit_) return;
    inside_emu_ = true;
    const uint32_t pc = Pc();
    lock.unlock();
    const uc_err err = uc_emu_start(uc_, pc | 1, 0xffffffff, 0, 0);
    lock.lock();
    inside_emu_ = false;
    if (!unwinding_ && fault_.empty() && !reset_requested_) {
      fault_ = std::string("CPU stopped: ") + uc_strerror(err);
    }
    unwinding_ = false;
    cpu_turn_ = false;
    cv_.notify_all();
  }
}

// Runs on the CPU thread after every peripheral access (mu_ not held).
void Machine::CheckStop() {
  std::unique_lock<std::mutex> lock(mu_);
  if (unwinding_) return;
  if (!fault_.empty() || reset_requested_) {
    uc_emu_stop(uc_);
    unwinding_ = true;  // the rest of this translated block has no effect
    return;
  }
  if (until_ == nullptr || !(*until_)()) return;
  until_held_ = true;
  cpu_turn_ = false;
  cv_.notify_all();
  cv_.wait(lock, [&] { return cpu_turn_ || quit_; });
  if (quit_) uc_emu_stop(uc_);
}

void Machine::Fault(const std::string& what) {
  if (unwinding_ || !fault_.empty()) return;
  const uint32_t pc = Pc();
  fault_ = what + " (PC " + Hex(pc) + " " + DescribePc(pc) + ")";
}

void Machine::RequestSystemReset() {
  if (!unwinding_) reset_requested_ = true;
}

uint32_t Machine::Pc() {
  uint32_t pc = 0;
  uc_reg_read(uc_, UC_ARM_REG_PC, &pc);
  return pc;
}

std::string Machine::DescribePc(uint32_t pc) const {
  for (const ElfImage::Symbol& s : symbols_) {
    if (pc >= s.address && pc < s.address + (s.size == 0 ? 2 : s.size)) return "in " + s.name;
  }
  return "outside known functions";
}

void Machine::StartCounting() {
  blocks_.clear();
  per_symbol_.assign(symbols_.size() + 1, 0);
  instructions_ = 0;
  counting_ = true;
  if (count_hook_ != 0) return;
  uc_hook hook = 0;
  if (uc_hook_add(uc_, &hook, UC_HOOK_BLOCK, reinterpret_cast<void*>(BlockCb), this, 1, 0) != UC_ERR_OK) {
    counting_ = false;
    return;
  }
  count_hook_ = hook;
  // Code translated before has no block hook: the boot runs from the bootloader region, whose
  // blocks are translated again (a whole-cache flush costs more than a second per run).
  const runtime::Board& b = board_.board();
  const runtime::Region* boot = b.FindRole(runtime::RegionRole::kBootloader);
  if (boot != nullptr) {
    const uint64_t start = b.RegionStart(*boot);
    uc_ctl_remove_cache(uc_, start, start + boot->size);
  } else {
    uc_ctl_flush_tlb(uc_);
  }
}

void Machine::StopCounting() {
  counting_ = false;
  if (count_hook_ == 0) return;
  // Unicorn defers the removal while the CPU is inside uc_emu_start; blocks translated
  // meanwhile still call the (now empty) hook list, new ones do not.
  uc_hook_del(uc_, count_hook_);
  count_hook_ = 0;
}

void Machine::OnBlock(uint64_t address, uint32_t size) {
  if (!counting_ || unwinding_) return;
  address &= ~uint64_t{1};
  auto [it, fresh] = blocks_.try_emplace(address << 16 | (size & 0xffff));
  Block& block = it->second;
  if (fresh) {
    std::vector<uint8_t> code(size);
    if (size > 0 && uc_mem_read(uc_, address, code.data(), size) != UC_ERR_OK) code.clear();
    for (size_t at = 0; at + 1 < code.size();) {
      const unsigned top = code[at + 1] >> 3;  // bits 15..11 of the halfword
      at += top >= 0x1d ? 4 : 2;
      ++block.instructions;
    }
    block.symbol = symbols_.size();
    for (size_t i = 0; i < symbols_.size(); ++i) {
      const ElfImage::Symbol& s = symbols_[i];
      if (address >= s.address && address < s.address + (s.size == 0 ? 2 : s.size)) {
        block.symbol = i;
        break;
      }
    }
  }
  instructions_ += block.instructions;
  per_symbol_[block.symbol] += block.instructions;
}

std::vector<std::pair<std::string, uint64_t>> Machine::TopFunctions(size_t n) const {
  std::vector<std::pair<std::string, uint64_t>> all;
  for (size_t i = 0; i < per_symbol_.size(); ++i) {
    if (per_symbol_[i] == 0) continue;
    all.emplace_back(i < symbols_.size() ? symbols_[i].name : "outside known functions", per_symbol_[i]);
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (all.size() > n) all.resize(n);
  return all;
}

void Machine::MirrorFlash(uint32_t address, uint32_t size) {
  FileFlash* f = board_.FlashAt(address);
  if (f == nullptr || size == 0) return;
  if (!qspi_readable_ && board_.board().memories[1].Contains(address)) {
    // The CPU cannot see the QSPI window now: copy once it can (every uc_mem_write
    // invalidates translated code and costs about as much as a whole page program).
    qspi_dirty_from_ = std::min<uint64_t>(qspi_dirty_from_, address);
    qspi_dirty_to_ = std::max<uint64_t>(qspi_dirty_to_, uint64_t{address} + size);
    return;
  }
  const runtime::ByteSpan all = f->contents();
  const uint32_t at = address - f->geometry().base;
  uc_mem_write(uc_, address, all.data() + at, size);
}

void Machine::MirrorQspiNow() {
  if (qspi_dirty_from_ >= qspi_dirty_to_) return;
  FileFlash* f = board_.FlashAt(static_cast<uint32_t>(qspi_dirty_from_));
  if (f != nullptr) {
    const runtime::ByteSpan all = f->contents();
    uc_mem_write(uc_, qspi_dirty_from_, all.data() + (qspi_dirty_from_ - f->geometry().base),
                 qspi_dirty_to_ - qspi_dirty_from_);
  }
  qspi_dirty_from_ = UINT64_MAX;
  qspi_dirty_to_ = 0;
}

void Machine::SetQspiWindowReadable(bool readable) {
  if (uc_ == nullptr || readable == qspi_readable_) return;
  if (readable) MirrorQspiNow();
  qspi_readable_ = readable;
  const runtime::Memory& qspi = board_.board().memories[1];
  uc_mem_protect(uc_, qspi.base, qspi.size(), readable ? (UC_PROT_READ | UC_PROT_EXEC) : UC_PROT_NONE);
}

bool Machine::ReadMemory(uint32_t address, void* out, size_t size) {
  MirrorQspiNow();
  return uc_mem_read(uc_, address, out, size) == UC_ERR_OK;
}

bool Machine::WriteMemory(uint32_t address, const void* data, size_t size) {
  return uc_mem_write(uc_, address, data, size) == UC_ERR_OK;
}

bool Machine::Admit(Peripheral& p, uint32_t offset, unsigned size, bool write) {
  if (!fault_.empty()) return false;
  if (const char* bit = p.ClockOff(offset)) {
    Fault(p.NameAt(offset) + (write ? " written" : " read") + " with its clock off (" + bit + ")");
    return false;
  }
  if (!p.Accepts(offset, size)) {
    Fault(std::to_string(size * 8) + "-bit " + (write ? "write to " : "read of ") + p.NameAt(offset) + "+" + Hex(offset) +
          " (the register takes 32-bit accesses)");
    return false;
  }
  return true;
}

uint64_t Machine::MmioRead(Peripheral& p, uint32_t offset, unsigned size) {
  if (unwinding_) return 0;
  cycles_ += kCyclesPerAccess;
  uint32_t value = 0;
  if (Admit(p, offset, size, false) && !p.Read(offset, &value)) {
    Fault(std::string("read of unmodeled register ") + p.name() + "+" + Hex(offset));
  }
  if (trace_) std::fprintf(stderr, "emu: %s+%s -> %s\n", p.name(), Hex(offset).c_str(), Hex(value).c_str());
  CheckStop();
  return value;
}

void Machine::MmioWrite(Peripheral& p, uint32_t offset, unsigned size, uint32_t value) {
  if (unwinding_) return;
  cycles_ += kCyclesPerAccess;
  if (trace_) std::fprintf(stderr, "emu: %s+%s <- %s\n", p.name(), Hex(offset).c_str(), Hex(value).c_str());
  if (Admit(p, offset, size, true) && !p.Write(offset, size, value)) {
    Fault(std::string("write of unmodeled register ") + p.name() + "+" + Hex(offset) + " (value " + Hex(value) + ")");
  }
  CheckStop();
}

bool Machine::OnFlashStore(uint32_t address, unsigned size, uint64_t value) {
  if (unwinding_) return true;
  cycles_ += kCyclesPerAccess;
  const bool ok = flash_->Store(address, size, value);
  CheckStop();
  return ok;
}

void Machine::OnBadAccess(const char* what, uint32_t address, unsigned size) {
  Fault(std::string(what) + " " + Hex(address) + " (" + std::to_string(size * 8) + "-bit)");
  CheckStop();
}

}  // namespace onedfu::sim::emu
