/* C ABI for MicroPython's vfs.rom_ioctl over the onedfu romfs region stack
 * (runtime/README.md says how a port wires it in). Includable from C and C++.
 * Embedded-safe: the store lives in static storage inside the library; no
 * heap, no exceptions.
 *
 * How the stack is presented as ROM partitions ("segments"):
 *   - The partitions are the LIVE images of the stack, NEWEST FIRST:
 *     partition 0 is the top of the stack, partition count-1 the oldest (the
 *     packer's base image when there is one). With no image at all there is
 *     still one partition (0): the free space at the region start, which holds
 *     no valid ROMFS, so a VfsRom over it fails to mount, as on any blank
 *     partition.
 *   - Memory of partition p: from the first byte of image p to the start of
 *     the next slot above it (the region end for partition 0). A VfsRom over
 *     it reads image p only; its ROMFS header bounds it.
 *   - Writes (prepare / write / complete) only go to partition 0 and PUSH a
 *     new image on top; offsets count from the new image's first byte. After
 *     complete, the new image is partition 0 and the old ones move up by one.
 *     Other partitions are read-only (-EPERM).
 *   - Pop is an onedfu extension (ONEDFU_ROM_IOCTL_POP); it marks the top
 *     image removed; it stays readable until the next onedfu_romfs_init().
 *
 * Return values follow rom_ioctl: >= 0 on success, a negative errno value
 * (the numbers below, equal to MicroPython's MP_Exxx) on failure.
 */
#ifndef ONEDFU_RUNTIME_ROMFS_IOCTL_H
#define ONEDFU_RUNTIME_ROMFS_IOCTL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* rom_ioctl operation numbers (MicroPython's MP_VFS_ROM_IOCTL_*). */
#define ONEDFU_ROM_IOCTL_GET_NUMBER_OF_SEGMENTS 1
#define ONEDFU_ROM_IOCTL_GET_SEGMENT 2
#define ONEDFU_ROM_IOCTL_WRITE_PREPARE 3
#define ONEDFU_ROM_IOCTL_WRITE 4
#define ONEDFU_ROM_IOCTL_WRITE_COMPLETE 5
#define ONEDFU_ROM_IOCTL_GET_MIN_PREPARE 6
/* onedfu extension: pop the newest image (no arguments besides id 0). */
#define ONEDFU_ROM_IOCTL_POP 0x100

/* errno values returned negated (Linux / newlib numbering, as MicroPython). */
#define ONEDFU_EPERM 1   /* partition is read-only; the base image cannot be popped */
#define ONEDFU_ENOENT 2  /* no such partition / path */
#define ONEDFU_EIO 5     /* flash error, read-back mismatch, power loss */
#define ONEDFU_ENODEV 19 /* onedfu_romfs_init() not called or failed */
#define ONEDFU_EINVAL 22 /* bad argument, misaligned write, not a valid image */
#define ONEDFU_ENOSPC 28 /* the image does not fit the region */
#define ONEDFU_EBUSY 16  /* a push is in progress (pop refused) */

/* The flash that holds the romfs region, described by the port. */
typedef struct onedfu_sector_group {
  uint32_t count; /* sectors */
  uint32_t size;  /* bytes per sector, a power of two */
} onedfu_sector_group;

typedef struct onedfu_flash_ops {
  void* ctx;                       /* passed back to erase/write */
  uint32_t base;                   /* absolute address of the memory's first byte */
  const uint8_t* mapped;           /* the CPU's view of that byte (XIP); required */
  onedfu_sector_group sectors[8];  /* sector map from `base`, in order */
  uint8_t sector_group_count;      /* 1..8 */
  uint32_t write_align;            /* program unit, bytes: a power of two <= 32 */
  uint8_t erased_value;            /* usually 0xff */
  /* Erase whole sectors [address, address + size); 0 or a negative errno. */
  int (*erase)(void* ctx, uint32_t address, uint32_t size);
  /* Program `size` bytes (address and size multiples of write_align); 0 or a
   * negative errno. The new bytes must be visible through `mapped` on return
   * (invalidate caches as needed). */
  int (*write)(void* ctx, uint32_t address, const uint8_t* data, uint32_t size);
} onedfu_flash_ops;

/* Binds the store to `ops` (copied) and the region [region_start,
 * region_start + region_size), then mounts it: scans the stack and erases
 * removed and uncommitted slots above the newest live image. Call once at
 * boot (or at each soft reset: no memoryview survives one), before the VM
 * mounts /rom. Returns 0, or -ENODEV (bad geometry: region not on sector
 * boundaries, not mapped, write unit > 32) or -EIO (flash error). */
int onedfu_romfs_init(const onedfu_flash_ops* ops, uint32_t region_start, uint32_t region_size);

/* op 1: number of partitions (>= 1 once initialised), or -ENODEV. */
int onedfu_rom_ioctl_count(void);

/* op 2: partition `id`'s memory (see the file comment). 0 or -ENOENT. */
int onedfu_rom_ioctl_segment(int id, const uint8_t** data, uint32_t* size);

/* op 3: prepare a push of image bytes [offset, offset + length) on
 * partition 0. offset 0 starts a new push (cancelling an unfinished one) and
 * erases what it needs; offset > 0 extends the push in progress (MicroPython's
 * ranged prepare). Returns the minimum write size in bytes (the flash's
 * write_align, >= 1), or -EPERM (id != 0), -ENOSPC, -EINVAL, -EIO. */
int onedfu_rom_ioctl_prepare(int id, uint32_t offset, uint32_t length);

/* op 4: write `size` bytes at image offset `offset` of the push in progress.
 * offset (and size, except for the chunk that reaches the image end) must be
 * multiples of the minimum write size; bytes past the image end (zero padding)
 * are dropped. 0, or -EPERM, -EINVAL (no push, misaligned, outside what was
 * prepared), -EIO. On -EIO the push is cancelled. */
int onedfu_rom_ioctl_write(int id, uint32_t offset, const uint8_t* data, uint32_t size);

/* op 5: verify and commit the push: 0 (the image is now partition 0), or
 * -EPERM, -EINVAL (no push, or not a complete valid ROMFS image), -EIO. */
int onedfu_rom_ioctl_complete(int id);

/* op 6: minimum prepare size: the region's largest sector size (>= 1), or
 * -ENOENT / -ENODEV. */
int onedfu_rom_ioctl_min_prepare(int id);

/* Extension: pop the newest image. 0, or -EPERM (only the base image is
 * left, or nothing), -EBUSY (a push is in progress), -EIO. */
int onedfu_romfs_pop(void);

/* One dispatcher with rom_ioctl's argument order, for ports that forward
 * their mp_vfs_rom_ioctl arguments as integers:
 *   op 1: ()   op 2: (id) -> data, size   op 3: (id, length) or (id, offset, length)
 *   op 4: (id, offset, data, size)   op 5: (id)   op 6: (id)   POP: (0)
 * n_args counts the integer arguments after op (id, offset, length). */
typedef struct onedfu_rom_ioctl_args {
  int op;
  int n_args;
  int32_t id;
  uint32_t arg1; /* op 3: length (n_args 2) or offset (n_args 3); op 4: offset */
  uint32_t arg2; /* op 3: length (n_args 3) */
  const uint8_t* data; /* op 4 in; op 2 out */
  uint32_t size;       /* op 4 in; op 2 out */
} onedfu_rom_ioctl_args;

int onedfu_rom_ioctl(onedfu_rom_ioctl_args* args);

/* The merged view (newest image wins), for a port's own lookups (e.g. a
 * zero-copy asset accessor): on success *data and *size point into flash.
 * Returns 1 for a file, 2 for a directory, or -ENOENT / -ENODEV. */
int onedfu_romfs_lookup(const char* path, const uint8_t** data, uint32_t* size);

/* Summary for status strings. */
typedef struct onedfu_romfs_info {
  uint32_t images;     /* chain entries (live + removed) */
  uint32_t live;       /* live images (= partitions when > 0) */
  uint32_t files;      /* files in the merged view */
  uint32_t free_bytes; /* largest image a push can take now */
} onedfu_romfs_info;

int onedfu_romfs_get_info(onedfu_romfs_info* info);

#ifdef __cplusplus
}  /* extern "C" */

#include "runtime/region_store.h"

namespace onedfu::runtime {

// The rom_ioctl mapping over any RegionStore (the C functions above use one
// over the store bound by onedfu_romfs_init; the simulator can use its own).
// Same return conventions as the C functions.
class RomIoctl {
 public:
  explicit RomIoctl(RegionStore& store) : store_(&store) {}

  int Count() const;
  int Segment(int id, const uint8_t** data, uint32_t* size) const;
  int Prepare(int id, uint32_t offset, uint32_t length);
  int Write(int id, uint32_t offset, const uint8_t* data, uint32_t size);
  int Complete(int id);
  int MinPrepare(int id) const;
  int Pop();
  int Dispatch(onedfu_rom_ioctl_args& args);

 private:
  RegionStore* store_;
};

// Negative errno value for a Status (0 for OK).
int StatusToErrno(Status status);

}  // namespace onedfu::runtime

#endif  /* __cplusplus */

#endif  /* ONEDFU_RUNTIME_ROMFS_IOCTL_H */
