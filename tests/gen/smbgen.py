"""Capture-building library for vigil's generated test captures, written from the protocol
specifications (no other project's code): TCP sessions with a handshake and exact seq/ack
(RFC 9293), NBSS framing (RFC 1002 4.3.1), SMB2 (MS-SMB2 2.2), SMB1 negotiate (MS-CIFS 2.2.4.52),
SPNEGO (RFC 4178) carrying NTLMSSP (MS-NLMP 2.2.1), connection-oriented DCE-RPC (C706 ch. 12,
MS-RPCE 2.2.2) over named pipes and TCP, NDR20 marshalling helpers (C706 ch. 14), Kerberos AS/TGS
over TCP (RFC 4120 5.4, 7.2.2), DNS over UDP, and the Task Scheduler .JOB file (MS-TSCH 2.4).

Everything is deterministic (a seeded random.Random per capture) and every packet carries the
time the caller's clock says: a session owns a clock (`conn.t`, seconds since the epoch) that
each packet advances by a small step; `conn.sleep(dt)` and `conn.at(t)` move it. A Capture
collects the packets of any number of sessions and writes them in time order.

Single-threaded; not thread-safe. Requires scapy (Debian's python3-scapy under /usr/bin/python3).
"""
import random
import struct
import uuid as uuidlib

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

# ----------------------------------------------------------------------------------------------
# Capture, hosts and TCP


class Host:
    """An endpoint: IPv4 address, MAC, NetBIOS name."""

    def __init__(self, ip, name, mac=None):
        self.ip = ip
        self.name = name
        last = [int(x) for x in ip.split(".")]
        self.mac = mac or "02:00:%02x:%02x:%02x:%02x" % tuple(last)


class Capture:
    """Packets of many sessions; written in time order (stable for equal times)."""

    def __init__(self, seed=1):
        self.packets = []  # (time, sequence, scapy packet)
        self.rng = random.Random(seed)
        self._n = 0

    def add(self, t, pkt):
        pkt.time = t
        self._n += 1
        self.packets.append((t, self._n, pkt))

    def write(self, path):
        self.packets.sort(key=lambda p: (p[0], p[1]))
        wrpcap(path, [p[2] for p in self.packets])
        return len(self.packets)

    def ephemeral_port(self):
        return self.rng.randint(49152, 65000)


MSS = 1460


class TcpConn:
    """One TCP connection with a three-way handshake, exact sequence and acknowledgement numbers,
    MSS-sized segments and a FIN close. Client-to-server data is `c2s`, the reverse `s2c`."""

    def __init__(self, cap, client, server, dport, t, sport=None, step=0.0002, rtt=0.0005):
        self.cap, self.client, self.server = cap, client, server
        self.sport = sport or cap.ephemeral_port()
        self.dport = dport
        self.t = t
        self.step = step
        self.rtt = rtt
        self.cseq = cap.rng.randint(1, 2**31)
        self.sseq = cap.rng.randint(1, 2**31)
        self.ipid = {True: cap.rng.randint(1, 60000), False: cap.rng.randint(1, 60000)}
        self.closed = False
        self._pkt(True, "S", b"", seq=self.cseq, ack=0)
        self.cseq += 1
        self.t += rtt / 2
        self._pkt(False, "SA", b"", seq=self.sseq, ack=self.cseq)
        self.sseq += 1
        self.t += rtt / 2
        self._pkt(True, "A", b"")

    def sleep(self, dt):
        self.t += dt

    def at(self, t):
        self.t = max(self.t, t)

    def _pkt(self, from_client, flags, payload, seq=None, ack=None):
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        sport, dport = (self.sport, self.dport) if from_client else (self.dport, self.sport)
        if seq is None:
            seq = self.cseq if from_client else self.sseq
        if ack is None:
            ack = self.sseq if from_client else self.cseq
        self.ipid[from_client] = (self.ipid[from_client] + 1) & 0xFFFF
        opts = [("MSS", MSS), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None),
                ("SAckOK", b"")] if "S" in flags else []
        tcp = TCP(sport=sport, dport=dport, flags=flags, seq=seq & 0xFFFFFFFF,
                  ack=ack & 0xFFFFFFFF if "A" in flags else 0, window=8212 if not opts else 64240,
                  options=opts)
        pkt = (Ether(src=src.mac, dst=dst.mac) /
               IP(src=src.ip, dst=dst.ip, id=self.ipid[from_client], flags="DF", ttl=128) / tcp)
        if payload:
            pkt = pkt / payload
        self.cap.add(self.t, pkt)
        self.t += self.step

    def send(self, from_client, data, ack_after=True):
        """Sends data in MSS segments (PSH on the last); the peer ACKs every other segment and
        the last one when ack_after (its next data would also acknowledge)."""
        n = 0
        for off in range(0, len(data), MSS):
            chunk = data[off:off + MSS]
            last = off + MSS >= len(data)
            self._pkt(from_client, "PA" if last else "A", chunk)
            if from_client:
                self.cseq += len(chunk)
            else:
                self.sseq += len(chunk)
            n += 1
            if not last and n % 2 == 0:
                self._pkt(not from_client, "A", b"")
        if ack_after and n % 2 == 1 or (ack_after and len(data) > MSS):
            self.t += self.rtt / 2
            self._pkt(not from_client, "A", b"")

    def c2s(self, data, ack_after=False):
        self.send(True, data, ack_after)
        self.t += self.rtt / 2

    def s2c(self, data, ack_after=False):
        self.send(False, data, ack_after)
        self.t += self.rtt / 2

    def close(self, client_first=True):
        if self.closed:
            return
        self.closed = True
        a = client_first
        self._pkt(a, "FA", b"")
        if a:
            self.cseq += 1
        else:
            self.sseq += 1
        self.t += self.rtt / 2
        self._pkt(not a, "FA", b"")
        if a:
            self.sseq += 1
        else:
            self.cseq += 1
        self.t += self.rtt / 2
        self._pkt(a, "A", b"")


def dns_exchange(cap, client, server, t, name, answer, rtype="A", qid=None):
    """A DNS query over UDP and its answer (an address for A, a name for PTR/CNAME, None for
    NXDOMAIN)."""
    qid = qid if qid is not None else cap.rng.randint(1, 65535)
    sport = cap.ephemeral_port()
    q = (Ether(src=client.mac, dst=server.mac) / IP(src=client.ip, dst=server.ip) /
         UDP(sport=sport, dport=53) / DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype=rtype)))
    cap.add(t, q)
    if answer is None:
        r = DNS(id=qid, qr=1, aa=1, rd=1, ra=1, rcode=3, qd=DNSQR(qname=name, qtype=rtype))
    else:
        r = DNS(id=qid, qr=1, aa=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype=rtype),
                an=DNSRR(rrname=name, type=rtype, ttl=1200, rdata=answer))
    cap.add(t + 0.0004, Ether(src=server.mac, dst=client.mac) / IP(src=server.ip, dst=client.ip) /
            UDP(sport=53, dport=sport) / r)


# ----------------------------------------------------------------------------------------------
# Encodings shared by the protocols


def utf16(s):
    return s.encode("utf-16-le")


def filetime(t):
    """FILETIME (100 ns since 1601) of Unix seconds t."""
    return int((t + 11644473600) * 10_000_000)


def uuid_le(text):
    """A UUID in NDR (little-endian fields) form, as DCE-RPC and SMB2 GUIDs carry it."""
    return uuidlib.UUID(text).bytes_le


def pad(data, align):
    return data + b"\0" * (-len(data) % align)


# DER (X.690) for SPNEGO and Kerberos.
def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def der_seq(*items):
    return tlv(0x30, b"".join(items))


def ctx(n, content):  # [n] EXPLICIT, constructed
    return tlv(0xA0 + n, content)


def app(n, content):  # [APPLICATION n], constructed
    return tlv(0x60 + n, content)


def der_int(v):
    n = max(1, (v.bit_length() + 8) // 8)
    return tlv(0x02, v.to_bytes(n, "big", signed=True))


def der_oid(text):
    parts = [int(p) for p in text.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(enc))
    return tlv(0x06, bytes(out))


def der_octets(b):
    return tlv(0x04, b)


def der_gstr(s):
    return tlv(0x1B, s.encode())


def der_time(t):
    import time as _time
    return tlv(0x18, _time.strftime("%Y%m%d%H%M%SZ", _time.gmtime(t)).encode())


def der_bits(value32):
    return tlv(0x03, b"\0" + value32.to_bytes(4, "big"))


# ----------------------------------------------------------------------------------------------
# NTLMSSP (MS-NLMP 2.2.1) and SPNEGO (RFC 4178)

NTLMSSP_OID = "1.3.6.1.4.1.311.2.2.10"
SPNEGO_OID = "1.3.6.1.5.5.2"
NTLM_NEG_FLAGS = 0xE2088297
NTLM_CHAL_FLAGS = 0xE2898215
NTLM_AUTH_FLAGS = 0xE2888215
NTLMSSP_NEGOTIATE_ANONYMOUS = 0x00000800
NTLM_VERSION_CLIENT = struct.pack("<BBHxxxB", 10, 0, 19041, 15)
NTLM_VERSION_SERVER = struct.pack("<BBHxxxB", 10, 0, 17763, 15)


def ntlm_negotiate():
    return b"NTLMSSP\0" + struct.pack("<II", 1, NTLM_NEG_FLAGS) + struct.pack(
        "<HHI", 0, 0, 40) * 2 + NTLM_VERSION_CLIENT


def _avpairs(server_name, domain, dns_domain, t):
    pairs = [(2, utf16(domain)), (1, utf16(server_name)), (4, utf16(dns_domain)),
             (3, utf16(f"{server_name.lower()}.{dns_domain}")), (5, utf16(dns_domain)),
             (7, struct.pack("<Q", filetime(t)))]
    return b"".join(struct.pack("<HH", i, len(v)) + v for i, v in pairs)


def ntlm_challenge(rng, server_name, domain, dns_domain, t):
    target = utf16(domain)
    info = _avpairs(server_name, domain, dns_domain, t) + b"\0\0\0\0"
    off = 56
    return (b"NTLMSSP\0" + struct.pack("<I", 2) + struct.pack("<HHI", len(target), len(target), off)
            + struct.pack("<I", NTLM_CHAL_FLAGS) + rng.randbytes(8) + b"\0" * 8 +
            struct.pack("<HHI", len(info), len(info), off + len(target)) + NTLM_VERSION_SERVER +
            target + info)


def ntlm_authenticate(rng, user, domain, workstation, challenge_info=b"", t=0.0, spn="cifs/server"):
    """AUTHENTICATE with an NTLMv2 response (MS-NLMP 2.2.2.8), or anonymous (MS-NLMP 3.2.5.1.2:
    empty user, empty NT response, one-byte zero LM response) when user is ''."""
    flags = NTLM_AUTH_FLAGS
    if user:
        client_info = (challenge_info + struct.pack("<HHI", 6, 4, 2) +
                       struct.pack("<HH", 9, len(utf16(spn))) + utf16(spn) + b"\0\0\0\0")
        blob = (b"\x01\x01" + b"\0" * 6 + struct.pack("<Q", filetime(t)) + rng.randbytes(8) +
                b"\0" * 4 + client_info + b"\0" * 4)
        nt = rng.randbytes(16) + blob
        lm = b"\0" * 24
        key = rng.randbytes(16)
    else:
        nt, lm, key = b"", b"\0", b""
        flags |= NTLMSSP_NEGOTIATE_ANONYMOUS
    # Header order is fixed (LM, NT, domain, user, workstation, session key); the payload is
    # laid out as Windows does, strings first, so that they stay 2-byte aligned.
    fields = [lm, nt, utf16(domain), utf16(user), utf16(workstation), key]
    order = [2, 3, 4, 0, 1, 5]
    off = 88
    offsets = [0] * 6
    payload = b""
    for i in order:
        offsets[i] = off + len(payload)
        payload += fields[i]
    hdr = b"".join(struct.pack("<HHI", len(f), len(f), o) for f, o in zip(fields, offsets))
    mic = rng.randbytes(16) if user else b"\0" * 16
    return (b"NTLMSSP\0" + struct.pack("<I", 3) + hdr + struct.pack("<I", flags) +
            NTLM_VERSION_CLIENT + mic + payload)


def challenge_target_info(chal):
    ln, _, off = struct.unpack_from("<HHI", chal, 40)
    info = chal[off:off + ln]
    return info[:-4]  # without MsvAvEOL; the client appends its pairs and its own EOL


def spnego_init(mech_token):
    """GSS InitialContextToken with a NegTokenInit offering NTLMSSP (RFC 4178 4.2.1)."""
    inner = ctx(0, der_seq(ctx(0, der_seq(der_oid(NTLMSSP_OID))), ctx(2, der_octets(mech_token))))
    return app(0, der_oid(SPNEGO_OID) + inner)


def spnego_init2_hint():
    """The server's NegTokenInit2 in the SMB2 NEGOTIATE response (MS-SPNG 2.2.1)."""
    hints = ctx(3, der_seq(ctx(0, der_gstr("not_defined_in_RFC4178@please_ignore"))))
    inner = ctx(0, der_seq(ctx(0, der_seq(der_oid(NTLMSSP_OID))), hints))
    return app(0, der_oid(SPNEGO_OID) + inner)


def spnego_resp(state=None, mech=False, token=None, mic=None):
    items = b""
    if state is not None:
        items += ctx(0, tlv(0x0A, bytes([state])))
    if mech:
        items += ctx(1, der_oid(NTLMSSP_OID))
    if token is not None:
        items += ctx(2, der_octets(token))
    if mic is not None:
        items += ctx(3, der_octets(mic))
    return ctx(1, der_seq(items))


# ----------------------------------------------------------------------------------------------
# NBSS, SMB1 and SMB2

STATUS_SUCCESS = 0
STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016
STATUS_LOGON_FAILURE = 0xC000006D
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
STATUS_END_OF_FILE = 0xC0000011

SMB2_NEGOTIATE, SMB2_SESSION_SETUP, SMB2_LOGOFF, SMB2_TREE_CONNECT, SMB2_TREE_DISCONNECT = range(5)
SMB2_CREATE, SMB2_CLOSE, SMB2_FLUSH, SMB2_READ, SMB2_WRITE = 5, 6, 7, 8, 9
SMB2_IOCTL = 11
FSCTL_PIPE_TRANSCEIVE = 0x0011C017

FILE_OPEN, FILE_CREATE, FILE_OPEN_IF, FILE_OVERWRITE_IF = 1, 2, 3, 5


def nbss(payload):
    return struct.pack(">I", len(payload)) + payload  # type 0, 24-bit length


class Smb2:
    """An SMB2 client and its server on one TcpConn; each method sends the request and the
    response (MS-SMB2 3.2 / 3.3 message sequencing, one credit per request)."""

    def __init__(self, conn, server_name="SRV05", domain="CORP", dns_domain="corp.local",
                 dialect=0x0302):
        self.c = conn
        self.rng = conn.cap.rng
        self.server_name, self.domain, self.dns_domain = server_name, domain, dns_domain
        self.dialect = dialect
        self.mid = 0
        self.sid = 0
        self.pid = self.rng.randint(0x100, 0xFFFE)
        self.client_guid = self.rng.randbytes(16)
        self.server_guid = self.rng.randbytes(16)
        self.think = 0.002  # client think time between commands
        self.srv = 0.0004   # server processing time

    def _hdr(self, cmd, status, resp, tid, credits=1):
        flags = 1 if resp else 0
        return (b"\xfeSMB" + struct.pack("<HHIHHIIQ", 64, 1, status, cmd, credits, flags, 0,
                                         self.mid) +
                struct.pack("<IIQ", self.pid, tid, self.sid) + b"\0" * 16)

    def exchange(self, cmd, req_body, resp_body, status=STATUS_SUCCESS, tid=0):
        self.c.sleep(self.think)
        self.c.c2s(nbss(self._hdr(cmd, 0, False, tid) + req_body))
        self.c.sleep(self.srv)
        if resp_body is None:  # error response (MS-SMB2 2.2.2)
            resp_body = struct.pack("<HBBI", 9, 0, 0, 0) + b"\0"
        self.c.s2c(nbss(self._hdr(cmd, status, True, tid) + resp_body), ack_after=True)
        self.mid += 1

    # -- negotiate and authentication
    def negotiate(self, dialects=(0x0202, 0x0210, 0x0300, 0x0302)):
        req = struct.pack("<HHHHI", 36, len(dialects), 1, 0, 0x7F) + self.client_guid + \
            b"\0" * 8 + b"".join(struct.pack("<H", d) for d in dialects)
        blob = spnego_init2_hint()
        t = filetime(self.c.t)
        resp = (struct.pack("<HHHH", 65, 1, self.dialect, 0) + self.server_guid +
                struct.pack("<IIIIQQHHI", 0x2F, 8388608, 8388608, 8388608, t, 0, 128, len(blob),
                            0) + blob)
        self.exchange(SMB2_NEGOTIATE, req, resp)

    def _ss_req(self, blob):
        return struct.pack("<HBBIIHHQ", 25, 0, 1, 1, 0, 88, len(blob), 0) + blob

    def _ss_resp(self, blob, flags=0):
        return struct.pack("<HHHH", 9, flags, 72 if blob else 0, len(blob)) + blob

    def session_setup(self, user, domain, workstation, success=True):
        """NTLMSSP in SPNEGO: NEGOTIATE / CHALLENGE (STATUS_MORE_PROCESSING_REQUIRED), then
        AUTHENTICATE / success or STATUS_LOGON_FAILURE. user '' is an anonymous logon."""
        self.sid = 0
        self.exchange_ss(spnego_init(ntlm_negotiate()), None, STATUS_MORE_PROCESSING_REQUIRED,
                         chal=True)
        auth = ntlm_authenticate(self.rng, user, domain, workstation,
                                 challenge_target_info(self.last_challenge), self.c.t,
                                 f"cifs/{self.c.server.ip}")
        mic = struct.pack("<I", 1) + self.rng.randbytes(12) if user else None
        if success:
            self.exchange_ss(spnego_resp(token=auth, mic=mic), spnego_resp(state=0),
                             STATUS_SUCCESS, flags=1 if not user else 0)
        else:
            self.exchange_ss(spnego_resp(token=auth, mic=mic), None, STATUS_LOGON_FAILURE)
        return success

    def exchange_ss(self, blob, resp_blob, status, chal=False, flags=0):
        if chal:
            self.sid = self.rng.randint(1, 2**40) | 0x0000100000000001
            self.last_challenge = ntlm_challenge(self.rng, self.server_name, self.domain,
                                                 self.dns_domain, self.c.t)
            resp_blob = spnego_resp(state=1, mech=True, token=self.last_challenge)
        resp = None if resp_blob is None else self._ss_resp(resp_blob, flags)
        self.exchange(SMB2_SESSION_SETUP, self._ss_req(blob), resp, status)

    def logoff(self):
        self.exchange(SMB2_LOGOFF, struct.pack("<HH", 4, 0), struct.pack("<HH", 4, 0))

    # -- trees and files
    def tree_connect(self, path, status=STATUS_SUCCESS):
        """Connects \\\\server\\share; returns the tree id (0 on failure)."""
        p = utf16(path)
        req = struct.pack("<HHHH", 9, 0, 72, len(p)) + p
        pipe = path.upper().endswith("IPC$")
        tid = self.rng.randint(1, 0xFFFF) if status == STATUS_SUCCESS else 0
        resp = None
        if status == STATUS_SUCCESS:
            resp = struct.pack("<HBBIII", 16, 2 if pipe else 1, 0, 0x30 if pipe else 0x800, 0,
                               0x1F01FF if not pipe else 0x1F00A9)
        self.c.sleep(self.think)
        self.c.c2s(nbss(self._hdr(SMB2_TREE_CONNECT, 0, False, 0) + req))
        self.c.sleep(self.srv)
        body = resp if resp is not None else struct.pack("<HBBI", 9, 0, 0, 0) + b"\0"
        self.c.s2c(nbss(self._hdr(SMB2_TREE_CONNECT, status, True, tid) + body), ack_after=True)
        self.mid += 1
        return tid

    def tree_disconnect(self, tid):
        self.exchange(SMB2_TREE_DISCONNECT, struct.pack("<HH", 4, 0), struct.pack("<HH", 4, 0),
                      tid=tid)

    def create(self, tid, name, pipe=False, disposition=FILE_OPEN, access=None, options=None,
               size=0, status=STATUS_SUCCESS, action=1):
        """CREATE of a file or pipe name (relative to the share); returns the 16-byte FileId."""
        n = utf16(name)
        if access is None:
            access = 0x0012019F if pipe else 0x00120089
        if options is None:
            options = 0x00000040 if pipe else 0x00000060  # NON_DIRECTORY_FILE [+ SYNC_IO_NONALERT]
        req = struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, access, 0x80 if not pipe else 0,
                          7 if not pipe else 3, disposition, options, 120, len(n), 0, 0) + \
            (n if n else b"\0")
        fid = struct.pack("<QQ", self.rng.randint(1, 2**32), self.rng.randint(1, 2**32))
        if status != STATUS_SUCCESS:
            self.exchange(SMB2_CREATE, req, None, status, tid)
            return None
        ft = filetime(self.c.t)
        created = 0 if pipe else ft - 86400 * 10_000_000 * 30
        resp = struct.pack("<HBBIQQQQQQIIQQII", 89, 0, 0, action, created,
                           0 if pipe else ft, 0 if pipe else ft - 3600 * 10_000_000,
                           0 if pipe else ft - 3600 * 10_000_000, (size + 4095) // 4096 * 4096,
                           size, 0x80 if not pipe else 0x80, 0,
                           *struct.unpack("<QQ", fid), 0, 0)
        self.exchange(SMB2_CREATE, req, resp, tid=tid)
        return fid

    def close(self, tid, fid, size=0, pipe=False):
        req = struct.pack("<HHI", 24, 1, 0) + fid
        ft = filetime(self.c.t)
        if pipe:
            resp = struct.pack("<HHI", 60, 1, 0) + b"\0" * 52
        else:
            resp = struct.pack("<HHIQQQQQQI", 60, 1, 0, ft - 30 * 86400 * 10_000_000, ft, ft,
                               ft, (size + 4095) // 4096 * 4096, size, 0x80)
        self.exchange(SMB2_CLOSE, req, resp, tid=tid)

    def read(self, tid, fid, data, offset=0, length=None, status=STATUS_SUCCESS):
        length = length or max(len(data), 1)
        req = struct.pack("<HBBIQ", 49, 0x50, 0, length, offset) + fid + \
            struct.pack("<IIIHH", 0, 0, 0, 0, 0) + b"\0"
        if status != STATUS_SUCCESS:
            self.exchange(SMB2_READ, req, None, status, tid)
            return
        resp = struct.pack("<HBBIII", 17, 0x50, 0, len(data), 0, 0) + data
        self.exchange(SMB2_READ, req, resp, tid=tid)

    def read_file(self, tid, fid, data, chunk=65536):
        for off in range(0, len(data), chunk):
            self.read(tid, fid, data[off:off + chunk], off, min(chunk, len(data) - off))

    def write(self, tid, fid, data, offset=0):
        req = struct.pack("<HHIQ", 49, 112, len(data), offset) + fid + \
            struct.pack("<IIHHI", 0, 0, 0, 0, 0) + data
        resp = struct.pack("<HHIIHH", 17, 0, len(data), 0, 0, 0)
        self.exchange(SMB2_WRITE, req, resp, tid=tid)

    def write_file(self, tid, fid, data, chunk=65536):
        for off in range(0, len(data), chunk):
            self.write(tid, fid, data[off:off + chunk], off)

    def ioctl(self, tid, fid, ctl, inp, out, status=STATUS_SUCCESS, max_out=4280):
        req = struct.pack("<HHI", 57, 0, ctl) + fid + struct.pack(
            "<IIIIIIII", 120 if inp else 0, len(inp), 0, 0, 0, max_out, 1, 0) + inp
        resp = struct.pack("<HHI", 49, 0, ctl) + fid + struct.pack(
            "<IIIIII", 112, 0, 112, len(out), 0, 0) + out
        self.exchange(SMB2_IOCTL, req, resp, status, tid)

    # -- DCE-RPC over a named pipe
    def open_pipe(self, tid, name):
        return SmbPipe(self, tid, name, self.create(tid, name, pipe=True))


class SmbPipe:
    """DCE-RPC over an SMB2 named pipe: bind with WRITE + READ, calls with IOCTL
    FSCTL_PIPE_TRANSCEIVE (as Windows clients do, MS-RPCE 2.1.1.2)."""

    def __init__(self, smb, tid, name, fid):
        self.smb, self.tid, self.name, self.fid = smb, tid, name, fid
        self.rpc = RpcState(smb.rng)

    def bind(self, iface, version, ctx_id=0):
        req, resp = self.rpc.bind(iface, version, ctx_id, "\\PIPE\\" + self.name)
        self.smb.write(self.tid, self.fid, req)
        self.smb.read(self.tid, self.fid, resp, length=4280)

    def call(self, opnum, stub_in, stub_out, ctx_id=0, fault=None):
        req, resp = self.rpc.call(opnum, stub_in, stub_out, ctx_id, fault)
        self.smb.ioctl(self.tid, self.fid, FSCTL_PIPE_TRANSCEIVE, req, resp)

    def close(self):
        self.smb.close(self.tid, self.fid, pipe=True)


# SMB1 (MS-CIFS 2.2.3.1 header, 2.2.4.52 NEGOTIATE)
def smb1_header(cmd, reply, mid, pid=0xFEFF, status=0):
    flags = 0x98 if reply else 0x18
    return b"\xffSMB" + struct.pack("<BIBHH8sHHHHH", cmd, status, flags, 0xC853, 0, b"\0" * 8, 0,
                                    0, pid, 0, mid)


def smb1_negotiate(conn, dialects, chosen, server_guid):
    """SMB1 NEGOTIATE request and its NT LM 0.12 extended-security response."""
    body = b"".join(b"\x02" + d.encode() + b"\0" for d in dialects)
    conn.c2s(nbss(smb1_header(0x72, False, 0) + b"\0" + struct.pack("<H", len(body)) + body))
    blob = spnego_init2_hint()
    words = struct.pack("<HBHHIIIIQhB", dialects.index(chosen), 0x03, 50, 1, 16644, 65536, 0,
                        0x8000F3FD, filetime(conn.t), 0, 0)
    data = server_guid + blob
    conn.s2c(nbss(smb1_header(0x72, True, 0) + bytes([len(words) // 2]) + words +
                  struct.pack("<H", len(data)) + data), ack_after=True)


# ----------------------------------------------------------------------------------------------
# DCE-RPC (C706 12.6; MS-RPCE 2.2.2)

NDR = ("8a885d04-1ceb-11c9-9fe8-08002b104860", 2)
NDR64 = ("71710533-beba-4937-8319-b5dbef9ccc36", 1)
BTFN = ("6cb71c2c-9812-4540-0300-000000000000", 1)  # bind time feature negotiation
PTYPE_REQUEST, PTYPE_RESPONSE, PTYPE_FAULT = 0, 2, 3
PTYPE_BIND, PTYPE_BIND_ACK, PTYPE_AUTH3 = 11, 12, 16
RPC_C_AUTHN_WINNT = 10
RPC_C_AUTHN_LEVEL_PKT_PRIVACY = 6


def syntax(s):
    text, ver = s
    major, minor = (ver, 0) if isinstance(ver, int) else ver
    return uuid_le(text) + struct.pack("<HH", major, minor)


def rpc_pdu(ptype, call_id, body, auth=b"", flags=3, auth_len=0):
    """A PDU: common header (C706 12.6.3.1), body, then `auth` (padding, sec_trailer and the
    auth value, whose length is auth_len)."""
    return struct.pack("<BBBB4sHHI", 5, 0, ptype, flags, b"\x10\0\0\0",
                       16 + len(body) + len(auth), auth_len, call_id) + body + auth


def sec_trailer(body_len, value, align):
    """(auth bytes, auth_len): padding of the body to `align`, sec_trailer (MS-RPCE 2.2.2.11)
    for NTLMSSP at packet privacy, and the value. body_len counts from the PDU start."""
    padn = -body_len % align
    return (b"\0" * padn + struct.pack("<BBBBI", RPC_C_AUTHN_WINNT, RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
                                        padn, 0, 0) + value, len(value))


class RpcState:
    """Call ids, contexts and the optional NTLMSSP verifier of one DCE-RPC association."""

    def __init__(self, rng, auth=None):
        self.rng = rng
        self.call_id = 1
        self.assoc = rng.randint(0x1000, 0xFFFF)
        self.auth = auth  # None or dict(user, domain, workstation, server_name, dns_domain, spn)
        self.seq = 0

    def bind(self, iface, version, ctx_id=0, sec_addr="", windows=False, ack_port=None):
        """(bind, bind_ack). windows: also offer NDR64 (provider rejection) and bind time
        feature negotiation (negotiate ack), as Windows clients do."""
        items = [(iface, version, NDR)]
        if windows:
            items += [(iface, version, NDR64), (iface, version, BTFN)]
        body = struct.pack("<HHIBBH", 4280, 4280, 0, len(items), 0, 0)
        for i, (u, v, ts) in enumerate(items):
            body += struct.pack("<HBB", ctx_id + i, 1, 0) + syntax((u, v)) + syntax(ts)
        cid = self.call_id
        self.call_id += 1
        auth, alen = b"", 0
        if self.auth:
            auth, alen = sec_trailer(16 + len(body), ntlm_negotiate(), 4)
        req = rpc_pdu(PTYPE_BIND, cid, body, auth, auth_len=alen)
        sa = sec_addr.encode() + b"\0" if sec_addr else b"\0"
        if ack_port is not None:
            sa = str(ack_port).encode() + b"\0"
        ack = struct.pack("<HHIH", 4280, 4280, self.assoc, len(sa)) + sa
        ack += b"\0" * (-(16 + len(ack)) % 4)
        ack += struct.pack("<BBH", len(items), 0, 0)
        results = [(0, 0, NDR)]
        if windows:
            results += [(2, 2, None), (3, 3, None)]
        for r, reason, ts in results:
            ack += struct.pack("<HH", r, reason) + (syntax(ts) if ts else b"\0" * 20)
        aauth, aalen = b"", 0
        if self.auth:
            a = self.auth
            self.challenge = ntlm_challenge(self.rng, a["server_name"], a["domain"],
                                            a["dns_domain"], a["t"])
            aauth, aalen = sec_trailer(16 + len(ack), self.challenge, 4)
        resp = rpc_pdu(PTYPE_BIND_ACK, cid, ack, aauth, auth_len=aalen)
        return req, resp

    def auth3(self):
        a = self.auth
        token = ntlm_authenticate(self.rng, a["user"], a["domain"], a["workstation"],
                                  challenge_target_info(self.challenge), a["t"], a["spn"])
        auth, alen = sec_trailer(20, token, 4)
        return rpc_pdu(PTYPE_AUTH3, self.call_id - 1, b"\0\0\0\0", auth, auth_len=alen)

    def _sig(self):
        """NTLMSSP_MESSAGE_SIGNATURE with extended session security (MS-NLMP 2.2.2.9.2)."""
        return struct.pack("<I", 1) + self.rng.randbytes(8) + struct.pack("<I", self.seq)

    def call(self, opnum, stub_in, stub_out, ctx_id=0, fault=None, object_uuid=None):
        """(request, response or fault)."""
        cid = self.call_id
        self.call_id += 1
        flags = 3 | (0x80 if object_uuid else 0)
        body = struct.pack("<IHH", len(stub_in), ctx_id, opnum) + (object_uuid or b"") + stub_in
        auth, alen = b"", 0
        if self.auth:
            auth, alen = sec_trailer(16 + len(body), self._sig(), 16)
        req = rpc_pdu(PTYPE_REQUEST, cid, body, auth, flags, alen)
        if fault is not None:
            resp = rpc_pdu(PTYPE_FAULT, cid, struct.pack("<IHBBII", 0, ctx_id, 0, 0, fault, 0))
            return req, resp
        rbody = struct.pack("<IHBB", len(stub_out), ctx_id, 0, 0) + stub_out
        rauth, ralen = b"", 0
        if self.auth:
            rauth, ralen = sec_trailer(16 + len(rbody), self._sig(), 16)
            self.seq += 1
        return req, rpc_pdu(PTYPE_RESPONSE, cid, rbody, rauth, auth_len=ralen)


class RpcTcp:
    """DCE-RPC directly over a TcpConn (port 135 or a dynamic port), optionally authenticated
    with NTLMSSP at packet privacy (bind / bind_ack / AUTH3, MS-RPCE 3.3.1.5.2); encrypted stubs
    are then random bytes of the plain stub's length."""

    def __init__(self, conn, auth=None):
        self.c = conn
        self.rpc = RpcState(conn.cap.rng, auth)
        self.think = 0.001

    def bind(self, iface, version, ctx_id=0, windows=False):
        if self.rpc.auth:
            self.rpc.auth["t"] = self.c.t
        req, resp = self.rpc.bind(iface, version, ctx_id, ack_port=self.c.dport, windows=windows)
        self.c.sleep(self.think)
        self.c.c2s(req)
        self.c.s2c(resp)
        if self.rpc.auth:
            self.c.c2s(self.rpc.auth3(), ack_after=True)

    def call(self, opnum, stub_in, stub_out, ctx_id=0, fault=None, object_uuid=None):
        if self.rpc.auth:  # the stubs travel sealed
            stub_in = self.c.cap.rng.randbytes(len(stub_in))
            stub_out = self.c.cap.rng.randbytes(len(stub_out))
        req, resp = self.rpc.call(opnum, stub_in, stub_out, ctx_id, fault, object_uuid)
        self.c.sleep(self.think)
        self.c.c2s(req)
        self.c.s2c(resp, ack_after=True)


# ----------------------------------------------------------------------------------------------
# NDR20 marshalling (C706 ch. 14), just what the generated stubs need


class Ndr:
    def __init__(self):
        self.b = bytearray()
        self.next_ref = 0x00020000

    def align(self, n):
        self.b += b"\0" * (-len(self.b) % n)
        return self

    def u8(self, v):
        self.b += struct.pack("<B", v)
        return self

    def u16(self, v):
        self.align(2).b += struct.pack("<H", v)
        return self

    def u32(self, v):
        self.align(4).b += struct.pack("<I", v & 0xFFFFFFFF)
        return self

    def u64(self, v):
        self.align(8).b += struct.pack("<Q", v)
        return self

    def raw(self, data):
        self.b += data
        return self

    def ptr(self, present=True):
        """A unique/full pointer's referent id (0 for NULL)."""
        if not present:
            return self.u32(0)
        self.next_ref += 4
        return self.u32(self.next_ref)

    def wstr(self, s, nul=True):
        """[string] wchar_t*: conformant varying array with the terminating NUL."""
        data = utf16(s) + (b"\0\0" if nul else b"")
        n = len(data) // 2
        self.u32(n).u32(0).u32(n).raw(data)
        return self

    def ustr_hdr(self, s, nul=False):
        """RPC_UNICODE_STRING header (Length, MaximumLength, Buffer pointer); the body follows
        later with ustr_body (deferred, as the pointee of an embedded pointer)."""
        n = len(utf16(s)) + (2 if nul else 0)
        self.align(4).u16(n).u16(n).ptr(True)
        return self

    def ustr_body(self, s, nul=False):
        data = utf16(s) + (b"\0\0" if nul else b"")
        n = len(data) // 2
        self.u32(n).u32(0).u32(n).raw(data)
        return self

    def sid(self, text, conformant=True):
        parts = text.split("-")  # S-1-5-21-a-b-c-rid
        subs = [int(x) for x in parts[3:]]
        if conformant:
            self.u32(len(subs))
        self.u8(int(parts[1])).u8(len(subs)).raw(int(parts[2]).to_bytes(6, "big"))
        for s in subs:
            self.u32(s)
        return self

    def handle(self, rng):
        return self.u32(0).raw(rng.randbytes(16))

    def bytes(self):
        return bytes(self.b)


def policy_handle(rng):
    return b"\0\0\0\0" + rng.randbytes(16)


# ----------------------------------------------------------------------------------------------
# Kerberos (RFC 4120) over TCP 88

ETYPE_AES256, ETYPE_AES128, ETYPE_RC4 = 18, 17, 23


def krb_principal(name_type, parts):
    return der_seq(ctx(0, der_int(name_type)), ctx(1, der_seq(*[der_gstr(p) for p in parts])))


def krb_encdata(rng, etype, size, kvno=None):
    items = ctx(0, der_int(etype))
    if kvno is not None:
        items += ctx(1, der_int(kvno))
    return der_seq(items + ctx(2, der_octets(rng.randbytes(size))))


def krb_ticket(rng, realm, sname_parts, etype, kvno=2):
    return app(1, der_seq(ctx(0, der_int(5)), ctx(1, der_gstr(realm)),
                          ctx(2, krb_principal(2, sname_parts)),
                          ctx(3, krb_encdata(rng, etype, 1000, kvno))))


def krb_req_body(rng, realm, sname_parts, etypes, t, cname=None):
    items = ctx(0, der_bits(0x40810010))
    if cname:
        items += ctx(1, krb_principal(1, [cname]))
    items += ctx(2, der_gstr(realm)) + ctx(3, krb_principal(2, sname_parts))
    items += ctx(5, der_time(t + 10 * 3600)) + ctx(7, der_int(rng.randint(1, 2**31 - 1)))
    items += ctx(8, der_seq(*[der_int(e) for e in etypes]))
    return der_seq(items)


def krb_as_req(rng, user, realm, t, etypes=(ETYPE_AES256, ETYPE_AES128, ETYPE_RC4), preauth=True):
    padata = []
    if preauth:  # PA-ENC-TIMESTAMP (2)
        padata.append(der_seq(ctx(1, der_int(2)),
                              ctx(2, der_octets(krb_encdata(rng, etypes[0], 56)))))
    pac_request = der_seq(ctx(0, tlv(0x01, b"\xff")))  # KERB-PA-PAC-REQUEST include-pac TRUE
    padata.append(der_seq(ctx(1, der_int(128)), ctx(2, der_octets(pac_request))))
    return app(10, der_seq(ctx(1, der_int(5)), ctx(2, der_int(10)), ctx(3, der_seq(*padata)),
                           ctx(4, krb_req_body(rng, realm, ["krbtgt", realm], etypes, t, user))))


def krb_rep(rng, msg_type, user, realm, sname_parts, ticket_etype, enc_etype):
    return app(msg_type + 0, der_seq(ctx(0, der_int(5)), ctx(1, der_int(msg_type)),
                                     ctx(3, der_gstr(realm)), ctx(4, krb_principal(1, [user])),
                                     ctx(5, krb_ticket(rng, realm, sname_parts, ticket_etype)),
                                     ctx(6, krb_encdata(rng, enc_etype, 300, 0 if msg_type == 13
                                                        else 2))))


def krb_tgs_req(rng, user, realm, sname_parts, etypes, t):
    authn = krb_encdata(rng, ETYPE_AES256, 200)
    ap_req = app(14, der_seq(ctx(0, der_int(5)), ctx(1, der_int(14)), ctx(2, der_bits(0)),
                             ctx(3, krb_ticket(rng, realm, ["krbtgt", realm], ETYPE_AES256)),
                             ctx(4, authn)))
    padata = der_seq(der_seq(ctx(1, der_int(1)), ctx(2, der_octets(ap_req))))
    return app(12, der_seq(ctx(1, der_int(5)), ctx(2, der_int(12)), ctx(3, padata),
                           ctx(4, krb_req_body(rng, realm, sname_parts, etypes, t))))


def krb_error(code, realm, sname_parts, t, user=None):
    items = ctx(0, der_int(5)) + ctx(1, der_int(30)) + ctx(4, der_time(t)) + ctx(5, der_int(0)) + \
        ctx(6, der_int(code))
    if user:
        items += ctx(7, der_gstr(realm)) + ctx(8, krb_principal(1, [user]))
    items += ctx(9, der_gstr(realm)) + ctx(10, krb_principal(2, sname_parts))
    return app(30, der_seq(items))


def krb_tcp(cap, client, kdc, t, request, reply):
    """One Kerberos exchange on its own TCP connection to port 88 (record marks, RFC 4120 7.2.2).
    Returns the time after it."""
    c = TcpConn(cap, client, kdc, 88, t)
    c.c2s(struct.pack(">I", len(request)) + request)
    c.sleep(0.001)
    c.s2c(struct.pack(">I", len(reply)) + reply, ack_after=True)
    c.close()
    return c.t


# ----------------------------------------------------------------------------------------------
# Task Scheduler .JOB file (MS-TSCH 2.4)


def job_file(rng, app_name, params, workdir, author, comment, t, hour, minute, begin):
    """A .JOB file: FIXDLEN_DATA (2.4.1) and the variable-length section (2.4.2) with one daily
    trigger (2.4.2.11, TASK_TIME_TRIGGER_DAILY) and no signature. begin: (year, month, day)."""
    import time as _time
    tm = _time.gmtime(t)

    def ustr(s):  # 2.4.2.1 Unicode string: size in UTF-16 code units including the NUL
        return struct.pack("<H", len(utf16(s)) // 2 + 1 if s else 0) + (
            utf16(s) + b"\0\0" if s else b"")

    var = struct.pack("<H", 0)  # running instance count
    var += ustr(app_name) + ustr(params) + ustr(workdir) + ustr(author) + ustr(comment)
    var += struct.pack("<H", 0)  # user data size
    var += struct.pack("<HII", 8, 0, 0)  # reserved data: TASKRESERVED1 (start error, task flags)
    trigger_off = 68 + len(var)
    trig = struct.pack("<HHHHHHHHHHIIIIHHHHHH", 0x30, 0, begin[0], begin[1], begin[2], 0, 0, 0,
                       hour, minute, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0)
    var += struct.pack("<H", 1) + trig
    fixed = struct.pack("<HH", 0x0600, 1) + rng.randbytes(16) + struct.pack(
        # App Name Len Offset: 70, where the application name's length is (after the running
        # instance count at 68). Flags: TASK_APPLICATION_NAME (2.3.7), as an application is named.
        "<HHHHHHIIIII", 70, trigger_off, 0, 0, 10, 10, 0x00000020, 72 * 3600 * 1000, 0, 0x00041300,
        0x01000000) + struct.pack("<8H", tm.tm_year, tm.tm_mon, (tm.tm_wday + 1) % 7, tm.tm_mday,
                                  tm.tm_hour, tm.tm_min, tm.tm_sec, 0)
    assert len(fixed) == 68
    return fixed + var
