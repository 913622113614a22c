#!/usr/bin/python3
"""Generates dataplane/proto/dcerpc_names.inc from Zeek's DCE-RPC constants.

Reads the `uuid_endpoint_map` (interface UUID -> name) and `operations` ((UUID, opnum) -> name)
tables of Zeek's scripts/base/protocols/dce-rpc/consts.zeek and writes them as sorted C++ arrays
for binary search by dataplane/proto/dcerpc.cc.

Usage: gen-dcerpc-names.py [ZEEK_CONSTS] [-o OUTPUT]
  ZEEK_CONSTS defaults to ../shared/data/ref/zeek-dce-rpc-consts.zeek relative to the repo root,
  OUTPUT to dataplane/proto/dcerpc_names.inc in the repo root ("-" for stdout).

The output depends only on the tables' contents (not on the input's path), so running the
generator again must reproduce the committed file byte for byte (tests/unit/proto/dcerpc_test.cc
checks this when the Zeek file is present).
"""

import argparse
import os
import re
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_INPUT = os.path.join(REPO_ROOT, "..", "shared", "data", "ref", "zeek-dce-rpc-consts.zeek")
DEFAULT_OUTPUT = os.path.join(REPO_ROOT, "dataplane", "proto", "dcerpc_names.inc")

TABLE_RE = re.compile(r"^\s*const\s+(\w+)\s*:\s*table\[")
UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
IFACE_RE = re.compile(r'^\s*\["(' + UUID + r')"\]\s*=\s*"([^"\\]*)"\s*,?\s*(#.*)?$')
OP_RE = re.compile(r'^\s*\["(' + UUID + r')"\s*,\s*(0[xX][0-9A-Fa-f]+|\d+)\s*\]\s*=\s*"([^"\\]*)"'
                   r"\s*,?\s*(#.*)?$")


def wire_bytes(uuid):
    """The GUID's wire layout (first three fields little-endian), as DCE-RPC NDR carries it."""
    h = uuid.replace("-", "").lower()
    b = bytes.fromhex(h)
    return b[3::-1] + b[5:3:-1] + b[7:5:-1] + b[8:]


def parse(path):
    ifaces = {}
    ops = {}
    table = None
    warnings = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            m = TABLE_RE.match(line)
            if m:
                table = m.group(1)
                continue
            if re.match(r"^\s*}", line):
                table = None
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if table == "uuid_endpoint_map":
                m = IFACE_RE.match(line)
                if not m:
                    warnings.append("%d: unrecognised interface line" % lineno)
                    continue
                key = m.group(1).lower()
                if key in ifaces and ifaces[key] != m.group(2):
                    warnings.append("%d: %s redefined (last wins)" % (lineno, key))
                ifaces[key] = m.group(2)
            elif table == "operations":
                m = OP_RE.match(line)
                if not m:
                    warnings.append("%d: unrecognised operation line" % lineno)
                    continue
                key = (m.group(1).lower(), int(m.group(2), 0))
                if key[1] > 0xFFFF:
                    warnings.append("%d: opnum out of range" % lineno)
                    continue
                if key in ops and ops[key] != m.group(3):
                    warnings.append("%d: %s/%d redefined (last wins)" % (lineno, key[0], key[1]))
                ops[key] = m.group(3)
    return ifaces, ops, warnings


def render(ifaces, ops):
    uuids = sorted(set(ifaces) | {u for u, _ in ops}, key=wire_bytes)
    index = {u: i for i, u in enumerate(uuids)}
    out = []
    out.append("// GENERATED FILE, do not edit. Regenerate from the repo root with\n")
    out.append("//   /usr/bin/python3 scripts/gen-dcerpc-names.py "
               "../shared/data/ref/zeek-dce-rpc-consts.zeek\n")
    out.append("//\n")
    out.append("// Source: zeek-dce-rpc-consts.zeek, a copy of Zeek's\n")
    out.append("// scripts/base/protocols/dce-rpc/consts.zeek (tables uuid_endpoint_map and operations).\n")
    out.append("// Zeek is distributed under a BSD-style license, Copyright (c) The Regents of the\n")
    out.append("// University of California, through Lawrence Berkeley National Laboratory, and the\n")
    out.append("// International Computer Science Institute; see Zeek's COPYING file for its terms\n")
    out.append("// (redistribution with the copyright notice retained, no endorsement implied).\n")
    out.append("//\n")
    out.append("// Included by dataplane/proto/dcerpc.cc only. kDcerpcUuids is sorted by the 16 wire\n")
    out.append("// bytes (memcmp order); kDcerpcOps by (uuid index, opnum).\n")
    out.append("// %d interfaces (%d named), %d operations.\n" % (len(uuids), len(ifaces), len(ops)))
    out.append("\n")
    out.append("// clang-format off\n")
    out.append("inline constexpr DcerpcUuidName kDcerpcUuids[] = {\n")
    for u in uuids:
        b = wire_bytes(u)
        name = ifaces.get(u)
        name_s = '"%s"' % name if name is not None else "nullptr"
        out.append("    {{%s}, %s},  // %s\n" % (", ".join("0x%02x" % x for x in b), name_s, u))
    out.append("};\n\n")
    out.append("inline constexpr DcerpcOpName kDcerpcOps[] = {\n")
    for (u, opnum) in sorted(ops, key=lambda k: (index[k[0]], k[1])):
        out.append('    {%d, %d, "%s"},\n' % (index[u], opnum, ops[(u, opnum)]))
    out.append("};\n")
    out.append("// clang-format on\n")
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", nargs="?", default=DEFAULT_INPUT)
    ap.add_argument("-o", "--output", default=DEFAULT_OUTPUT)
    args = ap.parse_args()
    ifaces, ops, warnings = parse(args.input)
    for w in warnings:
        print("gen-dcerpc-names: %s: %s" % (args.input, w), file=sys.stderr)
    if not ifaces or not ops:
        print("gen-dcerpc-names: %s: tables not found" % args.input, file=sys.stderr)
        return 1
    text = render(ifaces, ops)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
