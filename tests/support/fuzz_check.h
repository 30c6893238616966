// The fuzz harnesses' invariant check (tests/fuzz/): a violated invariant traps, which
// libFuzzer reports as a crash with the input, and the corpus replay test as a failure.
#pragma once

namespace onedfu::fuzz {

inline void FuzzCheck(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace onedfu::fuzz
