// MicroPython rom_ioctl mapping onto RegionStore, and its C ABI over one
// store in static storage. See romfs_ioctl.h for the presentation rules.
#include "runtime/romfs_ioctl.h"

#include <optional>

namespace onedfu::runtime {
namespace {

// A FlashMemory over the port's C callbacks.
class CallbackFlash final : public FlashMemory {
 public:
  const Memory& geometry() const override { return geometry_; }

  Status Erase(uint32_t address, uint32_t size) override {
    if (ops_.erase == nullptr) return Status(StatusCode::kUnavailable, "no erase callback");
    return ops_.erase(ops_.ctx, address, size) == 0 ? Status::Ok()
                                                    : Status(StatusCode::kUnavailable, "flash erase failed");
  }

  Status Read(uint32_t address, MutableByteSpan out) override {
    const ByteSpan mapped = Mapped();
    const uint64_t offset = static_cast<uint64_t>(address) - geometry_.base;
    if (address < geometry_.base || offset + out.size() > mapped.size()) {
      return Status(StatusCode::kOutOfRange, "flash read outside the memory");
    }
    for (size_t i = 0; i < out.size(); ++i) out[i] = mapped[static_cast<size_t>(offset) + i];
    return Status::Ok();
  }

  Status Write(uint32_t address, ByteSpan data) override {
    if (ops_.write == nullptr) return Status(StatusCode::kUnavailable, "no write callback");
    return ops_.write(ops_.ctx, address, data.data(), static_cast<uint32_t>(data.size())) == 0
               ? Status::Ok()
               : Status(StatusCode::kUnavailable, "flash write failed");
  }

  ByteSpan Mapped() const override {
    if (ops_.mapped == nullptr) return {};
    return ByteSpan(ops_.mapped, geometry_.size());
  }

  // Copies the port's description; false when it is unusable.
  bool Bind(const onedfu_flash_ops& ops) {
    if (ops.mapped == nullptr || ops.erase == nullptr || ops.write == nullptr || ops.sector_group_count == 0 ||
        ops.sector_group_count > kMaxSectorGroups) {
      return false;
    }
    ops_ = ops;
    geometry_ = Memory{};
    geometry_.base = ops.base;
    geometry_.sector_group_count = ops.sector_group_count;
    uint64_t total = 0;
    for (uint8_t g = 0; g < ops.sector_group_count; ++g) {
      geometry_.sectors[g].count = ops.sectors[g].count;
      geometry_.sectors[g].size = ops.sectors[g].size;
      total += static_cast<uint64_t>(ops.sectors[g].count) * ops.sectors[g].size;
    }
    if (total == 0 || ops.base + total > (uint64_t{1} << 32)) return false;
    geometry_.write_align = ops.write_align;
    geometry_.erased_value = ops.erased_value;
    geometry_.mapped = true;
    return true;
  }

 private:
  onedfu_flash_ops ops_{};
  Memory geometry_{};
};

CallbackFlash g_flash;
std::optional<RegionStore> g_store;
std::optional<RomIoctl> g_ioctl;

constexpr int kNoDevice = -ONEDFU_ENODEV;

class FileCounter final : public RegionWalkVisitor {
 public:
  Status OnEntry(const char*, const RomfsEntry& entry, size_t) override {
    files += entry.is_dir ? 0 : 1;
    return Status::Ok();
  }
  uint32_t files = 0;
};

}  // namespace

int StatusToErrno(Status status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
      return -ONEDFU_EINVAL;
    case StatusCode::kResourceExhausted:
      return -ONEDFU_ENOSPC;
    case StatusCode::kNotFound:
      return -ONEDFU_ENOENT;
    case StatusCode::kPermissionDenied:
      return -ONEDFU_EPERM;
    case StatusCode::kDataLoss:
    case StatusCode::kUnimplemented:
    case StatusCode::kInternal:
    case StatusCode::kUnavailable:
      break;
  }
  return -ONEDFU_EIO;
}

// ---- RomIoctl -----------------------------------------------------------

int RomIoctl::Count() const {
  if (!store_->mounted()) return kNoDevice;
  const size_t live = store_->live_count();
  return live == 0 ? 1 : static_cast<int>(live);
}

int RomIoctl::Segment(int id, const uint8_t** data, uint32_t* size) const {
  if (!store_->mounted()) return kNoDevice;
  if (data == nullptr || size == nullptr) return -ONEDFU_EINVAL;
  if (id < 0 || id >= Count()) return -ONEDFU_ENOENT;
  const uint64_t region_end = static_cast<uint64_t>(store_->region_start()) + store_->region_size();
  if (store_->live_count() == 0) {
    // No image: the region itself (holds no valid ROMFS; VfsRom refuses it).
    const ByteSpan region = store_->region_bytes();
    if (region.empty()) return -ONEDFU_EIO;
    *data = region.data();
    *size = static_cast<uint32_t>(region.size());
    return 0;
  }
  auto index = store_->LiveIndex(static_cast<size_t>(id));
  if (!index.ok()) return -ONEDFU_ENOENT;
  const RegionImage& image = store_->image(index.value());
  const uint64_t end = id == 0 ? region_end : static_cast<uint64_t>(image.slot_address) + image.slot_size;
  *data = image.image.data();
  *size = static_cast<uint32_t>(end - image.image_address);
  return 0;
}

int RomIoctl::Prepare(int id, uint32_t offset, uint32_t length) {
  if (!store_->mounted()) return kNoDevice;
  if (id != 0) return -ONEDFU_EPERM;
  const Status status = offset == 0 ? store_->Begin(length) : store_->Extend(offset, length);
  if (!status.ok()) return StatusToErrno(status);
  return static_cast<int>(store_->min_write_size());
}

int RomIoctl::Write(int id, uint32_t offset, const uint8_t* data, uint32_t size) {
  if (!store_->mounted()) return kNoDevice;
  if (id != 0) return -ONEDFU_EPERM;
  if (data == nullptr && size != 0) return -ONEDFU_EINVAL;
  return StatusToErrno(store_->Write(offset, ByteSpan(data, size)));
}

int RomIoctl::Complete(int id) {
  if (!store_->mounted()) return kNoDevice;
  if (id != 0) return -ONEDFU_EPERM;
  return StatusToErrno(store_->Commit(nullptr));
}

int RomIoctl::MinPrepare(int id) const {
  if (!store_->mounted()) return kNoDevice;
  if (id < 0 || id >= Count()) return -ONEDFU_ENOENT;
  const uint32_t unit = store_->erase_unit();
  return unit == 0 ? 1 : static_cast<int>(unit);
}

int RomIoctl::Pop() {
  if (!store_->mounted()) return kNoDevice;
  if (store_->pending()) return -ONEDFU_EBUSY;
  const Status status = store_->Pop();
  if (status.code() == StatusCode::kFailedPrecondition) return -ONEDFU_EPERM;
  return StatusToErrno(status);
}

int RomIoctl::Dispatch(onedfu_rom_ioctl_args& args) {
  switch (args.op) {
    case ONEDFU_ROM_IOCTL_GET_NUMBER_OF_SEGMENTS:
      return Count();
    case ONEDFU_ROM_IOCTL_GET_SEGMENT:
      if (args.n_args < 1) return -ONEDFU_EINVAL;
      return Segment(args.id, &args.data, &args.size);
    case ONEDFU_ROM_IOCTL_WRITE_PREPARE:
      if (args.n_args == 2) return Prepare(args.id, 0, args.arg1);
      if (args.n_args == 3) return Prepare(args.id, args.arg1, args.arg2);
      return -ONEDFU_EINVAL;
    case ONEDFU_ROM_IOCTL_WRITE:
      if (args.n_args < 2) return -ONEDFU_EINVAL;
      return Write(args.id, args.arg1, args.data, args.size);
    case ONEDFU_ROM_IOCTL_WRITE_COMPLETE:
      if (args.n_args < 1) return -ONEDFU_EINVAL;
      return Complete(args.id);
    case ONEDFU_ROM_IOCTL_GET_MIN_PREPARE:
      if (args.n_args < 1) return -ONEDFU_EINVAL;
      return MinPrepare(args.id);
    case ONEDFU_ROM_IOCTL_POP:
      if (args.n_args >= 1 && args.id != 0) return -ONEDFU_EPERM;
      return Pop();
    default:
      return -ONEDFU_EINVAL;
  }
}

}  // namespace onedfu::runtime

// ---- C ABI ------------------------------------------------------------------

using onedfu::runtime::g_flash;
using onedfu::runtime::g_ioctl;
using onedfu::runtime::g_store;

extern "C" int onedfu_romfs_init(const onedfu_flash_ops* ops, uint32_t region_start, uint32_t region_size) {
  using namespace onedfu::runtime;
  g_ioctl.reset();
  g_store.reset();
  if (ops == nullptr || !g_flash.Bind(*ops)) return -ONEDFU_ENODEV;
  g_store.emplace(g_flash, region_start, region_size);
  const Status status = g_store->Mount(nullptr);
  switch (status.code()) {
    case StatusCode::kOk:
      g_ioctl.emplace(*g_store);
      return 0;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnimplemented:
      g_store.reset();
      return -ONEDFU_ENODEV;
    default:
      g_store.reset();
      return -ONEDFU_EIO;
  }
}

extern "C" int onedfu_rom_ioctl_count(void) { return g_ioctl ? g_ioctl->Count() : -ONEDFU_ENODEV; }

extern "C" int onedfu_rom_ioctl_segment(int id, const uint8_t** data, uint32_t* size) {
  return g_ioctl ? g_ioctl->Segment(id, data, size) : -ONEDFU_ENODEV;
}

extern "C" int onedfu_rom_ioctl_prepare(int id, uint32_t offset, uint32_t length) {
  return g_ioctl ? g_ioctl->Prepare(id, offset, length) : -ONEDFU_ENODEV;
}

extern "C" int onedfu_rom_ioctl_write(int id, uint32_t offset, const uint8_t* data, uint32_t size) {
  return g_ioctl ? g_ioctl->Write(id, offset, data, size) : -ONEDFU_ENODEV;
}

extern "C" int onedfu_rom_ioctl_complete(int id) { return g_ioctl ? g_ioctl->Complete(id) : -ONEDFU_ENODEV; }

extern "C" int onedfu_rom_ioctl_min_prepare(int id) { return g_ioctl ? g_ioctl->MinPrepare(id) : -ONEDFU_ENODEV; }

extern "C" int onedfu_romfs_pop(void) { return g_ioctl ? g_ioctl->Pop() : -ONEDFU_ENODEV; }

extern "C" int onedfu_rom_ioctl(onedfu_rom_ioctl_args* args) {
  if (args == nullptr) return -ONEDFU_EINVAL;
  return g_ioctl ? g_ioctl->Dispatch(*args) : -ONEDFU_ENODEV;
}

extern "C" int onedfu_romfs_lookup(const char* path, const uint8_t** data, uint32_t* size) {
  if (!g_store || !g_store->mounted()) return -ONEDFU_ENODEV;
  if (data == nullptr || size == nullptr) return -ONEDFU_EINVAL;
  auto found = g_store->Lookup(path);
  if (!found.ok()) return -ONEDFU_ENOENT;
  *data = found->entry.is_dir ? nullptr : found->entry.data.data();
  *size = static_cast<uint32_t>(found->entry.data.size());
  return found->entry.is_dir ? 2 : 1;
}

extern "C" int onedfu_romfs_get_info(onedfu_romfs_info* info) {
  using namespace onedfu::runtime;
  if (!g_store || !g_store->mounted()) return -ONEDFU_ENODEV;
  if (info == nullptr) return -ONEDFU_EINVAL;
  FileCounter counter;
  const Status walked = g_store->Walk(counter, nullptr);
  info->images = static_cast<uint32_t>(g_store->image_count());
  info->live = static_cast<uint32_t>(g_store->live_count());
  info->files = counter.files;
  info->free_bytes = g_store->free_bytes();
  return StatusToErrno(walked);
}
