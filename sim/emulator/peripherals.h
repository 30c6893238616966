// Register-level models of the STM32F767 peripherals the Cortex-M port touches, each stricter
// than silicon (machine.h): RCC (RM0410 5.3), embedded FLASH controller (RM0410 3.7), GPIO
// (RM0410 6.4), QUADSPI (RM0410 14.5) with a W25Q128JV command model (datasheet 7.1, 8.2), and
// the Cortex-M7 system control space: SysTick and SCB (ARMv7-M ARM B3.2, B3.3). Only the
// registers and bits the port uses are modeled; any other register stops the run, as does an
// access with the peripheral's clock off or of a width the register does not take (the checks
// the Peripheral base declares and the machine applies to every model, machine.h).
// Host code.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "machine.h"

namespace onedfu::sim::emu {

class RccModel final : public Peripheral {
 public:
  using Peripheral::Peripheral;
  const char* name() const override { return "RCC"; }
  bool Read(uint32_t offset, uint32_t* value) override;
  bool Write(uint32_t offset, unsigned size, uint32_t value) override;
  void Reset() override;

  bool GpioClock(unsigned port) const { return (ahb1enr_ >> port) & 1; }
  bool QspiClock() const { return (ahb3enr_ >> 1) & 1; }
  bool OtgFsClock() const { return (ahb2enr_ >> 7) & 1; }
  // SYSCLK and PLL48CK in Hz from the current settings (HSE 25 MHz on this board).
  uint64_t SysclkHz() const;
  uint64_t Pll48Hz() const;

 private:
  uint32_t cr_ = 0, pllcfgr_ = 0, cfgr_ = 0, ahb1enr_ = 0, ahb2enr_ = 0, ahb3enr_ = 0, apb1enr_ = 0,
           apb2enr_ = 0, dckcfgr2_ = 0;
};

class FlashModel final : public Peripheral {
 public:
  using Peripheral::Peripheral;
  const char* name() const override { return "FLASH"; }
  bool Read(uint32_t offset, uint32_t* value) override;
  bool Write(uint32_t offset, unsigned size, uint32_t value) override;
  void Reset() override;
  // A CPU store into internal flash. False: the run stopped (Fault).
  bool Store(uint32_t address, unsigned size, uint64_t value);
  uint32_t latency() const { return acr_ & 0xf; }
  uint64_t operations() const { return operations_; }

 private:
  bool Busy() const { return m_.cycles() < busy_until_; }
  void Start();
  void Charge(uint64_t before_us);

  uint32_t acr_ = 0, sr_ = 0, cr_ = 0;
  int key_stage_ = 0;       // 1: KEY1 seen
  bool key_error_ = false;  // wrong key: locked until reset
  uint64_t busy_until_ = 0;
  uint64_t operations_ = 0;
};

class GpioModel final : public Peripheral {
 public:
  using Peripheral::Peripheral;
  const char* name() const override { return "GPIO"; }
  bool Read(uint32_t offset, uint32_t* value) override;
  bool Write(uint32_t offset, unsigned size, uint32_t value) override;
  void Reset() override;
  // The USR switch (PA14, active low with the pull-up) held down.
  std::string NameAt(uint32_t offset) const override;
  const char* ClockOff(uint32_t offset) const override;
  void SetButton(bool held) { button_ = held; }
  uint32_t odr(unsigned port) const { return ports_[port].odr; }
  uint32_t moder(unsigned port) const { return ports_[port].moder; }
  uint32_t afr(unsigned port, unsigned pin) const { return (ports_[port].afr[pin / 8] >> (4 * (pin % 8))) & 0xf; }

 private:
  struct Port {
    uint32_t moder = 0, otyper = 0, ospeedr = 0, pupdr = 0, odr = 0;
    uint32_t afr[2] = {0, 0};
  };
  static constexpr unsigned kPorts = 5;  // A..E
  std::array<Port, kPorts> ports_{};
  bool button_ = false;
};

// W25Q128JV-class NOR behind QUADSPI bank 1 (datasheet 7.1 status register 1, 8.2 commands).
class W25qModel {
 public:
  explicit W25qModel(Machine& m) : m_(m) {}
  void Reset() { wel_ = false; busy_until_ = 0; }
  // Executes an instruction without data (06h, 20h, D8h). False: the run stopped.
  bool Command(uint8_t instruction, bool has_address, uint32_t address);
  // 02h page program with its data. False: the run stopped.
  bool PageProgram(uint32_t address, const uint8_t* data, size_t size);
  // Status register 1: bit 0 BUSY (WIP), bit 1 WEL.
  uint8_t Status() const { return static_cast<uint8_t>((Busy() ? 1 : 0) | (wel_ ? 2 : 0)); }
  bool Busy() const { return m_.cycles() < busy_until_; }
  uint64_t busy_until() const { return busy_until_; }

 private:
  Machine& m_;
  bool wel_ = false;
  uint64_t busy_until_ = 0;
};

class QspiModel final : public Peripheral {
 public:
  explicit QspiModel(Machine& m) : Peripheral(m), flash_(m) {}
  const char* name() const override { return "QUADSPI"; }
  bool Read(uint32_t offset, uint32_t* value) override;
  bool Write(uint32_t offset, unsigned size, uint32_t value) override;
  void Reset() override;
  const char* ClockOff(uint32_t offset) const override;
  bool Accepts(uint32_t offset, unsigned size) const override;
  bool memory_mapped() const { return mode_ == Mode::kMapped; }
  W25qModel& nor() { return flash_; }

 private:
  enum class Mode : uint8_t { kIdle, kWaitAddress, kWriteData, kPolling, kMapped };
  static constexpr unsigned kFifoBytes = 32;
  uint32_t Sr() const;
  void StartCcr();
  void Finish();  // transfer complete: TCF, BUSY off
  void SetMode(Mode mode);

  W25qModel flash_;
  uint32_t cr_ = 0, dcr_ = 0, dlr_ = 0, ccr_ = 0, ar_ = 0, psmkr_ = 0, psmar_ = 0, pir_ = 0;
  bool tcf_ = false, smf_ = false;
  Mode mode_ = Mode::kIdle;
  uint8_t page_[256] = {};
  size_t received_ = 0;
  unsigned fifo_ = 0;  // bytes written since the last SR read (the FIFO drains while polled)
};

class ScsModel final : public Peripheral {
 public:
  using Peripheral::Peripheral;
  const char* name() const override { return "SCS"; }
  bool Read(uint32_t offset, uint32_t* value) override;
  bool Write(uint32_t offset, unsigned size, uint32_t value) override;
  void Reset() override;
  uint32_t vtor() const { return vtor_; }

 private:
  uint32_t csr_ = 0, rvr_ = 0, cvr_ = 0, vtor_ = 0;
};

}  // namespace onedfu::sim::emu
