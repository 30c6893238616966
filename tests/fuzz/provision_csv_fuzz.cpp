// Fuzzes the station's provision CSV (`onedfu flash --all --provision FILE.csv`,
// flasher/provision.h): a file from the factory's spreadsheet, any bytes.
//
// Input: the CSV text.
//
// Invariants (trap on violation):
//  - ParseProvisionCsv returns a value; an error names the file and is valid UTF-8 (the CSV's
//    bytes in it are escaped: messages go into JSON reports).
//  - A parsed table has a unique, non-empty `serial` field, every row has as many cells as
//    the header and is keyed by its serial cell.
//  - The record of every row (ProvisionRecordOf) reads back through the device's reader
//    (runtime::ProvisionReader) as exactly the header names and the row's cells, in order;
//    an encoding error names the file and line.
//  - ProvisionFor (a board with a 4 KiB provision region) fails naming the file, or gives a
//    source whose element for each serial is the whole region: the record, then erased bytes;
//    an unknown serial is an error.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "flasher/provision.h"
#include "fuzz_board.h"
#include "fuzz_check.h"
#include "host/text.h"
#include "runtime/provision_record.h"

using onedfu::fuzz::FuzzBoard;
using onedfu::fuzz::FuzzCheck;

namespace {

constexpr char kFile[] = "fuzz.csv";
constexpr uint32_t kProvisionStart = 0x901fe000;
constexpr uint32_t kProvisionSize = 4096;

constexpr char kBoard[] = R"({
  "id": "fuzz-provision", "arch": "armv7emdp",
  "memories": [
    {"name": "internal", "base": "0x08000000", "sectors": "4*32K,1*128K,7*256K", "write_align": 4, "mapped": true},
    {"name": "qspi", "base": "0x90000000", "sectors": "512*4K", "write_align": 4, "mapped": true}],
  "regions": [
    {"name": "bootloader", "memory": "internal", "offset": "0x0", "size": "32K", "role": "bootloader"},
    {"name": "text0", "memory": "internal", "offset": "0x8000", "size": "0x1f8000", "role": "firmware"},
    {"name": "romfs", "memory": "qspi", "offset": "0x0", "size": "0x1fe000", "role": "romfs"},
    {"name": "provision", "memory": "qspi", "offset": "0x1fe000", "size": "4K", "role": "provision"},
    {"name": "record", "memory": "qspi", "offset": "0x1ff000", "size": "4K", "role": "record"}]})";

bool SameBytes(onedfu::runtime::ByteSpan bytes, const std::string& s) {
  return bytes.size() == s.size() && std::equal(bytes.begin(), bytes.end(), s.begin(), [](uint8_t b, char c) {
           return b == static_cast<uint8_t>(c);
         });
}

// The record of `serial` reads back as the table's names and cells.
void CheckRecord(const onedfu::flasher::ProvisionTable& table, const std::string& serial,
                 const std::vector<uint8_t>& record) {
  auto reader = onedfu::runtime::ProvisionReader::Open(record);
  FuzzCheck(reader.ok());
  const std::vector<std::string>& cells = table.rows.at(serial);
  FuzzCheck(reader->count() == table.fields.size());
  for (size_t i = 0; i < table.fields.size(); ++i) {
    auto entry = reader->At(i);
    FuzzCheck(entry.ok() && SameBytes(entry->key, table.fields[i]) && SameBytes(entry->value, cells[i]));
    auto found = reader->Find(entry->key);
    FuzzCheck(found.ok() && found->data() == entry->value.data() && found->size() == entry->value.size());
  }
  auto serial_value = reader->Find("serial");
  FuzzCheck(serial_value.ok() && SameBytes(*serial_value, serial));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto table = onedfu::flasher::ParseProvisionCsv(text, kFile);
  if (!table.ok()) {
    FuzzCheck(table.error().message.starts_with(kFile) && onedfu::host::IsUtf8(table.error().message));
    return 0;
  }
  FuzzCheck(table->file == kFile);
  FuzzCheck(table->rows.size() == table->lines.size());
  size_t serial_fields = 0;
  size_t serial_column = 0;
  for (size_t i = 0; i < table->fields.size(); ++i) {
    FuzzCheck(!table->fields[i].empty());
    if (table->fields[i] == "serial") {
      ++serial_fields;
      serial_column = i;
    }
  }
  FuzzCheck(serial_fields == 1);
  bool all_fit = true;
  for (const auto& [serial, cells] : table->rows) {
    FuzzCheck(!serial.empty() && cells.size() == table->fields.size() && cells[serial_column] == serial);
    FuzzCheck(table->lines.count(serial) == 1);
    auto record = onedfu::flasher::ProvisionRecordOf(*table, serial);
    if (!record.ok()) {
      FuzzCheck(record.error().message.starts_with(std::string(kFile) + " line "));
      all_fit = false;
      continue;
    }
    CheckRecord(*table, serial, *record);
    if (record->size() > kProvisionSize) all_fit = false;
  }
  FuzzCheck(!onedfu::flasher::ProvisionRecordOf(*table, std::string()).ok());

  const std::vector<std::string> serials = [&] {
    std::vector<std::string> out;
    for (const auto& row : table->rows) out.push_back(row.first);
    return out;
  }();
  const onedfu::flasher::ProvisionTable copy = *table;
  auto source = onedfu::flasher::ProvisionFor(FuzzBoard<kBoard>(), std::move(*table));
  if (!source.ok()) {
    FuzzCheck(!all_fit && source.error().message.starts_with(std::string(kFile) + " line "));
    return 0;
  }
  FuzzCheck(all_fit);
  for (const std::string& serial : serials) {
    auto element = (*source)(serial);
    FuzzCheck(element.ok() && element->address == kProvisionStart && element->data.size() == kProvisionSize);
    auto record = onedfu::flasher::ProvisionRecordOf(copy, serial);
    FuzzCheck(record.ok() && std::equal(record->begin(), record->end(), element->data.begin()));
    for (size_t i = record->size(); i < element->data.size(); ++i) FuzzCheck(element->data[i] == 0xff);
  }
  FuzzCheck(!(*source)(std::string()).ok());
  return 0;
}
