#!/bin/sh
# The onedfu-sim powercut and romfs commands as a user runs them, on two versions of the demo
# package packed with the onedfu CLI.
#   usage: powercut_cli_test.sh ONEDFU ONEDFU_SIM SOURCE_DIR WORK_DIR
# 1. romfs: push a directory, `cat` a binary file back through stdout (byte-exact).
# 2. NEGATIVE: with the bootloader's protections switched off (--unsafe-skip-revoke
#    --unsafe-trust-record) the sweep must report failures and exit 1: the check can fail.
# 3. The sweep over the update 1.0.0 -> 2.0.0 (QSPI firmware and a ROMFS file changed): exit 0,
#    and the output (printed last, so this test's output ends with it) ends with
#    `cuts=N failures=0`, N > 0.
set -eu
onedfu=$1
sim=$2
src=$3
work=$4
board="$src/manifests/boards/pybd-sf6.json"
demo="$src/manifests/examples/pybd-sf6-demo"

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

rm -rf "$work"
mkdir -p "$work/new"

# ---- romfs through the real process (stdout must carry binary bytes unchanged)
"$sim" romfs push "$demo/assets" --board "$board" --state "$work/state" >/dev/null
"$sim" romfs cat font8x8.bin --board "$board" --state "$work/state" >"$work/font.out"
cmp "$demo/assets/font8x8.bin" "$work/font.out" || fail "romfs cat font8x8.bin differs from the source"
"$sim" romfs ls --board "$board" --state "$work/state" | grep -q ' 776  #0  font8x8.bin$' ||
  fail "romfs ls does not list font8x8.bin (776 bytes, image #0)"

# ---- the two packages
"$onedfu" pack "$demo.json" --version 1.0.0 -o "$work/old.dfu" >/dev/null
cp -r "$demo.json" "$demo" "$work/new/"
head -c 3000 /dev/zero | tr '\0' 'V' >>"$work/new/pybd-sf6-demo/firmware/text1.bin"
printf 'Hello from version 2.0.0 of the demo package.\n' >"$work/new/pybd-sf6-demo/romfs/data/greeting.txt"
"$onedfu" pack "$work/new/pybd-sf6-demo.json" --version 2.0.0 -o "$work/new.dfu" >/dev/null
cmp -s "$work/old.dfu" "$work/new.dfu" && fail "the two packages are identical"

# ---- negative: protections off, the sweep must catch bricks
status=0
"$sim" powercut --board "$board" --from "$work/old.dfu" --to "$work/new.dfu" \
  --unsafe-skip-revoke --unsafe-trust-record >"$work/unsafe.log" 2>&1 || status=$?
last=$(tail -n 1 "$work/unsafe.log")
[ "$status" -eq 1 ] || { cat "$work/unsafe.log"; fail "unsafe sweep exited $status, expected 1"; }
echo "$last" | grep -Eq '^cuts=[1-9][0-9]* failures=[1-9][0-9]*$' ||
  { cat "$work/unsafe.log"; fail "unsafe sweep: last line '$last' reports no failures"; }
grep -q 'boots a partial image' "$work/unsafe.log" || fail "unsafe sweep: no 'boots a partial image' line"
echo "negative check (protections off): $last"

# ---- the real sweep, printed last
status=0
"$sim" powercut --board "$board" --from "$work/old.dfu" --to "$work/new.dfu" >"$work/sweep.log" 2>&1 || status=$?
cat "$work/sweep.log"
last=$(tail -n 1 "$work/sweep.log")
[ "$status" -eq 0 ] || fail "sweep exited $status"
echo "$last" | grep -Eq '^cuts=[1-9][0-9]* failures=0$' || fail "last line '$last' is not cuts=N failures=0"
