#!/usr/bin/python3
"""Offline structure check of the TRex profiles in scripts/trex (TRex is not installable here).

TRex's Python API is replaced by stub modules (trex.astf.api / trex_astf_lib.api and
trex.stl.api / trex_stl_lib.api) whose classes take the constructor arguments TRex documents,
enforce the rules TRex documents for them (exclusive arguments, value ranges, one session per
ASTF capture, no two templates on one port with port-only association, no overlapping client
ranges) and record what the profiles build. Each profile is then loaded the way TRex loads it
(module imported from its directory, register(), get_profile(tunables=[...]) or
get_streams(direction=, port_id=, tunables=[...])) with every tunable combination, and the result
is checked:

ASTF (astf_vigil_mix.py) on a mix prepared by prepare-pcaps.py from the scenario captures
(tests/gen) and, when present, ../shared/data/pcaps: every capture exists, is a classic pcap
(global header parsed here: magic, version 2.4, Ethernet) and holds one session TRex accepts;
its server port is the association's; server slices are disjoint, inside --servers, equal to the
association ranges and apart from the clients; rates, limits and group names as asked.

STL (stl_vigil_imix.py): 64-byte frames are 60-byte packets (TRex sizes exclude the 4-byte FCS),
the IMIX is 64/594/1518 at 7:4:1; the field engine, run here as TRex's runs it, gives exactly
--flows distinct 5-tuples with correct IPv4 checksums, and vigil's symmetric RSS key spreads them
evenly over 2, 4 and 8 queues.

usage: /usr/bin/python3 scripts/trex/validate.py [--pcap-dir DIR] [--shared DIR|none]
  --pcap-dir DIR   check an existing prepare-pcaps.py output instead of preparing one
  --shared DIR     shared captures to include (default ../shared/data/pcaps when it exists)
Exit status 0 when every check passes, 1 otherwise.
"""
import argparse
import collections
import contextlib
import importlib.util
import io
import ipaddress
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import types

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import pcapflows as pf  # noqa: E402

RESULTS = {"pass": 0, "fail": 0}
CALLS = collections.Counter()  # stub class -> constructions


def check(name, ok, detail=""):
    """Records and prints one check."""
    if ok:
        RESULTS["pass"] += 1
        print(f"PASS {name}")
    else:
        RESULTS["fail"] += 1
        print(f"FAIL {name}{': ' + str(detail) if detail else ''}")
    return ok


def expect_error(name, fn, *errors):
    """A check that fn() raises one of `errors` (argparse's usage message is kept quiet)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            fn()
    except errors as e:
        return check(name, True, e)
    except Exception as e:  # noqa: BLE001 - any other failure is the wrong one
        return check(name, False, f"raised {type(e).__name__}: {e}")
    return check(name, False, "no error raised")


class StubError(Exception):
    """What TRex would raise (TRexError, ASTFError, CTRexPacketBuildException)."""


def ipv4(text, what):
    try:
        return ipaddress.IPv4Address(text)
    except (ValueError, TypeError) as e:
        raise StubError(f"{what}: {text!r} is not an IPv4 address ({e})")


class Stub(object):
    """Base: records the bound constructor arguments in self.args."""

    def _record(self, local):
        self.args = {k: v for k, v in local.items() if k != "self"}
        CALLS[type(self).__name__] += 1


# ---------------------------------------------------------------- ASTF stubs (trex.astf.api)

class ASTFIPGenDist(Stub):
    def __init__(self, ip_range, distribution="seq", per_core_distribution=None):
        self._record(locals())
        if not isinstance(ip_range, (list, tuple)) or len(ip_range) != 2:
            raise StubError(f"ASTFIPGenDist: ip_range must be [start, end], got {ip_range!r}")
        self.start, self.end = ipv4(ip_range[0], "ip_range"), ipv4(ip_range[1], "ip_range")
        if self.start > self.end:
            raise StubError(f"ASTFIPGenDist: {ip_range} starts after it ends")
        if distribution not in ("seq", "rand"):
            raise StubError(f"ASTFIPGenDist: distribution {distribution!r}")
        if per_core_distribution not in (None, "default", "seq"):
            raise StubError(f"ASTFIPGenDist: per_core_distribution {per_core_distribution!r}")
        self.direction = None
        self.ip_offset = None

    def overlaps(self, other):
        return self.start <= other.end and other.start <= self.end

    def same(self, other):
        return (self.start, self.end, self.args["distribution"]) == \
            (other.start, other.end, other.args["distribution"])


class ASTFIPGenGlobal(Stub):
    def __init__(self, ip_offset="1.0.0.0", ip_offset_server=None):
        self._record(locals())
        ipv4(ip_offset, "ip_offset")
        if ip_offset_server is not None:
            ipv4(ip_offset_server, "ip_offset_server")


_DEFAULT = object()


class ASTFIPGen(Stub):
    def __init__(self, dist_client, dist_server, glob=_DEFAULT):
        self._record(locals())
        glob = ASTFIPGenGlobal() if glob is _DEFAULT else glob
        for name, d, want in (("dist_client", dist_client, "c"), ("dist_server", dist_server, "s")):
            if not isinstance(d, ASTFIPGenDist):
                raise StubError(f"ASTFIPGen: {name} is {type(d).__name__}, not ASTFIPGenDist")
            if d.direction not in (None, want):
                raise StubError(f"ASTFIPGen: {name} already used as direction {d.direction}")
            d.direction = want
        if not isinstance(glob, ASTFIPGenGlobal):
            raise StubError("ASTFIPGen: glob is not ASTFIPGenGlobal")
        dist_client.ip_offset = glob.args["ip_offset"]
        dist_server.ip_offset = glob.args["ip_offset_server"] or glob.args["ip_offset"]
        self.client, self.server, self.glob = dist_client, dist_server, glob


class ASTFAssociationRule(Stub):
    def __init__(self, port=80, ip_start=None, ip_end=None, l7_map=None):
        self._record(locals())
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise StubError(f"ASTFAssociationRule: port {port!r}")
        for v in (ip_start, ip_end):
            if v is not None:
                ipv4(v, "ASTFAssociationRule ip")
        self.port_only = ip_start is None and ip_end is None and l7_map is None


class ASTFAssociation(Stub):
    def __init__(self, rules=_DEFAULT):
        self._record(locals())
        rules = ASTFAssociationRule() if rules is _DEFAULT else rules
        self.rules = list(rules) if isinstance(rules, (list, tuple)) else [rules]


class ASTFCapInfo(Stub):
    def __init__(self, file=None, cps=None, assoc=None, ip_gen=None, port=None, l7_percent=None,
                 s_glob_info=None, c_glob_info=None, limit=None, cont=None, tg_name=None,
                 s_delay=None, udp_mtu=None):
        self._record(locals())
        if not isinstance(file, str):
            raise StubError("ASTFCapInfo: file must be a string")
        if cps is not None and l7_percent is not None:
            raise StubError("ASTFCapInfo: cps and l7_percent are exclusive")
        if assoc is not None and port is not None:
            raise StubError("ASTFCapInfo: port and assoc are exclusive")
        if assoc is not None and not isinstance(assoc, (ASTFAssociation, ASTFAssociationRule)):
            raise StubError("ASTFCapInfo: assoc type")
        if ip_gen is not None and not isinstance(ip_gen, ASTFIPGen):
            raise StubError("ASTFCapInfo: ip_gen type")
        if limit is not None and not isinstance(limit, int):
            raise StubError("ASTFCapInfo: limit must be an int")
        if tg_name is not None and not 0 < len(tg_name) <= 20:
            raise StubError(f"ASTFCapInfo: tg_name {tg_name!r} empty or longer than 20")
        self.cps = cps if cps is not None or l7_percent is not None else 1
        rules = assoc.rules if isinstance(assoc, ASTFAssociation) else \
            ([assoc] if assoc is not None else [])
        self.rules = rules


class ASTFProfile(Stub):
    def __init__(self, default_ip_gen, default_c_glob_info=None, default_s_glob_info=None,
                 templates=None, cap_list=None, s_delay=None, udp_mtu=None):
        self._record(locals())
        if not isinstance(default_ip_gen, ASTFIPGen):
            raise StubError("ASTFProfile: default_ip_gen is not ASTFIPGen")
        if templates is None and cap_list is None:
            raise StubError("ASTFProfile: templates or cap_list is required")
        caps = list(cap_list) if isinstance(cap_list, (list, tuple)) else [cap_list]
        modes, ports, clients = set(), {}, []
        self.caps = []
        for cap in caps:
            if not isinstance(cap, ASTFCapInfo):
                raise StubError("ASTFProfile: cap_list holds a non-ASTFCapInfo")
            # TRex analyses every capture while the profile is built.
            try:
                frames = [f for _, _, f in pf.read_packets(cap.args["file"])]
            except (OSError, pf.PcapError) as e:
                raise StubError(f"ASTFProfile: {cap.args['file']}: {e}")
            why, info = pf.astf_check(frames)
            if why:
                raise StubError(f"ASTFProfile: {cap.args['file']}: {why}")
            modes.add("l7" if cap.args["l7_percent"] is not None else "cps")
            port = cap.rules[0].args["port"] if cap.rules else info["dport"]
            port_only = not cap.rules or all(r.port_only for r in cap.rules)
            if port_only:
                if port in ports:
                    raise StubError(f"ASTFProfile: two captures on port {port} "
                                    f"({ports[port]}, {cap.args['file']})")
                ports[port] = cap.args["file"]
            gen = cap.args["ip_gen"] or default_ip_gen
            for other in clients:
                if other is not gen.client and not other.same(gen.client) and \
                        other.overlaps(gen.client):
                    raise StubError("ASTFProfile: overlapping client ranges")
            clients.append(gen.client)
            self.caps.append((cap, info, gen))
        if len(modes) > 1:
            raise StubError("ASTFProfile: cps and l7_percent mixed in one cap list")
        self.default_ip_gen = default_ip_gen


def astf_module():
    m = types.ModuleType("trex.astf.api")
    for cls in (ASTFIPGenDist, ASTFIPGenGlobal, ASTFIPGen, ASTFAssociationRule, ASTFAssociation,
                ASTFCapInfo, ASTFProfile):
        setattr(m, cls.__name__, cls)
    m.ASTFError = m.TRexError = StubError
    return m


# ---------------------------------------------------------------- STL stubs (trex.stl.api)

class STLTXCont(Stub):
    def __init__(self, pps=None, bps_L1=None, bps_L2=None, percentage=None):
        self._record(locals())
        given = [(k, v) for k, v in self.args.items() if v is not None]
        if len(given) > 1:
            raise StubError(f"STLTXCont: {[k for k, _ in given]} are exclusive")
        self.rate = given[0] if given else ("pps", 1.0)
        if self.rate[0] == "percentage" and not 0 < self.rate[1] <= 100:
            raise StubError("STLTXCont: percentage must be in (0, 100]")


class STLVmFlowVar(Stub):
    def __init__(self, name, init_value=None, min_value=0, max_value=255, size=4, step=1,
                 op="inc"):
        self._record(locals())
        if size not in (1, 2, 4, 8):
            raise StubError(f"STLVmFlowVar: size {size}")
        if op not in ("inc", "dec", "random"):
            raise StubError(f"STLVmFlowVar: op {op!r}")
        conv = lambda v: int(ipv4(v, "STLVmFlowVar")) if isinstance(v, str) else v  # noqa: E731
        self.min, self.max, self.step = conv(min_value), conv(max_value), conv(step)
        if self.min > self.max:
            raise StubError(f"STLVmFlowVar: max {self.max} below min {self.min}")
        if self.max >= 1 << (8 * size):
            raise StubError(f"STLVmFlowVar: max {self.max} does not fit {size} bytes")
        init = init_value if init_value is not None else (self.max if op == "dec" else self.min)
        self.init = conv(init)


class STLVmWrFlowVar(Stub):
    def __init__(self, fv_name, pkt_offset, offset_fixup=0, add_val=0, is_big=True):
        self._record(locals())
        if not -(1 << 31) <= add_val < 1 << 31:
            raise StubError("STLVmWrFlowVar: add_val does not fit TRex's int32")


class STLVmWrMaskFlowVar(Stub):
    def __init__(self, fv_name, pkt_offset, pkt_cast_size=1, mask=0xFF, shift=0, add_value=0,
                 offset_fixup=0, is_big=True):
        self._record(locals())
        if pkt_cast_size not in (1, 2, 4):
            raise StubError("STLVmWrMaskFlowVar: pkt_cast_size")


class STLVmFixIpv4(Stub):
    def __init__(self, offset):
        self._record(locals())


class STLScVmRaw(Stub):
    def __init__(self, list_of_commands=None, split_by_field=None, cache_size=None):
        self._record(locals())
        self.commands = list(list_of_commands or [])


class STLPktBuilder(Stub):
    def __init__(self, pkt=None, pkt_buffer=None, vm=None, path_relative_to_profile=False,
                 build_raw=False, remove_fcs=True):
        self._record(locals())
        from scapy.packet import Packet
        if (pkt is None) == (pkt_buffer is None):
            raise StubError("STLPktBuilder: exactly one of pkt and pkt_buffer")
        if pkt is not None and not isinstance(pkt, Packet):
            raise StubError("STLPktBuilder: pkt is not a scapy packet")
        if isinstance(vm, list):
            vm = STLScVmRaw(vm)
        if vm is not None and not isinstance(vm, STLScVmRaw):
            raise StubError("STLPktBuilder: vm is neither a list nor STLScVmRaw")
        self.pkt, self.vm = pkt, vm


class STLStream(Stub):
    def __init__(self, name=None, packet=None, mode=_DEFAULT, enabled=True, self_start=True,
                 isg=0.0, flow_stats=None, next=None, stream_id=None, action_count=0,
                 random_seed=0, mac_src_override_by_pkt=None, mac_dst_override_mode=None,
                 dummy_stream=False, start_paused=False, core_id=-1):
        self._record(locals())
        mode = STLTXCont(pps=1) if mode is _DEFAULT else mode
        if not isinstance(packet, STLPktBuilder):
            raise StubError("STLStream: packet is not STLPktBuilder")
        if not isinstance(mode, STLTXCont):
            raise StubError("STLStream: mode is not a TX mode")
        self.packet, self.mode = packet, mode


def stl_module():
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    m = types.ModuleType("trex.stl.api")
    for cls in (STLTXCont, STLVmFlowVar, STLVmWrFlowVar, STLVmWrMaskFlowVar, STLVmFixIpv4,
                STLScVmRaw, STLPktBuilder, STLStream):
        setattr(m, cls.__name__, cls)
    m.Ether, m.IP, m.TCP, m.UDP = Ether, IP, TCP, UDP  # trex.stl.api re-exports these
    m.STLError = m.TRexError = StubError
    return m


def install_stubs(new_paths):
    """Puts the stubs at the current import paths (new_paths) or only at the old ones."""
    for name in ("trex", "trex.astf", "trex.astf.api", "trex.stl", "trex.stl.api",
                 "trex_astf_lib", "trex_astf_lib.api", "trex_stl_lib", "trex_stl_lib.api"):
        sys.modules.pop(name, None)
    astf, stl = astf_module(), stl_module()
    if new_paths:
        pkg, sub_a, sub_s = (types.ModuleType(n) for n in ("trex", "trex.astf", "trex.stl"))
        pkg.astf, pkg.stl, sub_a.api, sub_s.api = sub_a, sub_s, astf, stl
        sys.modules.update({"trex": pkg, "trex.astf": sub_a, "trex.astf.api": astf,
                            "trex.stl": sub_s, "trex.stl.api": stl})
    else:
        sys.modules.update({"trex": None, "trex.astf.api": None, "trex.stl.api": None})
        for old, mod in (("trex_astf_lib", astf), ("trex_stl_lib", stl)):
            pkg = types.ModuleType(old)
            pkg.api = mod
            sys.modules.update({old: pkg, old + ".api": mod})


def load_profile(path):
    """Imports a profile as TRex does (by its file name, from its directory)."""
    name = os.path.basename(path).rsplit(".", 1)[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trex_tunables_ok(func):
    """TRex's loader reads the entry point's defaults: none, or one per argument."""
    code = func.__code__
    argc = code.co_argcount - 1  # without self
    return func.__defaults__ is None or len(func.__defaults__) == argc


# ---------------------------------------------------------------- ASTF checks

def check_astf(profile_path, pcap_dir):
    manifest = json.load(open(os.path.join(pcap_dir, "vigil-mix.json")))
    flows = manifest["flows"]
    sources = collections.Counter(f["source"] for f in flows)
    print(f"  mix: {len(flows)} flows from {len(sources)} captures in {pcap_dir}")
    install_stubs(new_paths=True)
    mod = load_profile(profile_path)
    obj = mod.register()
    check("astf: register() has get_profile with defaults TRex's loader accepts",
          hasattr(obj, "get_profile") and trex_tunables_ok(obj.get_profile))
    rel = os.path.relpath(pcap_dir, os.path.dirname(profile_path))
    lateral = sum(1 for f in flows if f["source"] in ("lateral", "respond"))
    combos = [
        ("defaults", ["--pcap-dir", pcap_dir], {}, len(flows)),
        ("--cps 10 --limit 100", ["--pcap-dir", pcap_dir, "--cps", "10", "--limit", "100"],
         {"cps": 10.0, "limit": 100}, len(flows)),
        ("--include lateral|respond (the scenario captures)",
         ["--pcap-dir", pcap_dir, "--include", "^(lateral|respond)$"], {}, lateral),
        ("--exclude, other --clients/--servers/--ip-offset",
         ["--pcap-dir", pcap_dir, "--exclude", "^(lateral|respond)$", "--clients",
          "10.128.0.1-10.128.3.254", "--servers", "10.64.0.0/14", "--ip-offset", "0.4.0.0"],
         {"clients": ("10.128.0.1", "10.128.3.254"), "servers": "10.64.0.0/14",
          "ip_offset": "0.4.0.0"}, len(flows) - lateral),
        ("--pcap-dir relative to the profile", ["--pcap-dir", rel], {}, len(flows)),
        ("console form -t pcap_dir=DIR,cps=3,ip_offset=2.0.0.0 (as TRex hands it over)",
         ["--pcap_dir", pcap_dir, "--cps", "3", "--ip_offset", "2.0.0.0"],
         {"cps": 3.0, "ip_offset": "2.0.0.0"}, len(flows)),
        ("tunables as a dict (older TRex)", {"pcap_dir": pcap_dir, "cps": 2}, {"cps": 2.0},
         len(flows)),
    ]
    for label, tunables, want, count in combos:
        if count == 0:
            continue
        try:
            prof = obj.get_profile(tunables=tunables)
        except Exception as e:  # noqa: BLE001
            check(f"astf [{label}]: profile builds", False, f"{type(e).__name__}: {e}")
            continue
        check(f"astf [{label}]: an ASTFProfile of {count} capture templates, built under TRex's "
              "rules (one session per capture, no port clash, no client overlap)",
              isinstance(prof, ASTFProfile) and len(prof.caps) == count, len(prof.caps))
        check_astf_profile(label, prof, pcap_dir, flows, want)
    expect_error("astf: a directory without vigil-mix.json is refused",
                 lambda: obj.get_profile(tunables=["--pcap-dir", HERE]), ValueError)
    expect_error("astf: clients overlapping the servers are refused",
                 lambda: obj.get_profile(tunables=["--pcap-dir", pcap_dir, "--clients",
                                                   "48.0.0.1-48.0.0.9"]), ValueError)
    expect_error("astf: an unknown tunable stops the load (argparse)",
                 lambda: obj.get_profile(tunables=["--pcap-dir", pcap_dir, "--bogus", "1"]),
                 SystemExit)


def check_astf_profile(label, prof, pcap_dir, flows, want):
    servers = ipaddress.IPv4Network(want.get("servers", "48.0.0.0/16"))
    clients = want.get("clients", ("16.0.0.1", "16.0.255.254"))
    by_file = {os.path.join(pcap_dir, f["file"]): f for f in flows}
    errors = collections.defaultdict(list)
    slices = []
    per_port = collections.Counter()
    total_packets = 0
    for cap, info, gen in prof.caps:
        path = cap.args["file"]
        fl = by_file.get(path) or by_file.get(os.path.normpath(path))
        if fl is None:
            errors["capture outside the manifest"].append(path)
            continue
        try:
            hdr = pf.pcap_global_header(path)
            if hdr["version"] != (2, 4) or hdr["linktype"] != pf.LINKTYPE_ETHERNET:
                errors["pcap header"].append(f"{path}: {hdr}")
        except (OSError, pf.PcapError) as e:
            errors["pcap header"].append(str(e))
        if (info["proto"], info["dport"]) != (fl["proto"], fl["dport"]):
            errors["manifest protocol/port"].append(path)
        total_packets += info["packets"]
        rule = cap.rules[0] if cap.rules else None
        if rule is None or rule.args["port"] != info["dport"]:
            errors["association port is the capture's server port"].append(path)
        if rule is None or rule.port_only:
            errors["association limited to the template's server slice"].append(path)
        per_port[(info["proto"], info["dport"])] += 1
        if cap.args["ip_gen"] is None:
            errors["per-template ip_gen"].append(path)
            continue
        s = gen.server
        if rule is not None and (str(s.start), str(s.end)) != \
                (rule.args["ip_start"], rule.args["ip_end"]):
            errors["server slice equals the association range"].append(path)
        if not (s.start in servers and s.end in servers):
            errors["server slice inside --servers"].append(f"{s.start}-{s.end}")
        slices.append((s.start, s.end))
        c = gen.client
        if (str(c.start), str(c.end)) != tuple(clients):
            errors["client range as asked"].append(f"{c.start}-{c.end}")
        if any(ipaddress.IPv4Address(a) in servers for a in (c.start, c.end)):
            errors["clients apart from servers"].append(f"{c.start}-{c.end}")
        if gen.client.ip_offset != want.get("ip_offset", "1.0.0.0"):
            errors["ip offset"].append(gen.client.ip_offset)
        if cap.cps != want.get("cps", 1.0) or cap.args["limit"] != want.get("limit"):
            errors["cps and limit as asked"].append(f"{cap.cps} {cap.args['limit']}")
        if cap.args["tg_name"] != f"{info['proto']}{info['dport']}":
            errors["template group named after protocol and port"].append(cap.args["tg_name"])
    slices.sort()
    overlap = [(a, b) for a, b in zip(slices, slices[1:]) if b[0] <= a[1]]
    check(f"astf [{label}]: every capture is a readable classic pcap (magic, version 2.4, "
          "Ethernet) of one TRex-acceptable session, as listed in the manifest",
          not errors["pcap header"] and not errors["capture outside the manifest"] and
          not errors["manifest protocol/port"],
          {k: v[:3] for k, v in errors.items() if v})
    check(f"astf [{label}]: association port = capture's server port, limited to the template's "
          "server slice", not errors["association port is the capture's server port"] and
          not errors["association limited to the template's server slice"] and
          not errors["server slice equals the association range"],
          {k: v[:3] for k, v in errors.items() if v})
    check(f"astf [{label}]: {len(slices)} server slices disjoint and inside {servers}; clients "
          f"{clients[0]}-{clients[1]} shared and apart from them",
          not overlap and not errors["server slice inside --servers"] and
          not errors["client range as asked"] and not errors["clients apart from servers"] and
          not errors["per-template ip_gen"] and not errors["ip offset"],
          overlap[:3] or {k: v[:3] for k, v in errors.items() if v})
    check(f"astf [{label}]: cps, limit and template groups as asked",
          not errors["cps and limit as asked"] and
          not errors["template group named after protocol and port"],
          {k: v[:3] for k, v in errors.items() if v})
    shared = {f"{p}/{d}": n for (p, d), n in per_port.items() if n > 1}
    print(f"  [{label}] {len(prof.caps)} templates, {total_packets} packets per round of one flow "
          f"each; ports shared by several templates: {shared}")


# ---------------------------------------------------------------- STL checks

FCS = 4
RSS_KEY = bytes([0x6D, 0x5A] * 20)  # vigil's symmetric Toeplitz key (docs/dataplane.md)


def toeplitz(data, key=RSS_KEY):
    """The Toeplitz hash of `data` (RSS), as NICs compute it."""
    k = int.from_bytes(key, "big")
    kbits = len(key) * 8
    h = 0
    for i in range(len(data) * 8):
        if data[i // 8] & (0x80 >> (i % 8)):
            h ^= (k >> (kbits - 32 - i)) & 0xFFFFFFFF
    return h


def field_offset(pkt, ref):
    """Byte offset of 'Layer.field' in the built packet, found by changing the field."""
    layer_name, field = ref.split(".")
    layer = pkt.getlayer(layer_name)
    if layer is None:
        raise StubError(f"{ref}: no {layer_name} layer")
    base = len(bytes(pkt)) - len(bytes(layer))
    fld = layer.get_field(field)
    a, b = layer.copy(), layer.copy()
    if "IP" in type(fld).__name__:
        a.setfieldval(field, "1.1.1.1")
        b.setfieldval(field, "254.254.254.254")
    else:
        a.setfieldval(field, 0)
        b.setfieldval(field, (1 << (8 * fld.sz)) - 1)
    ra, rb = bytes(a), bytes(b)
    diff = [i for i in range(min(len(ra), len(rb))) if ra[i] != rb[i]]
    return base + diff[0], len(diff)


def layer_offset(pkt, name):
    return len(bytes(pkt)) - len(bytes(pkt.getlayer(name)))


def ipv4_checksum_ok(buf, off):
    ihl = (buf[off] & 0x0F) * 4
    s = sum(struct.unpack(f"!{ihl // 2}H", bytes(buf[off:off + ihl])))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def run_field_engine(builder, n, wrap):
    """Runs the stream's field engine for n packets as TRex's does; yields the packets.

    wrap "modular": an inc past max continues from min by the remainder (TRex's inc_mod);
    wrap "restart": it restarts at min (the behaviour TRex's documentation describes).
    """
    pkt = builder.pkt
    template = bytearray(bytes(pkt))
    cmds = builder.vm.commands if builder.vm is not None else []
    var = {c.args["name"]: c for c in cmds if isinstance(c, STLVmFlowVar)}
    value = {name: v.init for name, v in var.items()}
    program = []  # offsets resolved once, as TRex compiles the program once per stream
    for c in cmds:
        if isinstance(c, STLVmWrFlowVar):
            off, width = field_offset(pkt, c.args["pkt_offset"])
            size = var[c.args["fv_name"]].args["size"]
            if width != size:
                raise StubError(f"{c.args['pkt_offset']} is {width} bytes, the variable {size}")
            program.append(("wr", c, off + c.args["offset_fixup"], size))
        elif isinstance(c, STLVmWrMaskFlowVar):
            off, _ = field_offset(pkt, c.args["pkt_offset"])
            program.append(("mask", c, off + c.args["offset_fixup"], c.args["pkt_cast_size"]))
        elif isinstance(c, STLVmFixIpv4):
            o = c.args["offset"]
            program.append(("fix", c, layer_offset(pkt, o) if isinstance(o, str) else o, 0))
    for i in range(n):
        if i:
            for name, v in var.items():
                if v.args["op"] != "inc":
                    raise StubError("the check only runs inc variables")
                left = v.max - value[name]
                if v.step <= left:
                    value[name] += v.step
                else:
                    value[name] = v.min + (v.step - left - 1) if wrap == "modular" else v.min
        buf = bytearray(template)
        for kind, c, off, size in program:
            if kind == "wr":
                val = (value[c.args["fv_name"]] + c.args["add_val"]) % (1 << (8 * size))
                buf[off:off + size] = val.to_bytes(size, "big")
            elif kind == "mask":
                val = (value[c.args["fv_name"]] % (1 << (8 * size))) + c.args["add_value"]
                val = val << c.args["shift"] if c.args["shift"] >= 0 else val >> -c.args["shift"]
                cur = int.from_bytes(buf[off:off + size], "big")
                new = (cur & ~c.args["mask"]) | (val & c.args["mask"])
                buf[off:off + size] = (new % (1 << (8 * size))).to_bytes(size, "big")
            else:
                buf[off + 10:off + 12] = b"\0\0"
                ihl = (buf[off] & 0x0F) * 4
                s = sum(struct.unpack(f"!{ihl // 2}H", bytes(buf[off:off + ihl])))
                while s >> 16:
                    s = (s & 0xFFFF) + (s >> 16)
                buf[off + 10:off + 12] = struct.pack("!H", ~s & 0xFFFF)
        yield buf


def five_tuple(buf, ip_off):
    ihl = (buf[ip_off] & 0x0F) * 4
    l4 = ip_off + ihl
    return (bytes(buf[ip_off + 12:ip_off + 16]), bytes(buf[ip_off + 16:ip_off + 20]),
            struct.unpack("!H", buf[l4:l4 + 2])[0], struct.unpack("!H", buf[l4 + 2:l4 + 4])[0])


def check_stl(profile_path):
    install_stubs(new_paths=True)
    mod = load_profile(profile_path)
    obj = mod.register()
    check("stl: register() has get_streams with defaults TRex's loader accepts",
          hasattr(obj, "get_streams") and trex_tunables_ok(obj.get_streams))
    max_flows = getattr(mod, "MAX_FLOWS", 9215)
    combos = []
    for size in ("64", "imix"):
        for flows in (None, 1, max_flows):
            for direction in (0, 1):
                t = ["--size", size] + (["--flows", str(flows)] if flows else [])
                combos.append((t, direction, size, flows or 4096))
    for tunables, direction, size, flows in combos:
        label = f"{' '.join(tunables)} direction {direction}"
        try:
            streams = obj.get_streams(direction=direction, port_id=direction, tunables=tunables)
        except Exception as e:  # noqa: BLE001
            check(f"stl [{label}]: streams build", False, f"{type(e).__name__}: {e}")
            continue
        # The field engine is run for direction 0 (direction 1 differs only in its addresses,
        # checked above) and, at the largest --flows, for the first stream only.
        deep = "all" if direction == 0 and flows != max_flows else \
            ("first" if direction == 0 else "")
        check_stl_streams(label, streams, size, flows, direction, deep)
    streams = obj.get_streams(direction=0, port_id=0, size="imix")  # pre-argparse TRex
    check("stl: tunables as keyword arguments (older TRex) give the IMIX", len(streams) == 3)
    streams = obj.get_streams(direction=0, port_id=0, tunables={"size": "imix", "flows": 8})
    check("stl: tunables as a dict give the IMIX", len(streams) == 3)
    expect_error("stl: --size 128 is refused (argparse choices)",
                 lambda: obj.get_streams(direction=0, tunables=["--size", "128"]), SystemExit)
    expect_error(f"stl: --flows {max_flows + 1} is refused (one source port per flow)",
                 lambda: obj.get_streams(direction=0, tunables=["--flows", str(max_flows + 1)]),
                 ValueError)
    expect_error("stl: --flows 0 is refused",
                 lambda: obj.get_streams(direction=0, tunables=["--flows", "0"]), ValueError)


def check_stl_streams(label, streams, size, flows, direction, deep):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    want = {"64": [(64, 1)], "imix": [(64, 7), (594, 4), (1518, 1)]}[size]
    ok = isinstance(streams, list) and len(streams) == len(want) and \
        all(isinstance(s, STLStream) for s in streams)
    if not check(f"stl [{label}]: {len(want)} STLStream(s)", ok, streams):
        return
    sizes = [len(s.packet.pkt) for s in streams]
    check(f"stl [{label}]: packets {sizes} bytes = frames {[w for w, _ in want]} minus the "
          "4-byte FCS", sizes == [w - FCS for w, _ in want])
    rates = [s.mode.rate for s in streams]
    pps = [r[1] for r in rates]
    ratio_ok = all(r[0] == "pps" for r in rates) and \
        all(abs(p / pps[-1] - n / want[-1][1]) < 1e-9 for p, (_, n) in zip(pps, want))
    check(f"stl [{label}]: continuous streams at relative rates {pps} "
          f"({':'.join(str(n) for _, n in want)})", ratio_ok, rates)
    if size == "imix" and ratio_ok:
        avg = sum(w * n for w, n in want) / sum(n for _, n in want)
        check(f"stl [{label}]: IMIX average frame {avg:.2f} bytes (7x64 + 4x594 + 1x1518 over 12)",
              abs(avg - 4342 / 12) < 0.01)
    first = streams[0].packet.pkt
    layers_ok = all(s.packet.pkt.haslayer(Ether) and s.packet.pkt.haslayer(IP) and
                    s.packet.pkt.haslayer(UDP) and s.packet.pkt[UDP].chksum == 0
                    for s in streams)
    src0, dst0 = ("16.0.0.1", "48.0.0.1") if direction == 0 else ("48.0.0.1", "16.0.0.1")
    check(f"stl [{label}]: Ether/IPv4/UDP (checksum 0), {src0} -> {dst0}",
          layers_ok and first[IP].src == src0 and first[IP].dst == dst0,
          f"{first[IP].src} -> {first[IP].dst}")
    if not deep:
        return
    for s in streams if deep == "all" else streams[:1]:
        pkt = s.packet.pkt
        ip_off = layer_offset(pkt, "IP")
        pkt_len = len(pkt)
        results = {}
        for wrap in ("modular", "restart"):
            tuples = []
            bad_sum = 0
            for buf in run_field_engine(s.packet, flows + min(flows, 64), wrap):
                if not ipv4_checksum_ok(buf, ip_off) or len(buf) != pkt_len:
                    bad_sum += 1
                tuples.append(five_tuple(buf, ip_off))
            results[wrap] = (tuples, bad_sum)
        tuples, bad_sum = results["modular"]
        distinct = len(set(tuples[:flows]))
        repeats = tuples[flows:] == tuples[:len(tuples) - flows]
        same = results["restart"][0] == tuples
        srcs = [int.from_bytes(t[0], "big") for t in tuples[:flows]]
        sports = [t[2] for t in tuples[:flows]]
        base = int(ipaddress.IPv4Address(src0))
        expected = srcs == [base + i for i in range(flows)] and \
            sports == [1025 + 7 * i for i in range(flows)]
        check(f"stl [{label}] {len(pkt) + FCS}B: field engine gives exactly {flows} flows "
              f"(source {src0}+i, port 1025+7i), repeating, IPv4 checksums right",
              distinct == flows and repeats and expected and bad_sum == 0 and
              not results["restart"][1],
              f"distinct {distinct}, repeats {repeats}, layout {expected}, bad sums {bad_sum}")
        check(f"stl [{label}] {len(pkt) + FCS}B: same flows whether a variable wraps modulo its "
              "range or restarts at its minimum", same)
        if flows >= 1024 and s is streams[0]:
            spread = {}
            hashes = [toeplitz(t[0] + t[1] + struct.pack("!HH", t[2], t[3])) & 127
                      for t in tuples[:flows]]
            for nq in (2, 4, 8):  # the default 128-entry RETA filled round robin
                count = collections.Counter(h % nq for h in hashes)
                share = [count.get(q, 0) * nq / flows for q in range(nq)]
                spread[nq] = (min(share), max(share))
            check(f"stl [{label}]: vigil's symmetric RSS key spreads the flows over 2/4/8 queues "
                  "(each queue 80-120% of its share)",
                  all(0.8 <= lo and hi <= 1.2 for lo, hi in spread.values()),
                  {k: f"{lo:.2f}-{hi:.2f}" for k, (lo, hi) in spread.items()})


def check_old_import_paths(astf_path, stl_path, pcap_dir):
    """The profiles also load where TRex ships its API as trex_astf_lib / trex_stl_lib."""
    install_stubs(new_paths=False)
    try:
        prof = load_profile(astf_path).register().get_profile(tunables=["--pcap-dir", pcap_dir])
        streams = load_profile(stl_path).register().get_streams(direction=0,
                                                                tunables=["--size", "imix"])
        ok = isinstance(prof, ASTFProfile) and len(streams) == 3
        check("both profiles load with the older trex_astf_lib / trex_stl_lib module names", ok)
    except Exception as e:  # noqa: BLE001
        check("both profiles load with the older trex_astf_lib / trex_stl_lib module names",
              False, f"{type(e).__name__}: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pcap-dir", help="an existing prepare-pcaps.py output")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared", "data",
                                                     "pcaps"),
                    help="shared captures to include, or 'none'")
    args = ap.parse_args()
    if importlib.util.find_spec("scapy") is None:
        print("SKIP: scapy missing (apt-get install python3-scapy)")
        return 77
    tmp = None
    pcap_dir = args.pcap_dir
    if pcap_dir is None:
        tmp = tempfile.mkdtemp(prefix="vigil-trex-validate.")
        pcap_dir = os.path.join(tmp, "mix")
        cmd = [sys.executable, os.path.join(HERE, "prepare-pcaps.py"), "--out", pcap_dir,
               "--generate"]
        if args.shared != "none" and os.path.isdir(args.shared):
            cmd += [os.path.join(args.shared, d) for d in sorted(os.listdir(args.shared))
                    if os.path.isdir(os.path.join(args.shared, d))]
        else:
            print(f"  (no shared captures at {args.shared}: the generated scenario only)")
        r = subprocess.run(cmd, capture_output=True, text=True)
        summary = [line for line in r.stdout.splitlines() if line.startswith("prepare-pcaps:")]
        check("prepare-pcaps.py splits the scenario and shared captures into one-flow pcaps",
              r.returncode == 0, r.stderr[-500:])
        print("  " + (summary[0] if summary else r.stdout[-300:]))
        if r.returncode != 0:
            return 1
    pcap_dir = os.path.abspath(pcap_dir)
    astf_path = os.path.join(HERE, "astf_vigil_mix.py")
    stl_path = os.path.join(HERE, "stl_vigil_imix.py")
    try:
        check_astf(astf_path, pcap_dir)
        check_stl(stl_path)
        check_old_import_paths(astf_path, stl_path, pcap_dir)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    stubs = ", ".join(f"{k} x{v}" for k, v in sorted(CALLS.items()))
    print(f"  TRex API calls recorded by the stubs: {stubs}")
    print(f"{RESULTS['pass']} passed, {RESULTS['fail']} failed")
    return 0 if RESULTS["fail"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
