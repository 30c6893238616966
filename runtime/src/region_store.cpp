// RegionStore: a power-safe stack of ROMFS images. See region_store.h for the
// layout, the slot format and the power-safety argument.
#include "runtime/region_store.h"

#include "runtime/crc32.h"

namespace onedfu::runtime {
namespace {

bool AllBytesAre(ByteSpan bytes, uint8_t value) {
  for (uint8_t b : bytes) {
    if (b != value) return false;
  }
  return true;
}

bool SameBytes(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

uint32_t RoundUp(uint32_t value, uint32_t align) { return (value + align - 1) / align * align; }

// Length of the ROMFS image whose header record starts `prefix`, read from
// the header alone (the payload need not be there yet); 0 when `prefix` does
// not start with a complete header record.
uint32_t HeaderImageLength(ByteSpan prefix) {
  if (prefix.size() < 4 || prefix[0] != 0xd2 || prefix[1] != 0xcd || prefix[2] != 0x31) return 0;
  ByteReader reader(prefix.subspan(3));
  auto payload = ReadRomfsVarUint(reader);
  if (!payload.ok()) return 0;
  const uint64_t total = 3 + reader.position() + static_cast<uint64_t>(payload.value());
  return total > 0xffffffffu ? 0 : static_cast<uint32_t>(total);
}

class CountVisitor final : public RomfsReader::WalkVisitor {
 public:
  Status OnEntry(const char*, const RomfsEntry& entry) override {
    ++(entry.is_dir ? dirs : files);
    return Status::Ok();
  }
  uint32_t files = 0;
  uint32_t dirs = 0;
};

// True when a proper parent path of `path` is a FILE in `reader` (which
// then hides `path` in older images). Parents are tried longest first: a
// directory there means every shorter parent is a directory too.
bool FileAtParent(const RomfsReader& reader, const char* path) {
  if (*path == '/') ++path;
  char buffer[kRomfsMaxPath + 1];
  size_t len = 0;
  for (; path[len] != '\0'; ++len) {
    if (len == kRomfsMaxPath) return false;  // no image holds such a path
    buffer[len] = path[len];
  }
  while (len > 0) {
    --len;
    if (buffer[len] != '/') continue;
    buffer[len] = '\0';
    if (len == 0) return false;
    auto parent = reader.Lookup(buffer);
    if (parent.ok()) return !parent->is_dir;
    if (parent.status().code() != StatusCode::kNotFound) return false;  // malformed: not hidden
  }
  return false;
}

constexpr Status kNotMounted(StatusCode::kFailedPrecondition, "romfs region not mounted");
constexpr Status kNoPush(StatusCode::kFailedPrecondition, "no romfs push in progress");

}  // namespace

RegionStore::RegionStore(FlashMemory& flash, uint32_t region_start, uint32_t region_size)
    : flash_(&flash), start_(region_start), size_(region_size) {}

// ---- geometry -----------------------------------------------------------

Status RegionStore::CheckConfig() const {
  const Memory& memory = flash_->geometry();
  const uint64_t end = static_cast<uint64_t>(start_) + size_;
  if (size_ == 0 || start_ < memory.base || end > memory.end()) {
    return Status(StatusCode::kInvalidArgument, "romfs region outside its memory");
  }
  if (!IsSectorBoundary(memory, start_) || !IsSectorBoundary(memory, end)) {
    return Status(StatusCode::kInvalidArgument, "romfs region not on sector boundaries");
  }
  if (!memory.mapped) return Status(StatusCode::kFailedPrecondition, "romfs region is not memory-mapped");
  const uint32_t align = memory.write_align;
  if (align == 0 || (align & (align - 1)) != 0 || align > kSlotMaxWriteAlign) {
    return Status(StatusCode::kUnimplemented, "flash write unit larger than 32 bytes");
  }
  return Status::Ok();
}

ByteSpan RegionStore::Region() const {
  const ByteSpan mapped = flash_->Mapped();
  const uint64_t offset = static_cast<uint64_t>(start_) - flash_->geometry().base;
  if (start_ < flash_->geometry().base || offset + size_ > mapped.size()) return {};
  return mapped.subspan(static_cast<size_t>(offset), size_);
}

ByteSpan RegionStore::Slice(uint32_t address, uint32_t size) const {
  const ByteSpan region = Region();
  const uint64_t offset = static_cast<uint64_t>(address) - start_;
  if (address < start_ || offset + size > region.size()) return {};
  return region.subspan(static_cast<size_t>(offset), size);
}

uint32_t RegionStore::NextBoundary(uint32_t address) const {
  const uint64_t end = static_cast<uint64_t>(start_) + size_;
  if (address >= end) return static_cast<uint32_t>(end);
  auto sector = SectorContaining(flash_->geometry(), address);
  if (!sector.ok()) return static_cast<uint32_t>(end);
  if (sector->start == address) return address;
  const uint64_t next = static_cast<uint64_t>(sector->start) + sector->size;
  return static_cast<uint32_t>(next < end ? next : end);
}

uint32_t RegionStore::min_write_size() const {
  const uint32_t align = flash_->geometry().write_align;
  return align == 0 ? 1 : align;
}

uint32_t RegionStore::erase_unit() const {
  uint32_t largest = 0;
  const uint64_t end = static_cast<uint64_t>(start_) + size_;
  uint64_t address = start_;
  while (address < end) {
    auto sector = SectorContaining(flash_->geometry(), static_cast<uint32_t>(address));
    if (!sector.ok() || sector->size == 0) break;
    if (sector->size > largest) largest = sector->size;
    address = static_cast<uint64_t>(sector->start) + sector->size;
  }
  return largest;
}

// ---- scan and recovery ------------------------------------------------------

Status RegionStore::ParseSlot(ByteSpan region, uint32_t pos, const RegionImage* parent, RegionImage* out,
                              Diag* diag) const {
  const uint32_t address = start_ + pos;
  const Status stop(StatusCode::kNotFound, "no committed slot");
  if (static_cast<uint64_t>(pos) + kSlotImageOffset > size_) return stop;
  const ByteSpan head = region.subspan(pos, kSlotImageOffset);
  const uint8_t erased = flash_->geometry().erased_value;
  if (AllBytesAre(head.first(kSlotRemovedOffset), erased)) return stop;  // blank: the normal end
  const uint8_t* d = head.data();
  if (LoadLe32(d + kSlotMagicOffset) != kSlotMagic) {
    if (diag) diag->Str("romfs slot at ").Hex(address).Str(": no slot magic (leftover bytes)");
    return stop;
  }
  if (Crc32(head.first(kSlotDescriptorCrcOffset)) != LoadLe32(d + kSlotDescriptorCrcOffset) ||
      LoadLe16(d + kSlotVersionOffset) != kSlotVersion ||
      LoadLe16(d + kSlotImageOffsetOffset) != kSlotImageOffset) {
    if (diag) diag->Str("romfs slot at ").Hex(address).Str(": descriptor torn or of another version");
    return stop;
  }
  if (LoadLe32(d + kSlotCommitOffset) != kSlotCommitWord) {
    if (diag) diag->Str("romfs slot at ").Hex(address).Str(": not committed");
    return stop;
  }
  const uint32_t flags = LoadLe32(d + kSlotFlagsOffset);
  const uint32_t parent_crc = LoadLe32(d + kSlotParentCrcOffset);
  const bool chained = parent != nullptr ? flags == kSlotFlagHasParent && parent_crc == parent->crc32
                                         : flags == 0 && parent_crc == 0;
  if (!chained) {
    if (diag) diag->Str("romfs slot at ").Hex(address).Str(": pushed onto a different image below");
    return stop;
  }
  const uint32_t length = LoadLe32(d + kSlotImageLengthOffset);
  const uint32_t slot_size = LoadLe32(d + kSlotSizeOffset);
  const uint64_t slot_end = static_cast<uint64_t>(pos) + slot_size;
  if (length == 0 || slot_size < kSlotImageOffset || length > slot_size - kSlotImageOffset ||
      slot_end > size_ || !IsSectorBoundary(flash_->geometry(), start_ + slot_end)) {
    if (diag) diag->Str("romfs slot at ").Hex(address).Str(": image length or slot size out of range");
    return stop;
  }
  const ByteSpan image = region.subspan(pos + kSlotImageOffset, length);
  if (RomfsImageLength(image) != length) {
    if (diag) diag->Str("romfs slot at ").Hex(address).Str(": image header disagrees with the descriptor");
    return stop;
  }
  const uint32_t crc = Crc32(image);
  if (crc != LoadLe32(d + kSlotImageCrcOffset)) {
    if (diag) diag->Str("romfs slot at ").Hex(address).Str(": image CRC-32 mismatch");
    return stop;
  }
  out->kind = RegionImageKind::kSlot;
  out->state = AllBytesAre(head.subspan(kSlotRemovedOffset, 4), erased) ? RegionImageState::kLive
                                                                         : RegionImageState::kRemoved;
  out->slot_address = address;
  out->slot_size = slot_size;
  out->image_address = address + kSlotImageOffset;
  out->image_size = length;
  out->crc32 = crc;
  out->image = image;
  return Status::Ok();
}

Status RegionStore::Scan(Diag* diag) {
  DiagClear(diag);
  mounted_ = false;
  truncated_ = false;
  pending_ = false;
  count_ = 0;
  chain_end_ = start_;
  ONEDFU_TRY(CheckConfig());
  const ByteSpan region = Region();
  if (region.empty()) return Status(StatusCode::kUnavailable, "romfs region has no mapped view");

  uint32_t pos = 0;  // region offset of the next chain position
  const size_t base_length = RomfsImageLength(region);
  if (base_length > 0) {
    RegionImage& base = images_[count_++];
    base = RegionImage{};
    base.kind = RegionImageKind::kBase;
    base.state = RegionImageState::kLive;
    base.slot_address = start_;
    base.image_address = start_;
    base.image_size = static_cast<uint32_t>(base_length);
    base.image = region.first(base_length);
    base.crc32 = Crc32(base.image);
    pos = NextBoundary(start_ + base.image_size) - start_;
    base.slot_size = pos;
  }
  while (pos < size_) {
    RegionImage slot;
    const RegionImage* parent = count_ > 0 ? &images_[count_ - 1] : nullptr;
    if (!ParseSlot(region, pos, parent, &slot, diag).ok()) break;
    if (count_ == kRegionMaxImages) {
      truncated_ = true;
      if (diag) diag->Str("romfs region: more than ").Dec(kRegionMaxImages).Str(" images; the rest is ignored");
      break;
    }
    images_[count_++] = slot;
    pos += slot.slot_size;
  }
  chain_end_ = start_ + pos;
  mounted_ = true;
  return Status::Ok();
}

Status RegionStore::Recover() {
  if (!mounted_) return kNotMounted;
  if (pending_) return Status(StatusCode::kFailedPrecondition, "romfs push in progress");
  if (truncated_) return Status::Ok();
  size_t top = count_;
  while (top > 0 && images_[top - 1].state != RegionImageState::kLive) --top;
  const uint32_t keep_end = top == 0 ? start_ : images_[top - 1].slot_address + images_[top - 1].slot_size;
  const uint8_t erased = flash_->geometry().erased_value;
  // Top sector first: a torn erase hits an image's tail (its CRC) before the
  // sector holding its removed word.
  uint64_t address = static_cast<uint64_t>(start_) + size_;
  while (address > keep_end) {
    auto sector = SectorContaining(flash_->geometry(), static_cast<uint32_t>(address - 1));
    if (!sector.ok()) return Status(StatusCode::kInternal, "romfs region sector map");
    const ByteSpan bytes = Slice(sector->start, sector->size);
    if (bytes.size() != sector->size) return Fail(Status(StatusCode::kUnavailable, "romfs region has no mapped view"));
    if (!AllBytesAre(bytes, erased)) {
      if (Status s = flash_->Erase(sector->start, sector->size); !s.ok()) return Fail(s);
    }
    address = sector->start;
  }
  count_ = top;
  chain_end_ = keep_end;
  return Status::Ok();
}

Status RegionStore::Mount(Diag* diag) {
  ONEDFU_TRY(Scan(diag));
  return Recover();
}

Status RegionStore::Fail(Status status) {
  pending_ = false;
  Scan(nullptr).IgnoreError();  // resync with what the flash now holds
  return status;
}

// ---- the stack -----------------------------------------------------------

size_t RegionStore::live_count() const {
  size_t live = 0;
  for (size_t i = 0; i < count_; ++i) live += images_[i].state == RegionImageState::kLive ? 1 : 0;
  return live;
}

Result<size_t> RegionStore::LiveIndex(size_t nth) const {
  for (size_t i = count_; i-- > 0;) {
    if (images_[i].state != RegionImageState::kLive) continue;
    if (nth == 0) return i;
    --nth;
  }
  return Status(StatusCode::kNotFound, "no such live romfs image");
}

Status RegionStore::CountEntries(size_t index, uint32_t* files, uint32_t* dirs, Diag* diag) const {
  if (index >= count_) return Status(StatusCode::kOutOfRange, "no such romfs image");
  ONEDFU_TRY_ASSIGN(const RomfsReader reader, RomfsReader::Open(images_[index].image, diag));
  CountVisitor counter;
  ONEDFU_TRY(reader.Walk(counter, diag));
  if (files) *files = counter.files;
  if (dirs) *dirs = counter.dirs;
  return Status::Ok();
}

uint32_t RegionStore::free_bytes() const {
  if (!mounted_ || truncated_ || count_ >= kRegionMaxImages) return 0;
  const uint64_t end = static_cast<uint64_t>(start_) + size_;
  const uint64_t room = end - chain_end_;
  return room <= kSlotImageOffset ? 0 : static_cast<uint32_t>(room - kSlotImageOffset);
}

// ---- lookups ---------------------------------------------------------------

Result<RegionEntry> RegionStore::Lookup(const char* path) const {
  if (!mounted_) return kNotMounted;
  if (path == nullptr) return Status(StatusCode::kInvalidArgument, "null romfs path");
  for (size_t i = count_; i-- > 0;) {
    if (images_[i].state != RegionImageState::kLive) continue;
    ONEDFU_TRY_ASSIGN(const RomfsReader reader, RomfsReader::Open(images_[i].image, nullptr));
    auto found = reader.Lookup(path);
    if (found.ok()) {
      RegionEntry result;
      result.entry = found.value();
      result.image_index = i;
      return result;
    }
    if (found.status().code() != StatusCode::kNotFound) return found.status();
    if (FileAtParent(reader, path)) return Status(StatusCode::kNotFound, "romfs path hidden by a newer file");
  }
  return Status(StatusCode::kNotFound, "no such romfs entry");
}

bool RegionStore::Hidden(const char* path, size_t index) const {
  for (size_t j = index + 1; j < count_; ++j) {
    if (images_[j].state != RegionImageState::kLive) continue;
    auto reader = RomfsReader::Open(images_[j].image, nullptr);
    if (!reader.ok()) continue;
    if (reader->Lookup(path).ok() || FileAtParent(reader.value(), path)) return true;
  }
  return false;
}

namespace {

class MergeVisitor final : public RomfsReader::WalkVisitor {
 public:
  using HiddenFn = bool (*)(const void* store, const char* path, size_t index);
  MergeVisitor(const void* store, HiddenFn hidden, RegionWalkVisitor& visitor, size_t index)
      : store_(store), hidden_(hidden), visitor_(visitor), index_(index) {}
  Status OnEntry(const char* path, const RomfsEntry& entry) override {
    if (hidden_(store_, path, index_)) return Status::Ok();
    return visitor_.OnEntry(path, entry, index_);
  }

 private:
  const void* store_;
  HiddenFn hidden_;
  RegionWalkVisitor& visitor_;
  size_t index_;
};

}  // namespace

Status RegionStore::Walk(RegionWalkVisitor& visitor, Diag* diag) const {
  DiagClear(diag);
  if (!mounted_) return kNotMounted;
  const MergeVisitor::HiddenFn hidden = [](const void* store, const char* path, size_t index) {
    return static_cast<const RegionStore*>(store)->Hidden(path, index);
  };
  for (size_t i = count_; i-- > 0;) {
    if (images_[i].state != RegionImageState::kLive) continue;
    ONEDFU_TRY_ASSIGN(const RomfsReader reader, RomfsReader::Open(images_[i].image, diag));
    MergeVisitor merge(this, hidden, visitor, i);
    ONEDFU_TRY(reader.Walk(merge, diag));
  }
  return Status::Ok();
}

// ---- push / pop ------------------------------------------------------------

Status RegionStore::EraseRange(uint32_t from, uint32_t to) {
  if (to <= from) return Status::Ok();
  return flash_->Erase(from, to - from);
}

Status RegionStore::Program(uint32_t address, ByteSpan data) {
  if (data.empty()) return Status::Ok();
  ONEDFU_TRY(flash_->Write(address, data));
  if (!SameBytes(Slice(address, static_cast<uint32_t>(data.size())), data)) {
    return Status(StatusCode::kDataLoss, "romfs region: flash read-back differs from what was written");
  }
  return Status::Ok();
}

Status RegionStore::Begin(uint32_t capacity) {
  if (!mounted_) return kNotMounted;
  pending_ = false;
  if (truncated_) return Status(StatusCode::kFailedPrecondition, "romfs region holds more images than tracked");
  if (count_ >= kRegionMaxImages) return Status(StatusCode::kResourceExhausted, "romfs region: image table full");
  if (capacity == 0) return Status(StatusCode::kInvalidArgument, "romfs push of 0 bytes");
  if (capacity > free_bytes()) return Status(StatusCode::kResourceExhausted, "romfs image does not fit the region");
  slot_ = chain_end_;
  const uint32_t end = NextBoundary(slot_ + kSlotImageOffset + capacity);
  if (Status s = EraseRange(slot_, end); !s.ok()) return Fail(s);
  prepared_end_ = end;
  written_end_ = 0;
  image_length_ = 0;
  pending_ = true;
  return Status::Ok();
}

Status RegionStore::Extend(uint32_t offset, uint32_t length) {
  if (!pending_) return kNoPush;
  const uint64_t need = static_cast<uint64_t>(slot_) + kSlotImageOffset + offset + length;
  if (need > static_cast<uint64_t>(start_) + size_) {
    return Status(StatusCode::kResourceExhausted, "romfs image does not fit the region");
  }
  if (need <= prepared_end_) return Status::Ok();
  const uint32_t end = NextBoundary(static_cast<uint32_t>(need));
  if (Status s = EraseRange(prepared_end_, end); !s.ok()) return Fail(s);
  prepared_end_ = end;
  return Status::Ok();
}

Status RegionStore::Write(uint32_t offset, ByteSpan data) {
  if (!pending_) return kNoPush;
  const uint32_t align = min_write_size();
  if (offset % align != 0) return Status(StatusCode::kInvalidArgument, "romfs write offset not write-aligned");
  if (data.empty()) return Status::Ok();
  const uint32_t image_room = prepared_end_ - slot_ - kSlotImageOffset;
  // The image length, once a header has been written (or is in this write).
  uint32_t length = image_length_;
  if (length == 0 && offset == 0) length = HeaderImageLength(data);
  if (length == 0) length = HeaderImageLength(Slice(slot_ + kSlotImageOffset, image_room));
  ByteSpan body = data;
  if (length != 0) {
    if (offset >= length) return Status::Ok();  // padding past the image: dropped
    if (data.size() > length - offset) body = data.first(length - offset);
  }
  const bool reaches_end = length != 0 && offset + body.size() == length;
  const uint32_t whole = static_cast<uint32_t>(body.size()) / align * align;
  if (whole != body.size() && !reaches_end) {
    return Status(StatusCode::kInvalidArgument, "romfs write length not write-aligned");
  }
  const uint64_t padded_end = static_cast<uint64_t>(offset) + RoundUp(static_cast<uint32_t>(body.size()), align);
  if (padded_end > image_room) return Status(StatusCode::kOutOfRange, "romfs write past the prepared bytes");

  const uint32_t address = slot_ + kSlotImageOffset + offset;
  if (Status s = Program(address, body.first(whole)); !s.ok()) return Fail(s);
  if (whole != body.size()) {
    uint8_t unit[kSlotMaxWriteAlign];
    for (uint32_t i = 0; i < align; ++i) {
      unit[i] = whole + i < body.size() ? body[whole + i] : flash_->geometry().erased_value;
    }
    if (Status s = Program(address + whole, ByteSpan(unit, align)); !s.ok()) return Fail(s);
  }
  if (padded_end > written_end_) written_end_ = static_cast<uint32_t>(padded_end);
  image_length_ = length;
  return Status::Ok();
}

Status RegionStore::Commit(Diag* diag) {
  DiagClear(diag);
  if (!pending_) return kNoPush;
  const uint32_t image_room = prepared_end_ - slot_ - kSlotImageOffset;
  const ByteSpan prepared = Slice(slot_ + kSlotImageOffset, image_room);
  const uint32_t length = static_cast<uint32_t>(RomfsImageLength(prepared));
  if (length == 0 || written_end_ < length) {
    pending_ = false;
    if (diag) diag->Str("romfs push at ").Hex(slot_).Str(": no complete ROMFS image was written");
    return Status(StatusCode::kInvalidArgument, "romfs push: incomplete image");
  }
  const ByteSpan image = prepared.first(length);
  {
    auto reader = RomfsReader::Open(image, diag);
    if (!reader.ok()) {
      pending_ = false;
      return reader.status();
    }
    CountVisitor counter;
    if (Status s = reader->Walk(counter, diag); !s.ok()) {
      pending_ = false;
      return s;
    }
  }
  const uint32_t crc = Crc32(image);
  const uint32_t used = written_end_ > length ? written_end_ : length;
  const uint32_t slot_size = NextBoundary(slot_ + kSlotImageOffset + used) - slot_;
  const RegionImage* parent = count_ > 0 ? &images_[count_ - 1] : nullptr;

  uint8_t descriptor[kSlotDescriptorSize];
  StoreLe32(descriptor + kSlotMagicOffset, kSlotMagic);
  StoreLe16(descriptor + kSlotVersionOffset, kSlotVersion);
  StoreLe16(descriptor + kSlotImageOffsetOffset, static_cast<uint16_t>(kSlotImageOffset));
  StoreLe32(descriptor + kSlotImageLengthOffset, length);
  StoreLe32(descriptor + kSlotSizeOffset, slot_size);
  StoreLe32(descriptor + kSlotImageCrcOffset, crc);
  StoreLe32(descriptor + kSlotParentCrcOffset, parent ? parent->crc32 : 0);
  StoreLe32(descriptor + kSlotFlagsOffset, parent ? kSlotFlagHasParent : 0);
  StoreLe32(descriptor + kSlotDescriptorCrcOffset, Crc32(ByteSpan(descriptor, kSlotDescriptorCrcOffset)));
  if (Status s = Program(slot_, ByteSpan(descriptor, kSlotDescriptorSize)); !s.ok()) return Fail(s);

  // The commit word, alone in its write unit(s): the moment the image appears.
  const uint32_t unit = min_write_size() > 4 ? min_write_size() : 4;
  uint8_t commit[kSlotMaxWriteAlign];
  for (uint32_t i = 0; i < unit; ++i) commit[i] = flash_->geometry().erased_value;
  StoreLe32(commit, kSlotCommitWord);
  if (Status s = Program(slot_ + kSlotCommitOffset, ByteSpan(commit, unit)); !s.ok()) return Fail(s);

  RegionImage& added = images_[count_++];
  added = RegionImage{};
  added.kind = RegionImageKind::kSlot;
  added.state = RegionImageState::kLive;
  added.slot_address = slot_;
  added.slot_size = slot_size;
  added.image_address = slot_ + kSlotImageOffset;
  added.image_size = length;
  added.crc32 = crc;
  added.image = image;
  chain_end_ = slot_ + slot_size;
  pending_ = false;
  return Status::Ok();
}

Status RegionStore::Push(ByteSpan image, Diag* diag) {
  DiagClear(diag);
  if (image.size() > 0xffffffffu) return Status(StatusCode::kResourceExhausted, "romfs image too large");
  ONEDFU_TRY(Begin(static_cast<uint32_t>(image.size())));
  ONEDFU_TRY(Write(0, image));
  return Commit(diag);
}

Status RegionStore::Pop() {
  if (!mounted_) return kNotMounted;
  if (pending_) return Status(StatusCode::kFailedPrecondition, "romfs push in progress");
  auto top = LiveIndex(0);
  if (!top.ok()) return Status(StatusCode::kFailedPrecondition, "romfs region holds no image to pop");
  RegionImage& image = images_[top.value()];
  if (image.kind == RegionImageKind::kBase) {
    return Status(StatusCode::kFailedPrecondition, "the base romfs image is not popped at run time");
  }
  const uint32_t unit = min_write_size() > 4 ? min_write_size() : 4;
  uint8_t removed[kSlotMaxWriteAlign];
  for (uint32_t i = 0; i < unit; ++i) removed[i] = static_cast<uint8_t>(~flash_->geometry().erased_value);
  if (Status s = Program(image.slot_address + kSlotRemovedOffset, ByteSpan(removed, unit)); !s.ok()) return Fail(s);
  image.state = RegionImageState::kRemoved;
  return Status::Ok();
}

}  // namespace onedfu::runtime
