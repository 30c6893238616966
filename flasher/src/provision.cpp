// Per-board factory data for the station: see flasher/provision.h.
#include "flasher/provision.h"

#include <memory>
#include <set>

#include "host/file_io.h"
#include "host/text.h"
#include "runtime/provision_record.h"

namespace onedfu::flasher {
namespace {

constexpr const char* kSerialField = "serial";

// One CSV record (row) and the line it starts on.
struct CsvRow {
  size_t line = 0;
  std::vector<std::string> cells;
};

host::Expected<std::vector<CsvRow>> SplitCsv(const std::string& text, const std::string& file) {
  std::vector<CsvRow> rows;
  CsvRow row;
  std::string cell;
  size_t line = 1;
  row.line = 1;
  bool quoted = false;
  bool any = false;  // the current row has content
  size_t quote_line = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
      continue;
    }
    if (c == '"') {
      if (!cell.empty()) {
        return host::Fail(file + " line " + std::to_string(line) + ", field " + std::to_string(row.cells.size() + 1) +
                          ": a quote inside an unquoted field");
      }
      quoted = true;
      quote_line = line;
      any = true;
    } else if (c == ',') {
      row.cells.push_back(std::move(cell));
      cell.clear();
      any = true;
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      continue;
    } else if (c == '\n') {
      if (any || !cell.empty()) {
        row.cells.push_back(std::move(cell));
        rows.push_back(std::move(row));
      }
      cell.clear();
      row = CsvRow{};
      any = false;
      row.line = ++line;
    } else {
      cell += c;
      any = true;
    }
  }
  if (quoted) return host::Fail(file + " line " + std::to_string(quote_line) + ": a quoted field is not closed");
  if (any || !cell.empty()) {
    row.cells.push_back(std::move(cell));
    rows.push_back(std::move(row));
  }
  return rows;
}

runtime::ByteSpan BytesOf(const std::string& s) {
  return runtime::ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

}  // namespace

host::Expected<ProvisionTable> ParseProvisionCsv(const std::string& text, const std::string& file) {
  ONEDFU_PTRY(std::vector<CsvRow> rows, SplitCsv(text, file));
  if (rows.empty()) return host::Fail(file + ": empty; expected a header row with a 'serial' field");
  ProvisionTable table;
  table.file = file;
  table.fields = rows[0].cells;
  std::set<std::string> names;
  size_t serial_column = table.fields.size();
  for (size_t i = 0; i < table.fields.size(); ++i) {
    const std::string& name = table.fields[i];
    const std::string where = file + " line " + std::to_string(rows[0].line) + ", field " + std::to_string(i + 1);
    if (name.empty()) return host::Fail(where + ": empty field name in the header");
    if (name.size() > runtime::kMaxProvisionKey) {
      return host::Fail(where + " '" + host::EscapeText(name) + "': name longer than " +
                        std::to_string(runtime::kMaxProvisionKey) + " bytes");
    }
    if (!names.insert(name).second) return host::Fail(where + ": field '" + host::EscapeText(name) + "' appears twice");
    if (name == kSerialField) serial_column = i;
  }
  if (serial_column == table.fields.size()) {
    return host::Fail(file + " line " + std::to_string(rows[0].line) + ": the header has no 'serial' field");
  }
  if (table.fields.size() > runtime::kMaxProvisionEntries) {
    return host::Fail(file + " line " + std::to_string(rows[0].line) + ": more than " +
                      std::to_string(runtime::kMaxProvisionEntries) + " fields");
  }
  for (size_t r = 1; r < rows.size(); ++r) {
    const CsvRow& row = rows[r];
    const std::string where = file + " line " + std::to_string(row.line);
    if (row.cells.size() != table.fields.size()) {
      return host::Fail(where + ": " + std::to_string(row.cells.size()) + " field(s), the header has " +
                        std::to_string(table.fields.size()));
    }
    for (size_t i = 0; i < row.cells.size(); ++i) {
      if (row.cells[i].size() > runtime::kMaxProvisionValue) {
        return host::Fail(where + ", field '" + host::EscapeText(table.fields[i]) + "': value longer than " +
                          std::to_string(runtime::kMaxProvisionValue) + " bytes");
      }
    }
    const std::string& serial = row.cells[serial_column];
    if (serial.empty()) return host::Fail(where + ", field 'serial': empty");
    if (table.rows.count(serial)) {
      return host::Fail(where + ", field 'serial': " + host::EscapeText(serial) + " already has a row (line " +
                        std::to_string(table.lines[serial]) + ")");
    }
    table.rows[serial] = row.cells;
    table.lines[serial] = row.line;
  }
  return table;
}

host::Expected<ProvisionTable> LoadProvisionCsv(const std::filesystem::path& file) {
  ONEDFU_PTRY(host::Bytes bytes, host::ReadFile(file));
  return ParseProvisionCsv(std::string(bytes.begin(), bytes.end()), file.string());
}

host::Expected<host::Bytes> ProvisionRecordOf(const ProvisionTable& table, const std::string& serial) {
  auto row = table.rows.find(serial);
  if (row == table.rows.end()) {
    return host::Fail("no provisioning data for serial " + host::EscapeText(serial) + " in " + table.file +
                      "; the board was not flashed");
  }
  std::vector<runtime::ProvisionEntry> entries;
  for (size_t i = 0; i < table.fields.size(); ++i) entries.push_back({BytesOf(table.fields[i]), BytesOf(row->second[i])});
  host::Bytes out(runtime::ProvisionRecordSize(entries));
  auto n = runtime::EncodeProvisionRecord(entries, out);
  if (!n.ok()) return host::Fail(table.file + " line " + std::to_string(table.lines.at(serial)) + ": " + n.status().message());
  out.resize(n.value());
  return out;
}

host::Expected<ProvisionSource> ProvisionFor(const runtime::Board& board, ProvisionTable table) {
  const runtime::Region* region = board.FindRole(runtime::RegionRole::kProvision);
  if (region == nullptr) {
    return host::Fail("board " + std::string(board.id) + " has no region with role \"provision\" for --provision " +
                      table.file);
  }
  const uint32_t start = board.RegionStart(*region);
  const uint32_t size = region->size;
  const uint8_t erased = board.memories[region->memory].erased_value;
  for (const auto& [serial, line] : table.lines) {
    ONEDFU_PTRY(host::Bytes record, ProvisionRecordOf(table, serial));
    if (record.size() > size) {
      return host::Fail(table.file + " line " + std::to_string(line) + ": the provision record (" +
                        std::to_string(record.size()) + " bytes) does not fit the " + std::to_string(size) +
                        "-byte provision region '" + region->name + "'");
    }
  }
  auto shared = std::make_shared<const ProvisionTable>(std::move(table));
  return ProvisionSource([shared, start, size, erased](const std::string& serial) -> host::Expected<ProvisionElement> {
    ONEDFU_PTRY(host::Bytes record, ProvisionRecordOf(*shared, serial));
    ProvisionElement element;
    element.address = start;
    element.data = std::move(record);
    element.data.resize(size, erased);
    return element;
  });
}

}  // namespace onedfu::flasher
