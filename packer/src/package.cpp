#include "packer/package.h"

#include "host/json_reader.h"
#include "host/text.h"
#include "host/board_json.h"
#include "host/file_io.h"

namespace onedfu::packer {

namespace fs = std::filesystem;
using json_reader::Json;
using json_reader::Object;
using json_reader::ReadNumber;
using json_reader::ReadString;
using json_reader::Throw;

namespace {

constexpr size_t kMaxVersionLength = 31;  // boot record package_version field, NUL excluded
constexpr size_t kMaxNameLength = 255;    // DfuSe target name
constexpr uint64_t kMaxRomfsAlign = 65536;

// "" when `text` is printable ASCII of at most `max_length` characters, else why not.
std::string PrintableProblem(const std::string& text, size_t max_length) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return "use printable ASCII only";
  }
  if (text.size() > max_length) return "\"" + text + "\" is longer than " + std::to_string(max_length) + " characters";
  return "";
}

void CheckPrintable(const std::string& text, size_t max_length, const std::string& path) {
  if (const std::string problem = PrintableProblem(text, max_length); !problem.empty()) Throw(path, problem);
}

// Reads a non-empty path string and anchors it at `base` when relative.
fs::path ReadPath(const Json& value, const std::string& path, const fs::path& base) {
  const std::string text = ReadString(value, path);
  if (text.empty()) Throw(path, "empty path");
  if (text.find('\0') != std::string::npos) Throw(path, "path contains a NUL character");
  const fs::path p(text);
  return p.is_absolute() ? p : base / p;
}

class PackageParser {
 public:
  PackageParser(const fs::path& package_path)
      : source_(package_path.string()), base_(package_path.parent_path()) {
    spec_.name = package_path.stem().string();
  }

  PackageSpec Parse(const Json& doc) {
    const Object top(doc, "");
    top.AllowOnly({"name", "version", "board", "usb", "firmware", "modules", "assets", "romfs", "mpy_cross"});
    if (const Json* v = top.Find("name")) {
      spec_.name = ReadString(*v, top.PathOf("name"));
      CheckPrintable(spec_.name, kMaxNameLength, top.PathOf("name"));
    }
    if (const Json* v = top.Find("version")) {
      spec_.version = ReadString(*v, top.PathOf("version"));
      CheckPrintable(spec_.version, kMaxVersionLength, top.PathOf("version"));
    }
    if (const Json* v = top.Find("board")) ParseBoard(*v, top.PathOf("board"));
    if (const Json* v = top.Find("usb")) ParseUsb(Object(*v, top.PathOf("usb")));
    if (const Json* v = top.Find("firmware")) ParseFirmware(*v, top.PathOf("firmware"));
    if (const Json* v = top.Find("modules")) ParseItems(*v, top.PathOf("modules"), spec_.modules);
    if (const Json* v = top.Find("assets")) ParseItems(*v, top.PathOf("assets"), spec_.assets);
    if (const Json* v = top.Find("romfs")) ParseRomfs(Object(*v, top.PathOf("romfs")));
    if (const Json* v = top.Find("mpy_cross")) {
      const std::string path = top.PathOf("mpy_cross");
      const std::string text = ReadString(*v, path);
      if (text.empty()) Throw(path, "empty command");
      // A bare command name is looked up in PATH when run; a path is anchored here.
      spec_.mpy_cross = text.find('/') == std::string::npos ? text : ReadPath(*v, path, base_).string();
    }
    return std::move(spec_);
  }

 private:
  std::string Origin(const std::string& path) const { return source_ + ": " + path; }

  void ParseBoard(const Json& value, const std::string& path) {
    const std::string text = ReadString(value, path);
    if (text.empty()) Throw(path, "empty board");
    if (text.find('/') != std::string::npos || fs::path(text).extension() == ".json") {
      spec_.board = ReadPath(value, path, base_);
      return;
    }
    auto found = FindBoard(text);
    if (!found.ok()) Throw(path, found.error().message);
    spec_.board = *found;
  }

  void ParseUsb(const Object& usb) {
    usb.AllowOnly({"vid", "pid", "bcd_device"});
    if (const Json* v = usb.Find("vid")) spec_.vid = static_cast<uint16_t>(ReadNumber(*v, usb.PathOf("vid"), 0xffff));
    if (const Json* v = usb.Find("pid")) spec_.pid = static_cast<uint16_t>(ReadNumber(*v, usb.PathOf("pid"), 0xffff));
    if (const Json* v = usb.Find("bcd_device")) {
      spec_.bcd_device = static_cast<uint16_t>(ReadNumber(*v, usb.PathOf("bcd_device"), 0xffff));
    }
  }

  void ParseFirmware(const Json& list, const std::string& path) {
    if (!list.is_array()) Throw(path, "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string item_path = json_reader::Child(path, i);
      FirmwareInput input;
      input.origin = Origin(item_path);
      if (list[i].is_string()) {
        input.file = ReadPath(list[i], item_path, base_);
      } else {
        const Object item(list[i], item_path);
        item.AllowOnly({"file", "address"});
        input.file = ReadPath(item.Require("file"), item.PathOf("file"), base_);
        if (const Json* v = item.Find("address")) {
          input.address = static_cast<uint32_t>(ReadNumber(*v, item.PathOf("address"), UINT32_MAX));
        }
      }
      spec_.firmware.push_back(std::move(input));
    }
  }

  void ParseItems(const Json& list, const std::string& path, std::vector<RomfsItem>& out) {
    if (!list.is_array()) Throw(path, "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string item_path = json_reader::Child(path, i);
      RomfsItem item;
      item.origin = Origin(item_path);
      if (list[i].is_string()) {
        item.source = ReadPath(list[i], item_path, base_);
        item.target = item.source.filename().string();
        CheckTarget(item.target, false, item_path);
        out.push_back(std::move(item));
        continue;
      }
      const Object obj(list[i], item_path);
      obj.AllowOnly({"source", "dir", "target"});
      const Json* source = obj.Find("source");
      const Json* dir = obj.Find("dir");
      if ((source == nullptr) == (dir == nullptr)) Throw(item_path, "give exactly one of \"source\" and \"dir\"");
      item.directory = dir != nullptr;
      item.source = item.directory ? ReadPath(*dir, obj.PathOf("dir"), base_)
                                   : ReadPath(*source, obj.PathOf("source"), base_);
      if (const Json* target = obj.Find("target")) {
        item.target = ReadString(*target, obj.PathOf("target"));
        CheckTarget(item.target, item.directory, obj.PathOf("target"));
      } else if (!item.directory) {
        item.target = item.source.filename().string();
        CheckTarget(item.target, false, obj.PathOf("source"));
      }
      out.push_back(std::move(item));
    }
  }

  void ParseRomfs(const Object& romfs) {
    romfs.AllowOnly({"dir", "align"});
    if (const Json* v = romfs.Find("dir")) spec_.romfs_dir = ReadPath(*v, romfs.PathOf("dir"), base_);
    if (const Json* v = romfs.Find("align")) {
      const std::string path = romfs.PathOf("align");
      const uint64_t align = ReadNumber(*v, path, kMaxRomfsAlign);
      if (align == 0 || (align & (align - 1)) != 0) {
        Throw(path, std::to_string(align) + " is not a power of two (1, 2, 4, ... 65536)");
      }
      spec_.romfs_align = static_cast<uint32_t>(align);
    }
  }

  static void CheckTarget(const std::string& target, bool allow_empty, const std::string& path) {
    const Outcome ok = CheckRomfsTarget(target, allow_empty);
    if (!ok.ok()) Throw(path, ok.error().message);
  }

  std::string source_;
  fs::path base_;
  PackageSpec spec_;
};

}  // namespace

Outcome CheckRomfsTarget(std::string_view target, bool allow_empty) {
  const std::string quoted = "\"" + std::string(target) + "\"";
  if (target.empty()) {
    if (allow_empty) return Success();
    return Fail("empty ROMFS target path");
  }
  if (target.front() == '/') return Fail(quoted + ": ROMFS target paths are relative (no leading '/')");
  size_t start = 0;
  while (start <= target.size()) {
    const size_t slash = target.find('/', start);
    const std::string_view part =
        target.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty()) return Fail(quoted + ": empty path component");
    if (part == "." || part == "..") return Fail(quoted + ": \".\" and \"..\" are not allowed");
    for (char c : part) {
      if (c == '\0' || c == '\\') return Fail(quoted + ": NUL and '\\' are not allowed");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Success();
}

Expected<PackageSpec> ParsePackageJson(std::string_view text, const fs::path& package_path) {
  try {
    PackageParser parser(package_path);
    return parser.Parse(json_reader::ParseDocument(text));
  } catch (const json_reader::JsonFieldError& e) {
    return Fail(json_reader::Describe(package_path.string(), e));
  } catch (const std::exception& e) {
    return Fail(package_path.string() + ": " + e.what());
  }
}

Expected<PackageSpec> LoadPackageFile(const fs::path& path) {
  ONEDFU_PTRY(const Bytes bytes, ReadFile(path, kMaxJsonSize));
  return ParsePackageJson(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
}

Outcome CheckPackageVersion(const std::string& version, const std::string& where) {
  const std::string problem = PrintableProblem(version, kMaxVersionLength);
  if (problem.empty()) return Success();
  return Fail(where + " \"" + EscapeText(version) + "\": " + problem);
}

Expected<FirmwareInput> ParseFirmwareFlag(const std::string& flag) {
  FirmwareInput input;
  input.origin = "--firmware";
  std::string file = flag;
  const bool hex_prefix = flag.size() > 2 && flag[0] == '0' && (flag[1] == 'x' || flag[1] == 'X');
  const size_t colon = flag.find(':');
  if (hex_prefix && colon != std::string::npos) {
    const std::string address = flag.substr(0, colon);
    uint64_t value = 0;
    if (!json_reader::ParseNumberText(address, &value) || value > UINT32_MAX) {
      return Fail("--firmware " + flag + ": \"" + address + "\" is not a 32-bit hex address (write 0x08008000:FILE)");
    }
    input.address = static_cast<uint32_t>(value);
    file = flag.substr(colon + 1);
  }
  if (file.empty()) return Fail("--firmware " + flag + ": no file name (write [0xADDR:]FILE)");
  input.file = file;
  return input;
}

}  // namespace onedfu::packer
