#!/usr/bin/env bash
# Self-test of scripts/check-embedded-symbols: compiles each deliberately bad
# source in this folder into its own static library with the given toolchain
# and asserts that the checker FAILS on it and names the offending symbol;
# asserts that it PASSES on clean.cpp; and that a missing file or an archive
# with no symbols fails (a check must not pass by checking nothing).
# Usage: check_embedded_symbols_test.sh CHECKER CXX AR NM WORKDIR [CXXFLAGS...]
# Exit status: 0 when every expectation held, 1 otherwise.
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "usage: $0 CHECKER CXX AR NM WORKDIR [CXXFLAGS...]" >&2
  exit 2
fi
checker=$1 cxx=$2 ar=$3 nm=$4 work=$5
shift 5
extra=("$@")
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"

failures=0
# Compiles $here/$1.cpp with flags $2... into $work/lib$1.a.
build() {
  local name=$1
  shift
  "$cxx" -std=c++20 -O2 "${extra[@]}" "$@" -c "$here/$name.cpp" -o "$work/$name.o"
  rm -f "$work/lib$name.a"
  "$ar" rcs "$work/lib$name.a" "$work/$name.o"
}

# expect_fail NAME SYMBOL [CXXFLAGS...]: the checker must exit 1 and print SYMBOL.
expect_fail() {
  local name=$1 symbol=$2
  shift 2
  build "$name" "$@"
  local out rc=0
  out=$(NM="$nm" "$checker" "$work/lib$name.a" 2>&1) || rc=$?
  if [ "$rc" -ne 1 ]; then
    echo "DEFECT: checker exited $rc (want 1) on $name.cpp:"
    printf '%s\n' "$out" | sed 's/^/  | /'
    failures=$((failures + 1))
  elif ! grep -qF -- "$symbol" <<<"$out"; then
    echo "DEFECT: checker failed $name.cpp but did not name '$symbol':"
    printf '%s\n' "$out" | sed 's/^/  | /'
    failures=$((failures + 1))
  else
    echo "ok: rejects $name.cpp ($symbol)"
  fi
}

expect_fail bad_new "operator new"
expect_fail bad_virtual_dtor "operator delete" -fno-exceptions -fno-rtti
expect_fail bad_throw "__cxa_throw"
expect_fail bad_typeid "typeinfo for CheckBadPolymorphic"
expect_fail bad_dynamic_cast "__dynamic_cast"
expect_fail bad_malloc "malloc" -fno-exceptions -fno-rtti
expect_fail bad_printf "printf" -fno-exceptions -fno-rtti
expect_fail bad_at "std::__throw_out_of_range" -fno-exceptions -fno-rtti

# The clean library passes, and the checker says it looked at symbols.
build clean -fno-exceptions -fno-rtti
rc=0
out=$(NM="$nm" "$checker" "$work/libclean.a" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] || ! grep -q '^ok ' <<<"$out"; then
  echo "DEFECT: checker exited $rc on clean.cpp (want 0 and an ok line):"
  printf '%s\n' "$out" | sed 's/^/  | /'
  failures=$((failures + 1))
else
  echo "ok: accepts clean.cpp"
fi

# One bad library among clean ones still fails the whole run.
rc=0
NM="$nm" "$checker" "$work/libclean.a" "$work/libbad_new.a" >/dev/null 2>&1 || rc=$?
if [ "$rc" -ne 1 ]; then
  echo "DEFECT: checker exited $rc (want 1) on clean + bad libraries"
  failures=$((failures + 1))
else
  echo "ok: rejects clean + bad"
fi

# Nothing to check is a failure, not a pass.
rm -f "$work/libempty.a"
"$ar" rcs "$work/libempty.a"
for input in "$work/does-not-exist.a" "$work/libempty.a"; do
  rc=0
  NM="$nm" "$checker" "$input" >/dev/null 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "DEFECT: checker passed $input, which has nothing to check"
    failures=$((failures + 1))
  else
    echo "ok: rejects $(basename "$input") (exit $rc)"
  fi
done

if [ "$failures" -ne 0 ]; then
  echo "$failures checker defect(s)"
  exit 1
fi
echo "check-embedded-symbols self-test passed"
