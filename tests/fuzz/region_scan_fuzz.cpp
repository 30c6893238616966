// Fuzzes the romfs region stack scan (untrusted flash contents after any
// power cut, bit rot or foreign writes) and the lookups over it.
//
// Input: byte 0 picks the geometry (bits 0-1: sector size 256 << n; bits 2-4:
// write unit 1 << (n % 6); bit 6: erased value 0x00 instead of 0xff); the rest
// is the region's content (at most 16 KiB), padded with the erased value to
// whole sectors (at least 4).
//
// Invariants (trap on violation):
//  - Scan succeeds; the chain is contiguous, on sector boundaries, inside the
//    region; only image 0 may be a base image; every image view lies inside
//    the region and slot images start 128 bytes into their slot.
//  - Every path the merged Walk reports is reported once and found again by
//    Lookup at the same place, inside the region.
//  - Mount (scan + recovery erase) does not change the visible set, leaves
//    the region blank above the chain, and a second Mount changes nothing.
//  - A push of a probe image then succeeds when it fits, shows the probe file
//    on top, keeps the other files, and a pop + reboot returns to the same
//    visible set.
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "runtime/fake_flash.h"
#include "runtime/region_store.h"
#include "runtime/romfs.h"
#include "fuzz_check.h"

using onedfu::fuzz::FuzzCheck;

using namespace onedfu::runtime;

namespace {

constexpr size_t kMaxRegion = 16 * 1024;
constexpr uint32_t kBase = 0x90000000;
constexpr char kProbePath[] = "\x01probe\x02";  // a name no seed uses

struct Seen {
  bool is_dir;
  const uint8_t* data;
  size_t size;
  size_t image;
};
using View = std::map<std::string, Seen>;

class Recorder final : public RegionWalkVisitor {
 public:
  Status OnEntry(const char* path, const RomfsEntry& entry, size_t image_index) override {
    FuzzCheck(view.count(path) == 0);
    view[path] = {entry.is_dir, entry.data.data(), entry.data.size(), image_index};
    return Status::Ok();
  }
  View view;
};

bool Inside(ByteSpan region, const uint8_t* p, size_t n) {
  return n == 0 || (p >= region.data() && p + n <= region.data() + region.size());
}

// Structural invariants of a scanned store.
void CheckTable(const RegionStore& store, const Memory& memory) {
  const ByteSpan region = store.region_bytes();
  uint32_t expect = store.region_start();
  for (size_t i = 0; i < store.image_count(); ++i) {
    const RegionImage& image = store.image(i);
    FuzzCheck(image.slot_address == expect);
    FuzzCheck(image.kind == RegionImageKind::kSlot || i == 0);
    FuzzCheck(image.image.data() != nullptr && Inside(region, image.image.data(), image.image.size()));
    FuzzCheck(image.image.size() == image.image_size);
    FuzzCheck(image.image.data() == region.data() + (image.image_address - store.region_start()));
    if (image.kind == RegionImageKind::kSlot) {
      FuzzCheck(image.image_address == image.slot_address + kSlotImageOffset);
    } else {
      FuzzCheck(image.image_address == image.slot_address);
    }
    FuzzCheck(image.image_address + image.image_size <= image.slot_address + image.slot_size);
    const uint64_t next = static_cast<uint64_t>(image.slot_address) + image.slot_size;
    FuzzCheck(next <= static_cast<uint64_t>(store.region_start()) + store.region_size());
    if (next < memory.end()) {
      auto sector = SectorContaining(memory, static_cast<uint32_t>(next));
      FuzzCheck(sector.ok() && sector->start == next);
    }
    expect = static_cast<uint32_t>(next);
  }
  FuzzCheck(store.chain_end() == expect);
}

// The merged view; false when an image is corrupt (Walk failed). Lookups of
// what was walked must succeed either way.
bool Collect(const RegionStore& store, View* view) {
  Recorder recorder;
  const bool ok = store.Walk(recorder, nullptr).ok();
  const ByteSpan region = store.region_bytes();
  for (const auto& [path, seen] : recorder.view) {
    FuzzCheck(Inside(region, seen.data, seen.size));
    auto found = store.Lookup(path.c_str());
    if (!ok && !found.ok()) continue;  // a corrupt image deeper in the stack
    FuzzCheck(found.ok());
    FuzzCheck(found->entry.is_dir == seen.is_dir && found->image_index == seen.image);
    FuzzCheck(found->entry.data.data() == seen.data && found->entry.data.size() == seen.size);
  }
  *view = std::move(recorder.view);
  return ok;
}

bool SameFiles(const View& a, const View& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [path, seen] : a) {
    auto it = b.find(path);
    if (it == b.end() || it->second.is_dir != seen.is_dir || it->second.size != seen.size) return false;
    if (seen.size != 0 && std::memcmp(it->second.data, seen.data, seen.size) != 0) return false;
  }
  return true;
}

std::vector<uint8_t> ProbeImage() {
  static const uint8_t kData[] = "probe";
  const RomfsFileSpec spec{kProbePath, ByteSpan(kData, 5)};
  std::vector<uint8_t> image(RomfsImageSize(std::span(&spec, 1), {}).value());
  FuzzCheck(WriteRomfs(std::span(&spec, 1), {}, image).ok());
  return image;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const uint32_t sector = 256u << (selector & 3);
  const uint32_t align = 1u << (((selector >> 2) & 7) % 6);
  const uint8_t erased = (selector & 0x40) ? 0x00 : 0xff;
  size_t content = size - 1 > kMaxRegion ? kMaxRegion : size - 1;
  uint32_t sectors = static_cast<uint32_t>((content + sector - 1) / sector);
  if (sectors < 4) sectors = 4;

  Memory memory;
  std::strcpy(memory.name, "fuzz");
  memory.base = kBase;
  memory.sectors[0] = {sectors, sector};
  memory.sector_group_count = 1;
  memory.write_align = align;
  memory.erased_value = erased;
  memory.mapped = true;
  std::vector<uint8_t> storage(memory.size(), erased);
  std::memcpy(storage.data(), data + 1, content);
  FakeFlash flash(memory, storage);
  const uint32_t region_size = memory.size();

  // Read-only scan.
  RegionStore scanned(flash, kBase, region_size);
  FuzzCheck(scanned.Scan(nullptr).ok());
  CheckTable(scanned, memory);
  View before;
  const bool walk_ok = Collect(scanned, &before);
  const size_t live_before = scanned.live_count();
  // Lookups of odd paths stay in bounds (ASan watches) and never crash.
  for (const char* path : {"", "/", "a", "lib/x.mpy", "//", "a//b", "boot.py/x", kProbePath}) {
    auto found = scanned.Lookup(path);
    if (found.ok() && !found->entry.is_dir) {
      FuzzCheck(Inside(scanned.region_bytes(), found->entry.data.data(), found->entry.data.size()));
    }
  }
  for (size_t i = 0; i < scanned.image_count(); ++i) {
    uint32_t files = 0, dirs = 0;
    scanned.CountEntries(i, &files, &dirs, nullptr).IgnoreError();
  }

  // Boot: scan + recovery. The visible set does not change.
  RegionStore booted(flash, kBase, region_size);
  FuzzCheck(booted.Mount(nullptr).ok());
  CheckTable(booted, memory);
  FuzzCheck(booted.live_count() == live_before);
  View after;
  const bool walk_ok_after = Collect(booted, &after);
  FuzzCheck(walk_ok_after == walk_ok);
  if (walk_ok) FuzzCheck(SameFiles(before, after));
  if (!booted.truncated()) {
    for (uint32_t a = booted.chain_end() - kBase; a < region_size; ++a) FuzzCheck(storage[a] == erased);
  }
  const std::vector<uint8_t> snapshot = storage;
  RegionStore again(flash, kBase, region_size);
  FuzzCheck(again.Mount(nullptr).ok());
  FuzzCheck(storage == snapshot);  // recovery is idempotent

  // A push on top, then a pop and a reboot.
  static const std::vector<uint8_t> probe = ProbeImage();
  if (!walk_ok || again.free_bytes() < probe.size() || again.image_count() >= kRegionMaxImages) return 0;
  FuzzCheck(again.Push(probe, nullptr).ok());
  auto found = again.Lookup(kProbePath);
  FuzzCheck(found.ok() && found->image_index == again.image_count() - 1);
  View pushed;
  FuzzCheck(Collect(again, &pushed));
  for (const auto& [path, seen] : after) {
    if (path.compare(0, std::strlen(kProbePath), kProbePath) == 0) continue;  // the probe may hide these
    auto it = pushed.find(path);
    FuzzCheck(it != pushed.end() && it->second.data == seen.data);
  }
  FuzzCheck(again.Pop().ok());
  RegionStore last(flash, kBase, region_size);
  FuzzCheck(last.Mount(nullptr).ok());
  View final_view;
  FuzzCheck(Collect(last, &final_view));
  FuzzCheck(SameFiles(final_view, after));
  FuzzCheck(storage == snapshot);  // the pushed slot was erased again
  return 0;
}
