// Self-tests of the emulator's peripheral models (sim/emulator): tiny Thumb-2 programs run on
// the emulated Cortex-M7 and must either reach their end or be stopped by the strict check the
// reference manual's rule calls for, with a message naming the register and the PC.
#include <cstdint>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "host/board_json.h"
#include "machine.h"
#include "otg_fs.h"
#include "peripherals.h"
#include "sim_board.h"
#include "test_support.h"

using onedfu::sim::SimBoard;
using onedfu::sim::emu::Machine;

namespace {

constexpr uint32_t kEnd = 0x60000000;  // unmapped: a store there ends a program

// A straight-line program: register writes and reads through r0 (address) and r1 (value).
class Program {
 public:
  Program& Store(uint32_t address, uint32_t value) { return Mov(0, address).Mov(1, value).Op(0x6001); }
  Program& Store8(uint32_t address, uint8_t value) { return Mov(0, address).Mov(1, value).Op(0x7001); }
  Program& Load(uint32_t address) { return Mov(0, address).Op(0x6801); }
  std::vector<uint8_t> Image() {
    Store(kEnd, 0);
    Op(0xe7fe);  // b .
    std::vector<uint8_t> image = {0x00, 0x10, 0x00, 0x20, 0x09, 0x00, 0x00, 0x08};  // MSP, reset at 0x08000008
    for (uint16_t h : code_) {
      image.push_back(static_cast<uint8_t>(h));
      image.push_back(static_cast<uint8_t>(h >> 8));
    }
    return image;
  }

 private:
  Program& Op(uint16_t h) {
    code_.push_back(h);
    return *this;
  }
  // MOVW / MOVT Rd, #imm16 (Thumb-2 T3 / T1).
  Program& Mov(unsigned rd, uint32_t value) {
    for (int top = 0; top < 2; ++top) {
      const uint32_t imm = top ? value >> 16 : value & 0xffff;
      Op(static_cast<uint16_t>((top ? 0xf2c0 : 0xf240) | ((imm >> 11) & 1) << 10 | (imm >> 12)));
      Op(static_cast<uint16_t>(((imm >> 8) & 7) << 12 | rd << 8 | (imm & 0xff)));
    }
    return *this;
  }
  std::vector<uint16_t> code_;
};

struct Bench {
  std::unique_ptr<SimBoard> board;
  std::unique_ptr<Machine> machine;

  // Runs `program` from reset; returns the fault that stopped it ("" = it reached its end).
  std::string Run(Program& program) {
    static int n = 0;
    auto b = onedfu::host::LoadBoardFile(std::string(ONEDFU_SOURCE_DIR) + "/manifests/boards/pybd-sf6.json");
    REQUIRE(b.ok());
    auto opened = SimBoard::Open(b.value(), onedfu::testing::Scratch("models") / ("board" + std::to_string(n++)));
    REQUIRE(opened.ok());
    board = std::move(opened.value());
    const std::vector<uint8_t> image = program.Image();
    REQUIRE(board->flash(0).Preload(0x08000000, image));
    auto m = Machine::Create(*board);
    REQUIRE(m.ok());
    machine = std::move(m.value());
    CHECK_FALSE(machine->RunUntil([] { return false; }, 5000));
    const std::string fault = machine->fault();
    if (fault.find("write of unmapped address 0x60000000") == 0) return "";
    REQUIRE_MESSAGE(!fault.empty(), "the program neither ended nor faulted");
    return fault;
  }
};

// The flash unlock sequence (RM0410 3.3.3).
Program& Unlock(Program& p) { return p.Store(0x40023c04, 0x45670123).Store(0x40023c04, 0xcdef89ab); }

}  // namespace

TEST_CASE("models: a plain program runs to its end; faults name the register and the PC") {
  Bench bench;
  Program ok;
  ok.Store(0x40023830, 1).Load(0x40020000);  // GPIOA clock on, read GPIOA_MODER
  CHECK(bench.Run(ok) == "");
  Program unmodeled;
  unmodeled.Load(0x40023870);
  const std::string fault = bench.Run(unmodeled);
  CHECK(fault.find("read of unmodeled register RCC+0x00000070") == 0);
  CHECK(fault.find("(PC 0x080000") != std::string::npos);
  Program unmapped;
  unmapped.Load(0x40007000);  // PWR: the port does not use it, so it is not modeled
  CHECK(bench.Run(unmapped).find("read of unmapped address 0x40007000") == 0);
  // The checks every model shares (machine.h, Peripheral): the access width and the clock.
  Program byte_access;
  byte_access.Store8(0x40023800, 1);
  CHECK(bench.Run(byte_access).find("8-bit write to RCC+0x00000000 (the register takes 32-bit accesses)") == 0);
  Program gpio_off;
  gpio_off.Store(0x40020414, 1);  // GPIOB_ODR without RCC_AHB1ENR.GPIOBEN
  CHECK(bench.Run(gpio_off).find("GPIOB written with its clock off (RCC_AHB1ENR)") == 0);
  Program qspi_byte;  // QUADSPI_DR takes bytes; its other registers do not
  qspi_byte.Store(0x40023838, 2).Store8(0xa0001000, 1);
  CHECK(bench.Run(qspi_byte).find("8-bit write to QUADSPI+0x00000000") == 0);
}

TEST_CASE("models: FLASH controller (RM0410 3.3): unlock, PG, PSIZE, BSY, timing") {
  Bench bench;
  Program locked;
  locked.Store(0x08008000, 0x12345678);
  CHECK(bench.Run(locked).find("32-bit store to flash at 0x08008000 while FLASH_CR is locked") == 0);

  Program wrong_key;
  wrong_key.Store(0x40023c04, 0x45670123).Store(0x40023c04, 0x11111111);
  CHECK(bench.Run(wrong_key).find("FLASH_KEYR: wrong unlock sequence") == 0);

  Program no_pg;
  Unlock(no_pg).Store(0x08008000, 0x12345678);
  CHECK(bench.Run(no_pg).find("without FLASH_CR.PG") != std::string::npos);

  Program parallelism;
  Unlock(parallelism).Store(0x40023c10, 0x201).Store8(0x08008000, 0x12);  // PG, PSIZE x32, byte store
  CHECK(bench.Run(parallelism).find("parallelism error (PGPERR)") != std::string::npos);

  Program busy;  // sector 1 erase started, then FLASH_CR written without waiting for BSY
  Unlock(busy).Store(0x40023c10, 0x20a).Store(0x40023c10, 0x1020a).Store(0x40023c10, 0x201);
  CHECK(bench.Run(busy).find("FLASH_CR written while FLASH_SR.BSY is set") == 0);

  Program good;  // program one word, wait on BSY, lock
  Unlock(good).Store(0x40023c10, 0x201).Store(0x08008000, 0x12345678).Load(0x40023c0c).Load(0x40023c0c);
  good.Store(0x40023c10, 0x80000000);
  CHECK(bench.Run(good) == "");
  CHECK(bench.board->Peek(0x08008000, 4) == std::vector<uint8_t>{0x78, 0x56, 0x34, 0x12});
  CHECK(bench.board->flash(0).usage().program_us == 16);  // the board file's program time
  CHECK(bench.machine->cycles() >= Machine::UsToCycles(16));  // BSY lasted that long
}

TEST_CASE("models: QUADSPI (RM0410 14.3) and the W25Q command model") {
  Bench bench;
  Program clock_off;
  clock_off.Store(0xa0001000, 1);
  CHECK(bench.Run(clock_off).find("QUADSPI written with its clock off") == 0);

  Program window;
  window.Load(0x90000000);
  CHECK(bench.Run(window).find("read of the QUADSPI window while QUADSPI is not in memory-mapped mode") == 0);

  const auto enabled = [](Program& p) -> Program& {
    return p.Store(0x40023838, 2).Store(0xa0001004, 20u << 16).Store(0xa0001000, 1);  // clock, FSIZE 2 MiB, EN
  };
  Program mapped;  // memory-mapped, then a read of the window: allowed
  enabled(mapped).Store(0xa0001014, 0x0d002503).Load(0x90000000);
  CHECK(bench.Run(mapped) == "");

  Program ccr_busy;  // memory-mapped mode keeps BUSY: CCR may not change without ABORT
  enabled(ccr_busy).Store(0xa0001014, 0x0d002503).Store(0xa0001014, 0x106);
  CHECK(bench.Run(ccr_busy).find("QUADSPI_CCR written while QUADSPI_SR.BUSY is set") == 0);

  Program no_wren;
  enabled(no_wren).Store(0xa0001014, 0x2520).Store(0xa0001018, 0);  // 20h at offset 0
  CHECK(bench.Run(no_wren).find("W25Q erase at offset 0x00000000 without write enable (06h)") == 0);

  Program overrun;  // page program, 33 bytes into the 32-byte FIFO without reading SR
  enabled(overrun).Store(0xa0001014, 0x106).Store(0xa0001010, 255).Store(0xa0001014, 0x01002502).Store(0xa0001018, 0);
  for (int i = 0; i < 33; ++i) overrun.Store8(0xa0001020, 0xaa);
  CHECK(bench.Run(overrun).find("QUADSPI FIFO overrun") == 0);

  Program erase;  // write enable, 4 KiB erase, auto-poll status until not busy
  enabled(erase).Store(0xa0001014, 0x106).Store(0xa0001014, 0x2520).Store(0xa0001018, 0x1000);
  erase.Store(0xa0001024, 1).Store(0xa0001028, 0).Store(0xa0001010, 0).Store(0xa0001000, 1 | 1u << 22);
  erase.Store(0xa0001014, 0x09000105).Load(0xa0001008).Load(0xa0001008);
  CHECK(bench.Run(erase) == "");
  CHECK(bench.board->flash(1).usage().erase_us == 45000);  // the board file's 4K erase time
  CHECK(bench.machine->cycles() >= Machine::UsToCycles(45000));
}

TEST_CASE("models: OTG FS core (RM0410 42), RCC clock rules, SCB") {
  Bench bench;
  Program otg_off;
  otg_off.Load(0x50000014);
  CHECK(bench.Run(otg_off).find("OTG_FS read with its clock off (RCC_AHB2ENR.OTGFSEN)") == 0);

  Program fifo;
  fifo.Store(0x40023834, 0x80).Store(0x50001000, 0x01020304);
  CHECK(bench.Run(fifo).find("OTG_FS FIFO 0 written without an enabled IN transfer") == 0);

  Program overrun;  // 8 bytes announced, 12 pushed
  overrun.Store(0x40023834, 0x80).Store(0x50000024, 128).Store(0x50000028, (16u << 16) | 128).Store(0x50000910, (1u << 19) | 8);
  overrun.Store(0x50000900, 1u << 31).Store(0x50001000, 1).Store(0x50001000, 2).Store(0x50001000, 3);
  CHECK(bench.Run(overrun).find("OTG_FS transmit FIFO 0 overrun") == 0);

  Program empty;
  empty.Store(0x40023834, 0x80).Load(0x50000020);
  CHECK(bench.Run(empty).find("OTG_FS_GRXSTSP read with the receive FIFO empty") == 0);

  Program reset_slow_clock;  // core reset without the 48 MHz clock
  reset_slow_clock.Store(0x40023834, 0x80).Store(0x50000010, 1);
  CHECK(bench.Run(reset_slow_clock).find("OTG_FS core reset with PLL48CK at 0 Hz") == 0);

  Program latency;  // the reset PLL settings (HSI, 96 MHz) selected with 0 wait states
  latency.Store(0x40023800, 0x01000001).Store(0x40023808, 2);
  CHECK(bench.Run(latency).find("RCC_CFGR: SYSCLK 96 MHz with FLASH_ACR.LATENCY 0 (needs 3)") == 0);

  Program pll_running;
  pll_running.Store(0x40023800, 0x01000001).Store(0x40023804, 0x24003010);
  CHECK(bench.Run(pll_running).find("RCC_PLLCFGR written while the PLL runs") == 0);

  Program aircr;
  aircr.Store(0xe000ed0c, 4);
  CHECK(bench.Run(aircr).find("SCB_AIRCR written without VECTKEY") == 0);

  Program reset;
  reset.Store(0xe000ed0c, 0x05fa0004);
  Bench b2;
  auto board_file = onedfu::host::LoadBoardFile(std::string(ONEDFU_SOURCE_DIR) + "/manifests/boards/pybd-sf6.json");
  REQUIRE(board_file.ok());
  auto opened = SimBoard::Open(board_file.value(), onedfu::testing::Scratch("models") / "reset");
  REQUIRE(opened.ok());
  REQUIRE(opened.value()->flash(0).Preload(0x08000000, reset.Image()));
  auto m = Machine::Create(*opened.value());
  REQUIRE(m.ok());
  CHECK_FALSE(m.value()->RunUntil([] { return false; }, 5000));
  CHECK(m.value()->reset_requested());
  CHECK(m.value()->fault().empty());
}
