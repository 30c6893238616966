// `onedfu flash --all --provision FILE.csv`: per-board factory data. The CSV has a header row
// of field names, one of them `serial` (the board's USB serial number), and one row per board;
// every field of a board's row (serial included) becomes one entry of the provision record
// (runtime/provision_record.h, the one format) that the station writes at the start of the
// board's `provision` region, before the boot record. Host only; errors name the file, line
// and field at fault.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "flasher/station.h"
#include "host/expected.h"
#include "runtime/board.h"

namespace onedfu::flasher {

struct ProvisionTable {
  std::string file;
  std::vector<std::string> fields;                          // header row, in order
  std::map<std::string, std::vector<std::string>> rows;     // serial -> cells (fields order)
  std::map<std::string, size_t> lines;                      // serial -> line number
};

// Parses CSV (RFC 4180: comma separated, fields may be "quoted" with "" for a quote, CRLF or
// LF line ends; blank lines skipped). Refused: no header, no `serial` field, an empty or
// duplicate field name, a row with another number of fields, an unterminated quote, an empty
// or duplicate serial, a name longer than runtime::kMaxProvisionKey.
host::Expected<ProvisionTable> ParseProvisionCsv(const std::string& text, const std::string& file);
host::Expected<ProvisionTable> LoadProvisionCsv(const std::filesystem::path& file);

// The provision record (runtime::EncodeProvisionRecord) of one row.
host::Expected<host::Bytes> ProvisionRecordOf(const ProvisionTable& table, const std::string& serial);

// The station's source of per-board data for `board`: the element covering the whole
// provision region (the record, then the erased value). Fails when the board has no
// `provision` region or a row's record does not fit it (naming the line); the source fails
// for a serial without a row.
host::Expected<ProvisionSource> ProvisionFor(const runtime::Board& board, ProvisionTable table);

}  // namespace onedfu::flasher
