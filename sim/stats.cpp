#include "stats.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "host/file_io.h"
#include "host/text.h"
#include "sim_board.h"

namespace onedfu::sim {
namespace {

std::string Hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", value);
  return text;
}

}  // namespace

uint64_t ControlTransferPackets(uint64_t data_bytes) {
  return 2 + (data_bytes + kFullSpeedPacketSize - 1) / kFullSpeedPacketSize;
}

uint64_t ControlPacketsUs(uint64_t packets) {
  return (packets * 1000 + kControlPacketsPerFrame / 2) / kControlPacketsPerFrame;
}

void UsbUsage::CountControl(bool in, uint64_t data_bytes, bool stall) {
  ++control_transfers;
  if (stall) {
    ++stalls;
    data_bytes = 0;
  }
  if (in) {
    bytes_in += data_bytes;
  } else {
    bytes_out += data_bytes;
  }
  packets += ControlTransferPackets(data_bytes);
}

void UsbUsage::CountSetInterface() {
  ++set_interface;
  CountControl(false, 0, false);
}

uint64_t ModeledDeviceUs(const SimBoard& board, const UsbUsage& usb) {
  uint64_t total = usb.modeled_us() + usb.hash_us;
  for (size_t i = 0; i < board.memory_count(); ++i) {
    total += board.flash(i).usage().erase_us + board.flash(i).usage().program_us;
  }
  return total;
}

std::string StatsJson(const SimBoard& board, const RunReport& report) {
  using nlohmann::ordered_json;
  ordered_json root;
  root["board"] = board.board().id;
  // Arguments and messages are bytes from outside: JSON needs UTF-8, so odd bytes become \xNN.
  ordered_json command = ordered_json::array();
  for (const std::string& arg : report.command) command.push_back(host::EscapeText(arg));
  root["command"] = command;
  root["exit_status"] = report.exit_status;
  ordered_json boots = ordered_json::array();
  for (const BootEvent& b : report.boots) {
    boots.push_back({{"cause", b.cause},
                     {"mode", b.application ? "application" : "dfu"},
                     {"reason", host::EscapeText(b.reason)},
                     {"message", host::EscapeText(b.message)},
                     {"bytes_hashed", b.bytes_hashed},
                     {"hashes_skipped", b.hashes_skipped},
                     {"verify_us", b.verify_us}});
    if (b.instructions > 0) {
      boots.back()["instructions"] = b.instructions;
      ordered_json by_function = ordered_json::object();
      for (const auto& [name, n] : b.instructions_by_function) by_function[host::EscapeText(name)] = n;
      boots.back()["instructions_by_function"] = by_function;
    }
  }
  root["boots"] = boots;

  uint64_t erase_us = 0, program_us = 0;
  uint64_t sectors = 0, erase_calls = 0, block_erases = 0, programmed = 0, units = 0, refused = 0;
  ordered_json memories = ordered_json::array();
  for (size_t i = 0; i < board.memory_count(); ++i) {
    const FileFlash& flash = board.flash(i);
    const runtime::FlashCounters& c = flash.counters();
    const FlashUsage& u = flash.usage();
    const runtime::Memory& m = flash.geometry();
    erase_us += u.erase_us;
    program_us += u.program_us;
    sectors += c.sectors_erased;
    erase_calls += c.erases;
    block_erases += u.block_erases;
    programmed += c.bytes_written;
    units += u.program_units;
    refused += c.refused;
    ordered_json per_sector = ordered_json::object();
    uint32_t index = 0;
    uint64_t start = m.base;
    for (uint8_t g = 0; g < m.sector_group_count; ++g) {
      for (uint32_t k = 0; k < m.sectors[g].count; ++k, ++index, start += m.sectors[g].size) {
        if (index < u.sector_erases.size() && u.sector_erases[index] != 0) {
          per_sector[Hex32(static_cast<uint32_t>(start))] = u.sector_erases[index];
        }
      }
    }
    memories.push_back({{"name", m.name},
                        {"base", Hex32(m.base)},
                        {"erase_calls", c.erases},
                        {"sectors_erased", c.sectors_erased},
                        {"block_erases", u.block_erases},
                        {"bytes_erased", c.bytes_erased},
                        {"bytes_programmed", c.bytes_written},
                        {"program_units", u.program_units},
                        {"refused", c.refused},
                        {"erase_us", u.erase_us},
                        {"program_us", u.program_us},
                        {"sector_erases", per_sector}});
  }
  const uint64_t usb_us = report.usb.modeled_us();
  const uint64_t hash_us = report.usb.hash_us;
  const uint64_t total = erase_us + program_us + hash_us + usb_us;
  root["modeled_us"] = {{"total", total}, {"erase", erase_us}, {"program", program_us}, {"hash", hash_us}, {"usb", usb_us}};
  root["modeled_seconds"] = static_cast<double>(total) / 1e6;
  root["usb"] = {{"control_transfers", report.usb.control_transfers},
                 {"stalls", report.usb.stalls},
                 {"set_interface", report.usb.set_interface},
                 {"resets", report.usb.resets},
                 {"bytes_out", report.usb.bytes_out},
                 {"bytes_in", report.usb.bytes_in},
                 {"bytes_on_wire", report.usb.bytes_on_wire()},
                 {"packets", report.usb.packets},
                 {"plugs", report.usb.plugs},
                 {"hash_requests", report.usb.hash_requests}};
  root["flash"] = {{"erases", sectors},
                   {"erase_calls", erase_calls},
                   {"block_erases", block_erases},
                   {"bytes_programmed", programmed},
                   {"program_units", units},
                   {"refused", refused},
                   {"memories", memories}};
  return root.dump(2) + "\n";
}

host::Outcome WriteStatsJson(const std::filesystem::path& path, const SimBoard& board,
                               const RunReport& report) {
  const std::string text = StatsJson(board, report);
  return host::WriteFileAtomic(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

}  // namespace onedfu::sim
