#!/usr/bin/env bash
# Self-test of scripts/check-cortex-m-compile: it must accept clean.cpp, reject
# a source that only warns on a 32-bit target (bad_32bit.cpp), reject a source
# that compiles but uses the heap (bad_new.cpp, via the symbol check on the
# cross objects), and reject an empty source list.
# Usage: check_cortex_m_compile_test.sh CHECKER ARM_CXX WORKDIR
# Exit status: 0 when every expectation held, 1 otherwise.
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 CHECKER ARM_CXX WORKDIR" >&2
  exit 2
fi
checker=$1 arm_cxx=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
failures=0

# run EXPECTED_RC TEXT NAME ARGS...: the checker must exit EXPECTED_RC and print TEXT.
run() {
  local want=$1 text=$2 name=$3
  shift 3
  local out rc=0
  out=$(ARM_CXX="$arm_cxx" "$checker" "$work/$name" "$@" 2>&1) || rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -qF -- "$text" <<<"$out"; then
    echo "DEFECT: $name: exit $rc (want $want), output should contain '$text':"
    printf '%s\n' "$out" | sed 's/^/  | /'
    failures=$((failures + 1))
  else
    echo "ok: $name (exit $rc, '$text')"
  fi
}

run 0 "ok   " clean "$here/clean.cpp"
run 1 "-Werror=type-limits" bad_32bit "$here/clean.cpp" "$here/bad_32bit.cpp"
run 1 "operator new" bad_new "$here/clean.cpp" "$here/bad_new.cpp"
run 1 "no sources given" empty -I"$here"

if [ "$failures" -ne 0 ]; then
  echo "$failures checker defect(s)"
  exit 1
fi
echo "check-cortex-m-compile self-test passed"
