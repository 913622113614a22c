#!/usr/bin/env python3
"""Evasion scenarios: the same SMB/DCE-RPC content split into 1-byte segments, out of order, with
overlaps and in IP fragments gives the same events (docs/events-parts/evasion.md).

usage: python3 tests/scenarios/evasion_test.py BUILD_DIR [--keep DIR] [--verbose]

Each capture in CAPTURES (under ../shared/data/pcaps, relative to the repository root) is replayed
through vigil-dataplane as it is, and its protocol events (every event_type but `flow`, without
the per-packet fields in PER_PACKET) are the reference. Then every TCP data segment of its SMB
flows (port 445 or 139) is rewritten with scapy into the variants of VARIANTS, each replayed the
same way; a variant passes when its normalised events equal the reference as a multiset, plus,
for the variants that carry overlaps with different bytes, exactly one `anomaly` event
REASSEMBLY_OVERLAP_DIFFERENT_DATA per conflicting segment, per direction. The replay config pins
the overlap policies the conflicting segments are crafted for (bsd, for TCP and for IP).

Prints one PASS/FAIL line per capture and variant (with the first differing events) and a totals
line. Exit status: 0 when every variant passed, 1 otherwise (a replay or a generation that fails
is a failed line), 77 (meson's skip) when the shared data or scapy is absent, 2 on a usage error
or a missing binary.

scapy: only the variant generation needs it; it runs as `evasion_test.py --generate CAPTURE DIR`
under this python3 when it has scapy, else under the first of SCAPY_PYTHONS that has it
(Debian's python3-scapy goes with /usr/bin/python3).
"""
import argparse
import collections
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PCAPS = os.path.join(os.path.dirname(ROOT), "shared", "data", "pcaps")
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import suricata_verify as sv  # noqa: E402  (beside this file: replay config and runner)

SKIP = 77
SCAPY_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")

# Real SMB captures with DCE-RPC over named pipes. at_schedule: picked up midstream (no
# handshake), atsvc BIND and NetrJobAdd. net_user: full handshake, SMB1 -> SMB2 negotiation,
# Kerberos session setup in one 3 KB segment, lsarpc and samr calls.
CAPTURES = (
    ("smb2-04", "suricata-verify/smb2-04/20171220_smb_at_schedule.pcap"),
    ("net_user", "401trg/20171220_smb_net_user.pcap"),
)
SMB_PORTS = (445, 139)

# The policies the overlapping segments and fragments are crafted for. bsd (reassembly.h): a
# segment's bytes replace buffered ones only when it starts before the segment that buffered
# them; so a conflicting segment starting at or after the buffered segment's start is discarded.
POLICY = "bsd"
# Appended to suricata_verify's replay config (a format string: no braces here).
REPLAY_EXTRA = f"""
stream:
  reassembly:
    policy: {POLICY}
defrag:
  policy: {POLICY}
"""

# Fields that say which packet an event came with, not what the protocol said.
PER_PACKET = ("timestamp", "pcap_cnt", "flow_id", "pkt_src", "packet", "packet_info")
OVERLAP_EVENT = "REASSEMBLY_OVERLAP_DIFFERENT_DATA"
MAX_FRAGMENTS = 64  # the default defrag.max_fragments: more and a datagram is dropped


# ----------------------------------------------------------------------------------------------
# Events


def load_events(path):
    events = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    events.append(json.loads(line))
                except ValueError as e:
                    raise ValueError(f"{path}:{n}: not JSON: {e}") from None
    return events


def normalise(event):
    e = {k: v for k, v in event.items() if k not in PER_PACKET}
    return json.dumps(e, sort_keys=True, separators=(",", ":"))


def protocol_events(events):
    """The normalised protocol events, in output order."""
    return [normalise(e) for e in events if e.get("event_type") != "flow"]


def is_overlap_anomaly(event):
    a = event.get("anomaly") if event.get("event_type") == "anomaly" else None
    return isinstance(a, dict) and a.get("type") == "stream" and a.get("event") == OVERLAP_EVENT


def describe(normalised, limit=240):
    """An event for a summary line: its message, then its JSON (cut)."""
    e = json.loads(normalised)
    text = normalised if len(normalised) <= limit else normalised[:limit] + "..."
    return f"{e.get('event_type')} {json.dumps(e.get('message'))} {text}"


def compare(reference, events, expected_overlaps):
    """(ok, summary). reference: normalised events of the original; events: the variant's raw
    events; expected_overlaps: Counter direction -> conflicting segments sent (empty: none)."""
    got = [e for e in events if e.get("event_type") != "flow"]
    overlaps = collections.Counter(str(e.get("direction")) for e in got if is_overlap_anomaly(e))
    rest = [normalise(e) for e in got if not is_overlap_anomaly(e)]
    ref_c, got_c = collections.Counter(reference), collections.Counter(rest)
    missing, extra = ref_c - got_c, got_c - ref_c
    problems = []
    if missing or extra:
        problems.append(f"{sum(missing.values())} missing, {sum(extra.values())} extra of "
                        f"{len(reference)} events")
        first_missing = next((e for e in reference if missing[e] > 0), None)
        first_extra = next((e for e in rest if extra[e] > 0), None)
        if first_missing:
            problems.append(f"first missing: {describe(first_missing)}")
        if first_extra:
            problems.append(f"first extra: {describe(first_extra)}")
    if overlaps != expected_overlaps:
        def fmt(c):
            return ", ".join(f"{d} {n}" for d, n in sorted(c.items())) or "none"
        problems.append(f"{OVERLAP_EVENT} anomalies: expected {fmt(expected_overlaps)}, "
                        f"got {fmt(overlaps)}")
    if problems:
        return False, "; ".join(problems)
    note = f"{len(reference)} events"
    if expected_overlaps:
        note += f" + {sum(overlaps.values())} {OVERLAP_EVENT}"
    return True, note


def replay(build, pcap, tmp):
    """Replays pcap; returns (events, error or None)."""
    eve, err = sv.replay(build, pcap, tmp)
    if err:
        return [], err
    return load_events(eve), None


# ----------------------------------------------------------------------------------------------
# Variants (scapy)
#
# A data segment is (seq, payload) of one captured packet. A variant turns it into a list of
# pieces (seq, bytes, kind), sent in list order with the packet's other fields (ACK number,
# window, options, timestamp); kind is "data" (the captured bytes), "dup" (captured bytes sent
# again: an identical overlap) or "conflict" (bytes that differ from the captured ones, crafted
# to lose under POLICY). Every piece carries the packet's ACK: the peer's data was complete
# before it, as in the capture, so no ACK ever acknowledges a hole.


def chunks(seq, data, sizes):
    """data split into consecutive pieces, sizes cycling."""
    out, off, i = [], 0, 0
    while off < len(data):
        n = sizes[i % len(sizes)]
        out.append((seq + off, data[off:off + n], "data"))
        off += n
        i += 1
    return out


def reversed_groups(pieces, group):
    out = []
    for i in range(0, len(pieces), group):
        out.extend(reversed(pieces[i:i + group]))
    return out


def v_one_byte(seq, data):
    return chunks(seq, data, [1])


def v_out_of_order(seq, data):
    # Pieces of varied sizes, each group of 8 sent last piece first.
    return reversed_groups(chunks(seq, data, [8, 3, 16, 1, 11]), 8)


def v_overlap_same(seq, data):
    # Pieces of 24 bytes, each reaching 10 bytes into the next one, groups of 4 sent in reverse
    # (so the overlaps meet buffered bytes and are compared), then the whole segment again (a
    # retransmission of delivered bytes). Every overlap carries identical bytes.
    out, stride, reach = [], 24, 10
    for off in range(0, len(data), stride):
        out.append((seq + off, data[off:off + stride + reach], "dup" if off else "data"))
    out = reversed_groups(out, 4)
    out.append((seq, data, "dup"))
    return out


def conflict(seq, data, lo, hi):
    """A piece [lo, hi) of the segment with every byte changed."""
    return (seq + lo, bytes(b ^ 0xFF for b in data[lo:hi]), "conflict")


def v_overlap_diff(seq, data, index):
    # The first byte (in order), then the second half (buffered), then a conflicting segment
    # inside the second half that starts at or after its start (under bsd: discarded, one
    # anomaly), then the rest of the first half (fills the hole: the stream is delivered).
    n = len(data)
    if n < 8:
        return [(seq, data, "data")]
    h = n // 2
    lo, hi = [(h, n), (h + 1, n), (h, n - 1), (h + 2, n - 2)][index % 4]
    return [(seq, data[:1], "data"), (seq + h, data[h:], "data"), conflict(seq, data, lo, hi),
            (seq + 1, data[1:h], "data")]


def v_combined(seq, data, index):
    # As v_overlap_diff, with both halves in 16-byte pieces sent in reverse, the conflict on one
    # buffered piece of the second half, pieces of the first half reaching 4 identical bytes
    # into the next one (the last into the buffered second half: under bsd the conflict must
    # have left those bytes intact, or they would differ), then the whole segment again. Every
    # piece then goes in 8-byte IP fragments, out of order, with an identical and a conflicting
    # fragment (fragment_order()).
    n = len(data)
    if n < 8:
        return [(seq, data, "data")]
    h = n // 2
    second = chunks(seq + h, data[h:], [16])
    out = [(seq, data[:1], "data")] + list(reversed(second))
    first_len = len(second[0][1])
    lo = h + (index % 2)
    out.append(conflict(seq, data, lo, h + first_len - (1 if first_len > 2 else 0)))
    first = []
    for off in range(1, h, 16):
        first.append((seq + off, data[off:min(off + 20, n)], "data"))
    out.extend(reversed(first))
    out.append((seq, data, "dup"))
    return out


def fragment_size(ip_payload_len, smallest):
    """Bytes per fragment (a multiple of 8): `smallest` unless that takes more than
    MAX_FRAGMENTS (counting the duplicate and the conflicting fragment)."""
    size = smallest
    while (ip_payload_len + size - 1) // size + 2 > MAX_FRAGMENTS:
        size += 8
    return size


def fragment_order(n, index, conflicting):
    """The fragments to send, as (fragment number, kind), out of order: reversed, or odd numbers
    then even ones; a duplicate of the first one sent before the last one (an identical
    overlap); with `conflicting` (and 3 fragments or more), right after fragment 1 a fragment at
    its offset with every byte changed (under bsd: discarded, the original came first)."""
    if n == 1:
        return [(0, "data")]
    order = list(range(n - 1, -1, -1)) if index % 2 == 0 else (
        list(range(1, n, 2)) + list(range(0, n, 2)))
    out = [(k, "data") for k in order[:-1]] + [(order[0], "dup"), (order[-1], "data")]
    if conflicting and n >= 3:
        at = out.index((1, "data")) + 1  # never the last: that is fragment 0 or an even one
        out.insert(at, (1, "conflict"))
    return out


def whole(seq, data, index):
    return [(seq, data, "data")]


VARIANTS = (
    # name, pieces function (seq, data, index) -> pieces, IP fragments of every piece: None or
    # (bytes per fragment, with a conflicting fragment)
    ("one-byte", lambda s, d, i: v_one_byte(s, d), None),
    ("out-of-order", lambda s, d, i: v_out_of_order(s, d), None),
    ("overlap-same", lambda s, d, i: v_overlap_same(s, d), None),
    ("overlap-diff", v_overlap_diff, None),
    # 8-byte fragments: the first one holds 8 of the 20 bytes of the TCP header (RFC 1858's
    # "tiny fragment"), as the receiving host accepts.
    ("ip-fragments", whole, (8, False)),
    # 24-byte fragments, the first holding the whole TCP header; fragment overlaps, identical and
    # conflicting.
    ("ip-fragments-overlap", whole, (24, True)),
    ("combined", v_combined, (8, True)),
)


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for ts, frame in frames:
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            if usec >= 1000000:
                sec, usec = sec + 1, usec - 1000000
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            f.write(frame)


class FrameBuilder:
    """Frames for the pieces of one captured TCP/IPv4 packet: its Ethernet, IP and TCP headers
    (options kept) with the sequence number, flags, lengths, IP id and fragment fields set and
    both checksums recomputed (scapy's checksum). Patching the captured headers rather than
    building each frame with scapy layers keeps the 30k-frame variants to a fraction of a second;
    generate() has scapy re-check a sample of the frames."""

    def __init__(self, frame, ip_off, ihl, tcp_len):
        self.eth = frame[:ip_off]
        self.ip = bytearray(frame[ip_off:ip_off + ihl])
        self.tcp = bytearray(frame[ip_off + ihl:ip_off + ihl + tcp_len])
        self.pseudo = bytes(self.ip[12:20]) + b"\0\x06"

    def _ip_header(self, payload_len, ip_id=None, flags_frag=None):
        from scapy.utils import checksum
        ip = bytearray(self.ip)
        struct.pack_into(">H", ip, 2, len(ip) + payload_len)
        if ip_id is not None:
            struct.pack_into(">H", ip, 4, ip_id)
        if flags_frag is not None:
            struct.pack_into(">H", ip, 6, flags_frag)
        ip[10:12] = b"\0\0"
        struct.pack_into(">H", ip, 10, checksum(bytes(ip)))
        return bytes(ip)

    def segment(self, seq, flags, data):
        """The TCP segment (header and data) with its checksum."""
        from scapy.utils import checksum
        tcp = bytearray(self.tcp)
        struct.pack_into(">I", tcp, 4, seq & 0xFFFFFFFF)
        tcp[13] = flags
        tcp[16:18] = b"\0\0"
        seg = bytes(tcp) + data
        pseudo = self.pseudo + struct.pack(">H", len(seg))
        struct.pack_into(">H", tcp, 16, checksum(pseudo + seg))
        return bytes(tcp) + data

    def frame(self, seg):
        return self.eth + self._ip_header(len(seg)) + seg

    def fragments(self, seg, size, ip_id, order):
        """The fragments of seg in `order` (fragment_order()): conflicting ones carry every byte
        changed."""
        parts = [seg[o:o + size] for o in range(0, len(seg), size)]
        out = []
        for k, kind in order:
            more = 0x2000 if k < len(parts) - 1 else 0
            part = bytes(b ^ 0xFF for b in parts[k]) if kind == "conflict" else parts[k]
            out.append(self.eth + self._ip_header(len(part), ip_id, more | (k * size // 8))
                       + part)
        return out


def build_variant(packets, pieces_fn, fragments):
    """packets: the capture (scapy). Returns (frames, indices of the frames built (the others
    are captured ones), Counter of conflicting segments by the direction EVE gives them, TCP
    segments sent)."""
    from scapy.all import IP, TCP

    frames, built, conflicts, npieces = [], [], collections.Counter(), 0
    syn_seen = set()    # flows (sorted endpoints) whose handshake is in the capture
    started = set()     # (flow, src endpoint): directions that have sent data
    client_of = {}      # flow -> the endpoint EVE calls src (the client)
    ip_id = 0x4000
    index = 0
    for pkt in packets:
        ts = float(pkt.time)
        raw = bytes(pkt)
        if not (IP in pkt and TCP in pkt) or pkt[IP].frag != 0 or pkt[IP].flags.MF:
            frames.append((ts, raw))
            continue
        ip, tcp = pkt[IP], pkt[TCP]
        src, dst = (ip.src, tcp.sport), (ip.dst, tcp.dport)
        flow = tuple(sorted((src, dst)))
        smb = tcp.sport in SMB_PORTS or tcp.dport in SMB_PORTS
        if tcp.flags.S:
            syn_seen.add(flow)
            if not tcp.flags.A:
                client_of.setdefault(flow, src)
        payload = bytes(tcp.payload)[:ip.len - ip.ihl * 4 - tcp.dataofs * 4]
        if not smb or not payload:
            frames.append((ts, raw))
            continue
        client_of.setdefault(flow, src if tcp.dport in SMB_PORTS else dst)
        direction = "to_server" if client_of[flow] == src else "to_client"
        seq = tcp.seq
        pieces = pieces_fn(seq, payload, index)
        index += 1
        if flow not in syn_seen and (flow, src) not in started:
            # Picked up midstream: the direction starts at the first byte it sees, so the piece
            # holding the segment's first byte must come first (as for any sensor).
            first = next(i for i, p in enumerate(pieces) if p[0] == seq and p[2] != "conflict")
            pieces.insert(0, pieces.pop(first))
        started.add((flow, src))
        builder = FrameBuilder(raw, len(raw) - len(bytes(ip)), ip.ihl * 4, tcp.dataofs * 4)
        end = (seq + len(payload)) & 0xFFFFFFFF
        for pseq, pdata, kind in pieces:
            if kind == "conflict":
                conflicts[direction] += 1
            flags = int(tcp.flags)
            if flags & 0x01 and not (kind != "conflict"
                                     and ((pseq + len(pdata)) & 0xFFFFFFFF) == end):
                flags &= ~0x01  # the FIN goes with the segment's last byte only
            seg = builder.segment(pseq, flags, pdata)
            npieces += 1
            if not fragments:
                built.append(len(frames))
                frames.append((ts, builder.frame(seg)))
                continue
            size = fragment_size(len(seg), fragments[0])
            n = (len(seg) + size - 1) // size
            ip_id = ip_id % 0xFFFF + 1
            order = fragment_order(n, npieces, fragments[1])
            for f in builder.fragments(seg, size, ip_id, order):
                built.append(len(frames))
                frames.append((ts, f))
    return frames, built, conflicts, npieces


def check_frames(frames, built, every=97):
    """scapy re-computes the IP length and checksum and the TCP checksum of a sample of the frames
    built; returns the first frame whose fields differ, or None."""
    from scapy.all import IP, TCP, Ether

    for i in built[:50] + built[50::every]:
        p = Ether(frames[i][1])
        if IP not in p:
            continue
        fields = [(p[IP], "chksum")]
        if TCP in p and p[IP].frag == 0 and not p[IP].flags.MF:
            fields.append((p[TCP], "chksum"))
        q = p.copy()
        for layer, _ in fields:
            del q[type(layer)].chksum
            if type(layer) is IP:
                del q[IP].len
        q = Ether(bytes(q))
        for layer, name in fields:
            if getattr(q[type(layer)], name) != getattr(layer, name):
                return i
        if q[IP].len != p[IP].len:
            return i
    return None


def generate(capture, outdir):
    """Writes outdir/<variant>.pcap for every variant and outdir/variants.json (conflicts per
    direction, frames, pieces). Runs where scapy is importable."""
    from scapy.all import rdpcap

    packets = rdpcap(capture)
    meta = {}
    for name, fn, fragments in VARIANTS:
        frames, built, conflicts, npieces = build_variant(packets, fn, fragments)
        bad = check_frames(frames, built)
        if bad is not None:
            raise RuntimeError(f"{name}: frame {bad + 1} has a wrong checksum or length")
        write_pcap(os.path.join(outdir, name + ".pcap"), frames)
        meta[name] = {"conflicts": dict(conflicts), "frames": len(frames), "pieces": npieces}
    with open(os.path.join(outdir, "variants.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f)


# ----------------------------------------------------------------------------------------------
# Driver


def have_scapy(python):
    try:
        r = subprocess.run([python, "-c", "import scapy.all"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def scapy_python():
    """An interpreter with scapy: this one, else the first of SCAPY_PYTHONS; None if none."""
    try:
        import scapy.all  # noqa: F401
        return sys.executable
    except ImportError:
        pass
    for python in SCAPY_PYTHONS:
        if os.access(python, os.X_OK) and have_scapy(python):
            return python
    return None


def run_capture(build, name, capture, python, tmp, verbose):
    """Returns a list of (variant, ok, line)."""
    work = os.path.join(tmp, name)
    os.makedirs(work, exist_ok=True)
    events, err = replay(build, capture, work)
    if err:
        return [("original", False, f"FAIL {name} original: {err}")]
    reference = protocol_events(events)
    dcerpc = sum('"dcerpc"' in e for e in reference)
    if dcerpc == 0:
        return [("original", False, f"FAIL {name} original: no smb event with dcerpc "
                 f"({len(reference)} protocol events)")]
    if verbose:
        print(f"     {name}: {len(reference)} protocol events, {dcerpc} with dcerpc")
    gen = [python, os.path.abspath(__file__), "--generate", capture, work]
    run = subprocess.run(gen, capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        tail = " | ".join(run.stderr.strip().splitlines()[-3:])
        return [("generate", False, f"FAIL {name} generating variants: {tail}")]
    with open(os.path.join(work, "variants.json"), encoding="utf-8") as f:
        meta = json.load(f)
    results = []
    for variant, _, _ in VARIANTS:
        pcap = os.path.join(work, variant + ".pcap")
        vdir = os.path.join(work, variant)
        os.makedirs(vdir, exist_ok=True)
        got, err = replay(build, pcap, vdir)
        info = meta[variant]
        size = f"{info['pieces']} segments, {info['frames']} frames"
        if err:
            results.append((variant, False, f"FAIL {name} {variant} ({size}): {err}"))
            continue
        ok, summary = compare(reference, got, collections.Counter(info["conflicts"]))
        results.append((variant, ok, f"{'PASS' if ok else 'FAIL'} {name} {variant} ({size}): "
                        f"{summary}"))
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--generate"]:
        generate(argv[1], argv[2])
        return 0
    parser = argparse.ArgumentParser(description="Evasion scenarios over SMB/DCE-RPC captures.")
    parser.add_argument("build", metavar="BUILD_DIR")
    parser.add_argument("--keep", metavar="DIR",
                        help="write the variant captures and EVE output under DIR and keep them")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)

    captures = [(n, os.path.join(PCAPS, p)) for n, p in CAPTURES]
    absent = [p for _, p in captures if not os.path.isfile(p)]
    if absent:
        print(f"SKIP: shared data absent: {', '.join(absent)}")
        return SKIP
    python = scapy_python()
    if python is None:
        print("SKIP: scapy is not installed (Debian: python3-scapy)")
        return SKIP
    binary = os.path.join(args.build, "dataplane", "vigil-dataplane")
    if not os.access(binary, os.X_OK):
        print(f"error: {binary} is missing: build first (ninja -C {args.build})")
        return 2
    # The replay config of suricata_verify.py, with the overlap policies pinned.
    sv.REPLAY_CONFIG = sv.REPLAY_CONFIG + REPLAY_EXTRA

    start = time.monotonic()
    results = []
    tmp = args.keep or tempfile.mkdtemp(prefix="vigil-evasion-")
    os.makedirs(tmp, exist_ok=True)
    try:
        for name, capture in captures:
            for variant, ok, line in run_capture(args.build, name, capture, python, tmp,
                                                 args.verbose):
                print(line, flush=True)
                results.append(ok)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(results)
    print(f"evasion: {passed} passed, {len(results) - passed} failed "
          f"({len(captures)} captures, {time.monotonic() - start:.1f} s)")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
