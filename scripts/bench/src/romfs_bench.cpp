// ROMFS region benchmark (scripts/bench/romfs builds and runs it).
//
// 1. Lookup time in a 1,000-file image held in a simulated memory-mapped
//    region (FakeFlash over RAM, as the CPU sees XIP flash), through the
//    RegionStore (a 2-image stack: the 1,000-file base + a 10-file update on
//    top) and through the bare RomfsReader, against peers in the same run:
//      - std::map<std::string, std::vector<uint8_t>>::find on a RAM copy of
//        every file (the fast in-RAM index: costs a full copy of the data),
//      - a linear scan of that copy's entries (the naive peer),
//      - std::ifstream open + read of the file from a real directory (what a
//        normal filesystem gives: the bytes are copied into RAM).
//    Median ns per lookup over rounds of all 1,000 paths in shuffled order.
// 2. RAM used to read a 100 KiB asset: heap allocations counted by a malloc
//    hook around Lookup + reading every byte (goal 0); the returned pointer
//    compared with the asset's place in the region found independently (by
//    searching the flash bytes for the asset's content); stack high-water
//    mark of the lookup measured on a thread with a painted stack, for 1 KiB,
//    100 KiB and 1 MiB assets (goal: the same, O(1) in the file size). The
//    ifstream peer's heap use for the same asset is reported alongside.
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "runtime/fake_flash.h"
#include "runtime/region_store.h"
#include "runtime/romfs.h"

using namespace onedfu::runtime;

// ---- malloc hook (glibc) ------------------------------------------------------

extern "C" void* __libc_malloc(size_t);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
extern "C" void __libc_free(void*);

namespace {
std::atomic<bool> g_counting{false};
std::atomic<size_t> g_allocations{0};
std::atomic<size_t> g_allocated_bytes{0};
void Count(size_t n) {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  g_allocated_bytes.fetch_add(n, std::memory_order_relaxed);
}
}  // namespace

extern "C" void* malloc(size_t n) {
  Count(n);
  return __libc_malloc(n);
}
extern "C" void* calloc(size_t n, size_t m) {
  Count(n * m);
  return __libc_calloc(n, m);
}
extern "C" void* realloc(void* p, size_t n) {
  Count(n);
  return __libc_realloc(p, n);
}
extern "C" void free(void* p) { __libc_free(p); }

namespace {

struct HeapUse {
  size_t allocations;
  size_t bytes;
};

template <typename Fn>
HeapUse MeasureHeap(Fn&& fn) {
  g_allocations = 0;
  g_allocated_bytes = 0;
  g_counting = true;
  fn();
  g_counting = false;
  return {g_allocations.load(), g_allocated_bytes.load()};
}

// ---- stack high-water mark ----------------------------------------------------

struct StackJob {
  void (*fn)(void*);
  void* arg;
};

void* Trampoline(void* p) {
  auto* job = static_cast<StackJob*>(p);
  job->fn(job->arg);
  return nullptr;
}

// Bytes of stack a thread running fn(arg) touched (thread set-up included).
size_t StackTouched(void (*fn)(void*), void* arg) {
  constexpr size_t kSize = 1 << 20;
  auto* stack = static_cast<uint8_t*>(std::aligned_alloc(4096, kSize));
  std::memset(stack, 0xa5, kSize);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, kSize);
  StackJob job{fn, arg};
  pthread_t thread;
  if (pthread_create(&thread, &attr, Trampoline, &job) != 0) std::abort();
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  size_t untouched = 0;
  while (untouched < kSize && stack[untouched] == 0xa5) ++untouched;
  std::free(stack);
  return kSize - untouched;
}

// ---- data ---------------------------------------------------------------------

using Bytes = std::vector<uint8_t>;

Bytes Random(std::mt19937& rng, size_t n) {
  Bytes v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

Bytes BuildImage(const std::map<std::string, Bytes>& files) {
  std::vector<RomfsFileSpec> specs;
  for (const auto& [path, data] : files) specs.push_back({path.c_str(), data});
  auto size = RomfsImageSize(specs, {});
  if (!size.ok()) std::abort();
  Bytes out(size.value());
  if (!WriteRomfs(specs, {}, out).ok()) std::abort();
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

volatile size_t g_sink;

template <typename Fn>
double NsPerLookup(const std::vector<std::string>& order, int rounds, Fn&& lookup) {
  std::vector<double> per_round;
  for (int r = 0; r < rounds; ++r) {
    size_t sum = 0;
    const auto start = std::chrono::steady_clock::now();
    for (const std::string& path : order) sum += lookup(path);
    const auto end = std::chrono::steady_clock::now();
    g_sink = sum;
    per_round.push_back(std::chrono::duration<double, std::nano>(end - start).count() / order.size());
  }
  return Median(per_round);
}

struct LookupJob {
  const RegionStore* store;
  const char* path;
  size_t result;
};

void LookupOnly(void* p) {
  auto* job = static_cast<LookupJob*>(p);
  auto found = job->store->Lookup(job->path);
  job->result = found.ok() ? found->entry.data.size() : 0;
}

void Nothing(void*) {}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 30;
  std::mt19937 rng(20240611);

  // 1,000 files: 20 directories of 50 modules/assets, 64 B .. 2 KiB each.
  std::map<std::string, Bytes> files;
  for (int d = 0; d < 20; ++d) {
    for (int f = 0; f < 50; ++f) {
      char path[64];
      std::snprintf(path, sizeof path, "lib/pkg%02d/mod%03d.mpy", d, f);
      files[path] = Random(rng, 64 + rng() % 1985);
    }
  }
  // A flat variant: the same 1,000 files in one directory (worst case for a
  // format without an index: every lookup scans the directory's records).
  std::map<std::string, Bytes> flat;
  for (const auto& [path, data] : files) {
    std::string name = path.substr(4);
    std::replace(name.begin(), name.end(), '/', '_');
    flat[name] = data;
  }
  // Assets for the RAM measurement.
  const Bytes asset_1k = Random(rng, 1024);
  const Bytes asset_100k = Random(rng, 100 * 1024);
  const Bytes asset_1m = Random(rng, 1024 * 1024);
  std::map<std::string, Bytes> base_files = files;
  base_files["assets/a1k.bin"] = asset_1k;
  base_files["assets/a100k.bin"] = asset_100k;
  base_files["assets/a1m.bin"] = asset_1m;
  const Bytes base = BuildImage(base_files);
  std::map<std::string, Bytes> update_files;
  for (int f = 0; f < 10; ++f) {
    char path[64];
    std::snprintf(path, sizeof path, "lib/pkg%02d/mod%03d.mpy", f, f);
    update_files[path] = Random(rng, 300);
  }
  const Bytes update = BuildImage(update_files);
  const Bytes flat_image = BuildImage(flat);

  // A PYBD-like QSPI: 4 MiB of 4 KiB sectors, memory-mapped; romfs region 3 MiB.
  Memory qspi;
  std::strcpy(qspi.name, "qspi");
  qspi.base = 0x90000000;
  qspi.sectors[0] = {1024, 4096};
  qspi.sector_group_count = 1;
  qspi.write_align = 4;
  qspi.mapped = true;
  std::vector<uint8_t> storage(qspi.size(), 0xff);
  FakeFlash flash(qspi, storage);
  const uint32_t region_start = qspi.base + 1024 * 1024;
  const uint32_t region_size = 3 * 1024 * 1024;
  if (!flash.Preload(region_start, base)) std::abort();
  RegionStore store(flash, region_start, region_size);
  if (!store.Mount(nullptr).ok() || !store.Push(update, nullptr).ok()) std::abort();

  std::vector<std::string> order;
  for (const auto& [path, data] : files) order.push_back(path);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::string> flat_order;
  for (const auto& [path, data] : flat) flat_order.push_back(path);
  std::shuffle(flat_order.begin(), flat_order.end(), rng);

  // Our lookups (one warm-up pass first).
  auto store_lookup = [&](const std::string& p) {
    auto r = store.Lookup(p.c_str());
    return r.ok() ? r->entry.data.size() : size_t{0};
  };
  NsPerLookup(order, 3, store_lookup);
  const double ns_store = NsPerLookup(order, rounds, store_lookup);
  auto base_reader = RomfsReader::Open(store.image(0).image, nullptr);
  const double ns_reader = NsPerLookup(order, rounds, [&](const std::string& p) {
    auto r = base_reader->Lookup(p.c_str());
    return r.ok() ? r->data.size() : size_t{0};
  });
  auto flat_reader = RomfsReader::Open(flat_image, nullptr);
  const double ns_flat = NsPerLookup(flat_order, rounds, [&](const std::string& p) {
    auto r = flat_reader->Lookup(p.c_str());
    return r.ok() ? r->data.size() : size_t{0};
  });

  // Peers.
  std::map<std::string, Bytes> copy = files;  // the RAM copy a non-XIP design keeps
  size_t copy_bytes = 0;
  for (const auto& [path, data] : copy) copy_bytes += path.size() + data.size();
  const double ns_map = NsPerLookup(order, rounds, [&](const std::string& p) { return copy.find(p)->second.size(); });
  const double ns_linear = NsPerLookup(order, rounds, [&](const std::string& p) {
    for (const auto& [path, data] : copy) {
      if (path == p) return data.size();
    }
    return size_t{0};
  });
  char dir_template[] = "/tmp/onedfu-romfs-bench-XXXXXX";
  const std::filesystem::path dir = mkdtemp(dir_template);
  for (const auto& [path, data] : base_files) {
    std::filesystem::create_directories((dir / path).parent_path());
    std::ofstream(dir / path, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), data.size());
  }
  auto read_file = [&](const std::string& p) {
    std::ifstream in(dir / p, std::ios::binary | std::ios::ate);
    const auto n = static_cast<size_t>(in.tellg());
    Bytes out(n);
    in.seekg(0);
    in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
    return out.size();
  };
  const double ns_ifstream = NsPerLookup(order, std::max(3, rounds / 5), read_file);

  std::printf("ROMFS lookup, 1,000-file image (%zu bytes), median of %d rounds, ns per lookup:\n", base.size(), rounds);
  std::printf("  onedfu RegionStore::Lookup, 2-image stack (newest first)  %8.0f ns\n", ns_store);
  std::printf("  onedfu RomfsReader::Lookup, the 1,000-file image alone    %8.0f ns\n", ns_reader);
  std::printf("  onedfu RomfsReader::Lookup, 1,000 files in ONE directory  %8.0f ns\n", ns_flat);
  std::printf("  peer std::map::find on a RAM copy (%zu bytes of RAM)   %8.0f ns  (ours / peer = %.1fx)\n",
              copy_bytes, ns_map, ns_store / ns_map);
  std::printf("  peer linear scan of the RAM copy's entries                %8.0f ns  (ours / peer = %.2fx)\n",
              ns_linear, ns_store / ns_linear);
  std::printf("  peer std::ifstream open + read from a directory           %8.0f ns  (ours / peer = %.3fx)\n",
              ns_ifstream, ns_store / ns_ifstream);

  // ---- RAM to read a 100 KiB asset ----
  const ByteSpan region = store.region_bytes();
  const uint8_t* expected = static_cast<const uint8_t*>(
      memmem(region.data(), region.size(), asset_100k.data(), asset_100k.size()));
  const uint8_t* got = nullptr;
  size_t got_size = 0;
  size_t checksum = 0;
  const HeapUse ours = MeasureHeap([&] {
    auto found = store.Lookup("assets/a100k.bin");
    if (!found.ok()) std::abort();
    got = found->entry.data.data();
    got_size = found->entry.data.size();
    for (uint8_t b : found->entry.data) checksum += b;  // read every byte
  });
  size_t expect_sum = 0;
  for (uint8_t b : asset_100k) expect_sum += b;
  const bool same_place = got == expected && got_size == asset_100k.size();
  const bool inside = got >= storage.data() && got + got_size <= storage.data() + storage.size();

  size_t peer_size = 0;
  const HeapUse peer = MeasureHeap([&] { peer_size = read_file("assets/a100k.bin"); });

  const size_t baseline = StackTouched(Nothing, nullptr);
  size_t stack[3];
  const char* paths[3] = {"assets/a1k.bin", "assets/a100k.bin", "assets/a1m.bin"};
  for (int i = 0; i < 3; ++i) {
    LookupJob job{&store, paths[i], 0};
    stack[i] = StackTouched(LookupOnly, &job) - baseline;
    if (job.result == 0) std::abort();
  }
  LookupJob deep{&store, "lib/pkg19/mod049.mpy", 0};
  const size_t stack_module = StackTouched(LookupOnly, &deep) - baseline;

  std::printf("\nRAM to read a 100 KiB asset (assets/a100k.bin, %zu bytes):\n", asset_100k.size());
  std::printf("  onedfu: heap allocations %zu, heap bytes %zu, bytes copied 0 (span points into the region: %s;\n"
              "          same address as the asset's bytes found by searching the flash: %s; checksum %s)\n",
              ours.allocations, ours.bytes, inside ? "yes" : "NO", same_place ? "yes" : "NO",
              checksum == expect_sum ? "ok" : "WRONG");
  std::printf("  onedfu stack high-water (lookup, beyond thread set-up): 1 KiB asset %zu B, 100 KiB asset %zu B, "
              "1 MiB asset %zu B, a module 3 levels deep %zu B\n",
              stack[0], stack[1], stack[2], stack_module);
  std::printf("  peer std::ifstream read into a vector: heap allocations %zu, heap bytes %zu (file %zu bytes)\n",
              peer.allocations, peer.bytes, peer_size);
  std::printf("  RegionStore object (the stack table): %zu bytes, static\n", sizeof(RegionStore));

  std::filesystem::remove_all(dir);
  const bool pass = ours.allocations == 0 && same_place && inside && checksum == expect_sum &&
                    stack[0] == stack[1] && stack[1] == stack[2];
  std::printf("\nzero-copy / zero-heap / O(1) stack: %s\n", pass ? "PASS" : "FAIL");
  return pass ? 0 : 1;
}
