// RegionStore: the board's romfs region as a power-safe STACK of ROMFS images
// (DESIGN.md 5 and 7, issue 4). Embedded-safe: no heap, no exceptions; all
// reads go through the memory-mapped view (FlashMemory::Mapped()), so a
// looked-up file is a span INTO the region, never a copy.
//
// ---- Layout ---------------------------------------------------------------
//
//   region start                                                   region end
//   | base image | pad | slot 1 | pad | slot 2 | pad | ... | erased ... |
//
// - The base image (optional) is a plain ROMFS image at the region start,
//   written by the packer as part of a firmware package; it has no slot
//   header and is recognised with RomfsImageLength. It is image 0. Run-time
//   Pop never removes it (only a firmware update rewrites it).
// - Every pushed image lives in a SLOT that starts on a sector boundary: the
//   sector boundary at or after the end of the previous slot (or base image),
//   so the slots form a contiguous CHAIN. Scanning follows the chain and stops
//   at the first position that does not hold a committed slot.
//
// Slot format (declared once below, offsets static_asserted; little-endian):
//
//   off  size  field
//   0    4     magic          kSlotMagic (random constant)
//   4    2     version        kSlotVersion (1)
//   6    2     image_offset   kSlotImageOffset (128): where the image starts
//   8    4     image_length   bytes of the ROMFS image (its header says the same)
//   12   4     slot_size      bytes from the slot start to the next slot start;
//                             the next slot starts on a sector boundary
//   16   4     image_crc      zlib CRC-32 of the image_length image bytes
//   20   4     parent_crc     image_crc of the image directly below in the chain
//                             (the base image's CRC-32 when it is the base), 0
//                             when there is none
//   24   4     flags          bit 0 kSlotFlagHasParent; other bits 0
//   28   4     descriptor_crc zlib CRC-32 of bytes [0, 28)
//   32   4     commit word    kSlotCommitWord, programmed LAST, alone
//   64   4     removed word   erased while the image is live; Pop programs it to
//                             the complement of the erased value. ANY programmed
//                             bit means removed.
//   96   32    reserved (left erased)
//   128  n     the ROMFS image
//
//   The descriptor, the commit word and the removed word are each programmed
//   in a separate write of their own write unit(s); this needs the flash's
//   write_align <= 32 (kSlotMaxWriteAlign). The image starts 128 bytes after
//   a sector boundary, so file data aligned to <= 128 bytes from the image
//   start (RomfsWriteOptions::data_align) keeps that alignment in the CPU's
//   address space.
//
// ---- Power safety ----------------------------------------------------------
//
// A slot counts only when its descriptor is intact (magic, version, CRC), the
// commit word equals kSlotCommitWord, the image CRC matches, the image header
// agrees with image_length, and parent_crc/flags match the image below. Push
// order: erase the slot's sectors (above the chain: invisible), program the
// image (each write read back), check the image parses, program the
// descriptor, then the commit word. A cut anywhere before the commit word is
// complete leaves an uncommitted slot, which ends the chain where it starts:
// the stack is as before. Pop programs the removed word only (no erase); the
// image stays readable (the VM may hold memoryviews into it) until the next
// Mount(), which erases removed and uncommitted slots ABOVE THE TOPMOST LIVE
// image (top sector first, so a torn erase breaks the image CRC before it can
// reach the removed word). A removed slot below a live one stays (its space
// is reclaimed once everything above it is popped too).
//
// parent_crc binds each slot to the image below it: when a firmware update
// writes a DIFFERENT base image, the slots pushed on the old base no longer
// chain and are dropped at the next Mount; an update that leaves the base
// image in place leaves every pushed image in place.
//
// ---- Lookups ---------------------------------------------------------------
//
// Lookups search the live images newest first (an overlay): the newest image
// that has an entry at the path decides; a FILE at a parent path in a newer
// image hides everything below that path in older images. Walk lists the
// merged view: each path once, from the image that decides it.
//
// Not thread-safe: one caller at a time.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/byte_reader.h"
#include "runtime/diag.h"
#include "runtime/flash_memory.h"
#include "runtime/romfs.h"
#include "runtime/status.h"

namespace onedfu::runtime {

// ---- slot format (on flash) -------------------------------------------------

inline constexpr uint32_t kSlotMagic = 0x8c6455e0u;       // random
inline constexpr uint32_t kSlotCommitWord = 0xe3410b59u;  // random
inline constexpr uint16_t kSlotVersion = 1;
inline constexpr uint32_t kSlotFlagHasParent = 1u << 0;

inline constexpr uint32_t kSlotMagicOffset = 0;
inline constexpr uint32_t kSlotVersionOffset = 4;
inline constexpr uint32_t kSlotImageOffsetOffset = 6;
inline constexpr uint32_t kSlotImageLengthOffset = 8;
inline constexpr uint32_t kSlotSizeOffset = 12;
inline constexpr uint32_t kSlotImageCrcOffset = 16;
inline constexpr uint32_t kSlotParentCrcOffset = 20;
inline constexpr uint32_t kSlotFlagsOffset = 24;
inline constexpr uint32_t kSlotDescriptorCrcOffset = 28;
inline constexpr uint32_t kSlotDescriptorSize = 32;  // bytes [0, 32): one write
inline constexpr uint32_t kSlotCommitOffset = 32;    // commit word: its own write
inline constexpr uint32_t kSlotRemovedOffset = 64;   // removed word: its own write
inline constexpr uint32_t kSlotImageOffset = 128;    // the ROMFS image
inline constexpr uint32_t kSlotMaxWriteAlign = 32;   // flash write units up to this

static_assert(kSlotDescriptorCrcOffset + 4 == kSlotDescriptorSize);
static_assert(kSlotDescriptorSize <= kSlotCommitOffset);
static_assert(kSlotCommitOffset % kSlotMaxWriteAlign == 0 && kSlotCommitOffset + kSlotMaxWriteAlign <= kSlotRemovedOffset);
static_assert(kSlotRemovedOffset % kSlotMaxWriteAlign == 0 && kSlotRemovedOffset + kSlotMaxWriteAlign <= kSlotImageOffset);
static_assert(kSlotImageOffset % kSlotMaxWriteAlign == 0);

// Most images (base + slots, live or removed) one store tracks. A chain longer
// than this is left untouched (Mount does not erase past it; Push refuses).
inline constexpr size_t kRegionMaxImages = 16;

// ---- model ------------------------------------------------------------------

enum class RegionImageKind : uint8_t {
  kBase,  // plain ROMFS image at the region start (packer), no slot header
  kSlot,  // pushed at run time, in a slot
};

enum class RegionImageState : uint8_t {
  kLive,     // visible to lookups
  kRemoved,  // popped: still readable, erased at the next Mount when on top
};

// One image of the chain, all addresses absolute.
struct RegionImage {
  RegionImageKind kind = RegionImageKind::kSlot;
  RegionImageState state = RegionImageState::kLive;
  uint32_t slot_address = 0;   // slot start (== image_address for the base)
  uint32_t slot_size = 0;      // bytes to the next slot start (a sector boundary)
  uint32_t image_address = 0;  // first byte of the ROMFS image
  uint32_t image_size = 0;     // bytes
  uint32_t crc32 = 0;          // zlib CRC-32 of the image
  ByteSpan image;              // the image in mapped flash (valid while the flash lives)
};

// A merged-view lookup result: the entry and the chain index of its image.
struct RegionEntry {
  RomfsEntry entry;       // data/name point INTO the region
  size_t image_index = 0; // index for RegionStore::image()
};

class RegionWalkVisitor {
 public:
  // `path` without a leading '/', NUL-terminated, valid during the call;
  // `image_index` is the chain index of the image the entry comes from. A
  // non-OK status stops the walk and is returned by Walk.
  virtual Status OnEntry(const char* path, const RomfsEntry& entry, size_t image_index) = 0;

 protected:
  ~RegionWalkVisitor() = default;
};

class RegionStore {
 public:
  // `flash` must outlive the store. [region_start, region_start + region_size)
  // must lie inside flash.geometry() on sector boundaries, and the memory must
  // be memory-mapped with write_align <= kSlotMaxWriteAlign (checked by
  // Scan/Mount: kInvalidArgument / kFailedPrecondition / kUnimplemented).
  RegionStore(FlashMemory& flash, uint32_t region_start, uint32_t region_size);

  // Boot-time entry point: Scan(), then Recover(). Call before any lookup.
  // A blank or garbage region is not an error (an empty stack results).
  //   Scan's codes, Recover's codes.
  Status Mount(Diag* diag);

  // Reads the chain (no flash writes) and rebuilds the image table. `diag`
  // (optional) says where and why the chain stopped, when it did not stop at
  // an erased position or the region end. Cancels a pending push.
  //   kInvalidArgument / kFailedPrecondition / kUnimplemented  bad config
  //   kUnavailable  the flash gives no mapped view (e.g. powered off)
  Status Scan(Diag* diag);

  // Erases every non-blank sector above the topmost live image: removed and
  // uncommitted slots and leftovers. Never changes the visible set. Does
  // nothing when the chain was longer than kRegionMaxImages.
  //   kFailedPrecondition  not scanned;  the flash's erase errors
  Status Recover();

  // ---- the stack ----------------------------------------------------------

  bool mounted() const { return mounted_; }
  // Chain entries, bottom (0) to top, live and removed.
  size_t image_count() const { return count_; }
  const RegionImage& image(size_t index) const { return images_[index]; }
  size_t live_count() const;
  // Chain index of the `nth` newest live image (0 = top); kNotFound past the end.
  Result<size_t> LiveIndex(size_t nth) const;
  // Files and directories of chain image `index` (walks it).
  //   kOutOfRange bad index; RomfsReader::Walk's codes
  Status CountEntries(size_t index, uint32_t* files, uint32_t* dirs, Diag* diag) const;
  // Absolute address where the next slot would start.
  uint32_t chain_end() const { return chain_end_; }
  // Largest image a Push can take now (0 when full).
  uint32_t free_bytes() const;
  // True when the chain had more than kRegionMaxImages entries.
  bool truncated() const { return truncated_; }

  uint32_t region_start() const { return start_; }
  uint32_t region_size() const { return size_; }
  // The whole region as the CPU sees it (empty when the flash gives no view).
  ByteSpan region_bytes() const { return Region(); }
  // Alignment (bytes) writes into a pending push must keep: write_align.
  uint32_t min_write_size() const;
  // Largest sector size inside the region (the erase unit).
  uint32_t erase_unit() const;

  // ---- lookups (merged view, newest first) ---------------------------------

  // "lib/a.mpy" ("/" prefix allowed; "" or "/" is the root directory).
  //   kNotFound  no live image has it (or a newer file hides it)
  //   kFailedPrecondition  not mounted
  //   RomfsReader::Lookup's codes for a corrupt image on the way
  Result<RegionEntry> Lookup(const char* path) const;

  // Visits the merged view: every path once, from the image that decides it,
  // newest image first, each image in stored order (a directory before its
  // contents). Stops at the first visitor error or corrupt image.
  Status Walk(RegionWalkVisitor& visitor, Diag* diag) const;

  // ---- push / pop -----------------------------------------------------------

  // Starts a push of an image of up to `capacity` bytes: places a slot at
  // chain_end() and erases the sectors it needs. A pending push is cancelled
  // first. The caller then Write()s the image and Commit()s.
  //   kFailedPrecondition  not mounted or chain truncated
  //   kResourceExhausted   does not fit (free_bytes()), or kRegionMaxImages
  //   kInvalidArgument     capacity 0;  the flash's erase errors
  Status Begin(uint32_t capacity);

  // Grows the pending push so that image bytes [offset, offset + length) are
  // prepared (erases further sectors as needed). For streams that prepare
  // piece by piece (MicroPython's ranged rom_ioctl prepare).
  //   kFailedPrecondition  no pending push;  Begin's other codes
  Status Extend(uint32_t offset, uint32_t length);

  // Programs image bytes at `offset` (from the image start). `offset` must be
  // a multiple of min_write_size(), and so must data.size() unless the write
  // reaches the image end (the last unit is then padded with the erased
  // value). Once the image header has been written, bytes past the image
  // length are dropped (MicroPython's mpremote zero-pads its last chunk).
  // Every write is read back.
  //   kFailedPrecondition  no pending push
  //   kInvalidArgument     misaligned
  //   kOutOfRange          outside the prepared bytes
  //   kDataLoss            read-back mismatch;  the flash's write errors
  // On a flash error the pending push is cancelled.
  Status Write(uint32_t offset, ByteSpan data);

  // Checks the written image (header, length within what was prepared, the
  // whole tree walks), then programs the descriptor and the commit word. On
  // success the image is the new top of the stack.
  //   kFailedPrecondition  no pending push
  //   kInvalidArgument / kOutOfRange  the written bytes are not a valid image
  //   kDataLoss  read-back mismatch;  the flash's write errors
  // Any failure cancels the pending push (the slot stays uncommitted).
  Status Commit(Diag* diag);

  // Cancels a pending push (nothing is written; the slot stays uncommitted).
  void Abort() { pending_ = false; }
  bool pending() const { return pending_; }

  // Begin(image.size()) + Write(0, image) + Commit().
  Status Push(ByteSpan image, Diag* diag);

  // Marks the newest live image removed (one write, no erase); it stays
  // readable until the next Mount() erases it.
  //   kFailedPrecondition  not mounted, a push is pending, or the newest live
  //                        image is the base image (or there is none)
  //   the flash's write errors
  Status Pop();

 private:
  Status CheckConfig() const;
  ByteSpan Region() const;                        // mapped region bytes, or empty
  // `size` mapped bytes at absolute `address` inside the region, or empty.
  ByteSpan Slice(uint32_t address, uint32_t size) const;
  uint32_t NextBoundary(uint32_t address) const;  // absolute, clamped to the region end
  // Parses the slot at region offset `pos`; OK when it is a committed slot
  // that chains onto the image below (`parent`, null when none).
  Status ParseSlot(ByteSpan region, uint32_t pos, const RegionImage* parent, RegionImage* out,
                   Diag* diag) const;
  Status EraseRange(uint32_t from, uint32_t to);    // absolute, sector aligned
  Status Program(uint32_t address, ByteSpan data);  // write + read back
  Status Fail(Status status);  // cancels the push, rescans, returns `status`
  // True when a live image newer than chain index `index` decides `path`.
  bool Hidden(const char* path, size_t index) const;

  FlashMemory* flash_;
  uint32_t start_;
  uint32_t size_;

  bool mounted_ = false;
  bool truncated_ = false;
  RegionImage images_[kRegionMaxImages];
  size_t count_ = 0;
  uint32_t chain_end_ = 0;

  // Pending push.
  bool pending_ = false;
  uint32_t slot_ = 0;           // absolute slot start
  uint32_t prepared_end_ = 0;   // absolute, erased up to here (sector boundary)
  uint32_t written_end_ = 0;    // image-relative end of the highest write
  uint32_t image_length_ = 0;   // from the written header; 0 = not known yet
};

}  // namespace onedfu::runtime
