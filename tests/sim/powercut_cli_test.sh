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
# 4. An ECC board (tests/data/boards/test-ecc.json) with --torn random: 0 failures, some cut
#    leaves an unreadable unit; with --unsafe-trust-record failures > 0.
# 5. --host mass-erase and --host raw over the demo update: 0 failures.
# 6. --host onedfu-flash (from DFU mode, and with --app from the application): 0 failures,
#    sampled re-runs of onedfu flash complete.
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

# ---- ECC board (STM32H7-class, "ecc": true), harsher torn states (--torn random, seeded):
# reading a torn unit faults; after every cut the board must stay in DFU mode or boot OLD/NEW
# and re-flash. Self-check: a boot that ignores read faults and hashes starts a torn image.
ecc_board="$src/tests/data/boards/test-ecc.json"
mkdir -p "$work/ecc/r1" "$work/ecc/r2"
head -c 40000 /dev/zero | tr '\0' 'A' >"$work/ecc/fw1.bin"
head -c 40000 /dev/zero | tr '\0' 'B' >"$work/ecc/fw2.bin"
echo one >"$work/ecc/r1/a.txt"
echo two >"$work/ecc/r2/a.txt"
for v in 1 2; do
  "$onedfu" pack --board "$ecc_board" --firmware "0x08020000:$work/ecc/fw$v.bin" --romfs "$work/ecc/r$v" \
    --version "$v.0.0" -o "$work/ecc/v$v.dfu" >/dev/null
done
status=0
"$sim" powercut --board "$ecc_board" --from "$work/ecc/v1.dfu" --to "$work/ecc/v2.dfu" --torn random --seed 7 \
  --unsafe-trust-record >"$work/ecc-unsafe.log" 2>&1 || status=$?
last=$(tail -n 1 "$work/ecc-unsafe.log")
[ "$status" -eq 1 ] || { cat "$work/ecc-unsafe.log"; fail "ECC unsafe sweep exited $status, expected 1"; }
echo "$last" | grep -Eq '^cuts=[1-9][0-9]* failures=[1-9][0-9]*$' || fail "ECC unsafe sweep: '$last' reports no failures"
echo "ECC self-check (trust record): $last"
"$sim" powercut --board "$ecc_board" --from "$work/ecc/v1.dfu" --to "$work/ecc/v2.dfu" --torn random --seed 7 \
  >"$work/ecc.log" 2>&1 || { cat "$work/ecc.log"; fail "ECC sweep failed"; }
grep -q 'flash error' "$work/ecc.log" || fail "ECC sweep: no cut left an unreadable (torn ECC) unit"
last=$(tail -n 1 "$work/ecc.log")
echo "$last" | grep -Eq '^cuts=[1-9][0-9]* failures=0$' || fail "ECC sweep: last line '$last'"
echo "ECC board, torn random: $last"

# ---- more host streams over the demo update: mass erase then download; raw -s ADDR writes.
for host in mass-erase raw; do
  "$sim" powercut --board "$board" --from "$work/old.dfu" --to "$work/new.dfu" --host "$host" \
    >"$work/$host.log" 2>&1 || { cat "$work/$host.log"; fail "--host $host sweep failed"; }
  last=$(tail -n 1 "$work/$host.log")
  echo "$last" | grep -Eq '^cuts=[1-9][0-9]* failures=0$' || fail "--host $host: last line '$last'"
  echo "--host $host: $last"
done
grep -q 'no boot record' "$work/mass-erase.log" || fail "--host mass-erase: no cut saw the record erased"

# ---- our own flasher's stream (onedfu flash, hash command, only what changed), started in DFU
# mode and from the running application (its own DETACH): 0 failures, every sampled re-run of
# `onedfu flash` completes and boots NEW.
for start in dfu app; do
  app_flag=""
  [ "$start" = app ] && app_flag="--app"
  "$sim" powercut --board "$board" --from "$work/old.dfu" --to "$work/new.dfu" --host onedfu-flash --onedfu "$onedfu" \
    --rerun 4 $app_flag >"$work/onedfu-$start.log" 2>&1 || { cat "$work/onedfu-$start.log"; fail "--host onedfu-flash ($start) failed"; }
  grep -q '^re-run: `onedfu flash` again after 4 of the cuts, 0 failed$' "$work/onedfu-$start.log" ||
    { cat "$work/onedfu-$start.log"; fail "--host onedfu-flash ($start): no 4 successful re-runs"; }
  last=$(tail -n 1 "$work/onedfu-$start.log")
  echo "$last" | grep -Eq '^cuts=[1-9][0-9]* failures=0$' || fail "--host onedfu-flash ($start): last line '$last'"
  echo "--host onedfu-flash ($start): $last"
done
grep -q ' to the application (detach), ' "$work/onedfu-app.log" || fail "--app: no detach requests recorded"
