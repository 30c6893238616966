#!/usr/bin/python3
"""DfuSe set-address + upload through pyusb (python3-usb), as a host script would do it.

usage: pyusb_upload.py ADDRESS LENGTH EXPECTED_FILE
Finds the DFU-mode device 0483:df11, sets the DfuSe address pointer (DNLOAD block 0:
21 a0..a3, then GETSTATUS until the command finished), returns to dfuIDLE (ABORT), reads
LENGTH bytes with UPLOAD blocks 2, 3, ... of wTransferSize (2048) and compares them with the
first LENGTH bytes of EXPECTED_FILE. Exit 0 when equal, 1 otherwise.
"""
import struct
import sys

import usb.core
import usb.util

DNLOAD, UPLOAD, GETSTATUS, ABORT = 1, 2, 3, 6
STATE_DNBUSY, STATE_DNLOAD_IDLE, STATE_IDLE = 4, 5, 2
TRANSFER = 2048


def status(dev):
    s = dev.ctrl_transfer(0xA1, GETSTATUS, 0, 0, 6)
    return s[0], s[4]


def main():
    address, length, expected_path = int(sys.argv[1], 0), int(sys.argv[2]), sys.argv[3]
    with open(expected_path, "rb") as f:
        expected = f.read()[:length]
    dev = usb.core.find(idVendor=0x0483, idProduct=0xDF11)
    if dev is None:
        print("no DFU device")
        return 1
    usb.util.claim_interface(dev, 0)
    dev.set_interface_altsetting(0, 0)
    dev.ctrl_transfer(0x21, DNLOAD, 0, 0, struct.pack("<BI", 0x21, address))
    st, state = status(dev)
    while state == STATE_DNBUSY:
        st, state = status(dev)
    if st != 0 or state != STATE_DNLOAD_IDLE:
        print("set address failed: status %d state %d" % (st, state))
        return 1
    dev.ctrl_transfer(0x21, ABORT, 0, 0, None)
    st, state = status(dev)
    if state != STATE_IDLE:
        print("abort: state %d" % state)
        return 1
    data = b""
    block = 2
    while len(data) < length:
        chunk = bytes(dev.ctrl_transfer(0xA1, UPLOAD, block, 0, min(TRANSFER, length - len(data))))
        if not chunk:
            break
        data += chunk
        block += 1
    dev.ctrl_transfer(0x21, ABORT, 0, 0, None)
    usb.util.release_interface(dev, 0)
    if data != expected:
        print("upload differs: %d bytes read, %d expected" % (len(data), len(expected)))
        return 1
    print("upload of %d bytes at 0x%08x matches" % (len(data), address))
    return 0


if __name__ == "__main__":
    sys.exit(main())
