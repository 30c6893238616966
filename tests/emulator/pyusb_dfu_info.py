#!/usr/bin/python3
"""pyusb (Debian python3-usb, run with /usr/bin/python3) against the emulated STM32F767 board:
the real Cortex-M bootloader binary in DFU mode (onedfu-sim run --emulate), every reply made by
its OTG FS driver and DfuDevice on the emulated CPU.

usage: pyusb_dfu_info.py LAYOUT REASON [POLL_MS]
Checks: the DFU-mode interface (FE/01/02) and its iInterface (the DfuSe LAYOUT); the DFU
functional descriptor, both inside the configuration descriptor (pyusb's extra_descriptors) and
by GET_DESCRIPTOR 0x21 (09 21 0b ff 00 00 08 1a 01: CanDnload, CanUpload, WillDetach, detach
timeout 255 ms, wTransferSize 2048, DFU 1.1a); GETSTATUS (OK, dfuIDLE) and GETSTATE; the status
string (iString 5) containing REASON, why the board is in DFU mode. Then a DfuSe page erase of
0x08008000 (a 32 KiB sector): the first GETSTATUS reports dfuDNBUSY with a bwPollTimeout of
POLL_MS when given, else more than 0 (the binary's modeled erase time); the next one
dfuDNLOAD-IDLE. Prints one line per fact.
Exit 0 when every check passed.
"""
import sys

import usb.core
import usb.util

FUNCTIONAL = bytes([0x09, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x08, 0x1A, 0x01])
GETSTATUS, GETSTATE = 3, 5
failures = []


def check(ok, what):
    print(("ok: " if ok else "CHECK FAILED: ") + what)
    if not ok:
        failures.append(what)


def main():
    layout, reason = sys.argv[1], sys.argv[2]
    dev = usb.core.find(idVendor=0x0483, idProduct=0xDF11)
    if dev is None:
        print("CHECK FAILED: no DFU device 0483:df11")
        return 1
    intf = dev.get_active_configuration()[(0, 0)]
    check((intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (0xFE, 1, 2),
          "interface is DFU mode (FE/01/02)")
    name = usb.util.get_string(dev, intf.iInterface)
    check(name == layout, "iInterface is the DfuSe layout %r" % name)
    extra = bytes(intf.extra_descriptors)
    check(extra == FUNCTIONAL, "functional descriptor in the configuration: %s" % extra.hex())
    direct = bytes(dev.ctrl_transfer(0x80, 6, 0x2100, 0, 9))
    check(direct == FUNCTIONAL, "GET_DESCRIPTOR DFU functional: %s" % direct.hex())
    attributes, detach_ms, transfer, version = direct[2], direct[3] | direct[4] << 8, direct[5] | direct[6] << 8, direct[7] | direct[8] << 8
    print("bmAttributes 0x%02x, wDetachTimeOut %d ms, wTransferSize %d, bcdDFUVersion 0x%04x" %
          (attributes, detach_ms, transfer, version))
    usb.util.claim_interface(dev, 0)
    status = bytes(dev.ctrl_transfer(0xA1, GETSTATUS, 0, 0, 6))
    check(status[0] == 0 and status[4] == 2, "GETSTATUS: bStatus OK, bState dfuIDLE: %s" % status.hex())
    state = bytes(dev.ctrl_transfer(0xA1, GETSTATE, 0, 0, 1))
    check(state == bytes([2]), "GETSTATE: dfuIDLE: %s" % state.hex())
    text = usb.util.get_string(dev, 5) if status[5] == 0 else usb.util.get_string(dev, status[5])
    check(reason in text, "status string %r says %r" % (text, reason))
    dev.ctrl_transfer(0x21, 1, 0, 0, bytes([0x41, 0x00, 0x80, 0x00, 0x08]))  # DfuSe erase 0x08008000
    busy = bytes(dev.ctrl_transfer(0xA1, GETSTATUS, 0, 0, 6))
    poll = busy[1] | busy[2] << 8 | busy[3] << 16
    print("erase: bwPollTimeout %d ms" % poll)
    check(busy[0] == 0 and busy[4] == 4, "erase: first GETSTATUS dfuDNBUSY: %s" % busy.hex())
    if len(sys.argv) > 3:
        check(poll == int(sys.argv[3]), "erase: bwPollTimeout %d ms, expected %s" % (poll, sys.argv[3]))
    else:
        check(poll > 0, "erase: bwPollTimeout %d ms is the modeled erase time" % poll)
    done = bytes(dev.ctrl_transfer(0xA1, GETSTATUS, 0, 0, 6))
    check(done[0] == 0 and done[4] == 5, "erase: then dfuDNLOAD-IDLE: %s" % done.hex())
    dev.ctrl_transfer(0x21, 6, 0, 0, None)  # ABORT
    usb.util.release_interface(dev, 0)
    return 1 if failures else 0


sys.exit(main())
