// The emulated STM32F767 board (host code): Unicorn 2's Cortex-M7 CPU running the real
// cross-compiled bootloader ELF (and whatever application it starts), with register-level
// models of the peripherals the port touches (peripherals.h, otg_fs.h). Flash contents live in
// the SimBoard's FileFlash objects (the same strict fakes and board timing as the host build);
// the CPU sees a mirror of them that the models keep current.
//
// Memory map (RM0410 2.2.2): internal flash at its board base (read/execute; a CPU store there
// is a program operation for the FLASH model), DTCM + SRAM1 + SRAM2 at 0x20000000 (512 KiB),
// the QUADSPI window at the QSPI memory's base (readable only while QUADSPI is in
// memory-mapped mode), peripheral pages: GPIO A..H, RCC + FLASH, QUADSPI registers, OTG FS
// (registers and FIFO 0), the system control space (SysTick, SCB). Anything else is unmapped.
//
// Stricter than silicon: an access to an unmapped address, to a register no model knows, with a
// width the model does not accept, or a sequence the reference manual forbids stops the run;
// fault() then says what, naming the register (or address) and the PC. The PC Unicorn reports
// inside a memory callback is the start of the translated block, so the message names that
// address and the ELF function containing it.
//
// Time: a virtual cycle counter (144 MHz core clock). It advances a little on every peripheral
// access and jumps forward when firmware polls a busy flag (FLASH_SR.BSY, the W25Q status in
// QUADSPI auto-polling, SysTick COUNTFLAG): the wait ends exactly when the modeled time has
// passed, without emulating every cycle of it. Busy times come from FileFlash::usage(), i.e.
// the board file's timing (runtime/flash_timing.h).
//
// Threads: the CPU runs on its own thread, and the host side (RunUntil's caller) and the CPU
// take turns: when a peripheral access makes RunUntil's condition hold, the CPU thread stops
// INSIDE that access and waits until the next RunUntil, so the emulation resumes at the exact
// instruction (Unicorn cannot resume precisely after uc_emu_stop). Only a fault, a reset
// request or a timeout end the CPU's run; after a timeout the machine runs again only after
// Reset(). Use one Machine from one host thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include "host/expected.h"
#include "sim_board.h"

struct uc_struct;

namespace onedfu::sim::emu {

inline constexpr uint64_t kCoreHz = 144'000'000;

class Machine;

// "0x%08x".
std::string Hex(uint64_t v);

// One peripheral's registers. Offsets are from the peripheral's base. The machine checks what
// every model shares before it calls Read/Write (Machine::MmioRead/MmioWrite), and stops the run
// with a message naming the register file and the PC when
//   - the peripheral's clock is off (ClockOff: "GPIOB read with its clock off (RCC_AHB1ENR)"),
//   - the access width is not one the register takes (Accepts; default 32-bit only),
//   - Read/Write return false: a register the model does not know ("unmodeled register").
// Read/Write report a forbidden sequence themselves (Machine::Fault) and return true.
class Peripheral {
 public:
  explicit Peripheral(Machine& m) : m_(m) {}
  virtual ~Peripheral() = default;
  virtual const char* name() const = 0;
  virtual bool Read(uint32_t offset, uint32_t* value) = 0;
  virtual bool Write(uint32_t offset, unsigned size, uint32_t value) = 0;
  // Power-on / system reset values.
  virtual void Reset() = 0;

  // The register file at `offset` in messages (e.g. "GPIOB"); default name().
  virtual std::string NameAt(uint32_t offset) const {
    (void)offset;
    return name();
  }
  // The RCC enable bit that is off for the register file at `offset` (e.g.
  // "RCC_AHB3ENR.QSPIEN"), nullptr while it is clocked (default: always).
  virtual const char* ClockOff(uint32_t offset) const {
    (void)offset;
    return nullptr;
  }
  // True when the register at `offset` takes a `size`-byte access (default: 32-bit only).
  virtual bool Accepts(uint32_t offset, unsigned size) const {
    (void)offset;
    return size == 4;
  }

 protected:
  Machine& m_;
};

class RccModel;
class FlashModel;
class GpioModel;
class QspiModel;
class ScsModel;
class OtgFsModel;

// A loadable image: PT_LOAD segments of an ELF32 ARM executable (by physical address) and its
// function symbols (for fault messages).
struct ElfImage {
  struct Segment {
    uint32_t address = 0;
    std::vector<uint8_t> bytes;
  };
  std::vector<Segment> segments;
  struct Symbol {
    uint32_t address = 0;
    uint32_t size = 0;
    std::string name;
  };
  std::vector<Symbol> functions;
};
// Reads an ELF32 little-endian ARM executable. Errors name the file and what is wrong.
host::Expected<ElfImage> LoadElf(const std::string& path);

class Machine {
 public:
  // `board` must be the pybd-sf6 layout the port is built for (internal flash first, QSPI
  // second); it must outlive the machine.
  static host::Expected<std::unique_ptr<Machine>> Create(SimBoard& board);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Function symbols used to name PCs in fault messages (any number of images).
  void AddSymbols(const ElfImage& image);

  // Power-on or system reset: every peripheral to its reset values, the flash mirror reloaded
  // from the FileFlash contents, CPU registers cleared, MSP and PC from the vector table at the
  // internal flash base. RAM keeps its contents except on power-on (`power_on`: zeroed).
  void Reset(bool power_on);

  // Runs the CPU until `until` holds (checked after every peripheral access), the firmware
  // asks for a system reset, a fault stops it, or `max_wall_ms` of host time passed. Returns
  // true when `until` held; false otherwise (see reset_requested(), fault(), timed_out()).
  bool RunUntil(const std::function<bool()>& until, unsigned max_wall_ms = 10000);

  // Stops the run with `what` + " (PC 0x... in FUNCTION)". The first fault is kept.
  void Fault(const std::string& what);
  const std::string& fault() const { return fault_; }
  bool timed_out() const { return timed_out_; }
  // AIRCR.SYSRESETREQ was written (cleared by Reset()).
  bool reset_requested() const { return reset_requested_; }
  void RequestSystemReset();

  // Instruction counting (ARMv7-M Thumb: a halfword whose top five bits are 11101, 11110 or
  // 11111 starts a 32-bit instruction, any other a 16-bit one), per translated block as the CPU
  // enters it, so a block left early (a fault, a stop) counts whole. StartCounting must be
  // called while the CPU does not run (after Reset, before RunUntil); it zeroes the counts.
  // StopCounting may be called at any time; afterwards counting costs nothing in newly
  // translated code.
  void StartCounting();
  void StopCounting();
  uint64_t instructions() const { return instructions_; }
  // Executed instructions per function (the AddSymbols names; "outside known functions"),
  // most first, at most `n`.
  std::vector<std::pair<std::string, uint64_t>> TopFunctions(size_t n) const;
  void OnBlock(uint64_t address, uint32_t size);  // the Unicorn block hook

  // Virtual time.
  uint64_t cycles() const { return cycles_; }
  void Advance(uint64_t cycles) { cycles_ += cycles; }
  static uint64_t UsToCycles(uint64_t us) { return us * (kCoreHz / 1'000'000); }

  // The flash mirror: after a model changed FileFlash bytes, copy [address, address + size) to
  // the CPU's view (QSPI bytes once the window is readable again: memory-mapped mode, or a
  // ReadMemory). A CPU store into internal flash needs none: Unicorn stores the same value.
  void MirrorFlash(uint32_t address, uint32_t size);
  // QUADSPI memory-mapped mode on/off: the window's protection follows.
  void SetQspiWindowReadable(bool readable);
  // Reads/writes emulated memory (RAM or flash mirror); false when unmapped.
  bool ReadMemory(uint32_t address, void* out, size_t size);
  bool WriteMemory(uint32_t address, const void* data, size_t size);
  uint32_t Pc();
  std::string DescribePc(uint32_t pc) const;

  // The board and the peripheral models (the models refuse access while RCC has their clock off).
  SimBoard& board() { return board_; }
  RccModel& rcc() { return *rcc_; }
  FlashModel& flash() { return *flash_; }
  GpioModel& gpio() { return *gpio_; }
  QspiModel& qspi() { return *qspi_; }
  ScsModel& scs() { return *scs_; }
  OtgFsModel& otg() { return *otg_; }

  // Used by the Unicorn callbacks: the checks every model shares (Peripheral), then the model.
  uint64_t MmioRead(Peripheral& p, uint32_t offset, unsigned size);
  void MmioWrite(Peripheral& p, uint32_t offset, unsigned size, uint32_t value);
  bool OnFlashStore(uint32_t address, unsigned size, uint64_t value);
  void OnBadAccess(const char* what, uint32_t address, unsigned size);
  // After every access on the CPU thread: stop on a fault or reset request, or hand the turn
  // to the host when RunUntil's condition holds.
  void CheckStop();

 private:
  explicit Machine(SimBoard& board);
  host::Outcome Setup();
  void CpuThread();
  // False (and the run stops) when `p` may not take this access: clock off, wrong width.
  bool Admit(Peripheral& p, uint32_t offset, unsigned size, bool write);
  // Ends the CPU thread's current uc_emu_start (stop + release a paused access) and waits.
  void Unwind(std::unique_lock<std::mutex>& lock);

  SimBoard& board_;
  uc_struct* uc_ = nullptr;
  std::unique_ptr<RccModel> rcc_;
  std::unique_ptr<FlashModel> flash_;
  std::unique_ptr<GpioModel> gpio_;
  std::unique_ptr<QspiModel> qspi_;
  std::unique_ptr<ScsModel> scs_;
  std::unique_ptr<OtgFsModel> otg_;
  std::vector<std::shared_ptr<void>> pages_memory_;  // the MMIO page dispatchers (machine.cpp)
  std::vector<ElfImage::Symbol> symbols_;
  struct Block {
    uint32_t instructions = 0;
    size_t symbol = 0;  // index into symbols_, symbols_.size() = outside known functions
  };
  std::unordered_map<uint64_t, Block> blocks_;  // key: address << 16 | size
  std::vector<uint64_t> per_symbol_;
  uint64_t instructions_ = 0;
  bool counting_ = false;
  size_t count_hook_ = 0;  // uc_hook; 0: none
  const std::function<bool()>* until_ = nullptr;
  bool stopped_ = false;
  bool until_held_ = false;
  bool timed_out_ = false;
  bool reset_requested_ = false;
  bool qspi_readable_ = false;
  // QSPI bytes changed while the window was not readable, copied when it becomes readable.
  uint64_t qspi_dirty_from_ = UINT64_MAX, qspi_dirty_to_ = 0;
  void MirrorQspiNow();
  std::string fault_;
  uint64_t cycles_ = 0;
  std::thread cpu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool cpu_turn_ = false;    // true: the CPU thread may run; false: the host's turn
  bool inside_emu_ = false;  // the CPU thread is inside uc_emu_start
  bool unwinding_ = false;   // accesses after a stop request have no effect
  bool interrupted_ = false; // a timeout stopped the CPU at an imprecise PC: Reset() first
  bool quit_ = false;
  bool trace_ = false;  // ONEDFU_EMU_TRACE set: log every peripheral access to stderr
};

}  // namespace onedfu::sim::emu
