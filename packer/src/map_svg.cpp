#include "packer/map_svg.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "host/text.h"
#include "packer/layout.h"

namespace onedfu::packer {

using runtime::Board;
using runtime::Memory;
using runtime::Region;
using runtime::RegionRole;

namespace {

constexpr int kWidth = 960;
constexpr int kBarLeft = 40;
constexpr int kBarWidth = kWidth - 2 * kBarLeft;
constexpr int kRegionBarHeight = 44;
constexpr int kElementBarHeight = 18;
constexpr int kTableRowHeight = 18;

std::string Escape(const std::string& text) {
  // XML 1.0 text is UTF-8 without control characters (EscapeText writes them as \xNN).
  const std::string valid = EscapeText(text, true);
  std::string out;
  out.reserve(valid.size());
  for (char c : valid) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string HumanSize(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) {
    std::snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(bytes >> 20));
  } else if (bytes >= 1024 && bytes % 1024 == 0) {
    std::snprintf(buf, sizeof buf, "%llu KiB", static_cast<unsigned long long>(bytes >> 10));
  } else if (bytes >= 10 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  }
  return buf;
}

const char* RoleFill(RegionRole role) {
  switch (role) {
    case RegionRole::kBootloader:
    case RegionRole::kReserved: return "url(#hatch)";
    case RegionRole::kFirmware: return "#9ecae1";
    case RegionRole::kRecord: return "#fdd49e";
    case RegionRole::kRomfs: return "#a1d99b";
    case RegionRole::kFilesystem: return "#cbc9e2";
    case RegionRole::kProvision: return "#fcbba1";
  }
  return "#dddddd";
}

// Horizontal position of an address within a memory's bar.
double XOf(const Memory& m, uint64_t address) {
  const double fraction = static_cast<double>(address - m.base) / static_cast<double>(m.size());
  return kBarLeft + fraction * kBarWidth;
}

// Width on screen, at least 2 px so a 4 KiB record in 2 MiB stays visible.
double WidthOf(const Memory& m, uint64_t size) {
  return std::max(2.0, static_cast<double>(size) / static_cast<double>(m.size()) * kBarWidth);
}

uint64_t BytesInside(const std::vector<MapElement>& elements, uint64_t start, uint64_t end) {
  uint64_t total = 0;
  for (const MapElement& e : elements) {
    const uint64_t lo = std::max<uint64_t>(e.address, start);
    const uint64_t hi = std::min<uint64_t>(e.address + e.size, end);
    if (hi > lo) total += hi - lo;
  }
  return total;
}

void Text(std::ostringstream& out, double x, double y, const std::string& text, const char* extra = "") {
  out << "<text x=\"" << x << "\" y=\"" << y << "\"" << extra << ">" << Escape(text) << "</text>\n";
}

}  // namespace

std::string RenderMapSvg(const Board& board, const std::vector<MapElement>& elements, const std::string& title) {
  std::ostringstream body;
  body.setf(std::ios::fixed);
  body.precision(1);
  int y = 56;
  for (uint8_t mi = 0; mi < board.memory_count; ++mi) {
    const Memory& m = board.memories[mi];
    Text(body, kBarLeft, y, std::string(m.name) + " (" + m.label + ")  " + HexAddress(m.base) + "  " +
                                HumanSize(m.size()) + (m.mapped ? ", memory-mapped" : ", not mapped"),
         " class=\"memory\"");
    y += 10;
    const int bar_y = y;
    body << "<rect x=\"" << kBarLeft << "\" y=\"" << bar_y << "\" width=\"" << kBarWidth << "\" height=\""
         << kRegionBarHeight << "\" fill=\"#f4f4f4\" stroke=\"#888\"/>\n";
    // Sector boundaries as ticks, skipped when they would merge into a grey smear.
    if (m.sector_count() <= 128) {
      uint64_t address = m.base;
      for (uint8_t g = 0; g < m.sector_group_count; ++g) {
        for (uint32_t s = 0; s < m.sectors[g].count; ++s) {
          body << "<line x1=\"" << XOf(m, address) << "\" y1=\"" << bar_y + kRegionBarHeight << "\" x2=\""
               << XOf(m, address) << "\" y2=\"" << bar_y + kRegionBarHeight + 4 << "\" stroke=\"#666\"/>\n";
          address += m.sectors[g].size;
        }
      }
    }
    for (uint8_t ri = 0; ri < board.region_count; ++ri) {
      const Region& r = board.regions[ri];
      if (r.memory != mi) continue;
      const uint64_t start = board.RegionStart(r);
      const double x = XOf(m, start);
      const double w = WidthOf(m, r.size);
      body << "<rect x=\"" << x << "\" y=\"" << bar_y << "\" width=\"" << w << "\" height=\"" << kRegionBarHeight
           << "\" fill=\"" << RoleFill(r.role) << "\" stroke=\"#333\"><title>"
           << Escape(std::string(r.name) + " (" + runtime::RegionRoleName(r.role) + ") " + HexAddress(start) +
                     " " + HumanSize(r.size))
           << "</title></rect>\n";
      const std::string name = r.name;
      if (w > 7.0 * static_cast<double>(name.size()) + 6) {
        Text(body, x + 4, bar_y + 18, name, " class=\"region\"");
      }
    }
    y = bar_y + kRegionBarHeight + 8;
    // What the package writes, under the regions.
    for (const MapElement& e : elements) {
      if (!m.Contains(e.address)) continue;
      const double x = XOf(m, e.address);
      const double w = WidthOf(m, std::min<uint64_t>(e.size, m.end() - e.address));
      body << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << w << "\" height=\"" << kElementBarHeight
           << "\" fill=\"#3182bd\" stroke=\"#08519c\"><title>"
           << Escape(e.label + " " + HexAddress(e.address) + " " + HumanSize(e.size)) << "</title></rect>\n";
    }
    y += kElementBarHeight + 22;
    // The table: exact figures for every region.
    Text(body, kBarLeft, y, "region", " class=\"th\"");
    Text(body, kBarLeft + 130, y, "role", " class=\"th\"");
    Text(body, kBarLeft + 230, y, "range", " class=\"th\"");
    Text(body, kBarLeft + 470, y, "size", " class=\"th\"");
    Text(body, kBarLeft + 570, y, "package writes", " class=\"th\"");
    y += kTableRowHeight;
    for (uint8_t ri = 0; ri < board.region_count; ++ri) {
      const Region& r = board.regions[ri];
      if (r.memory != mi) continue;
      const uint64_t start = board.RegionStart(r);
      const uint64_t used = BytesInside(elements, start, start + r.size);
      char percent[32];
      std::snprintf(percent, sizeof percent, " (%.1f%%)", 100.0 * static_cast<double>(used) / r.size);
      body << "<rect x=\"" << kBarLeft - 16 << "\" y=\"" << y - 11 << "\" width=\"10\" height=\"10\" fill=\""
           << RoleFill(r.role) << "\" stroke=\"#333\"/>\n";
      Text(body, kBarLeft, y, r.name);
      Text(body, kBarLeft + 130, y, runtime::RegionRoleName(r.role));
      Text(body, kBarLeft + 230, y, HexAddress(start) + " .. " + HexAddress(start + r.size - 1));
      Text(body, kBarLeft + 470, y, HumanSize(r.size));
      Text(body, kBarLeft + 570, y, used ? HumanSize(used) + percent : std::string("-"));
      y += kTableRowHeight;
    }
    y += 28;
  }
  // Legend.
  const char* names[] = {"bootloader (never written)", "firmware", "record", "romfs (in place)", "filesystem (kept)"};
  const RegionRole roles[] = {RegionRole::kBootloader, RegionRole::kFirmware, RegionRole::kRecord, RegionRole::kRomfs,
                              RegionRole::kFilesystem};
  int x = kBarLeft;
  for (int i = 0; i < 5; ++i) {
    body << "<rect x=\"" << x << "\" y=\"" << y - 11 << "\" width=\"12\" height=\"12\" fill=\"" << RoleFill(roles[i])
         << "\" stroke=\"#333\"/>\n";
    Text(body, x + 16, y, names[i]);
    x += 30 + static_cast<int>(std::string(names[i]).size()) * 7;
  }
  body << "<rect x=\"" << x << "\" y=\"" << y - 11 << "\" width=\"12\" height=\"12\" fill=\"#3182bd\"/>\n";
  Text(body, x + 16, y, "written by this package");
  y += 24;

  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << kWidth << "\" height=\"" << y
      << "\" viewBox=\"0 0 " << kWidth << " " << y << "\" font-family=\"monospace\" font-size=\"12\">\n"
      << "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
         "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#fcbba1\"/>"
         "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#cb181d\" stroke-width=\"2\"/></pattern>"
         "<style>.memory{font-weight:bold;font-size:13px}.th{font-weight:bold}.region{font-size:11px}</style></defs>\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  Text(out, kBarLeft, 28, title, " font-size=\"16\" font-weight=\"bold\"");
  out << body.str() << "</svg>\n";
  return out.str();
}

}  // namespace onedfu::packer
