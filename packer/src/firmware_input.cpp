#include "packer/firmware_input.h"

#include <algorithm>
#include <array>
#include <deque>
#include <iterator>
#include <map>

#include "host/dfuse_file.h"
#include "packer/layout.h"
#include "runtime/byte_reader.h"

namespace onedfu::packer {

namespace {

constexpr uint64_t k4GiB = uint64_t{1} << 32;

// Sorts by address and refuses overlaps (naming both origins, which start with the file name).
Expected<std::vector<Segment>> SortedWithoutOverlap(std::vector<Segment> segments, const std::string& name) {
  std::stable_sort(segments.begin(), segments.end(),
                   [](const Segment& a, const Segment& b) { return a.address < b.address; });
  for (size_t i = 1; i < segments.size(); ++i) {
    const Segment& prev = segments[i - 1];
    const uint64_t prev_end = uint64_t{prev.address} + prev.data.size();
    if (segments[i].address < prev_end) {
      return Fail(segments[i].origin + " at " + HexAddress(segments[i].address) + " overlaps " +
                  prev.origin + " (" + HexAddress(prev.address) + ".." + HexAddress(prev_end - 1) + ")");
    }
  }
  if (segments.empty()) return Fail(name + ": no data");
  return segments;
}

// ---- Intel HEX -------------------------------------------------------------

// Collects data records into contiguous runs. Record bytes go to one arena;
// a run is a deque of arena pieces, so a record that extends a run at either
// end costs O(1), and two runs that meet are joined by moving the shorter
// piece list onto the longer one: O(n log n) over the file in any record
// order (descending order used to copy the growing run per record, 15 s per
// MiB). Take() copies each run out once.
class HexSegments {
 public:
  explicit HexSegments(const std::string& name) : name_(name) {}

  // `data` for [address, address + size); address + size <= 4 GiB (checked by the caller).
  Outcome Add(uint32_t address, std::span<const uint8_t> data, size_t line) {
    if (data.empty()) return Success();
    const uint64_t end = uint64_t{address} + data.size();
    const Piece piece{arena_.size(), data.size()};
    // Fast path: the record continues the last run written and nothing follows it.
    if (!runs_.empty()) {
      auto last = std::prev(runs_.end());
      if (uint64_t{last->first} + last->second.size == address) {
        Store(data);
        Append(last->second, piece);
        return Success();
      }
    }
    auto next = runs_.upper_bound(address);
    if (next != runs_.begin()) {
      auto prev = std::prev(next);
      const uint64_t prev_end = uint64_t{prev->first} + prev->second.size;
      if (prev_end > address) return Overlap(address, line, prev);
      if (prev_end == address && (next == runs_.end() || end <= next->first)) {
        Store(data);
        Append(prev->second, piece);
        return Merge(prev);
      }
    }
    if (next != runs_.end() && next->first < end) return Overlap(address, line, next);
    Store(data);
    Run run;
    run.pieces.push_back(piece);
    run.size = data.size();
    run.line = line;
    return Merge(runs_.emplace(address, std::move(run)).first);
  }

  std::vector<Segment> Take() {
    std::vector<Segment> out;
    out.reserve(runs_.size());
    for (auto& [address, run] : runs_) {
      Bytes data;
      data.reserve(run.size);
      for (const Piece& p : run.pieces) {
        const auto begin = arena_.begin() + static_cast<std::ptrdiff_t>(p.offset);
        data.insert(data.end(), begin, begin + static_cast<std::ptrdiff_t>(p.length));
      }
      out.push_back(Segment{address, std::move(data), name_ + ": line " + std::to_string(run.line)});
    }
    runs_.clear();
    Bytes().swap(arena_);
    return out;
  }

 private:
  struct Piece {
    size_t offset = 0;  // into arena_
    size_t length = 0;
  };
  struct Run {
    std::deque<Piece> pieces;  // in address order
    uint64_t size = 0;         // bytes
    size_t line = 0;           // where the run starts
  };
  using Runs = std::map<uint32_t, Run>;

  void Store(std::span<const uint8_t> data) { arena_.insert(arena_.end(), data.begin(), data.end()); }

  // Adds `piece` at the end of `run`, growing its last piece when the arena bytes follow on.
  static void Append(Run& run, const Piece& piece) {
    if (!run.pieces.empty() && run.pieces.back().offset + run.pieces.back().length == piece.offset) {
      run.pieces.back().length += piece.length;
    } else {
      run.pieces.push_back(piece);
    }
    run.size += piece.length;
  }

  // Joins `it` with the run right after it when they touch.
  Outcome Merge(Runs::iterator it) {
    auto next = std::next(it);
    if (next == runs_.end() || uint64_t{it->first} + it->second.size != next->first) return Success();
    Run& low = it->second;
    Run& high = next->second;
    if (low.pieces.size() >= high.pieces.size()) {
      low.pieces.insert(low.pieces.end(), high.pieces.begin(), high.pieces.end());
    } else {
      high.pieces.insert(high.pieces.begin(), low.pieces.begin(), low.pieces.end());
      low.pieces = std::move(high.pieces);
    }
    low.size += high.size;
    runs_.erase(next);
    return Success();
  }

  Error Overlap(uint32_t address, size_t line, Runs::const_iterator other) const {
    const uint64_t other_end = uint64_t{other->first} + other->second.size;
    return Fail(name_ + ": line " + std::to_string(line) + ": data at " + HexAddress(address) +
                " overlaps data from line " + std::to_string(other->second.line) + " (" +
                HexAddress(other->first) + ".." + HexAddress(other_end - 1) + ")");
  }

  std::string name_;
  Bytes arena_;  // every record's data bytes, in file order
  Runs runs_;
};

// Hex digit values by character; -1 for anything else.
constexpr std::array<int8_t, 256> MakeHexTable() {
  std::array<int8_t, 256> table{};
  for (int c = 0; c < 256; ++c) {
    table[c] = c >= '0' && c <= '9'   ? static_cast<int8_t>(c - '0')
               : c >= 'a' && c <= 'f' ? static_cast<int8_t>(c - 'a' + 10)
               : c >= 'A' && c <= 'F' ? static_cast<int8_t>(c - 'A' + 10)
                                      : int8_t{-1};
  }
  return table;
}
constexpr std::array<int8_t, 256> kHexValue = MakeHexTable();

int HexDigit(uint8_t c) { return kHexValue[c]; }

std::string Hex2(uint32_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  return std::string("0x") + kDigits[(v >> 4) & 0xf] + kDigits[v & 0xf];
}

bool IsBlank(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// The first line after an optional UTF-8 BOM and blank lines is ':' + hex digits.
bool LooksLikeIntelHex(std::span<const uint8_t> bytes) {
  size_t i = 0;
  if (bytes.size() >= 3 && bytes[0] == 0xef && bytes[1] == 0xbb && bytes[2] == 0xbf) i = 3;
  while (i < bytes.size() && (IsBlank(bytes[i]) || bytes[i] == '\n')) ++i;
  if (i >= bytes.size() || bytes[i] != ':') return false;
  ++i;
  size_t digits = 0;
  for (; i < bytes.size() && bytes[i] != '\n'; ++i) {
    if (HexDigit(bytes[i]) >= 0) {
      ++digits;
    } else if (!IsBlank(bytes[i])) {
      return false;
    }
  }
  return digits >= 10;
}

}  // namespace

Expected<std::vector<Segment>> ParseIntelHex(std::span<const uint8_t> text, const std::string& name) {
  HexSegments segments(name);
  enum class Mode { kLinear, kSegment } mode = Mode::kLinear;
  uint32_t base = 0;  // from record 04 (upper 16 bits) or 02 (segment * 16)
  bool seen_eof = false;
  size_t pos = 0;
  if (text.size() >= 3 && text[0] == 0xef && text[1] == 0xbb && text[2] == 0xbf) pos = 3;
  uint8_t record[5 + 255];
  for (size_t line = 1; pos < text.size(); ++line) {
    size_t end = pos;
    while (end < text.size() && text[end] != '\n') ++end;
    size_t start = pos;
    size_t stop = end;
    pos = end + 1;
    while (start < stop && IsBlank(text[start])) ++start;
    while (stop > start && IsBlank(text[stop - 1])) --stop;
    if (start == stop) continue;
    // Built only on error: a large file has millions of lines.
    const auto where = [&name, line] { return name + ": line " + std::to_string(line) + ": "; };
    if (seen_eof) return Fail(where() + "record after the end-of-file record");
    if (text[start] != ':') return Fail(where() + "expected ':' at the start of a record");
    const size_t digits = stop - start - 1;
    if (digits % 2 != 0) return Fail(where() + "odd number of hex digits");
    const size_t count = digits / 2;
    if (count < 5) return Fail(where() + "record shorter than 5 bytes");
    if (count > sizeof record) return Fail(where() + "record longer than 260 bytes");
    uint8_t sum = 0;
    for (size_t i = 0; i < count; ++i) {
      const int hi = HexDigit(text[start + 1 + 2 * i]);
      const int lo = HexDigit(text[start + 2 + 2 * i]);
      if (hi < 0 || lo < 0) return Fail(where() + "not a hex digit at column " + std::to_string(hi < 0 ? 2 + 2 * i : 3 + 2 * i));
      record[i] = static_cast<uint8_t>(hi << 4 | lo);
      if (i + 1 < count) sum = static_cast<uint8_t>(sum + record[i]);
    }
    const size_t length = record[0];
    if (length != count - 5) {
      return Fail(where() + "byte count " + std::to_string(length) + " does not match the " +
                  std::to_string(count - 5) + " data bytes of the record");
    }
    const uint8_t expected = static_cast<uint8_t>(0x100 - sum);
    if (record[count - 1] != expected) {
      return Fail(where() + "checksum " + Hex2(record[count - 1]) + ", expected " + Hex2(expected));
    }
    const uint32_t offset = static_cast<uint32_t>(record[1]) << 8 | record[2];
    const uint8_t type = record[3];
    const std::span<const uint8_t> data(record + 4, length);
    switch (type) {
      case 0x00: {
        if (mode == Mode::kSegment && offset + length > 0x10000) {
          // Segment mode wraps inside the 64 KiB segment.
          const size_t first = 0x10000 - offset;
          if (auto r = segments.Add(base + offset, data.first(first), line); !r.ok()) return r.error();
          if (auto r = segments.Add(base, data.subspan(first), line); !r.ok()) return r.error();
          break;
        }
        const uint64_t address = uint64_t{base} + offset;
        if (address + length > k4GiB) return Fail(where() + "data runs past the 4 GiB address space");
        if (auto r = segments.Add(static_cast<uint32_t>(address), data, line); !r.ok()) return r.error();
        break;
      }
      case 0x01:
        if (length != 0) return Fail(where() + "end-of-file record with data");
        seen_eof = true;
        break;
      case 0x02:
      case 0x04:
        if (length != 2) return Fail(where() + "address record (type " + Hex2(type) + ") needs 2 data bytes");
        if (type == 0x02) {
          mode = Mode::kSegment;
          base = (static_cast<uint32_t>(data[0]) << 8 | data[1]) << 4;
          // A segment base above 0xf0000 wraps past 1 MiB on real 8086 hardware; we
          // keep it linear, so the highest address is 0xfffff + 0xffff.
        } else {
          mode = Mode::kLinear;
          base = (static_cast<uint32_t>(data[0]) << 8 | data[1]) << 16;
        }
        break;
      case 0x03:
      case 0x05:
        // Start address (CS:IP or EIP): not flash content.
        if (length != 4) return Fail(where() + "start address record (type " + Hex2(type) + ") needs 4 data bytes");
        break;
      default:
        return Fail(where() + "unknown record type " + Hex2(type));
    }
  }
  if (!seen_eof) return Fail(name + ": no end-of-file record (type 01); the file may be truncated");
  return SortedWithoutOverlap(segments.Take(), name);
}

// ---- ELF32 -----------------------------------------------------------------

Expected<std::vector<Segment>> ParseElf32(std::span<const uint8_t> bytes, const std::string& name) {
  constexpr size_t kHeaderSize = 52;
  constexpr size_t kProgramHeaderSize = 32;
  constexpr uint32_t kPtLoad = 1;
  constexpr uint16_t kPnXnum = 0xffff;
  if (bytes.size() < 16 || bytes[0] != 0x7f || bytes[1] != 'E' || bytes[2] != 'L' || bytes[3] != 'F') {
    return Fail(name + ": not an ELF file");
  }
  if (bytes[4] == 2) return Fail(name + ": 64-bit ELF is not supported (firmware images are ELF32)");
  if (bytes[4] != 1) return Fail(name + ": unknown ELF class " + std::to_string(bytes[4]));
  if (bytes[5] == 2) return Fail(name + ": big-endian ELF is not supported");
  if (bytes[5] != 1) return Fail(name + ": unknown ELF data encoding " + std::to_string(bytes[5]));
  if (bytes[6] != 1) return Fail(name + ": unknown ELF version " + std::to_string(bytes[6]));
  if (bytes.size() < kHeaderSize) return Fail(name + ": ELF header truncated");
  const uint8_t* h = bytes.data();
  const uint32_t phoff = runtime::LoadLe32(h + 28);
  const uint16_t phentsize = runtime::LoadLe16(h + 42);
  const uint16_t phnum = runtime::LoadLe16(h + 44);
  if (phnum == 0) return Fail(name + ": no program headers (an object file? give the linked firmware)");
  if (phnum == kPnXnum) return Fail(name + ": extended program header count (PN_XNUM) is not supported");
  if (phentsize < kProgramHeaderSize) {
    return Fail(name + ": program header size " + std::to_string(phentsize) + " is smaller than 32");
  }
  if (uint64_t{phoff} + uint64_t{phnum} * phentsize > bytes.size()) {
    return Fail(name + ": program header table (" + std::to_string(phnum) + " entries at offset " +
                std::to_string(phoff) + ") runs past the end of the file");
  }
  std::vector<Segment> segments;
  // Each segment copies its file bytes; headers sharing file bytes (phnum up to 65534) could
  // otherwise turn a 1 MiB file into gigabytes of copies before the overlap check. Disjoint
  // segments (what a linker writes) never hold more than the file.
  uint64_t file_bytes = 0;
  for (uint16_t i = 0; i < phnum; ++i) {
    const uint8_t* ph = h + phoff + size_t{i} * phentsize;
    const uint32_t type = runtime::LoadLe32(ph + 0);
    const uint32_t offset = runtime::LoadLe32(ph + 4);
    const uint32_t paddr = runtime::LoadLe32(ph + 12);
    const uint32_t filesz = runtime::LoadLe32(ph + 16);
    const uint32_t memsz = runtime::LoadLe32(ph + 20);
    if (type != kPtLoad || filesz == 0) continue;
    const std::string origin = name + ": PT_LOAD " + std::to_string(i);
    if (uint64_t{offset} + filesz > bytes.size()) {
      return Fail(origin + ": file bytes " + HexAddress(offset) + ".." + HexAddress(uint64_t{offset} + filesz - 1) +
                  " run past the end of the file (" + std::to_string(bytes.size()) + " bytes)");
    }
    if (filesz > memsz) {
      return Fail(origin + ": p_filesz " + std::to_string(filesz) + " is larger than p_memsz " + std::to_string(memsz));
    }
    if (uint64_t{paddr} + filesz > k4GiB) {
      return Fail(origin + ": load address " + HexAddress(paddr) + " + " + std::to_string(filesz) +
                  " bytes runs past 4 GiB");
    }
    file_bytes += filesz;
    if (file_bytes > bytes.size()) {
      return Fail(origin + ": the PT_LOAD segments up to here hold " + std::to_string(file_bytes) +
                  " file bytes, more than the file's " + std::to_string(bytes.size()) +
                  " (program headers that share file bytes are not supported)");
    }
    segments.push_back(Segment{paddr, Bytes(h + offset, h + offset + filesz), origin});
  }
  if (segments.empty()) return Fail(name + ": no PT_LOAD program header with file bytes");
  return SortedWithoutOverlap(std::move(segments), name);
}

// ---- Front door ------------------------------------------------------------

namespace {

Expected<std::vector<Segment>> RawSegment(Bytes bytes, const std::string& name, std::optional<uint32_t> address,
                                          const std::string& origin) {
  const std::string declared = origin.empty() ? "" : " (" + origin + ")";
  if (!address) {
    return Fail(name + ": a raw binary needs a load address: give ADDR:FILE (--firmware 0x08008000:" + name +
                ") or \"address\" in the package" + declared);
  }
  if (bytes.empty()) return Fail(name + ": empty file");
  if (uint64_t{*address} + bytes.size() > k4GiB) {
    return Fail(name + ": " + std::to_string(bytes.size()) + " bytes at " + HexAddress(*address) +
                " run past 4 GiB" + declared);
  }
  std::vector<Segment> segments;
  segments.push_back(Segment{*address, std::move(bytes), name});
  return segments;
}

}  // namespace

const char* FirmwareFormatName(FirmwareFormat format) {
  switch (format) {
    case FirmwareFormat::kRaw: return "raw binary";
    case FirmwareFormat::kIntelHex: return "Intel HEX";
    case FirmwareFormat::kElf: return "ELF";
    case FirmwareFormat::kDfuse: return "DfuSe";
  }
  return "unknown";
}

FirmwareFormat SniffFirmwareFormat(std::span<const uint8_t> bytes) {
  static constexpr uint8_t kDfuse[] = {'D', 'f', 'u', 'S', 'e'};
  static constexpr uint8_t kElf[] = {0x7f, 'E', 'L', 'F'};
  if (bytes.size() >= sizeof kDfuse && std::equal(std::begin(kDfuse), std::end(kDfuse), bytes.begin())) {
    return FirmwareFormat::kDfuse;
  }
  if (bytes.size() >= sizeof kElf && std::equal(std::begin(kElf), std::end(kElf), bytes.begin())) {
    return FirmwareFormat::kElf;
  }
  if (LooksLikeIntelHex(bytes)) return FirmwareFormat::kIntelHex;
  return FirmwareFormat::kRaw;
}

Expected<std::vector<Segment>> ParseFirmware(std::span<const uint8_t> bytes, const std::string& name,
                                             std::optional<uint32_t> address, const std::string& origin) {
  const std::string declared = origin.empty() ? "" : " (" + origin + ")";
  const FirmwareFormat format = SniffFirmwareFormat(bytes);
  if (format != FirmwareFormat::kRaw && address) {
    return Fail(name + ": a " + std::string(FirmwareFormatName(format)) +
                " file carries its own addresses; remove the address " + HexAddress(*address) + declared);
  }
  switch (format) {
    case FirmwareFormat::kIntelHex: return ParseIntelHex(bytes, name);
    case FirmwareFormat::kElf: return ParseElf32(bytes, name);
    case FirmwareFormat::kDfuse: {
      ONEDFU_PTRY(const DfuseImage image, ParseDfuse(bytes, name));
      std::vector<Segment> segments;
      for (size_t t = 0; t < image.targets.size(); ++t) {
        const DfuseTarget& target = image.targets[t];
        for (size_t e = 0; e < target.elements.size(); ++e) {
          if (target.elements[e].data.empty()) continue;
          segments.push_back(Segment{target.elements[e].address, target.elements[e].data,
                                     name + ": target " + std::to_string(t) + ", element " + std::to_string(e)});
        }
      }
      return SortedWithoutOverlap(std::move(segments), name);
    }
    case FirmwareFormat::kRaw:
      break;
  }
  return RawSegment(Bytes(bytes.begin(), bytes.end()), name, address, origin);
}

Expected<std::vector<Segment>> LoadFirmware(const FirmwareInput& input) {
  ONEDFU_PTRY(Bytes bytes, ReadFile(input.file));
  const std::string name = input.file.string();
  // Raw images can be large (the 64 MiB benchmark): hand the buffer over without a copy.
  if (SniffFirmwareFormat(bytes) == FirmwareFormat::kRaw) return RawSegment(std::move(bytes), name, input.address, input.origin);
  return ParseFirmware(bytes, name, input.address, input.origin);
}

}  // namespace onedfu::packer
