"""TRex ASTF profile: vigil's scenario and shared captures replayed as a stateful traffic mix.

Every one-flow capture that scripts/trex/prepare-pcaps.py wrote into a directory (listed in its
vigil-mix.json) becomes one ASTF template: TRex's client side plays the capture's client payloads
and its server side the answers, over real TCP connections (or UDP exchanges) between generated
addresses, so vigil sees complete, correctly sequenced sessions at whatever rate TRex is asked for.

Start TRex with `./t-rex-64 -i --astf`, then in `./trex-console`:

    start -f /path/to/vigil/scripts/trex/astf_vigil_mix.py -m 1 -d 60 -t pcap_dir=/path/to/mix

The console's `-t name=value,name=value` reaches get_profile() as ["--name", "value", ...], parsed
here with argparse (a name may be written with '-' or '_'). Tunables:
  --pcap-dir DIR        directory written by prepare-pcaps.py (relative: to this file's directory)
  --cps N               new connections per second per template (default 1); -m multiplies it
  --limit N             at most N flows per template, then that template stops (default: none)
  --include REGEX       keep only the flows whose source capture matches (e.g. 'lateral|respond')
  --exclude REGEX       drop the flows whose source capture matches
  --clients A-B         client address range (default 16.0.0.1-16.0.255.254)
  --servers CIDR        server addresses, split into one slice per template (default 48.0.0.0/16)
  --ip-offset IP        added per further pair of ports (TRex dual-port offset, default 1.0.0.0)

Several captures share a server port (SMB on 445, DNS on 53). TRex ties a server template to
its flows by destination port, so each template gets its own slice of --servers and an
association rule on that port *and* slice; the client range is shared (one generator, so TRex's
client-overlap rule holds).
"""
import argparse
import ipaddress
import json
import os
import re

try:  # current TRex packages
    from trex.astf.api import (ASTFAssociationRule, ASTFCapInfo, ASTFIPGen, ASTFIPGenDist,
                               ASTFIPGenGlobal, ASTFProfile)
except ImportError:  # older TRex packages
    from trex_astf_lib.api import (ASTFAssociationRule, ASTFCapInfo, ASTFIPGen, ASTFIPGenDist,
                                   ASTFIPGenGlobal, ASTFProfile)

MANIFEST = "vigil-mix.json"
HERE = os.path.dirname(os.path.abspath(__file__))


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


def address_range(text):
    """'A-B' as two IPv4 address strings, A <= B."""
    try:
        a, b = (str(ipaddress.IPv4Address(x.strip())) for x in text.split("-"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: expected A-B, two IPv4 addresses ({e})")
    if ipaddress.IPv4Address(a) > ipaddress.IPv4Address(b):
        raise argparse.ArgumentTypeError(f"{text!r}: start after end")
    return a, b


def server_slices(net, n):
    """Splits `net` into n disjoint equal ranges [(first, last)], skipping the network and
    broadcast addresses of the whole block."""
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - 1
    size = (last - first + 1) // n
    if size < 1:
        raise ValueError(f"--servers {net} has fewer addresses than the {n} templates")
    return [(str(ipaddress.IPv4Address(first + i * size)),
             str(ipaddress.IPv4Address(first + (i + 1) * size - 1))) for i in range(n)]


class VigilMix(object):
    """register() object: TRex calls get_profile(tunables=[...])."""

    @staticmethod
    def parser():
        p = argparse.ArgumentParser(prog="astf_vigil_mix.py",
                                    description="vigil's captures as an ASTF mix")
        # Both spellings: the console's `-t pcap_dir=DIR` reaches the profile as --pcap_dir.
        p.add_argument("--pcap-dir", "--pcap_dir", dest="pcap_dir", required=True,
                       help="directory written by scripts/trex/prepare-pcaps.py")
        p.add_argument("--cps", type=float, default=1.0,
                       help="new connections per second per template (default 1)")
        p.add_argument("--limit", type=int, default=None,
                       help="flows per template before it stops (default: no limit)")
        p.add_argument("--include", default=None, help="regex on the source capture: keep")
        p.add_argument("--exclude", default=None, help="regex on the source capture: drop")
        p.add_argument("--clients", type=address_range, default=("16.0.0.1", "16.0.255.254"),
                       help="client range A-B (default 16.0.0.1-16.0.255.254)")
        p.add_argument("--servers", type=ipaddress.IPv4Network, default="48.0.0.0/16",
                       help="server block, one slice per template (default 48.0.0.0/16)")
        p.add_argument("--ip-offset", "--ip_offset", dest="ip_offset",
                       type=ipaddress.IPv4Address, default="1.0.0.0",
                       help="TRex dual-port IP offset (default 1.0.0.0)")
        return p

    def flows(self, args):
        """The manifest's flows after --include/--exclude, with absolute capture paths."""
        pcap_dir = args.pcap_dir
        if not os.path.isabs(pcap_dir):
            pcap_dir = os.path.join(HERE, pcap_dir)  # TRex's convention for relative paths
        path = os.path.join(pcap_dir, MANIFEST)
        if not os.path.isfile(path):
            raise ValueError(f"{path} missing: run scripts/trex/prepare-pcaps.py --out "
                             f"{args.pcap_dir} first")
        with open(path) as f:
            manifest = json.load(f)
        flows = []
        for fl in manifest["flows"]:
            if args.include and not re.search(args.include, fl["source"]):
                continue
            if args.exclude and re.search(args.exclude, fl["source"]):
                continue
            flows.append(dict(fl, path=os.path.join(pcap_dir, fl["file"])))
        if not flows:
            raise ValueError(f"no flow left in {path} after --include/--exclude")
        return flows

    def get_profile(self, tunables=None, **kwargs):
        args = self.parser().parse_args(tunable_list(tunables, kwargs))
        if args.cps <= 0:
            raise ValueError("--cps must be positive")
        flows = self.flows(args)
        clients = ipaddress.summarize_address_range(*map(ipaddress.IPv4Address, args.clients))
        if any(c.overlaps(args.servers) for c in clients):
            raise ValueError("--clients and --servers overlap")
        glob = ASTFIPGenGlobal(ip_offset=str(args.ip_offset))
        # One client distribution shared by every template: TRex refuses overlapping but
        # different client ranges, and identical ones are the same generator.
        client_dist = ASTFIPGenDist(ip_range=list(args.clients), distribution="seq")
        caps = []
        for fl, (first, last) in zip(flows, server_slices(args.servers, len(flows))):
            gen = ASTFIPGen(dist_client=client_dist,
                            dist_server=ASTFIPGenDist(ip_range=[first, last], distribution="seq"),
                            glob=glob)
            caps.append(ASTFCapInfo(file=fl["path"], cps=args.cps, ip_gen=gen, limit=args.limit,
                                    assoc=ASTFAssociationRule(port=fl["dport"], ip_start=first,
                                                              ip_end=last),
                                    tg_name=f"{fl['proto']}{fl['dport']}"[:20]))
        whole = [str(args.servers.network_address + 1), str(args.servers.broadcast_address - 1)]
        default_gen = ASTFIPGen(dist_client=client_dist,
                                dist_server=ASTFIPGenDist(ip_range=whole, distribution="seq"),
                                glob=glob)
        return ASTFProfile(default_ip_gen=default_gen, cap_list=caps)


def register():
    return VigilMix()
