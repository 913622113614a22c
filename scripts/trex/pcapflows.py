"""Capture reading and TRex ASTF capture rules, without scapy or dpkt.

Used by prepare-pcaps.py (split captures into one-flow files TRex ASTF accepts) and validate.py
(check those files again, independently of how they were written).

- read_packets(path): (timestamp, linktype, frame) from a classic pcap (either byte order,
  micro- or nanosecond) or a pcapng file.
- pcap_global_header(path): the classic pcap global header, parsed by hand.
- parse_frame(frame): Ethernet / IPv4 / TCP or UDP fields, or None.
- astf_check(frames): the reasons TRex's ASTF capture analysis would refuse a one-flow capture,
  mirroring its rules: Ethernet + IPv4/IPv6 only, one IP pair only, TCP or UDP (not both), a TCP
  flow starts with SYN then SYN+ACK, no loss or retransmission (sequence numbers continuous per
  direction, a FIN counted as one byte), and at least one payload byte.
- write_pcap(path, packets): a classic microsecond pcap, Ethernet.
"""
import ipaddress
import struct

LINKTYPE_ETHERNET = 1
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = 0x0A0D0D0A


class PcapError(Exception):
    """A file that is not a readable capture."""


def pcap_global_header(path):
    """The 24-byte global header of a classic pcap as a dict; raises PcapError otherwise."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24:
        raise PcapError(f"{path}: {len(head)} bytes, shorter than a pcap global header")
    if head[:4] not in PCAP_MAGICS:
        raise PcapError(f"{path}: magic {head[:4].hex()} is not a classic pcap")
    endian, resolution = PCAP_MAGICS[head[:4]]
    major, minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(endian + "HHiIII", head[4:])
    return {"endian": "little" if endian == "<" else "big", "resolution": resolution,
            "version": (major, minor), "snaplen": snaplen, "linktype": linktype}


def _read_classic(f, head):
    endian, resolution = PCAP_MAGICS[head[:4]]
    linktype = struct.unpack(endian + "I", head[20:24])[0]
    n = 0
    while True:
        rec = f.read(16)
        if not rec:
            return
        if len(rec) < 16:
            raise PcapError(f"truncated record header after {n} packets")
        sec, frac, caplen, _origlen = struct.unpack(endian + "IIII", rec)
        data = f.read(caplen)
        if len(data) < caplen:
            raise PcapError(f"truncated packet {n + 1}")
        n += 1
        yield sec + frac * resolution, linktype, data


def _read_pcapng(f, first):
    endian = "<"
    linktypes, resolutions = [], []
    buf = first
    while True:
        if len(buf) < 8:
            buf += f.read(8 - len(buf))
            if not buf:
                return
            if len(buf) < 8:
                raise PcapError("truncated pcapng block header")
        btype = struct.unpack(endian + "I", buf[:4])[0]
        if btype == PCAPNG_SHB:
            bom = f.read(4)
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            blen = struct.unpack(endian + "I", buf[4:8])[0]
            body = bom + f.read(blen - 12)
            linktypes, resolutions = [], []  # a new section starts its own interfaces
        else:
            blen = struct.unpack(endian + "I", buf[4:8])[0]
            body = f.read(blen - 8)
        if blen < 12 or len(body) != blen - 8:
            raise PcapError("truncated pcapng block")
        if btype == 1:  # interface description
            linktypes.append(struct.unpack(endian + "H", body[:2])[0])
            resolution = 1e-6
            opts = body[8:-4]
            while len(opts) >= 4:
                code, olen = struct.unpack(endian + "HH", opts[:4])
                if code == 0:
                    break
                if code == 9 and olen >= 1:  # if_tsresol
                    v = opts[4]
                    resolution = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
                opts = opts[4 + ((olen + 3) & ~3):]
            resolutions.append(resolution)
        elif btype == 6:  # enhanced packet
            iface, hi, lo, caplen = struct.unpack(endian + "IIII", body[:16])
            if iface >= len(linktypes):
                raise PcapError("packet on an undeclared interface")
            ts = ((hi << 32) | lo) * resolutions[iface]
            yield ts, linktypes[iface], body[20:20 + caplen]
        elif btype == 3:  # simple packet
            origlen = struct.unpack(endian + "I", body[:4])[0]
            yield 0.0, linktypes[0] if linktypes else LINKTYPE_ETHERNET, body[4:4 + origlen]
        buf = f.read(8)
        if not buf:
            return


def read_packets(path):
    """Yields (timestamp, linktype, frame) for every packet of a pcap or pcapng file."""
    with open(path, "rb") as f:
        head = f.read(24)
        if head[:4] in PCAP_MAGICS:
            if len(head) < 24:
                raise PcapError(f"{path}: truncated global header")
            yield from _read_classic(f, head)
        elif len(head) >= 8 and struct.unpack("<I", head[:4])[0] == PCAPNG_SHB:
            f.seek(0)
            yield from _read_pcapng(f, f.read(4))
        else:
            raise PcapError(f"{path}: neither pcap nor pcapng (magic {head[:4].hex()})")


def write_pcap(path, packets):
    """Writes [(timestamp, frame)] as a classic little-endian microsecond Ethernet pcap."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
        for ts, frame in packets:
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            if usec >= 1000000:
                sec, usec = sec + 1, usec - 1000000
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            f.write(frame)


def parse_frame(frame):
    """Ethernet (no VLAN tag) / IPv4 (not a fragment) / TCP or UDP, as a dict; None otherwise.

    Keys: src, dst (strings), proto ("tcp"/"udp"), sport, dport, payload (bytes), and for TCP
    seq, flags. `why` explains a None via the second element of the returned tuple.
    """
    if len(frame) < 14:
        return None, "shorter than an Ethernet header"
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype in (0x8100, 0x88A8):
        return None, "VLAN-tagged"
    if ethertype == 0x86DD:
        return None, "IPv6"
    if ethertype != 0x0800:
        return None, f"not IP (ethertype 0x{ethertype:04x})"
    ip = frame[14:]
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None, "bad IPv4 header"
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    frag = struct.unpack("!H", ip[6:8])[0]
    if frag & 0x3FFF:
        return None, "IP fragment"
    proto = ip[9]
    if total < ihl or len(ip) < total:
        return None, "truncated IPv4 packet"
    l4 = ip[ihl:total]
    out = {"src": str(ipaddress.IPv4Address(ip[12:16])),
           "dst": str(ipaddress.IPv4Address(ip[16:20]))}
    if proto == 6:
        if len(l4) < 20:
            return None, "truncated TCP header"
        sport, dport, seq, _ack, off_flags = struct.unpack("!HHIIH", l4[:14])
        doff = (off_flags >> 12) * 4
        if doff < 20 or doff > len(l4):
            return None, "bad TCP data offset"
        out.update(proto="tcp", sport=sport, dport=dport, seq=seq, flags=off_flags & 0x1FF,
                   payload=l4[doff:])
    elif proto == 17:
        if len(l4) < 8:
            return None, "truncated UDP header"
        sport, dport, ulen = struct.unpack("!HHH", l4[:6])
        out.update(proto="udp", sport=sport, dport=dport, payload=l4[8:max(8, min(ulen, len(l4)))])
    else:
        return None, f"IP protocol {proto} (not TCP or UDP)"
    return out, ""


TH_FIN, TH_SYN, TH_RST, TH_ACK = 0x01, 0x02, 0x04, 0x10


def astf_check(frames):
    """Why TRex ASTF would refuse a one-flow capture (a list of frames), or "" if it accepts it.

    Also returns a summary dict: proto, client, server, dport, packets, payload bytes per side.
    Written from TRex's documented capture requirements (one session per file, TCP starting with
    the handshake, no loss or retransmission), not taken from its code.
    """
    info = {"packets": len(frames), "client_bytes": 0, "server_bytes": 0}
    if not frames:
        return "empty capture", info
    client = server = None
    proto = None
    state = "init"
    expect = {}
    cport = None
    for i, frame in enumerate(frames, 1):
        p, why = parse_frame(frame)
        if p is None:
            return f"packet {i}: {why}", info
        if client is None:
            client, server = p["src"], p["dst"]
            cport = p["sport"]
            info.update(client=client, server=server, sport=p["sport"], dport=p["dport"])
        elif (p["src"], p["dst"]) not in ((client, server), (server, client)):
            return f"packet {i}: a second session ({p['src']} -> {p['dst']})", info
        if proto is None:
            proto = p["proto"]
            info["proto"] = proto
        elif proto != p["proto"]:
            return f"packet {i}: {p['proto']} in a {proto} flow", info
        side = "client" if p["src"] == client and p["sport"] == cport else "server"
        info[side + "_bytes"] += len(p["payload"])
        if proto != "tcp":
            continue
        flags = p["flags"]
        if flags & TH_SYN:
            if flags & TH_ACK:
                if state != "syn":
                    return f"packet {i}: SYN+ACK without a SYN before it, or a second one", info
                state = "synack"
                expect["server"] = (p["seq"] + 1) & 0xFFFFFFFF
            else:
                if state == "synack":
                    return f"packet {i}: a SYN after the handshake", info
                state = "syn"
                expect["client"] = (p["seq"] + 1) & 0xFFFFFFFF
            continue
        if state != "synack":
            return f"packet {i}: the flow does not start with SYN, SYN+ACK", info
        if p["seq"] != expect[side]:
            return (f"packet {i}: {side} sequence {p['seq']}, expected {expect[side]} "
                    "(loss or retransmission)"), info
        advance = 1 if flags & TH_FIN else len(p["payload"])  # TRex counts a FIN as one byte
        expect[side] = (p["seq"] + advance) & 0xFFFFFFFF
    if info["client_bytes"] + info["server_bytes"] == 0:
        return "no payload", info
    return "", info
