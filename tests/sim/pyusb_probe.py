#!/usr/bin/python3
"""pyusb (Debian python3-usb, run with /usr/bin/python3) against the virtual USB probe board: the
real bootloader in DFU mode on a small board in RAM.

Run as: onedfu-usb-probe -- /usr/bin/python3 tests/sim/pyusb_probe.py
Expected values restate ProbeBoard's documented board and flash (sim/probe_board.h) and the
bootloader's DFU behaviour (bootloader/dfu_device.h).
Exit status 0 when every check passed.
"""
import errno
import hashlib
import struct
import sys
import time

import usb.core
import usb.util

LAYOUT = "@Internal Flash  /0x08000000/01*016Ka,03*016Kg"
SERIAL = "PROBE0001"
TRANSFER_SIZE = 2048
FLASH_SIZE = 4 * 16 * 1024
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("CHECK FAILED:", what, file=sys.stderr)


def pattern(offset):
    # probe_board.h: low byte of offset * 31 XOR offset >> 8
    return ((offset * 31) ^ (offset >> 8)) & 0xFF


def find(not_address=None, timeout_s=2.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for dev in usb.core.find(find_all=True, idVendor=0x0483, idProduct=0xDF11):
            if dev.address != not_address:
                return dev
        time.sleep(0.01)
    return None


dev = find()
check(dev is not None, "pyusb finds 0483:df11")
if dev is None:
    sys.exit(1)

intf = dev.get_active_configuration()[(0, 0)]
check((intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (0xFE, 1, 2),
      "interface is DFU mode (FE/01/02)")
name = usb.util.get_string(dev, intf.iInterface)
check(name == LAYOUT, "iInterface string is the DfuSe layout, got %r" % name)
serial = usb.util.get_string(dev, dev.iSerialNumber)
check(serial == SERIAL, "serial, got %r" % serial)

# DFU GETSTATUS: bStatus OK, bwPollTimeout 0, bState dfuIDLE (2), iString 0.
status = bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6))
check(status == bytes([0, 0, 0, 0, 2, 0]), "GETSTATUS, got %s" % status.hex())

# DfuSe UPLOAD block 0: the command list. Block 3: bytes 2048..4095 of the pattern stream.
# It is a DfuSe list (Get Commands first, then each command byte): ST's, and onedfu's hash 0x48.
commands = bytes(dev.ctrl_transfer(0xA1, 2, 0, 0, 16))
check(commands == bytes([0x00, 0x21, 0x41, 0x92, 0x48]), "UPLOAD block 0 command list, got %s" % commands.hex())

# The hash command (bootloader/dfu.h kDfuseHash): 48 + address + length, busy then DNLOAD-IDLE,
# ABORT, and the next UPLOAD of block 0 returns 48 + SHA-256 of the range (pattern bytes 100..5099,
# sector 0 included: the bootloader region is readable).
dev.ctrl_transfer(0x21, 1, 0, 0, struct.pack("<BII", 0x48, 0x08000000 + 100, 5000))
status = bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6))
check(status[0] == 0 and status[4] == 4, "hash command: first GETSTATUS reports dfuDNBUSY, got %s" % status.hex())
status = bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6))
check(status[0] == 0 and status[4] == 5, "hash command: then dfuDNLOAD-IDLE, got %s" % status.hex())
dev.ctrl_transfer(0x21, 6, 0, 0, None)
reply = bytes(dev.ctrl_transfer(0xA1, 2, 0, 0, TRANSFER_SIZE))
digest = hashlib.sha256(bytes(pattern(o) for o in range(100, 5100))).digest()
check(reply == bytes([0x48]) + digest, "hash reply is 48 + SHA-256 of the range, got %s" % reply.hex())
commands = bytes(dev.ctrl_transfer(0xA1, 2, 0, 0, 16))
check(commands[:1] == bytes([0x00]), "after the hash reply block 0 is the command list again, got %s" % commands.hex())
block3 = bytes(dev.ctrl_transfer(0xA1, 2, 3, 0, TRANSFER_SIZE))
expected = bytes(pattern(o) for o in range(TRANSFER_SIZE, 2 * TRANSFER_SIZE))
check(block3 == expected, "UPLOAD block 3 returns the pattern at offset 2048")
# Past the end of the flash: an empty block ends the upload (no STALL), back in dfuIDLE (2).
last = 2 + FLASH_SIZE // TRANSFER_SIZE
past = bytes(dev.ctrl_transfer(0xA1, 2, last, 0, TRANSFER_SIZE))
check(past == b"", "UPLOAD past the end of the flash returns an empty block, got %d bytes" % len(past))
status = bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6))
check(status == bytes([0, 0, 0, 0, 2, 0]), "GETSTATUS after the empty UPLOAD: OK, dfuIDLE, got %s" % status.hex())
# A DfuSe set-address outside every memory: busy first, then errADDRESS (8) in dfuERROR (10)
# with a status string naming the address; CLRSTATUS returns to dfuIDLE.
dev.ctrl_transfer(0x21, 1, 0, 0, bytes([0x21, 0x00, 0x00, 0x00, 0x70]))
status = bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6))
check(status[4] == 4, "the first GETSTATUS after a DfuSe command reports dfuDNBUSY, got %s" % status.hex())
status = bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6))
check(status[0] == 8 and status[4] == 10 and status[5] != 0,
      "GETSTATUS after the refused set-address: errADDRESS, dfuERROR, a status string, got %s" % status.hex())
why = usb.util.get_string(dev, status[5]) if status[5] else ""
check("0x70000000" in why, "the status string names the address, got %r" % why)
dev.ctrl_transfer(0x21, 4, 0, 0, None)
status = bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6))
check(status[0] == 0 and status[4] == 2, "CLRSTATUS returns to dfuIDLE, got %s" % status.hex())

# A refused request is a STALL: pyusb raises USBError with errno EPIPE.
try:
    dev.ctrl_transfer(0xC0, 0x7F, 0, 0, 4)
    check(False, "unknown vendor request must stall")
except usb.core.USBError as e:
    check(e.errno == errno.EPIPE, "STALL is EPIPE, got %r" % (e,))

# Leave: a zero-length DNLOAD; the next GETSTATUS is answered (dfuMANIFEST, 7), then the board
# resets and, still in DFU mode, comes back as a new device at a new address.
old_address = dev.address
dev.ctrl_transfer(0x21, 1, 0, 0, None)
status = bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6))
check(status[4] == 7, "the leave GETSTATUS reports dfuMANIFEST, got %s" % status.hex())
usb.util.dispose_resources(dev)
new = find(not_address=old_address)
check(new is not None, "device re-enumerated after leaving")
if new is not None:
    check(new.address != old_address, "new address (%d -> %d)" % (old_address, new.address))
    serial = usb.util.get_string(new, new.iSerialNumber)
    check(serial == SERIAL, "serial after the reset, got %r" % serial)
    status = bytes(new.ctrl_transfer(0xA1, 3, 0, 0, 6))
    check(status == bytes([0, 0, 0, 0, 2, 0]), "the reset board starts in dfuIDLE, got %s" % status.hex())
    usb.util.dispose_resources(new)

print("pyusb probe: %d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
