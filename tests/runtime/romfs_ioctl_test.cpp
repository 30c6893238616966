// The rom_ioctl C ABI over a RegionStore on the strict FakeFlash, driven the
// way MicroPython's mpremote drives vfs.rom_ioctl for `romfs deploy`:
// query (op 2 length, op 6 block size), prepare (ranged op 3 in pieces of at
// most 32 KiB rounded up to the block size, or legacy op 3 with the image
// length), write chunks of max(4096, min write size) zero-padded at the end
// (op 4), complete (op 5). Expectations come from the images' own file lists.
#include "runtime/romfs_ioctl.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "runtime/fake_flash.h"
#include "runtime/romfs.h"

using namespace onedfu::runtime;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t kBase = 0x90000000;
constexpr uint32_t kSector = 1024;
constexpr uint32_t kSectors = 64;
constexpr uint32_t kRegionStart = kBase + 8 * kSector;  // the firmware would sit below
constexpr uint32_t kRegionSize = 48 * kSector;

Memory Geometry(uint32_t write_align = 4) {
  Memory m;
  std::strcpy(m.name, "qspi");
  m.base = kBase;
  m.sectors[0] = {kSectors, kSector};
  m.sector_group_count = 1;
  m.write_align = write_align;
  m.erased_value = 0xff;
  m.mapped = true;
  return m;
}

struct SimBoard {
  explicit SimBoard(uint32_t write_align = 4)
      : memory(Geometry(write_align)), storage(memory.size(), 0xff), flash(memory, storage) {}
  SimBoard(const SimBoard&) = delete;

  onedfu_flash_ops Ops() {
    onedfu_flash_ops ops{};
    ops.ctx = this;
    ops.base = kBase;
    ops.mapped = storage.data();
    ops.sectors[0] = {kSectors, kSector};
    ops.sector_group_count = 1;
    ops.write_align = memory.write_align;
    ops.erased_value = 0xff;
    ops.erase = [](void* ctx, uint32_t address, uint32_t size) {
      auto* board = static_cast<SimBoard*>(ctx);
      return board->flash.Erase(address, size).ok() ? 0 : -ONEDFU_EIO;
    };
    ops.write = [](void* ctx, uint32_t address, const uint8_t* data, uint32_t size) {
      auto* board = static_cast<SimBoard*>(ctx);
      if (board->fail_writes) return -ONEDFU_EIO;
      return board->flash.Write(address, ByteSpan(data, size)).ok() ? 0 : -ONEDFU_EIO;
    };
    return ops;
  }
  int Init() {
    const onedfu_flash_ops ops = Ops();
    return onedfu_romfs_init(&ops, kRegionStart, kRegionSize);
  }

  Memory memory;
  Bytes storage;
  FakeFlash flash;
  bool fail_writes = false;
};

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed * 31 + i * 7 + (i >> 8));
  return v;
}

using FileSet = std::map<std::string, Bytes>;

Bytes MakeImage(const FileSet& files) {
  std::vector<RomfsFileSpec> specs;
  for (const auto& [path, data] : files) specs.push_back({path.c_str(), data});
  auto size = RomfsImageSize(specs, {});
  REQUIRE(size.ok());
  Bytes out(size.value());
  REQUIRE(WriteRomfs(specs, {}, out).ok());
  return out;
}

const FileSet kBaseFiles = {{"main.py", Pattern(200, 1)}, {"lib/drv.mpy", Pattern(3000, 2)}};
const FileSet kUpdateFiles = {{"lib/drv.mpy", Pattern(5000, 3)}, {"assets/logo.bin", Pattern(9000, 4)}};

int Op(int op, int n_args, int32_t id = 0, uint32_t arg1 = 0, uint32_t arg2 = 0, const uint8_t* data = nullptr,
       uint32_t size = 0) {
  onedfu_rom_ioctl_args args{op, n_args, id, arg1, arg2, data, size};
  return onedfu_rom_ioctl(&args);
}

// mpremote's `romfs deploy` sequence, through the dispatcher; returns the
// first negative result (or the complete result).
int Deploy(const Bytes& romfs, bool ranged) {
  onedfu_rom_ioctl_args query{ONEDFU_ROM_IOCTL_GET_SEGMENT, 1, 0, 0, 0, nullptr, 0};
  if (int r = onedfu_rom_ioctl(&query); r < 0) return r;
  const uint32_t rom_size = query.size;
  int block = Op(ONEDFU_ROM_IOCTL_GET_MIN_PREPARE, 1, 0);
  if (block <= 0) block = static_cast<int>(rom_size);
  if (romfs.size() > rom_size) return -ONEDFU_ENOSPC;  // mpremote's own check
  int min_write = 0;
  if (ranged && static_cast<uint32_t>(block) < rom_size) {
    for (uint32_t offset = 0; offset < romfs.size();) {
      const uint32_t remain = std::min<uint32_t>(static_cast<uint32_t>(romfs.size()) - offset, 32768);
      const uint32_t prepare = (remain + block - 1) / block * block;
      min_write = Op(ONEDFU_ROM_IOCTL_WRITE_PREPARE, 3, 0, offset, prepare);
      if (min_write < 0) return min_write;
      offset += prepare;
    }
  } else {
    min_write = Op(ONEDFU_ROM_IOCTL_WRITE_PREPARE, 2, 0, static_cast<uint32_t>(romfs.size()));
    if (min_write < 0) return min_write;
  }
  const uint32_t chunk = std::max<uint32_t>(4096, static_cast<uint32_t>(min_write));
  for (uint32_t offset = 0; offset < romfs.size(); offset += chunk) {
    Bytes piece(chunk, 0);  // zero-padded like mpremote's last chunk
    std::copy_n(romfs.begin() + offset, std::min<size_t>(chunk, romfs.size() - offset), piece.begin());
    if (int r = Op(ONEDFU_ROM_IOCTL_WRITE, 3, 0, offset, 0, piece.data(), chunk); r < 0) return r;
  }
  return Op(ONEDFU_ROM_IOCTL_WRITE_COMPLETE, 1, 0);
}

// What MicroPython's VfsRom checks when it mounts a memoryview: at least 4
// bytes, the ROMFS header, the filesystem record ending inside the buffer.
bool VfsRomWouldMount(const uint8_t* data, uint32_t size) {
  if (size < 4) return false;
  const size_t length = RomfsImageLength(ByteSpan(data, size));
  return length > 0 && length <= size;
}

Bytes SegmentBytes(int id) {
  const uint8_t* data = nullptr;
  uint32_t size = 0;
  REQUIRE(onedfu_rom_ioctl_segment(id, &data, &size) == 0);
  const size_t length = RomfsImageLength(ByteSpan(data, size));
  return Bytes(data, data + length);
}

void CheckMergedView(const FileSet& expected) {
  for (const auto& item : expected) {
    const std::string& path = item.first;
    const Bytes& data = item.second;
    const uint8_t* ptr = nullptr;
    uint32_t size = 0;
    REQUIRE_MESSAGE(onedfu_romfs_lookup(path.c_str(), &ptr, &size) == 1, path);
    CHECK(Bytes(ptr, ptr + size) == data);
  }
}

}  // namespace

TEST_CASE("romfs ioctl: not initialised, bad ops and bad geometry give -ENODEV") {
  CHECK(onedfu_romfs_init(nullptr, kRegionStart, kRegionSize) == -ONEDFU_ENODEV);
  CHECK(onedfu_rom_ioctl_count() == -ONEDFU_ENODEV);
  CHECK(onedfu_rom_ioctl_prepare(0, 0, 100) == -ONEDFU_ENODEV);
  CHECK(onedfu_romfs_pop() == -ONEDFU_ENODEV);
  CHECK(Op(ONEDFU_ROM_IOCTL_GET_NUMBER_OF_SEGMENTS, 0) == -ONEDFU_ENODEV);
  const uint8_t* data = nullptr;
  uint32_t size = 0;
  CHECK(onedfu_romfs_lookup("x", &data, &size) == -ONEDFU_ENODEV);
  onedfu_romfs_info info{};
  CHECK(onedfu_romfs_get_info(&info) == -ONEDFU_ENODEV);

  SimBoard board;
  onedfu_flash_ops ops = board.Ops();
  CHECK(onedfu_romfs_init(&ops, kRegionStart + 100, kRegionSize) == -ONEDFU_ENODEV);  // not a sector start
  CHECK(onedfu_romfs_init(&ops, kRegionStart, kSectors * kSector) == -ONEDFU_ENODEV);  // past the end
  ops.write_align = 64;
  CHECK(onedfu_romfs_init(&ops, kRegionStart, kRegionSize) == -ONEDFU_ENODEV);
  ops = board.Ops();
  ops.mapped = nullptr;
  CHECK(onedfu_romfs_init(&ops, kRegionStart, kRegionSize) == -ONEDFU_ENODEV);
  ops = board.Ops();
  ops.sector_group_count = 0;
  CHECK(onedfu_romfs_init(&ops, kRegionStart, kRegionSize) == -ONEDFU_ENODEV);
  CHECK(onedfu_rom_ioctl_count() == -ONEDFU_ENODEV);
  CHECK(board.Init() == 0);
  CHECK(onedfu_rom_ioctl_count() == 1);
}

TEST_CASE("romfs ioctl: a blank region is one partition holding no valid ROMFS") {
  SimBoard board;
  REQUIRE(board.Init() == 0);
  CHECK(Op(ONEDFU_ROM_IOCTL_GET_NUMBER_OF_SEGMENTS, 0) == 1);
  onedfu_rom_ioctl_args seg{ONEDFU_ROM_IOCTL_GET_SEGMENT, 1, 0, 0, 0, nullptr, 0};
  REQUIRE(onedfu_rom_ioctl(&seg) == 0);
  CHECK(seg.data == board.storage.data() + (kRegionStart - kBase));
  CHECK(seg.size == kRegionSize);
  CHECK_FALSE(VfsRomWouldMount(seg.data, seg.size));
  CHECK(Op(ONEDFU_ROM_IOCTL_GET_SEGMENT, 1, 1) == -ONEDFU_ENOENT);
  CHECK(Op(ONEDFU_ROM_IOCTL_GET_MIN_PREPARE, 1, 0) == static_cast<int>(kSector));
  CHECK(Op(ONEDFU_ROM_IOCTL_GET_MIN_PREPARE, 1, 1) == -ONEDFU_ENOENT);
  onedfu_romfs_info info{};
  REQUIRE(onedfu_romfs_get_info(&info) == 0);
  CHECK(info.images == 0);
  CHECK(info.live == 0);
  CHECK(info.files == 0);
  CHECK(info.free_bytes == kRegionSize - kSlotImageOffset);
  CHECK(Op(ONEDFU_ROM_IOCTL_POP, 1, 0) == -ONEDFU_EPERM);
}

TEST_CASE("romfs ioctl: mpremote-style deploy pushes on top of the packer's base image") {
  for (bool ranged : {true, false}) {
    CAPTURE(ranged);
    SimBoard board;
    const Bytes base = MakeImage(kBaseFiles);
    REQUIRE(board.flash.Preload(kRegionStart, base));
    REQUIRE(board.Init() == 0);
    REQUIRE(onedfu_rom_ioctl_count() == 1);
    CHECK(SegmentBytes(0) == base);

    const Bytes update = MakeImage(kUpdateFiles);
    REQUIRE(update.size() > 8192);  // several 4 KiB chunks and sectors
    REQUIRE(Deploy(update, ranged) == 0);

    CHECK(onedfu_rom_ioctl_count() == 2);
    CHECK(SegmentBytes(0) == update);  // the new top is partition 0
    CHECK(SegmentBytes(1) == base);
    const uint8_t* top = nullptr;
    uint32_t top_size = 0;
    REQUIRE(onedfu_rom_ioctl_segment(0, &top, &top_size) == 0);
    CHECK(VfsRomWouldMount(top, top_size));
    CHECK(top + top_size == board.storage.data() + (kRegionStart - kBase) + kRegionSize);  // to the region end
    const uint8_t* bottom = nullptr;
    uint32_t bottom_size = 0;
    REQUIRE(onedfu_rom_ioctl_segment(1, &bottom, &bottom_size) == 0);
    CHECK(bottom == board.storage.data() + (kRegionStart - kBase));
    CHECK(bottom_size == (base.size() + kSector - 1) / kSector * kSector);  // up to the next slot
    CHECK(top == bottom + bottom_size + kSlotImageOffset);

    FileSet merged = kBaseFiles;
    for (const auto& [path, data] : kUpdateFiles) merged[path] = data;
    CheckMergedView(merged);
    const uint8_t* ptr = nullptr;
    uint32_t size = 0;
    CHECK(onedfu_romfs_lookup("lib", &ptr, &size) == 2);
    CHECK(onedfu_romfs_lookup("nope.py", &ptr, &size) == -ONEDFU_ENOENT);
    onedfu_romfs_info info{};
    REQUIRE(onedfu_romfs_get_info(&info) == 0);
    CHECK(info.images == 2);
    CHECK(info.live == 2);
    CHECK(info.files == 3);

    // A reset: the stack is found again.
    REQUIRE(board.Init() == 0);
    CHECK(onedfu_rom_ioctl_count() == 2);
    CheckMergedView(merged);
  }
}

TEST_CASE("romfs ioctl: writes go to partition 0 only; misuse gives rom_ioctl errors") {
  SimBoard board;
  REQUIRE(board.flash.Preload(kRegionStart, MakeImage(kBaseFiles)));
  REQUIRE(board.Init() == 0);
  const Bytes update = MakeImage(kUpdateFiles);

  CHECK(onedfu_rom_ioctl_write(0, 0, update.data(), 64) == -ONEDFU_EINVAL);  // nothing prepared
  CHECK(onedfu_rom_ioctl_complete(0) == -ONEDFU_EINVAL);
  CHECK(onedfu_rom_ioctl_prepare(1, 0, 100) == -ONEDFU_EPERM);  // older images are read-only
  CHECK(onedfu_rom_ioctl_write(1, 0, update.data(), 64) == -ONEDFU_EPERM);
  CHECK(onedfu_rom_ioctl_complete(1) == -ONEDFU_EPERM);
  CHECK(onedfu_rom_ioctl_prepare(0, 0, kRegionSize) == -ONEDFU_ENOSPC);
  CHECK(onedfu_rom_ioctl_prepare(0, 100, 100) == -ONEDFU_EINVAL);  // extend without a push
  CHECK(Op(ONEDFU_ROM_IOCTL_WRITE_PREPARE, 1, 0) == -ONEDFU_EINVAL);  // no length
  CHECK(Op(99, 0) == -ONEDFU_EINVAL);

  REQUIRE(onedfu_rom_ioctl_prepare(0, 0, static_cast<uint32_t>(update.size())) == 4);
  CHECK(onedfu_romfs_pop() == -ONEDFU_EBUSY);
  CHECK(onedfu_rom_ioctl_write(0, 2, update.data(), 4) == -ONEDFU_EINVAL);  // misaligned
  // Garbage instead of an image: complete refuses, the stack is unchanged.
  const Bytes junk = Pattern(256, 9);
  REQUIRE(onedfu_rom_ioctl_write(0, 0, junk.data(), 256) == 0);
  CHECK(onedfu_rom_ioctl_complete(0) == -ONEDFU_EINVAL);
  CHECK(onedfu_rom_ioctl_count() == 1);
  CheckMergedView(kBaseFiles);

  // A flash write failure: -EIO, push cancelled, stack unchanged.
  REQUIRE(onedfu_rom_ioctl_prepare(0, 0, static_cast<uint32_t>(update.size())) > 0);
  board.fail_writes = true;
  CHECK(onedfu_rom_ioctl_write(0, 0, update.data(), 4096) == -ONEDFU_EIO);
  board.fail_writes = false;
  CHECK(onedfu_rom_ioctl_write(0, 4096, update.data() + 4096, 4096) == -ONEDFU_EINVAL);  // cancelled
  CHECK(onedfu_rom_ioctl_count() == 1);

  // An image bigger than the free space: mpremote's own check passes (the
  // partition 0 memoryview reaches the region end) but prepare refuses.
  const Bytes huge = MakeImage({{"big.bin", Pattern(kRegionSize - 2 * kSector, 5)}});
  CHECK(Deploy(huge, true) == -ONEDFU_ENOSPC);
  CHECK(onedfu_rom_ioctl_count() == 1);
}

TEST_CASE("romfs ioctl: pop extension, erase at the next init") {
  SimBoard board;
  REQUIRE(board.flash.Preload(kRegionStart, MakeImage(kBaseFiles)));
  REQUIRE(board.Init() == 0);
  REQUIRE(Deploy(MakeImage(kUpdateFiles), true) == 0);
  REQUIRE(onedfu_rom_ioctl_count() == 2);
  const uint8_t* logo = nullptr;
  uint32_t logo_size = 0;
  REQUIRE(onedfu_romfs_lookup("assets/logo.bin", &logo, &logo_size) == 1);

  CHECK(Op(ONEDFU_ROM_IOCTL_POP, 1, 1) == -ONEDFU_EPERM);
  REQUIRE(Op(ONEDFU_ROM_IOCTL_POP, 1, 0) == 0);
  CHECK(onedfu_rom_ioctl_count() == 1);
  CheckMergedView(kBaseFiles);
  const uint8_t* ptr = nullptr;
  uint32_t size = 0;
  CHECK(onedfu_romfs_lookup("assets/logo.bin", &ptr, &size) == -ONEDFU_ENOENT);
  CHECK(Bytes(logo, logo + logo_size) == kUpdateFiles.at("assets/logo.bin"));  // still readable
  CHECK(onedfu_romfs_pop() == -ONEDFU_EPERM);  // the base stays
  onedfu_romfs_info info{};
  REQUIRE(onedfu_romfs_get_info(&info) == 0);
  CHECK(info.images == 2);
  CHECK(info.live == 1);

  REQUIRE(board.Init() == 0);  // next boot: the removed image is erased
  REQUIRE(onedfu_romfs_get_info(&info) == 0);
  CHECK(info.images == 1);
  CHECK(std::all_of(logo, logo + logo_size, [](uint8_t b) { return b == 0xff; }));
}

TEST_CASE("romfs ioctl: write unit 16 (STM32 internal flash) and RomIoctl over a caller's store") {
  SimBoard board(16);
  const onedfu_flash_ops ops = board.Ops();
  REQUIRE(onedfu_romfs_init(&ops, kRegionStart, kRegionSize) == 0);
  CHECK(onedfu_rom_ioctl_prepare(0, 0, 100) == 16);

  // The C++ mapping on a store the caller owns (as the simulator does).
  SimBoard other;
  RegionStore store(other.flash, kRegionStart, kRegionSize);
  RomIoctl ioctl(store);
  CHECK(ioctl.Count() == -ONEDFU_ENODEV);  // not mounted
  REQUIRE(store.Mount(nullptr).ok());
  const Bytes image = MakeImage(kUpdateFiles);
  REQUIRE(ioctl.Prepare(0, 0, static_cast<uint32_t>(image.size())) == 4);
  REQUIRE(ioctl.Write(0, 0, image.data(), static_cast<uint32_t>(image.size())) == 0);
  REQUIRE(ioctl.Complete(0) == 0);
  CHECK(ioctl.Count() == 1);
  const uint8_t* data = nullptr;
  uint32_t size = 0;
  REQUIRE(ioctl.Segment(0, &data, &size) == 0);
  CHECK(Bytes(data, data + image.size()) == image);
  CHECK(StatusToErrno(Status(StatusCode::kResourceExhausted, "")) == -ONEDFU_ENOSPC);
  CHECK(StatusToErrno(Status(StatusCode::kDataLoss, "")) == -ONEDFU_EIO);
  CHECK(StatusToErrno(Status()) == 0);
}
