// RegionStore: the romfs region as a power-safe stack of ROMFS images, on the
// strict FakeFlash. Expected file sets come from the file lists the images
// were built from (not from the store); expected addresses from the slot
// format's documented rules (sector boundaries, image at slot + 128).
#include "runtime/region_store.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/crc32.h"
#include "runtime/fake_flash.h"
#include "runtime/romfs.h"

using namespace onedfu::runtime;

namespace {

using Bytes = std::vector<uint8_t>;
using FileSet = std::map<std::string, Bytes>;

constexpr uint32_t kMemBase = 0x90000000;

Memory MakeMemory(std::vector<SectorGroup> groups, uint32_t write_align, uint8_t erased = 0xff,
                  bool mapped = true) {
  Memory m;
  std::strcpy(m.name, "qspi");
  m.base = kMemBase;
  for (size_t i = 0; i < groups.size(); ++i) m.sectors[i] = groups[i];
  m.sector_group_count = static_cast<uint8_t>(groups.size());
  m.write_align = write_align;
  m.erased_value = erased;
  m.mapped = mapped;
  return m;
}

// One simulated board: flash storage + FakeFlash + the romfs region. Not
// movable (the FakeFlash views the storage).
struct Rig {
  Rig(const Memory& m, uint32_t region_offset, uint32_t region_size)
      : memory(m), storage(m.size(), m.erased_value), flash(m, storage),
        start(m.base + region_offset), size(region_size) {}
  Rig(const Rig&) = delete;

  // A fresh store, as after a reset (not mounted yet).
  RegionStore& Fresh() {
    store.emplace(flash, start, size);
    return *store;
  }
  // A fresh store, mounted.
  RegionStore& Boot() {
    RegionStore& s = Fresh();
    Diag diag;
    const Status status = s.Mount(&diag);
    REQUIRE_MESSAGE(status.ok(), status.message(), " ", diag.c_str());
    return s;
  }
  ByteSpan View(uint32_t address, uint32_t n) const {
    return ByteSpan(storage.data() + (address - memory.base), n);
  }
  bool Erased(uint32_t from, uint32_t to) const {
    for (uint32_t a = from; a < to; ++a) {
      if (storage[a - memory.base] != memory.erased_value) return false;
    }
    return true;
  }

  Memory memory;
  std::vector<uint8_t> storage;
  FakeFlash flash;
  uint32_t start;
  uint32_t size;
  std::optional<RegionStore> store;
};

Bytes Text(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 13 + (i >> 7));
  return v;
}

// A ROMFS image of `files` (our writer), data aligned to `align`.
Bytes MakeImage(const FileSet& files, uint32_t align = 8) {
  std::vector<RomfsFileSpec> specs;
  for (const auto& [path, data] : files) specs.push_back({path.c_str(), data});
  auto size = RomfsImageSize(specs, {align, 0});
  REQUIRE(size.ok());
  Bytes out(size.value());
  auto written = WriteRomfs(specs, {align, 0}, out);
  REQUIRE(written.ok());
  return out;
}

// The newer set laid over the older one, path by path (the expected view
// when no file hides a directory).
FileSet Overlay(const FileSet& older, const FileSet& newer) {
  FileSet merged = older;
  for (const auto& [path, data] : newer) merged[path] = data;
  return merged;
}

class Collector final : public RegionWalkVisitor {
 public:
  Status OnEntry(const char* path, const RomfsEntry& entry, size_t image_index) override {
    CHECK_MESSAGE(seen.count(path) == 0, "path listed twice: ", path);
    seen[path] = image_index;
    if (!entry.is_dir) files[path] = Bytes(entry.data.begin(), entry.data.end());
    ptrs[path] = entry.data.data();
    return Status::Ok();
  }
  std::map<std::string, size_t> seen;
  FileSet files;
  std::map<std::string, const uint8_t*> ptrs;
};

// The merged view's files; every walked path is found again by Lookup at the
// same place, inside the region.
FileSet Visible(const RegionStore& store) {
  Collector collector;
  Diag diag;
  const Status status = store.Walk(collector, &diag);
  REQUIRE_MESSAGE(status.ok(), status.message(), " ", diag.c_str());
  const ByteSpan region = store.region_bytes();
  for (const auto& item : collector.seen) {
    const std::string& path = item.first;
    const size_t index = item.second;
    auto found = store.Lookup(path.c_str());
    REQUIRE_MESSAGE(found.ok(), path);
    CHECK(found->image_index == index);
    CHECK(found->entry.data.data() == collector.ptrs[path]);
    if (!found->entry.is_dir && !found->entry.data.empty()) {
      CHECK(found->entry.data.data() >= region.data());
      CHECK(found->entry.data.data() + found->entry.data.size() <= region.data() + region.size());
    }
  }
  return collector.files;
}

const FileSet kBaseFiles = {
    {"boot.py", Text("print('base boot')\n")},
    {"lib/app.mpy", Pattern(300, 1)},
    {"lib/util.mpy", Pattern(120, 2)},
    {"assets/font.bin", Pattern(700, 3)},
};
const FileSet kUpdateFiles = {
    {"lib/app.mpy", Pattern(340, 9)},    // overrides the base's
    {"lib/new.mpy", Pattern(1300, 10)},  // only here
};
const FileSet kStreamFiles = {
    {"boot.py", Text("print('streamed')\n")},
    {"lib/stream.mpy", Pattern(1800, 20)},
};
const FileSet kSecondFiles = {
    {"boot.py", Text("print('second')\n")},
};

// 32 x 512-byte sectors, write unit 8; the region is the upper 12 KiB.
Memory SmallQspi() { return MakeMemory({{32, 512}}, 8); }
constexpr uint32_t kRegionOffset = 4096;
constexpr uint32_t kRegionSize = 12 * 1024;

uint32_t Rup(uint32_t v, uint32_t a) { return (v + a - 1) / a * a; }

}  // namespace

// ---------------------------------------------------------------- basics

TEST_CASE("region store: a blank region is an empty stack") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  RegionStore& store = rig.Boot();
  CHECK(store.mounted());
  CHECK(store.image_count() == 0);
  CHECK(store.live_count() == 0);
  CHECK(store.chain_end() == rig.start);
  CHECK(store.free_bytes() == kRegionSize - kSlotImageOffset);
  CHECK(store.Lookup("boot.py").status().code() == StatusCode::kNotFound);
  CHECK(store.Lookup("").status().code() == StatusCode::kNotFound);
  CHECK(Visible(store).empty());
  CHECK(store.erase_unit() == 512);
  CHECK(store.min_write_size() == 8);
  CHECK(rig.flash.counters().erases == 0);  // nothing to recover
}

TEST_CASE("region store: the packer's image at the region start is the base, zero-copy") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  const Bytes base = MakeImage(kBaseFiles);
  REQUIRE(rig.flash.Preload(rig.start, base));
  RegionStore& store = rig.Boot();
  REQUIRE(store.image_count() == 1);
  const RegionImage& image = store.image(0);
  CHECK(image.kind == RegionImageKind::kBase);
  CHECK(image.state == RegionImageState::kLive);
  CHECK(image.image_address == rig.start);
  CHECK(image.image_size == base.size());
  CHECK(image.slot_size == Rup(static_cast<uint32_t>(base.size()), 512));
  CHECK(image.crc32 == Crc32(base));
  CHECK(store.chain_end() == rig.start + image.slot_size);
  CHECK(Visible(store) == kBaseFiles);

  // The looked-up bytes are the flash itself: same address as in storage.
  auto font = store.Lookup("/assets/font.bin");
  REQUIRE(font.ok());
  auto in_image = RomfsReader::Open(base, nullptr)->Lookup("assets/font.bin");
  REQUIRE(in_image.ok());
  CHECK(font->entry.data.data() == rig.storage.data() + kRegionOffset + in_image->data_offset);
  CHECK(font->entry.data.size() == 700);
  CHECK(font->image_index == 0);

  uint32_t files = 0, dirs = 0;
  REQUIRE(store.CountEntries(0, &files, &dirs, nullptr).ok());
  CHECK(files == 4);
  CHECK(dirs == 2);
  CHECK(store.Pop().code() == StatusCode::kFailedPrecondition);  // base is not popped at run time
}

TEST_CASE("region store: push overrides per path, older files stay visible") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  const Bytes base = MakeImage(kBaseFiles);
  REQUIRE(rig.flash.Preload(rig.start, base));
  RegionStore& store = rig.Boot();
  const uint32_t slot = store.chain_end();
  const Bytes update = MakeImage(kUpdateFiles);
  Diag diag;
  REQUIRE_MESSAGE(store.Push(update, &diag).ok(), diag.c_str());

  REQUIRE(store.image_count() == 2);
  const RegionImage& pushed = store.image(1);
  CHECK(pushed.kind == RegionImageKind::kSlot);
  CHECK(pushed.slot_address == slot);
  CHECK(pushed.slot_address % 512 == 0);
  CHECK(pushed.image_address == slot + kSlotImageOffset);
  CHECK(pushed.image_size == update.size());
  CHECK(pushed.slot_size == Rup(kSlotImageOffset + static_cast<uint32_t>(update.size()), 512));
  CHECK(store.chain_end() == slot + pushed.slot_size);
  CHECK(std::equal(update.begin(), update.end(), rig.View(pushed.image_address, pushed.image_size).begin()));

  const FileSet expected = Overlay(kBaseFiles, kUpdateFiles);
  CHECK(Visible(store) == expected);
  CHECK(store.Lookup("lib/app.mpy")->image_index == 1);
  CHECK(store.Lookup("lib/util.mpy")->image_index == 0);
  CHECK(store.Lookup("lib")->image_index == 1);  // the newest image holding the directory

  // The slot descriptor says what the format documents.
  const ByteSpan head = rig.View(slot, kSlotImageOffset);
  CHECK(LoadLe32(head.data() + kSlotMagicOffset) == kSlotMagic);
  CHECK(LoadLe16(head.data() + kSlotVersionOffset) == 1);
  CHECK(LoadLe32(head.data() + kSlotImageLengthOffset) == update.size());
  CHECK(LoadLe32(head.data() + kSlotImageCrcOffset) == Crc32(update));
  CHECK(LoadLe32(head.data() + kSlotParentCrcOffset) == Crc32(base));
  CHECK(LoadLe32(head.data() + kSlotFlagsOffset) == kSlotFlagHasParent);
  CHECK(LoadLe32(head.data() + kSlotDescriptorCrcOffset) == Crc32(head.first(kSlotDescriptorCrcOffset)));
  CHECK(LoadLe32(head.data() + kSlotCommitOffset) == kSlotCommitWord);
  CHECK(std::all_of(head.begin() + kSlotRemovedOffset, head.end(), [](uint8_t b) { return b == 0xff; }));

  // A reboot sees the same stack.
  RegionStore& again = rig.Boot();
  CHECK(again.image_count() == 2);
  CHECK(Visible(again) == expected);

  // A second push on top.
  REQUIRE(again.Push(MakeImage(kSecondFiles), nullptr).ok());
  CHECK(Visible(again) == Overlay(expected, kSecondFiles));
  CHECK(again.live_count() == 3);
  CHECK(again.LiveIndex(0).value() == 2);
  CHECK(again.LiveIndex(2).value() == 0);
  CHECK(again.LiveIndex(3).status().code() == StatusCode::kNotFound);
}

TEST_CASE("region store: pop marks removed, the bytes stay until the next mount erases them") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  REQUIRE(rig.flash.Preload(rig.start, MakeImage(kBaseFiles)));
  RegionStore& store = rig.Boot();
  REQUIRE(store.Push(MakeImage(kUpdateFiles), nullptr).ok());
  auto in_use = store.Lookup("lib/new.mpy");  // the VM holds a memoryview of this
  REQUIRE(in_use.ok());
  const Bytes held(in_use->entry.data.begin(), in_use->entry.data.end());
  const RegionImage popped = store.image(1);

  rig.flash.ResetCounters();
  REQUIRE(store.Pop().ok());
  CHECK(rig.flash.counters().writes == 1);  // the removed word only
  CHECK(rig.flash.counters().erases == 0);
  CHECK(store.image(1).state == RegionImageState::kRemoved);
  CHECK(store.live_count() == 1);
  CHECK(Visible(store) == kBaseFiles);
  CHECK(store.Lookup("lib/new.mpy").status().code() == StatusCode::kNotFound);
  // The memoryview still reads the same bytes.
  CHECK(Bytes(in_use->entry.data.begin(), in_use->entry.data.end()) == held);
  CHECK(store.Pop().code() == StatusCode::kFailedPrecondition);  // only the base is left

  // Next start-up: the removed slot is erased.
  rig.flash.ResetCounters();
  RegionStore& booted = rig.Boot();
  CHECK(rig.flash.counters().erases == popped.slot_size / 512);
  CHECK(booted.image_count() == 1);
  CHECK(booted.chain_end() == popped.slot_address);
  CHECK(rig.Erased(popped.slot_address, rig.start + rig.size));
  CHECK(Visible(booted) == kBaseFiles);
}

TEST_CASE("region store: push after pop goes above the removed slot; space comes back once both are popped") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  REQUIRE(rig.flash.Preload(rig.start, MakeImage(kBaseFiles)));
  RegionStore& store = rig.Boot();
  REQUIRE(store.Push(MakeImage(kUpdateFiles), nullptr).ok());
  const uint32_t first_slot = store.image(1).slot_address;
  REQUIRE(store.Pop().ok());
  REQUIRE(store.Push(MakeImage(kSecondFiles), nullptr).ok());
  CHECK(store.image_count() == 3);
  CHECK(store.image(2).slot_address == first_slot + store.image(1).slot_size);
  CHECK(Visible(store) == Overlay(kBaseFiles, kSecondFiles));

  // A reboot keeps the removed slot: it lies below a live one.
  RegionStore& booted = rig.Boot();
  CHECK(booted.image_count() == 3);
  CHECK(booted.image(1).state == RegionImageState::kRemoved);
  CHECK(Visible(booted) == Overlay(kBaseFiles, kSecondFiles));

  REQUIRE(booted.Pop().ok());
  RegionStore& clean = rig.Boot();
  CHECK(clean.image_count() == 1);
  CHECK(clean.chain_end() == first_slot);
  CHECK(rig.Erased(first_slot, rig.start + rig.size));
}

TEST_CASE("region store: overlay rules for files and directories") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  const FileSet older = {{"a/b.txt", Text("old b")}, {"a/c.txt", Text("old c")}, {"d", Text("old d")},
                         {"keep.txt", Text("kept")}};
  // Newer: file "a" hides the whole older directory "a"; directory "d"
  // replaces the older file "d".
  const FileSet newer = {{"a", Text("a is a file now")}, {"d/e.txt", Text("e")}};
  REQUIRE(rig.flash.Preload(rig.start, MakeImage(older)));
  RegionStore& store = rig.Boot();
  REQUIRE(store.Push(MakeImage(newer), nullptr).ok());

  CHECK(Visible(store) == FileSet{{"a", Text("a is a file now")}, {"d/e.txt", Text("e")}, {"keep.txt", Text("kept")}});
  CHECK(store.Lookup("a/b.txt").status().code() == StatusCode::kNotFound);
  CHECK(store.Lookup("a").value().entry.is_dir == false);
  CHECK(store.Lookup("d").value().entry.is_dir);
  CHECK(store.Lookup("keep.txt").value().image_index == 0);
  CHECK(store.Lookup("d//e.txt").status().code() == StatusCode::kInvalidArgument);
  CHECK(store.Lookup("a//b").status().code() == StatusCode::kNotFound);  // "a" is a file: hidden first
  auto root = store.Lookup("/");
  REQUIRE(root.ok());
  CHECK(root->entry.is_dir);
  CHECK(root->image_index == 1);

  Collector collector;
  REQUIRE(store.Walk(collector, nullptr).ok());
  CHECK(collector.seen.count("a/b.txt") == 0);
  CHECK(collector.seen.count("d") == 1);
  CHECK(collector.seen["d"] == 1);
}

// ------------------------------------------------------- streaming pushes

TEST_CASE("region store: streamed push in chunks, ranged prepare, zero-padded last chunk") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  RegionStore& store = rig.Boot();
  const Bytes image = MakeImage(kUpdateFiles);
  REQUIRE(image.size() > 1024);
  // Prepare in 512-byte pieces the way MicroPython's ranged prepare does.
  REQUIRE(store.Begin(512).ok());
  for (uint32_t off = 512; off < image.size(); off += 512) REQUIRE(store.Extend(off, 512).ok());
  // Chunks of 256, the last padded with zeros to a full chunk.
  for (size_t off = 0; off < image.size(); off += 256) {
    Bytes chunk(256, 0);
    std::copy_n(image.begin() + off, std::min<size_t>(256, image.size() - off), chunk.begin());
    REQUIRE(store.Write(static_cast<uint32_t>(off), chunk).ok());
  }
  Diag diag;
  REQUIRE_MESSAGE(store.Commit(&diag).ok(), diag.c_str());
  CHECK(store.image(0).image_size == image.size());
  CHECK(Visible(store) == kUpdateFiles);
  // Bytes past the image end were not programmed.
  CHECK(rig.Erased(store.image(0).image_address + Rup(static_cast<uint32_t>(image.size()), 8),
                   store.chain_end()));
}

TEST_CASE("region store: out-of-order chunks, image length learned from flash") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  RegionStore& store = rig.Boot();
  const Bytes image = MakeImage(kUpdateFiles);
  REQUIRE(store.Begin(static_cast<uint32_t>(image.size())).ok());
  // Second half first (length unknown: the tail must be zero-padded to the
  // write unit and is programmed as it is), then the head.
  const uint32_t half = Rup(static_cast<uint32_t>(image.size()) / 2, 8);
  Bytes tail(image.begin() + half, image.end());
  tail.resize(Rup(static_cast<uint32_t>(tail.size()), 8), 0);
  CHECK(store.Write(half, ByteSpan(image).subspan(half)).code() ==
        (tail.size() == image.size() - half ? StatusCode::kOk : StatusCode::kInvalidArgument));
  REQUIRE(store.Write(half, tail).ok());
  REQUIRE(store.Write(0, ByteSpan(image).first(half)).ok());
  REQUIRE(store.Commit(nullptr).ok());
  CHECK(Visible(store) == kUpdateFiles);
}

TEST_CASE("region store: streaming misuse is refused and leaves the stack as it was") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  REQUIRE(rig.flash.Preload(rig.start, MakeImage(kBaseFiles)));
  RegionStore& store = rig.Boot();
  const Bytes image = MakeImage(kUpdateFiles);

  CHECK(store.Write(0, image).code() == StatusCode::kFailedPrecondition);   // no push
  CHECK(store.Commit(nullptr).code() == StatusCode::kFailedPrecondition);  // no push
  CHECK(store.Extend(0, 8).code() == StatusCode::kFailedPrecondition);
  CHECK(store.Begin(0).code() == StatusCode::kInvalidArgument);
  CHECK(store.Begin(store.free_bytes() + 1).code() == StatusCode::kResourceExhausted);

  REQUIRE(store.Begin(static_cast<uint32_t>(image.size())).ok());
  CHECK(store.Write(4, ByteSpan(image).subspan(4, 8)).code() == StatusCode::kInvalidArgument);  // misaligned offset
  CHECK(store.Write(0, ByteSpan(image).first(12)).code() == StatusCode::kInvalidArgument);      // misaligned length
  // Past what was prepared (length not yet known: no header written).
  CHECK(store.Write(8192, Bytes(8, 1)).code() == StatusCode::kOutOfRange);
  // Commit with nothing written: not an image.
  Diag diag;
  CHECK(store.Commit(&diag).code() == StatusCode::kInvalidArgument);
  CHECK(std::string(diag.c_str()).find("no complete ROMFS image") != std::string::npos);
  CHECK_FALSE(store.pending());

  // Only the head written: incomplete.
  REQUIRE(store.Begin(static_cast<uint32_t>(image.size())).ok());
  REQUIRE(store.Write(0, ByteSpan(image).first(64)).ok());
  CHECK(store.Commit(nullptr).code() == StatusCode::kInvalidArgument);

  // A header that claims more than was prepared.
  REQUIRE(store.Begin(64).ok());
  const Bytes big = MakeImage({{"x", Pattern(2000, 4)}});
  CHECK(store.Write(0, ByteSpan(big).first(512)).code() == StatusCode::kOutOfRange);  // past the 384 prepared bytes
  CHECK(store.Write(0, ByteSpan(big).first(384)).ok());
  CHECK(store.Commit(nullptr).code() == StatusCode::kInvalidArgument);

  // A complete record whose tree is corrupt (a file without data record).
  const Bytes corrupt = {0xd2, 0xcd, 0x31, 0x05, 0x05, 0x03, 0x01, 'f', 0x00, 0x00};
  REQUIRE(corrupt.size() % 2 == 0);
  REQUIRE(store.Push(corrupt, &diag).code() == StatusCode::kInvalidArgument);

  // Not a ROMFS at all.
  CHECK(store.Push(Pattern(64, 7), nullptr).code() == StatusCode::kInvalidArgument);

  // Through all of that the stack did not change, and still takes a push.
  RegionStore& booted = rig.Boot();
  CHECK(booted.image_count() == 1);
  CHECK(Visible(booted) == kBaseFiles);
  REQUIRE(booted.Push(image, nullptr).ok());
  CHECK(Visible(booted) == Overlay(kBaseFiles, kUpdateFiles));
}

TEST_CASE("region store: a pop during a push is refused; Begin restarts a pending push") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  REQUIRE(rig.flash.Preload(rig.start, MakeImage(kBaseFiles)));
  RegionStore& store = rig.Boot();
  REQUIRE(store.Push(MakeImage(kUpdateFiles), nullptr).ok());
  const Bytes second = MakeImage(kSecondFiles);
  REQUIRE(store.Begin(static_cast<uint32_t>(second.size())).ok());
  CHECK(store.Pop().code() == StatusCode::kFailedPrecondition);
  CHECK(store.Recover().code() == StatusCode::kFailedPrecondition);
  REQUIRE(store.Write(0, ByteSpan(second).first(16)).ok());
  // Restart: the half-written slot is erased again.
  REQUIRE(store.Begin(static_cast<uint32_t>(second.size())).ok());
  REQUIRE(store.Write(0, second).ok());
  REQUIRE(store.Commit(nullptr).ok());
  CHECK(Visible(store) == Overlay(Overlay(kBaseFiles, kUpdateFiles), kSecondFiles));
  store.Abort();
  CHECK_FALSE(store.pending());
}

TEST_CASE("region store: calls after a power cut fail cleanly until the next boot") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  REQUIRE(rig.flash.Preload(rig.start, MakeImage(kBaseFiles)));
  RegionStore& store = rig.Boot();
  const Bytes image = MakeImage(kUpdateFiles);
  REQUIRE(store.Begin(static_cast<uint32_t>(image.size())).ok());
  rig.flash.CutPowerAfter(0, true);
  CHECK(store.Write(0, ByteSpan(image).first(256)).code() == StatusCode::kUnavailable);
  // The store noticed (its rescan found no mapped view): everything refuses.
  CHECK_FALSE(store.mounted());
  CHECK(store.Write(256, ByteSpan(image).subspan(256, 256)).code() == StatusCode::kFailedPrecondition);
  CHECK(store.Commit(nullptr).code() == StatusCode::kFailedPrecondition);
  CHECK(store.Lookup("boot.py").status().code() == StatusCode::kFailedPrecondition);
  CHECK(store.Pop().code() == StatusCode::kFailedPrecondition);
  CHECK(store.Mount(nullptr).code() == StatusCode::kUnavailable);
  rig.flash.PowerOn();
  CHECK(Visible(rig.Boot()) == kBaseFiles);
}

// ------------------------------------------------------------ chain rules

TEST_CASE("region store: pushed images survive an update that keeps the base, not one that replaces it") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  const Bytes base = MakeImage(kBaseFiles);
  REQUIRE(rig.flash.Preload(rig.start, base));
  RegionStore& store = rig.Boot();
  REQUIRE(store.Push(MakeImage(kUpdateFiles), nullptr).ok());
  REQUIRE(store.Push(MakeImage(kSecondFiles), nullptr).ok());
  const uint32_t first_slot = store.image(1).slot_address;
  const FileSet stacked = Visible(store);

  SUBCASE("the update rewrites the same base image") {
    REQUIRE(rig.flash.Erase(rig.start, first_slot - rig.start).ok());
    REQUIRE(rig.flash.Write(rig.start, base).ok());
    RegionStore& booted = rig.Boot();
    CHECK(booted.image_count() == 3);
    CHECK(Visible(booted) == stacked);
  }
  SUBCASE("the update writes a different base image of the same size") {
    Bytes other = base;
    auto font = RomfsReader::Open(base, nullptr)->Lookup("assets/font.bin");
    other[font->data_offset] ^= 0x5a;  // one byte of file data differs
    REQUIRE(rig.flash.Erase(rig.start, first_slot - rig.start).ok());
    REQUIRE(rig.flash.Write(rig.start, other).ok());
    RegionStore& booted = rig.Boot();
    CHECK(booted.image_count() == 1);
    CHECK(booted.chain_end() == first_slot);
    CHECK(rig.Erased(first_slot, rig.start + rig.size));  // the stale soft updates are gone
    FileSet expected = kBaseFiles;
    expected["assets/font.bin"][0] ^= 0x5a;
    CHECK(Visible(booted) == expected);
  }
  SUBCASE("the update writes a larger base over the first slot") {
    FileSet bigger = kBaseFiles;
    bigger["assets/big.bin"] = Pattern(1500, 5);
    const Bytes big = MakeImage(bigger);
    REQUIRE(big.size() > first_slot - rig.start);
    REQUIRE(rig.flash.Erase(rig.start, Rup(static_cast<uint32_t>(big.size()), 512)).ok());
    REQUIRE(rig.flash.Write(rig.start, big).ok());
    RegionStore& booted = rig.Boot();
    CHECK(booted.image_count() == 1);
    CHECK(Visible(booted) == bigger);
    CHECK(rig.Erased(booted.chain_end(), rig.start + rig.size));
  }
}

TEST_CASE("region store: a slot whose image was damaged after commit ends the chain") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  REQUIRE(rig.flash.Preload(rig.start, MakeImage(kBaseFiles)));
  RegionStore& store = rig.Boot();
  REQUIRE(store.Push(MakeImage(kUpdateFiles), nullptr).ok());
  REQUIRE(store.Push(MakeImage(kSecondFiles), nullptr).ok());
  const RegionImage damaged = store.image(1);
  // Flip bits in the middle of image 1 (as a bad cell would).
  rig.storage[damaged.image_address - kMemBase + damaged.image_size / 2] ^= 0x10;
  RegionStore& scan = rig.Fresh();
  Diag diag;
  REQUIRE(scan.Scan(&diag).ok());
  CHECK(scan.image_count() == 1);
  CHECK(std::string(diag.c_str()).find("CRC-32 mismatch") != std::string::npos);
  CHECK(Visible(scan) == kBaseFiles);
  REQUIRE(scan.Recover().ok());
  CHECK(rig.Erased(damaged.slot_address, rig.start + rig.size));
}

TEST_CASE("region store: region full and image table full") {
  SUBCASE("space") {
    Rig rig(SmallQspi(), kRegionOffset, 3072);  // 6 sectors
    RegionStore& store = rig.Boot();
    const Bytes image = MakeImage({{"x", Pattern(1500, 1)}});
    REQUIRE(store.Push(image, nullptr).ok());
    REQUIRE(store.image(0).slot_size == 2048);
    CHECK(store.free_bytes() == 1024 - kSlotImageOffset);
    CHECK(store.Push(image, nullptr).code() == StatusCode::kResourceExhausted);
    CHECK(store.image_count() == 1);
  }
  SUBCASE("table") {
    Rig rig(MakeMemory({{64, 256}}, 4), 0, 64 * 256);
    RegionStore& store = rig.Boot();
    const Bytes tiny = MakeImage({{"t", Text("1")}});
    for (size_t i = 0; i < kRegionMaxImages; ++i) REQUIRE(store.Push(tiny, nullptr).ok());
    CHECK(store.image_count() == kRegionMaxImages);
    CHECK(store.free_bytes() == 0);
    CHECK(store.Push(tiny, nullptr).code() == StatusCode::kResourceExhausted);
    RegionStore& booted = rig.Boot();
    CHECK(booted.image_count() == kRegionMaxImages);
    CHECK_FALSE(booted.truncated());
  }
}

TEST_CASE("region store: transient flash errors fail the push and leave the stack as it was") {
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  REQUIRE(rig.flash.Preload(rig.start, MakeImage(kBaseFiles)));
  RegionStore& store = rig.Boot();
  const Bytes image = MakeImage(kUpdateFiles);
  // Push = erase, write, descriptor, commit word: fail each in turn.
  for (uint32_t op = 0; op < 4; ++op) {
    CAPTURE(op);
    rig.flash.FailAfter(op);
    CHECK(store.Push(image, nullptr).code() == StatusCode::kUnavailable);
    rig.flash.ClearFaults();
    CHECK(store.mounted());
    CHECK(Visible(store) == kBaseFiles);
  }
  REQUIRE(store.Push(image, nullptr).ok());
  rig.flash.FailAfter(0);
  CHECK(store.Pop().code() == StatusCode::kUnavailable);
  CHECK(Visible(store) == Overlay(kBaseFiles, kUpdateFiles));
  REQUIRE(store.Pop().ok());
  CHECK(Visible(store) == kBaseFiles);
}

TEST_CASE("region store: configuration checks") {
  SUBCASE("region not on sector boundaries") {
    Rig rig(SmallQspi(), 100, 1024);
    CHECK(rig.Fresh().Mount(nullptr).code() == StatusCode::kInvalidArgument);
    CHECK_FALSE(rig.store->mounted());
    CHECK(rig.store->Lookup("x").status().code() == StatusCode::kFailedPrecondition);
    CHECK(rig.store->Begin(10).code() == StatusCode::kFailedPrecondition);
    CHECK(rig.store->Pop().code() == StatusCode::kFailedPrecondition);
  }
  SUBCASE("region past the memory end") {
    Rig rig(SmallQspi(), 15 * 1024, 2048);
    CHECK(rig.Fresh().Mount(nullptr).code() == StatusCode::kInvalidArgument);
  }
  SUBCASE("memory not mapped") {
    Rig rig(MakeMemory({{32, 512}}, 8, 0xff, false), 0, 4096);
    CHECK(rig.Fresh().Mount(nullptr).code() == StatusCode::kFailedPrecondition);
  }
  SUBCASE("write unit larger than 32 bytes") {
    Rig rig(MakeMemory({{32, 512}}, 64), 0, 4096);
    CHECK(rig.Fresh().Mount(nullptr).code() == StatusCode::kUnimplemented);
  }
  SUBCASE("powered off: no mapped view") {
    Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
    rig.flash.CutPowerAfter(0, false);
    CHECK_FALSE(rig.flash.Erase(rig.start, 512).ok());
    CHECK(rig.Fresh().Mount(nullptr).code() == StatusCode::kUnavailable);
  }
}

TEST_CASE("region store: other geometries (mixed sectors, write unit 1 and 32, erased 0x00)") {
  struct Case {
    const char* name;
    Memory memory;
    uint32_t offset;
    uint32_t size;
  };
  const Case cases[] = {
      {"mixed 4x256 + 6x1K, unit 1", MakeMemory({{4, 256}, {6, 1024}}, 1), 0, 4 * 256 + 6 * 1024},
      {"16x1K, unit 32 (H7 flash word)", MakeMemory({{16, 1024}}, 32), 2048, 14 * 1024},
      {"32x512, unit 4, erased 0x00", MakeMemory({{32, 512}}, 4, 0x00), 0, 16 * 1024},
  };
  for (const Case& c : cases) {
    const std::string geometry_name = c.name;
    CAPTURE(geometry_name);
    Rig rig(c.memory, c.offset, c.size);
    rig.flash.EraseAll();
    REQUIRE(rig.flash.Preload(rig.start, MakeImage(kBaseFiles)));
    RegionStore& store = rig.Boot();
    REQUIRE(store.Push(MakeImage(kUpdateFiles), nullptr).ok());
    REQUIRE(store.Push(MakeImage(kSecondFiles), nullptr).ok());
    for (size_t i = 1; i < store.image_count(); ++i) {
      auto sector = SectorContaining(c.memory, store.image(i).slot_address);
      REQUIRE(sector.ok());
      CHECK(sector->start == store.image(i).slot_address);
    }
    const FileSet all = Overlay(Overlay(kBaseFiles, kUpdateFiles), kSecondFiles);
    CHECK(Visible(rig.Boot()) == all);
    REQUIRE(rig.store->Pop().ok());
    CHECK(Visible(*rig.store) == Overlay(kBaseFiles, kUpdateFiles));
    RegionStore& booted = rig.Boot();
    CHECK(booted.image_count() == 2);
    CHECK(rig.Erased(booted.chain_end(), rig.start + rig.size));
  }
}

TEST_CASE("region store: an mpremote-style image (verbatim data records) as base and pushed") {
  // Laid out like mpremote's make_romfs (see romfs_test.cpp): kind-2 data
  // inside each file record, 0x80-padded length for an even size.
  const Bytes mp = {0xd2, 0xcd, 0x31, 0x80, 0x21, 0x05, 0x0b, 0x05, 'a',  '.',  't',  'x', 't',
                    0x02, 0x03, 'h',  'i',  '!',  0x04, 0x12, 0x03, 'l',  'i',  'b',  0x05, 0x0c,
                    0x05, 'm',  '.',  'm',  'p',  'y',  0x02, 0x04, 0x4d, 0x06, 0x00, 0x1f};
  const FileSet mp_files = {{"a.txt", Text("hi!")}, {"lib/m.mpy", {0x4d, 0x06, 0x00, 0x1f}}};
  Rig rig(SmallQspi(), kRegionOffset, kRegionSize);
  REQUIRE(rig.flash.Preload(rig.start, mp));
  RegionStore& store = rig.Boot();
  CHECK(Visible(store) == mp_files);
  REQUIRE(store.Push(mp, nullptr).ok());  // the same image again, on top
  CHECK(store.image_count() == 2);
  CHECK(store.Lookup("lib/m.mpy")->image_index == 1);
  CHECK(Visible(rig.Boot()) == mp_files);
}

// ------------------------------------------------------ power-cut sweeps

namespace {

enum class Cut { kBefore, kTorn, kAfter };

struct SweepResult {
  uint32_t operations = 0;  // flash operations of the action under test
  uint32_t cuts = 0;        // runs with a cut (3 per operation)
  uint32_t saw_before = 0;
  uint32_t saw_after = 0;
};

struct Scenario {
  const char* name;
  // Brings a fresh rig to the initial state (mounted store in rig.store).
  std::function<void(Rig&)> setup;
  // The action under test; returns its status.
  std::function<Status(Rig&)> action;
  FileSet before;
  FileSet after;
};

const FileSet kProbeFiles = {{"probe.txt", Text("pushed after the cut")}};

SweepResult Sweep(const Memory& memory, uint32_t offset, uint32_t size, const Scenario& s) {
  SweepResult result;
  {
    Rig dry(memory, offset, size);
    s.setup(dry);
    dry.flash.ResetCounters();
    const Status status = s.action(dry);
    REQUIRE_MESSAGE(status.ok(), s.name, ": ", status.message());
    result.operations = dry.flash.operations();
    REQUIRE(result.operations > 0);
    CHECK(Visible(dry.Boot()) == s.after);
  }
  for (uint32_t i = 0; i < result.operations; ++i) {
    for (Cut cut : {Cut::kBefore, Cut::kTorn, Cut::kAfter}) {
      const std::string scenario = s.name;
      CAPTURE(scenario);
      CAPTURE(i);
      CAPTURE(static_cast<int>(cut));
      Rig rig(memory, offset, size);
      s.setup(rig);
      rig.flash.ResetCounters();
      const bool last_after = cut == Cut::kAfter && i + 1 == result.operations;
      if (cut == Cut::kAfter) {
        rig.flash.CutPowerAfter(i + 1, false);  // op i completes, power dies before op i+1
      } else {
        rig.flash.CutPowerAfter(i, cut == Cut::kTorn);
      }
      const Status status = s.action(rig);
      CHECK(status.ok() == last_after);
      ++result.cuts;

      // Reboot.
      rig.flash.ClearFaults();
      rig.flash.PowerOn();
      RegionStore& booted = rig.Boot();
      const FileSet seen = Visible(booted);
      const bool is_before = seen == s.before;
      const bool is_after = seen == s.after;
      CHECK_MESSAGE((is_before || is_after), "neither before nor after: ", seen.size(), " files");
      result.saw_before += is_before && !is_after ? 1 : 0;
      result.saw_after += is_after && !is_before ? 1 : 0;
      // Recovery left nothing above the chain, and a second boot agrees.
      CHECK(rig.Erased(booted.chain_end(), rig.start + rig.size));
      CHECK(Visible(rig.Boot()) == seen);
      // A push still works.
      Diag diag;
      const Status pushed = rig.store->Push(MakeImage(kProbeFiles), &diag);
      CHECK_MESSAGE(pushed.ok(), pushed.message(), " ", diag.c_str());
      CHECK(Visible(rig.Boot()) == Overlay(seen, kProbeFiles));
    }
  }
  return result;
}

void PushStreamed(RegionStore& store, const Bytes& image, uint32_t chunk, Status* status) {
  *status = store.Begin(chunk);
  for (uint32_t off = chunk; status->ok() && off < image.size(); off += chunk) {
    *status = store.Extend(off, chunk);
  }
  for (uint32_t off = 0; status->ok() && off < image.size(); off += chunk) {
    const uint32_t n = std::min<uint32_t>(chunk, static_cast<uint32_t>(image.size()) - off);
    *status = store.Write(off, ByteSpan(image).subspan(off, n));
  }
  if (status->ok()) *status = store.Commit(nullptr);
}

}  // namespace

TEST_CASE("region store: power-cut sweep over push, pop, recovery and push after pop") {
  struct Geometry {
    const char* name;
    Memory memory;
    uint32_t offset;
    uint32_t size;
  };
  const Geometry geometries[] = {
      {"32x512 unit 8", MakeMemory({{32, 512}}, 8), kRegionOffset, kRegionSize},
      {"4x256+8x1K unit 1", MakeMemory({{4, 256}, {8, 1024}}, 1), 0, 4 * 256 + 8 * 1024},
      {"16x1K unit 32", MakeMemory({{16, 1024}}, 32), 1024, 15 * 1024},
  };
  const Bytes base = MakeImage(kBaseFiles);
  const Bytes update = MakeImage(kUpdateFiles);
  const Bytes second = MakeImage(kSecondFiles);
  const Bytes stream = MakeImage(kStreamFiles);
  const FileSet with_update = Overlay(kBaseFiles, kUpdateFiles);
  const FileSet with_second = Overlay(with_update, kSecondFiles);

  auto base_and_update = [&](Rig& rig) {
    REQUIRE(rig.flash.Preload(rig.start, base));
    RegionStore& store = rig.Boot();
    REQUIRE(store.Push(update, nullptr).ok());
  };

  const Scenario scenarios[] = {
      {"push (one shot)", base_and_update,
       [&](Rig& rig) { return rig.store->Push(second, nullptr); }, with_update, with_second},
      {"push (streamed, 256-byte chunks, ranged prepare)", base_and_update,
       [&](Rig& rig) {
         Status status;
         PushStreamed(*rig.store, stream, 256, &status);
         return status;
       },
       with_update, Overlay(with_update, kStreamFiles)},
      {"first push onto the base", [&](Rig& rig) {
         REQUIRE(rig.flash.Preload(rig.start, base));
         rig.Boot();
       },
       [&](Rig& rig) { return rig.store->Push(update, nullptr); }, kBaseFiles, with_update},
      {"pop", base_and_update, [&](Rig& rig) { return rig.store->Pop(); }, with_update, kBaseFiles},
      {"reboot after pop (recovery erases the removed slot)",
       [&](Rig& rig) {
         base_and_update(rig);
         REQUIRE(rig.store->Pop().ok());
       },
       [&](Rig& rig) { return rig.Fresh().Mount(nullptr); }, kBaseFiles, kBaseFiles},
      {"push after pop (no reboot between)",
       [&](Rig& rig) {
         base_and_update(rig);
         REQUIRE(rig.store->Pop().ok());
       },
       [&](Rig& rig) { return rig.store->Push(second, nullptr); }, kBaseFiles, Overlay(kBaseFiles, kSecondFiles)},
      {"reboot after a torn push (recovery erases the half slot)",
       [&](Rig& rig) {
         base_and_update(rig);
         rig.flash.CutPowerAfter(2, true);  // erase, image write, torn descriptor
         CHECK_FALSE(rig.store->Push(second, nullptr).ok());
         rig.flash.ClearFaults();
         rig.flash.PowerOn();
       },
       [&](Rig& rig) { return rig.Fresh().Mount(nullptr); }, with_update, with_update},
  };

  uint32_t total_cuts = 0;
  for (const Geometry& g : geometries) {
    for (const Scenario& s : scenarios) {
      const std::string geometry_name = g.name;
      CAPTURE(geometry_name);
      const SweepResult r = Sweep(g.memory, g.offset, g.size, s);
      MESSAGE(std::string(g.name), " / ", std::string(s.name), ": ", r.operations, " flash operations, ", r.cuts,
              " power cuts (before/torn/after), ", r.saw_before, " rebooted to before, ", r.saw_after,
              " to after");
      total_cuts += r.cuts;
      if (s.before != s.after) CHECK(r.saw_after > 0);
      if (s.before != s.after) CHECK(r.saw_before > 0);
    }
  }
  MESSAGE("power-cut sweep total: ", total_cuts, " cuts, every reboot showed the before or the after set");
  CHECK(total_cuts > 100);
}
