"""TRex STL profile: UDP at line rate through vigil, 64-byte frames or the simple IMIX.

  --size 64     one stream of 64-byte frames (the forwarding worst case)
  --size imix   the standard simple IMIX: 64, 594 and 1518-byte frames at 7:4:1 (average 361.8)

Sizes are Ethernet frame sizes including the 4-byte FCS, as in RFC 2544 and TRex's own
profiles: TRex builds the frame without its FCS (the NIC appends it), so a 64-byte frame is a
60-byte packet here, 594 is 590 and 1518 is 1514.

The field engine varies the flow per packet over --flows values: one flow variable steps the
source address by 1, another the UDP source port by 7 (flow i: address --src + i, port
1025 + 7i), so there are exactly --flows distinct 5-tuples, spread evenly over vigil's RSS
queues (see README.md: stepping the port by 1 with the address would put them all on one
queue); the IPv4 checksum is fixed after the writes (UDP checksum 0: none, valid for IPv4). The
stream on the second port (direction 1) swaps the address blocks, so both directions carry
plausible traffic.

Start TRex with `./t-rex-64 -i`, then in `./trex-console`:

    start -f /path/to/vigil/scripts/trex/stl_vigil_imix.py -p 0 1 -m 100% -d 60 -t size=64
    start -f /path/to/vigil/scripts/trex/stl_vigil_imix.py -p 0 1 -m 100% -d 60 -t size=imix

The stream rates below are relative (pps 1 for 64 bytes; 7, 4 and 1 for the IMIX): `-m 100%`
scales them to line rate, `-m 5mpps` to a packet rate.

Tunables (the console's `-t name=value,...` reaches get_streams() as ["--name", "value", ...]):
  --size 64|imix        frame sizes (default 64)
  --flows N             distinct flows per direction, 1-9215 (default 4096)
  --src IP              first client address of direction 0 (default 16.0.0.1)
  --dst IP              first server address of direction 0 (default 48.0.0.1)
  --dport N             UDP destination port (default 5001)
"""
import argparse
import ipaddress

try:  # current TRex packages
    from trex.stl.api import (Ether, IP, UDP, STLPktBuilder, STLScVmRaw, STLStream, STLTXCont,
                              STLVmFixIpv4, STLVmFlowVar, STLVmWrFlowVar)
except ImportError:  # older TRex packages
    from trex_stl_lib.api import (Ether, IP, UDP, STLPktBuilder, STLScVmRaw, STLStream,
                                  STLTXCont, STLVmFixIpv4, STLVmFlowVar, STLVmWrFlowVar)

FCS = 4
# (frame size with FCS, relative packet rate): the simple IMIX, 7:4:1.
SIZES = {"64": [(64, 1)], "imix": [(64, 7), (594, 4), (1518, 1)]}
SPORT_BASE = 1025
SPORT_STEP = 7
MAX_FLOWS = (65536 - SPORT_BASE) // SPORT_STEP  # 9215: the port range 1025 + 7 * flows fits


def tunable_list(tunables, kwargs):
    """TRex passes tunables as a list of strings (argparse style, current versions), as a dict,
    or (old versions) as keyword arguments; all become an argument list."""
    if tunables is None:
        tunables = {k: v for k, v in kwargs.items() if k not in ("direction", "port_id")}
    if isinstance(tunables, dict):
        out = []
        for k, v in tunables.items():
            out += ["--" + k.replace("_", "-"), str(v)]
        return out
    return list(tunables)


class VigilImix(object):
    """register() object: TRex calls get_streams(direction=, port_id=, tunables=[...])."""

    @staticmethod
    def parser():
        p = argparse.ArgumentParser(prog="stl_vigil_imix.py",
                                    description="UDP line rate through vigil")
        p.add_argument("--size", choices=sorted(SIZES), default="64",
                       help="64: 64-byte frames; imix: 64/594/1518 at 7:4:1")
        p.add_argument("--flows", type=int, default=4096,
                       help=f"distinct flows per direction, 1-{MAX_FLOWS} (default 4096)")
        p.add_argument("--src", type=ipaddress.IPv4Address, default="16.0.0.1")
        p.add_argument("--dst", type=ipaddress.IPv4Address, default="48.0.0.1")
        p.add_argument("--dport", type=int, default=5001)
        return p

    def stream(self, frame_size, pps, src, dst, dport, flows):
        """One continuous stream of `frame_size`-byte frames (FCS included) over `flows` flows."""
        base = Ether() / IP(src=str(src), dst=str(dst)) / UDP(sport=SPORT_BASE, dport=dport,
                                                              chksum=0)
        pad = frame_size - FCS - len(base)
        pkt = base / (b"\x00" * pad)
        # Two variables step once per packet with the same cycle of `flows` packets: the source
        # address by 1, the source port by SPORT_STEP, so flow i is (src + i, 1025 + 7i). The
        # port must not step by 1 with the address: vigil's symmetric RSS key (0x6d5a repeated)
        # hashes the XOR of the tuple's 16-bit words, in which (a + i) ^ (b + i) barely moves,
        # and every flow would land on one queue.
        last = ipaddress.IPv4Address(int(src) + flows - 1)
        vm = STLScVmRaw([
            STLVmFlowVar(name="src", min_value=str(src), max_value=str(last), size=4, op="inc"),
            # The range is SPORT_STEP * flows wide so that the port wraps back to exactly
            # SPORT_BASE after `flows` packets, both when the step wraps modulo the range (as
            # TRex's field engine does) and when it restarts at the minimum.
            STLVmFlowVar(name="sport", min_value=SPORT_BASE,
                         max_value=SPORT_BASE + SPORT_STEP * flows - 1, size=2, op="inc",
                         step=SPORT_STEP),
            STLVmWrFlowVar(fv_name="src", pkt_offset="IP.src"),
            STLVmWrFlowVar(fv_name="sport", pkt_offset="UDP.sport"),
            STLVmFixIpv4(offset="IP"),
        ])
        return STLStream(name=f"udp{frame_size}", packet=STLPktBuilder(pkt=pkt, vm=vm),
                         mode=STLTXCont(pps=pps))

    def get_streams(self, tunables=None, **kwargs):
        args = self.parser().parse_args(tunable_list(tunables, kwargs))
        if not 1 <= args.flows <= MAX_FLOWS:
            raise ValueError(f"--flows must be 1-{MAX_FLOWS} (one UDP source port per flow)")
        if int(args.src) + args.flows - 1 > int(ipaddress.IPv4Address("255.255.255.255")):
            raise ValueError("--src + --flows runs past 255.255.255.255")
        src, dst = args.src, args.dst
        if kwargs.get("direction", 0) % 2:  # the second port of a pair sends the other way
            src, dst = dst, src
        return [self.stream(size, pps, src, dst, args.dport, args.flows)
                for size, pps in SIZES[args.size]]


def register():
    return VigilImix()
