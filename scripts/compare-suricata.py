#!/usr/bin/python3
"""Signature agreement between Suricata and vigil: both engines run one rule set over the same
captures and their alerts are compared as sets of (capture, sid, flow), flow being the 5-tuple
with its endpoints sorted (so the direction of the alerting packet does not matter). Every
difference is classified (docs/agreement.md): a rule vigil's loader rejects (and by which keyword),
one its engine drops, a rule that needs an app-layer buffer or protocol vigil's dataplane does not
give the engine yet, a pattern that spans TCP segments, a flowbit set by such a rule, a rule
Suricata rejects, a flow Suricata does not consider established, ... What no class explains is
listed as "unexplained" with sid, capture and flow.

usage: /usr/bin/python3 scripts/compare-suricata.py [--rules DIR] [--pcaps DIR] [--build DIR]
           [--output REPORT.md] [--json RESULT.json] [--work DIR] [--only PATTERN]...
           [--suricata-mode socket|run] [--suricata-set NAME=VALUE]... [--suricata-config FILE]
           [--jobs N] [--strict] [--skip-status N] [--quiet]

Suricata (`suricata` on PATH, its /etc/suricata/suricata.yaml with the rule files, the rules'
classification.config and an EVE output for alerts and flows swapped in by --include) loads the
rules once and replays every capture through its unix socket (`--suricata-mode run`: one
`suricata -r` per capture instead), `-k none`, runmode single. vigil: `vigil-rules check --verbose
--compile` lists the rules its loader rejects and its engine drops; `vigil-dataplane --pcap-in` with
`detect` on the same files (databases cached in WORK/cache) replays each capture, converted to an
Ethernet pcap by tests/scenarios/suricata_verify.py's prepare_capture. The binaries are copied from
the build directory first, so a rebuild during the run changes nothing.

Prints the totals, the classes and one line per difference; writes the markdown report (--output,
default WORK/agreement.md) and, with --json, the results for tests. Exit status: 0 when it ran
(1 with --strict when a difference is unexplained), 2 on a usage or harness error; when suricata,
the rules or the captures are absent it prints "skipped: REASON" and exits with --skip-status
(default 0; the meson test passes 77).
"""
import argparse
import collections
import concurrent.futures
import datetime
import fnmatch
import glob
import ipaddress
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
DEFAULT_RULES = os.path.join(SHARED, "rules", "et-open-2019")
DEFAULT_PCAPS = os.path.join(SHARED, "pcaps")
DEFAULT_WORK = "/tmp/vigil-agreement"
SURICATA_CONFIG = "/etc/suricata/suricata.yaml"
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(ROOT, "tests", "scenarios"))
import suricata_verify as sv  # noqa: E402  (capture conversion: pcapng and non-Ethernet links)

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
               b"\x0a\x0d\x0d\x0a")

# ----------------------------------------------------------------------------------------------
# Rules: just enough of the language to say which buffers, protocol, flow options, flowbits and
# contents a rule has (vigil's own loader is the authority on what it accepts).

# Sticky buffer keywords (docs/rules.md, "Buffers") and the buffer each one selects.
STICKY = {"pkt_data": "pkt_data", "file_data": "file.data", "file.data": "file.data",
          "http.response_body": "file.data", "dns_query": "dns.query",
          "dce_stub_data": "dcerpc.stub_data", "ssh_proto": "ssh.proto",
          "tls_sni": "tls.sni", "tls_cert_subject": "tls.cert_subject",
          "tls_cert_issuer": "tls.cert_issuer", "tls_cert_serial": "tls.cert_serial",
          "tls_cert_fingerprint": "tls.cert_fingerprint", "ja3_hash": "ja3.hash",
          "ja3_string": "ja3.string", "base64_data": "base64_data"}
for _name in ("header_names", "accept", "accept_enc", "accept_lang", "connection",
              "content_type", "content_len", "referer", "protocol", "start", "request_line",
              "response_line"):
    STICKY["http_" + _name] = "http." + _name
STICKY_PREFIXES = ("http.", "dns.", "tls.", "ja3.", "ja3s.", "smb.", "dcerpc.stub_data",
                   "file.name", "ssh.", "krb5.", "sip.", "http2.", "ftp.", "smtp.")
NOT_BUFFERS = {"tls.version", "tls.subject", "tls.issuerdn", "tls.fingerprint", "tls.store",
               "tls.cert_chain_len", "dcerpc.iface", "dcerpc.opnum", "dns.opcode"}
# Content modifiers that move the content before them into a buffer.
MODIFIERS = {"http_uri": "http.uri", "http_raw_uri": "http.uri.raw",
             "http_method": "http.method", "http_header": "http.header",
             "http_raw_header": "http.header.raw", "http_host": "http.host",
             "http_raw_host": "http.host.raw", "http_user_agent": "http.user_agent",
             "http_cookie": "http.cookie", "http_client_body": "http.request_body",
             "http_server_body": "file.data", "http_stat_code": "http.stat_code",
             "http_stat_msg": "http.stat_msg"}
PCRE_FLAG_BUFFERS = {"U": "http.uri", "I": "http.uri.raw", "P": "http.request_body",
                     "Q": "file.data", "H": "http.header", "D": "http.header.raw",
                     "M": "http.method", "C": "http.cookie", "S": "http.stat_code",
                     "Y": "http.stat_msg", "V": "http.user_agent", "W": "http.host",
                     "Z": "http.host.raw"}
TRANSPORT_PROTOS = {"ip", "pkthdr", "tcp", "udp", "icmp", "tcp-pkt", "tcp-stream"}
# Application protocols vigil's session layer identifies (docs/rules.md, "In the dataplane").
VIGIL_APP_PROTOS = {"smb", "dcerpc", "krb5", "dns", "http", "tls"}
PROTO_ALIASES = {"ssl": "tls"}
VIGIL_ALERT_MAX = 16  # alerts reported per packet (docs/events.md, "Alerts")


class Content:
    def __init__(self, data, negated):
        self.data, self.negated, self.nocase = data, negated, False
        self.buffer = None
        self.offset = self.depth = self.distance = self.within = None

    def relative(self):
        return self.distance is not None or self.within is not None


class Rule:
    """One rule as written: header fields and options, and what the comparison needs of them."""

    def __init__(self, text, path, line):
        self.text, self.path, self.line = text, path, line
        self.sid, self.gid, self.msg = None, 1, ""
        self.action = self.proto = ""
        self.options = []
        self.contents, self.pcres, self.buffers = [], [], set()
        self.flow, self.flowbits = set(), []
        self.threshold = False
        self._parse()

    def _parse(self):
        head, sep, rest = self.text.partition("(")
        fields = head.split()
        if len(fields) >= 2:
            self.action, self.proto = fields[0], PROTO_ALIASES.get(fields[1].lower(),
                                                                   fields[1].lower())
        body = rest.rstrip()
        if body.endswith(")"):
            body = body[:-1]
        self.options = split_options(body)
        sticky = "pkt_data"
        last = None
        for key, value in self.options:
            k = key.lower()
            if k == "sid" and value.strip().isdigit():
                self.sid = int(value)
            elif k == "gid" and value.strip().isdigit():
                self.gid = int(value)
            elif k == "msg":
                self.msg = unquote(value)
            elif k in ("content", "uricontent"):
                v = value.strip()
                neg = v.startswith("!")
                last = Content(decode_content(unquote(v.lstrip("!").strip())), neg)
                last.buffer = "http.uri" if k == "uricontent" else sticky
                self.contents.append(last)
            elif k == "pcre":
                v = value.strip().lstrip("!").strip()
                m = re.match(r'^"?/(.*)/([A-Za-z]*)"?$', v, re.S)
                flags = m.group(2) if m else ""
                buf = next((PCRE_FLAG_BUFFERS[f] for f in flags if f in PCRE_FLAG_BUFFERS),
                           sticky)
                self.pcres.append((m.group(1) if m else v, flags, buf,
                                   value.strip().startswith("!")))
            elif k in MODIFIERS and last is not None:
                last.buffer = MODIFIERS[k]
            elif k == "nocase" and last is not None:
                last.nocase = True
            elif k in ("offset", "depth", "distance", "within") and last is not None:
                try:
                    setattr(last, k, int(value))
                except ValueError:
                    pass
            elif k == "flow":
                self.flow |= {f.strip().lower() for f in value.split(",")}
            elif k == "flowbits":
                parts = [p.strip() for p in value.split(",", 1)]
                names = re.split(r"[&|]", parts[1]) if len(parts) > 1 else []
                self.flowbits.append((parts[0].lower(), [n.strip() for n in names if n]))
            elif k in ("threshold", "detection_filter"):
                self.threshold = True
            elif k in STICKY:
                sticky = STICKY[k]
            elif k not in NOT_BUFFERS and k.startswith(STICKY_PREFIXES):
                sticky = k
        self.buffers = {c.buffer for c in self.contents} | {p[2] for p in self.pcres}

    def app_buffers(self):
        return sorted(b for b in self.buffers if b != "pkt_data")

    def app_proto(self):
        return None if self.proto in TRANSPORT_PROTOS else self.proto

    def flowbit_names(self, *commands):
        return {n for cmd, names in self.flowbits if cmd in commands for n in names}


def unquote(value):
    v = value.strip()
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        v = v[1:-1]
    return re.sub(r'\\([";\\:])', r"\1", v)


def split_options(body):
    """[(keyword, value)] of a rule's option list: split on every `;` not escaped as `\\;` (as
    Suricata does: a `;` inside a quoted value must be escaped too)."""
    out, cur, i = [], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            cur.append(body[i:i + 2])
            i += 2
            continue
        if c == ";":
            opt = "".join(cur).strip()
            if opt:
                key, _, value = opt.partition(":")
                out.append((key.strip(), value.strip()))
            cur = []
        else:
            cur.append(c)
        i += 1
    opt = "".join(cur).strip()
    if opt:
        key, _, value = opt.partition(":")
        out.append((key.strip(), value.strip()))
    return out


def decode_content(text):
    """The bytes of a content value: `|41 42|` hex parts, escapes already undone."""
    out, i = bytearray(), 0
    while i < len(text):
        if text[i] == "|":
            j = text.find("|", i + 1)
            if j < 0:
                break
            hexpart = re.sub(r"\s", "", text[i + 1:j])
            try:
                out += bytes.fromhex(hexpart)
            except ValueError:
                pass
            i = j + 1
        else:
            out += text[i].encode("utf-8", "surrogateescape")
            i += 1
    return bytes(out)


def read_rules(files):
    """{sid: Rule} of the enabled rules (the first of a duplicate sid), and the count."""
    rules, enabled = {}, 0
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        i = 0
        while i < len(lines):
            start, text = i + 1, lines[i]
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + lines[i]
            i += 1
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            enabled += 1
            rule = Rule(text, path, start)
            if rule.sid is not None and rule.sid not in rules:
                rules[rule.sid] = rule
    return rules, enabled


# ----------------------------------------------------------------------------------------------
# vigil's view of the rules: `vigil-rules check --verbose --compile`

REJECTION_RE = re.compile(r"^(?P<loc>.+?:\d+): sid (?P<sid>\d+): (?P<kw>[^:]*): (?P<reason>.*)$")
NEVER_RE = re.compile(r"^never alerts: sid (?P<sid>\d+): (?P<reason>.*)$")


def vigil_rule_facts(tool, files, classification, cache):
    """(rejected {sid: (keyword, reason, file:line)}, never {sid: reason}, summary lines)."""
    args = [tool, "check", "--verbose", "--compile", "--cache", cache]
    if classification:
        args += ["--classification", classification]
    run = subprocess.run(args + files, capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        raise RuntimeError(f"vigil-rules exit {run.returncode}: {run.stderr.strip()[-300:]}")
    rejected, never, summary = {}, {}, []
    for line in run.stdout.splitlines():
        m = REJECTION_RE.match(line)
        if m:
            rejected.setdefault(int(m.group("sid")), (m.group("kw").strip() or "?",
                                                      m.group("reason"), m.group("loc")))
            continue
        m = NEVER_RE.match(line)
        if m:
            never[int(m.group("sid"))] = m.group("reason")
            continue
        if re.match(r"^\d+ loaded|^compiled:", line):
            summary.append(line)
    return rejected, never, summary


def vigil_default_vars():
    """rules::DefaultVars() as written in rules/lang/loader.cc ({name: value}), else
    rules/vars.yaml (documented as the same values)."""
    out = {}
    try:
        with open(os.path.join(ROOT, "rules", "lang", "loader.cc"), encoding="utf-8") as f:
            text = f.read()
        m = re.search(r"Vars DefaultVars\(\)\s*\{(.*?)\n\}", text, re.S)
        if m:
            for name, value in re.findall(r'\{"([A-Z0-9_]+)",\s*"([^"]*)"\}', m.group(1)):
                out[name] = value
    except OSError:
        pass
    if out:
        return out, "rules/lang/loader.cc DefaultVars()"
    try:
        import yaml
        with open(os.path.join(ROOT, "rules", "vars.yaml"), encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        doc = doc.get("vars", doc)
        for group in ("address-groups", "port-groups"):
            for k, v in (doc.get(group) or {}).items():
                out[k] = str(v)
    except (ImportError, OSError):
        pass
    return out, "rules/vars.yaml"


def suricata_settings(config, sets):
    """({name: value} of Suricata's address and port groups, detect.packet-alert-max,
    stream.midstream) with the configuration and the --set values."""
    args = ["suricata", "--dump-config", "-c", config]
    for kv in sets:
        args += ["--set", kv]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60)
    out, alert_max, midstream = {}, 15, False  # Suricata's built-in defaults
    for line in run.stdout.splitlines():
        m = re.match(r"^stream\.midstream = (\S+)$", line)
        if m:
            midstream = m.group(1).lower() in ("yes", "true", "on", "1")
        m = re.match(r"^vars\.(?:address|port)-groups\.(\S+) = (.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
        m = re.match(r"^detect\.packet-alert-max = (\d+)$", line)
        if m:
            alert_max = int(m.group(1))
    return out, alert_max, midstream


# ----------------------------------------------------------------------------------------------
# Captures


def find_captures(pcaps, patterns):
    found = []
    for dirpath, dirnames, filenames in os.walk(pcaps):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    magic = f.read(4)
            except OSError:
                continue
            if magic in PCAP_MAGICS:
                rel = os.path.relpath(path, pcaps)
                if not patterns or any(fnmatch.fnmatchcase(rel, p) or
                                       fnmatch.fnmatchcase(os.path.basename(rel), p) or
                                       p in rel for p in patterns):
                    found.append(rel)
    return sorted(found)


def safe_name(i, rel):
    return f"{i:03d}-" + re.sub(r"[^A-Za-z0-9._-]+", "_", rel)[-80:]


def norm_ip(ip):
    try:
        return ipaddress.ip_address(str(ip)).compressed
    except ValueError:
        return str(ip)


def flow_key(ev):
    a = (norm_ip(ev.get("src_ip")), int(ev.get("src_port") or 0))
    b = (norm_ip(ev.get("dest_ip")), int(ev.get("dest_port") or 0))
    lo, hi = sorted([a, b])
    return (str(ev.get("proto") or "").upper(), lo, hi)


def flow_text(key):
    def ep(e):
        return f"[{e[0]}]:{e[1]}" if ":" in e[0] else f"{e[0]}:{e[1]}"
    return f"{key[0]} {ep(key[1])} <-> {ep(key[2])}"


def read_eve(path):
    """(alerts {(sid, flow): [pcap_cnt]}, flows {flow: record}, alert records by key, count)."""
    alerts, flows, records, n = collections.defaultdict(list), {}, collections.defaultdict(list), 0
    if not os.path.exists(path):
        return alerts, flows, records, n
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event_type")
            if kind == "alert":
                n += 1
                key = (int(ev["alert"]["signature_id"]), flow_key(ev))
                alerts[key].append(ev.get("pcap_cnt"))
                records[key].append(ev)
            elif kind == "flow":
                flows[flow_key(ev)] = ev
    return alerts, flows, records, n


# ----------------------------------------------------------------------------------------------
# Suricata

SURICATA_OVERRIDE = """%YAML 1.1
---
rule-files:
{rule_files}
{classification}outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - alert:
            tagged-packets: no
        - flow
logging:
  default-log-level: notice
  outputs:
    - console:
        enabled: no
    - file:
        enabled: yes
        level: info
        filename: suricata.log
"""
# Suricata's stream chunk sizes are randomised at start-up by default; fixed sizes make repeated
# runs give the same alerting packets.
SURICATA_SETS = ["stream.reassembly.randomize-chunk-size=no"]


def suricata_version():
    run = subprocess.run(["suricata", "-V"], capture_output=True, text=True, timeout=30)
    m = re.search(r"version (\S+)", run.stdout + run.stderr)
    return m.group(1) if m else "?"


def write_suricata_override(path, files, classification):
    with open(path, "w") as f:
        f.write(SURICATA_OVERRIDE.format(
            rule_files="\n".join(f'  - "{p}"' for p in files),
            classification=f'classification-file: "{classification}"\n' if classification
            else ""))


def suricata_args(config, override, logdir, sets):
    args = ["suricata", "-c", config, "--include", override, "-k", "none", "--runmode", "single",
            "-l", logdir]
    for s in SURICATA_SETS + list(sets):
        args += ["--set", s]
    return args


class SuricataSocket:
    """Suricata started once with --unix-socket; captures replayed with the pcap-file command."""

    def __init__(self, config, override, logdir, sets):
        self.sockdir = tempfile.mkdtemp(prefix="vigil-agree-sock-")
        self.path = os.path.join(self.sockdir, "suricata.sock")
        self.logdir = logdir
        self.out = open(os.path.join(logdir, "suricata.out"), "w")
        self.proc = subprocess.Popen(suricata_args(config, override, logdir, sets) +
                                     [f"--unix-socket={self.path}"],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        self.sock = None
        self.started = time.monotonic()
        self.ready_s = None

    def wait_ready(self, timeout=600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"suricata exited with {self.proc.returncode} while loading: "
                                   + log_tail(self.logdir))
            if os.path.exists(self.path):
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(60)
                    s.connect(self.path)
                    self.sock = s
                    reply = self.command({"version": "0.2"})
                    if reply.get("return") != "OK":
                        raise RuntimeError(f"suricata socket refused version 0.2: {reply}")
                    self.ready_s = time.monotonic() - self.started
                    return
                except OSError:
                    self.sock = None
            time.sleep(0.2)
        raise RuntimeError(f"suricata not ready after {timeout} s")

    def command(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")
        buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("suricata closed its socket")
            buf += chunk
            try:
                return json.loads(buf.decode("utf-8", "replace"))
            except ValueError:
                continue

    def replay(self, jobs, timeout=1800):
        """jobs: [(capture path, output dir)]; returns when Suricata has finished them all."""
        for pcap, out in jobs:
            reply = self.command({"command": "pcap-file",
                                  "arguments": {"filename": pcap, "output-dir": out}})
            if reply.get("return") != "OK":
                raise RuntimeError(f"suricata refused {pcap}: {reply}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"suricata exited with {self.proc.returncode}: "
                                   + log_tail(self.logdir))
            queued = self.command({"command": "pcap-file-number"}).get("message")
            current = self.command({"command": "pcap-current"}).get("message")
            if queued == 0 and current == "None":
                return
            time.sleep(0.1)
        raise RuntimeError(f"suricata did not finish the captures in {timeout} s")

    def stop(self):
        try:
            if self.sock is not None and self.proc.poll() is None:
                self.command({"command": "shutdown"})
        except (OSError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        shutil.rmtree(self.sockdir, ignore_errors=True)


def log_tail(logdir, n=3):
    lines = []
    for name in ("suricata.log", "suricata.out"):
        p = os.path.join(logdir, name)
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                lines += f.read().strip().splitlines()[-n:]
    return " | ".join(lines)


def suricata_rule_facts(logdir):
    """({sid: message} of the rules Suricata failed to load, loaded count, failed count)."""
    failed, loaded, nfailed = {}, None, None
    path = os.path.join(logdir, "suricata.log")
    if not os.path.exists(path):
        return failed, loaded, nfailed
    last_error = ""
    with open(path, errors="replace") as f:
        for line in f:
            m = re.search(r'error parsing signature "(.*)" from file', line)
            if m:
                sid = re.search(r"\bsid\s*:\s*(\d+)", m.group(1))
                if sid:
                    failed[int(sid.group(1))] = last_error or "error parsing signature"
            elif "Error:" in line:
                last_error = line.split("Error:", 1)[1].strip()
            m = re.search(r"(\d+) rules successfully loaded, (\d+) rules failed", line)
            if m:
                loaded, nfailed = int(m.group(1)), int(m.group(2))
    return failed, loaded, nfailed


def run_suricata(mode, config, override, sets, captures, pcaps, outdir, abort):
    """Replays every capture (unless the threading.Event abort is set meanwhile); returns
    timings and the rule facts."""
    os.makedirs(outdir, exist_ok=True)
    jobs = []
    for i, rel in enumerate(captures):
        d = os.path.join(outdir, safe_name(i, rel))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        jobs.append((os.path.join(pcaps, rel), d))
    t0 = time.monotonic()
    if mode == "socket":
        s = SuricataSocket(config, override, outdir, sets)
        try:
            s.wait_ready()
            t1 = time.monotonic()
            if abort.is_set():
                raise RuntimeError("aborted")
            s.replay(jobs)
            t2 = time.monotonic()
        finally:
            s.stop()
        load_s, replay_s = t1 - t0, t2 - t1
    else:
        for pcap, d in jobs:
            if abort.is_set():
                raise RuntimeError("aborted")
            run = subprocess.run(suricata_args(config, override, d, sets) + ["-r", pcap],
                                 capture_output=True, text=True, timeout=1800)
            if run.returncode != 0:
                raise RuntimeError(f"suricata -r {pcap}: exit {run.returncode}: {log_tail(d)}")
        shutil.copy(os.path.join(jobs[0][1], "suricata.log"), os.path.join(outdir,
                                                                          "suricata.log"))
        load_s, replay_s = None, time.monotonic() - t0
    failed, loaded, nfailed = suricata_rule_facts(outdir)
    return {"load_s": load_s, "replay_s": replay_s, "failed": failed, "loaded": loaded,
            "nfailed": nfailed, "dirs": [d for _, d in jobs]}


# ----------------------------------------------------------------------------------------------
# vigil

VIGIL_CONFIG = """sensor: {{name: vigil}}
eal: {{file_prefix: "{prefix}", log_level: err}}
ports:
  - {{name: a, device: "net_null0"}}
  - {{name: b, device: "net_null1"}}
bridges: [[a, b]]
workers: {{lcores: [1]}}
flow: {{capacity: 65536, hash_seed: 12345}}
history: {{enabled: false}}
outputs:
  eve: {{enabled: true, path: /dev/null}}
detect:
  enabled: true
  rules: [{rules}]{classification}
  cache_dir: "{cache}"
  invalid_rules: skip
"""


def run_vigil_one(binary, files, classification, cache, pcap, d, index):
    """Converts and replays one capture; returns (prepared capture, notes, error, seconds)."""
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    t0 = time.monotonic()
    try:
        prepared, notes = sv.prepare_capture(pcap, d)
    except (ValueError, OSError, subprocess.CalledProcessError) as e:
        return None, [], f"capture not replayable: {e}", 0.0
    cfg = os.path.join(d, "vigil.yaml")
    with open(cfg, "w") as f:
        f.write(VIGIL_CONFIG.format(prefix=f"vigil-agree-{os.getpid()}-{index}",
                                    rules=", ".join(f'"{p}"' for p in files),
                                    classification=(f'\n  classification: "{classification}"'
                                                    if classification else ""),
                                    cache=cache))
    args = [binary, "--config", cfg, "--pcap-in", prepared, "--eve",
            os.path.join(d, "eve.json"), "--counters", os.path.join(d, "counters.json")]
    try:
        run = subprocess.run(args, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return prepared, notes, "vigil-dataplane did not finish in 900 s", time.monotonic() - t0
    with open(os.path.join(d, "stderr.txt"), "w") as f:
        f.write(run.stderr)
    if run.returncode != 0:
        tail = " | ".join(run.stderr.strip().splitlines()[-3:])
        return prepared, notes, f"vigil-dataplane exit {run.returncode}: {tail}", \
            time.monotonic() - t0
    try:
        with open(os.path.join(d, "counters.json")) as f:
            counters = json.load(f)
        det = counters.get("detect", {})
        if det.get("alerts_lost"):
            notes.append(f"vigil lost {det['alerts_lost']} alerts (event ring full)")
        if counters.get("eve", {}).get("bad_records"):
            notes.append(f"vigil EVE bad records: {counters['eve']['bad_records']}")
    except (OSError, ValueError) as e:
        notes.append(f"no counters: {e}")
    return prepared, notes, None, time.monotonic() - t0


# ----------------------------------------------------------------------------------------------
# Packets of a capture (for the segment analysis): Ethernet, VLAN, IPv4, IPv6, TCP, UDP.


def capture_packets(path):
    """[(frame number, flow key, (src ip, src port), seq, payload, TCP flags)] of a classic
    Ethernet pcap (fragments after the first are skipped)."""
    parsed = sv._read_pcap(path)
    if parsed is None:
        return []
    endian, data = parsed
    out, off, n = [], 24, 0
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        n += 1
        pkt = decode_frame(frame)
        if pkt:
            proto, src, dst, seq, payload, flags = pkt
            ev = {"proto": proto, "src_ip": src[0], "src_port": src[1], "dest_ip": dst[0],
                  "dest_port": dst[1]}
            out.append((n, flow_key(ev), (norm_ip(src[0]), src[1]), seq, payload, flags))
    return out


def decode_frame(frame):
    off, et = 12, None
    while len(frame) >= off + 2:
        et = struct.unpack(">H", frame[off:off + 2])[0]
        if et in (0x8100, 0x88A8, 0x9100):
            off += 4
            continue
        off += 2
        break
    if et == 0x0800 and len(frame) >= off + 20:
        ihl = (frame[off] & 0x0F) * 4
        total = struct.unpack(">H", frame[off + 2:off + 4])[0]
        frag = struct.unpack(">H", frame[off + 6:off + 8])[0] & 0x1FFF
        if frag:
            return None
        proto = frame[off + 9]
        src = str(ipaddress.IPv4Address(frame[off + 12:off + 16]))
        dst = str(ipaddress.IPv4Address(frame[off + 16:off + 20]))
        l4, end = off + ihl, min(len(frame), off + total) if total else len(frame)
    elif et == 0x86DD and len(frame) >= off + 40:
        proto = frame[off + 6]
        src = str(ipaddress.IPv6Address(frame[off + 8:off + 24]))
        dst = str(ipaddress.IPv6Address(frame[off + 24:off + 40]))
        plen = struct.unpack(">H", frame[off + 4:off + 6])[0]
        end = min(len(frame), off + 40 + plen)
        l4 = off + 40
        while proto in (0, 43, 60, 44, 51) and len(frame) >= l4 + 8:
            if proto == 44:
                if struct.unpack(">H", frame[l4 + 2:l4 + 4])[0] & 0xFFF8:
                    return None
                proto, l4 = frame[l4], l4 + 8
            elif proto == 51:
                proto, l4 = frame[l4], l4 + (frame[l4 + 1] + 2) * 4
            else:
                proto, l4 = frame[l4], l4 + (frame[l4 + 1] + 1) * 8
    else:
        return None
    if proto == 6 and len(frame) >= l4 + 20:
        sport, dport, seq = struct.unpack(">HHI", frame[l4:l4 + 8])
        doff = (frame[l4 + 12] >> 4) * 4
        return "TCP", (src, sport), (dst, dport), seq, frame[l4 + doff:end], frame[l4 + 13]
    if proto == 17 and len(frame) >= l4 + 8:
        sport, dport = struct.unpack(">HH", frame[l4:l4 + 4])
        return "UDP", (src, sport), (dst, dport), None, frame[l4 + 8:end], 0
    return None


def midstream_analysis(rule, packets, key):
    """For a flow:established rule on a TCP flow without a SYN (vigil takes it up midstream):
    (True, detail) when every packet holding the rule's contents was sent before the other side
    had sent anything, i.e. before vigil considers the flow established."""
    if key[0] != "TCP" or "established" not in rule.flow:
        return False, ""
    flow = [p for p in packets if p[1] == key]
    if not flow or any(p[5] & 0x02 for p in flow):
        return False, ""
    matching = [p for p in flow if p[4] and contents_match(rule, p[4], True)]
    if not matching:
        return False, ""
    first = {}
    for p in flow:
        first.setdefault(p[2], p[0])
    early = [p[0] for p in matching
             if not any(side != p[2] and n < p[0] for side, n in first.items())]
    if len(early) == len(matching):
        return True, (f"no SYN in the capture; the contents are only in frames {early[:5]}, sent "
                      f"before the other side's first packet")
    return False, ""


def retransmission_analysis(packets, key, frames):
    """(True, detail) when every frame vigil alerted on is a TCP segment whose bytes an earlier
    segment of the same direction already carried (a retransmission or an overlap): vigil
    inspects it as it arrives, Suricata inspects the stream, where the earlier copy wins."""
    if key[0] != "TCP" or not frames:
        return False, ""
    flow = [p for p in packets if p[1] == key]
    seen = collections.defaultdict(list)
    repeated = {}
    for n, _, src, seq, payload, _ in flow:
        if not payload:
            continue
        start, end = seq, seq + len(payload)
        covered = start
        for a, b in sorted(seen[src]):
            if a <= covered < b:
                covered = b
        repeated[n] = covered >= end
        seen[src].append((start, end))
    if all(repeated.get(n) for n in frames):
        return True, f"frames {sorted(frames)[:5]} repeat bytes already sent in the flow"
    return False, ""


def contents_match(rule, buf, positional):
    """Whether the rule's positive pkt_data contents occur in buf, in order (a relative content
    after the previous match); with positional, offset/depth/distance/within apply as vigil
    applies them to a packet, without them only the order counts."""
    prev_end = 0
    for c in rule.contents:
        if c.negated or c.buffer != "pkt_data" or not c.data:
            continue
        hay, pat = (buf.lower(), c.data.lower()) if c.nocase else (buf, c.data)
        if c.relative():
            start = prev_end + (c.distance or 0) if positional else prev_end
            end = start + c.within if positional and c.within is not None else len(hay)
        else:
            start = c.offset or 0 if positional else 0
            end = start + c.depth if positional and c.depth is not None else len(hay)
        i = hay.find(pat, max(start, 0), end)
        if i < 0:
            return False
        prev_end = i + len(pat)
    return True


# vigil's stream seam (docs/rules.md, "Across TCP segments"): the bytes kept per direction.
SEAM_TAIL = 58
PACKET_BOUND = ("dsize", "isdataat", "byte_test", "byte_jump", "pcre", "urilen")


def seam_rule(rule):
    """Whether vigil matches the rule across segments (a stream rule), judged conservatively:
    pkt_data contents only, none at an absolute position, nothing else tied to the packet."""
    return (rule.proto not in ("udp", "icmp", "tcp-pkt") and "no_stream" not in rule.flow
            and rule.buffers == {"pkt_data"}
            and not any(k.lower() in PACKET_BOUND for k, _ in rule.options)
            and all(c.relative() or (c.offset is None and c.depth is None)
                    for c in rule.contents))


def seam_finds(rule, segs):
    """The frame on which vigil's seam finds the rule's contents: a segment that continues its
    direction's stream in order (arrival order, its sequence number where the last one ended),
    inspected with the last SEAM_TAIL bytes before it; None when none does."""
    tail, nxt = b"", None
    for n, seq, payload in segs:
        in_order = nxt is not None and seq == nxt
        if in_order and contents_match(rule, tail + payload, True):
            return n
        if nxt is None or in_order or ((seq - nxt) % 2**32) < 2**31:
            tail = ((tail if in_order else b"") + payload)[-SEAM_TAIL:]
            nxt = (seq + len(payload)) % 2**32
    return None


def segment_analysis(rule, packets, key):
    """For a pkt_data rule on a TCP flow: (True, detail) when no single packet of the flow holds
    the rule's contents but one direction's reassembled bytes do."""
    if key[0] != "TCP" or not any(not c.negated and c.buffer == "pkt_data" and c.data
                                  for c in rule.contents):
        return False, ""
    flow = [p for p in packets if p[1] == key and p[4]]
    if any(contents_match(rule, p[4], True) for p in flow):
        frames = [p[0] for p in flow if contents_match(rule, p[4], True)]
        return False, f"the contents are in single packets (frames {frames[:5]})"
    for side in (key[1], key[2]):
        # The direction's bytes in sequence order (as reassembly puts them; the first copy of a
        # retransmitted or overlapping range wins), checked as each segment is added.
        segs = [(n, seq, payload) for n, _, src, seq, payload, _ in flow if src == side]
        if not segs:
            continue
        base = segs[0][1]
        rel = lambda seq: ((seq - base + 2**31) % 2**32) - 2**31
        stream, frames, end = bytearray(), [], None
        for n, seq, payload in sorted(segs, key=lambda x: (rel(x[1]), x[0])):
            start = rel(seq)
            if end is None:
                end = start
            if start + len(payload) <= end:
                continue
            stream += payload[max(0, end - start):]
            end = start + len(payload)
            frames.append(n)
            if contents_match(rule, bytes(stream), False):
                arrival = sorted(segs)
                seen = seam_finds(rule, arrival) if seam_rule(rule) else None
                if seen is not None:  # vigil should have alerted: not this class
                    return False, (f"vigil's stream seam should find the contents (frame {seen} "
                                   f"with the {SEAM_TAIL} bytes before it)")
                return True, (f"contents found in the reassembled bytes from "
                              f"{side[0]}:{side[1]} (frames {sorted(frames)[0]}..{max(frames)}), "
                              f"in no single packet")
    return False, "contents not found in one direction's bytes either"


# ----------------------------------------------------------------------------------------------
# Classification

# class id -> (side, title, explanation). Ids with a ":" suffix share the explanation of their
# prefix (vigil-rejected:KEYWORD).
CLASSES = {
    "vigil-rejected": ("Suricata only", "vigil's loader rejects the rule",
                       "`vigil-rules check --verbose` lists the rule as rejected with this "
                       "keyword (docs/rules.md, \"Rejected\"): the keyword is not implemented, "
                       "so the rule is not loaded and cannot alert."),
    "vigil-never-alerts": ("Suricata only", "vigil's engine drops the rule",
                           "The rule loads but `vigil-rules check --compile` reports it under "
                           "\"never alerts\" (a pcre Hyperscan refuses at compile time, a DCE/RPC "
                           "condition not evaluated yet)."),
    "app-layer-buffer": ("Suricata only", "needs an app-layer buffer",
                         "The rule matches in an application-layer buffer (http.uri, file.data, "
                         "dns.query, tls.sni, smb.*, ...) that vigil does not fill, or fills "
                         "otherwise (docs/rules.md, \"App-layer buffers\")."),
    "app-proto-not-identified": ("Suricata only", "protocol vigil does not identify",
                                 "The rule's header names an application protocol vigil's "
                                 "session layer does not identify (it knows smb, dcerpc, krb5, "
                                 "dns, http, tls), so the flow is `ip` to the engine."),
    "app-proto-differs": ("Suricata only", "vigil identified the flow as another protocol",
                          "The rule's header protocol is not the one vigil's session layer gave "
                          "the flow."),
    "flowbit-dependency": ("either", "flowbit set by a rule the other engine does not run",
                           "The rule checks a flowbit that is set only by rules one engine "
                           "cannot run (rejected, dropped or needing an app-layer buffer there)."),
    "threshold": ("either", "threshold/detection_filter chose another flow",
                  "The rule has a threshold or detection_filter tracked by address; the engine "
                  "alerted the same sid on another flow of the capture, and the count was used "
                  "up there."),
    "spans-segments": ("Suricata only", "contents spread over TCP segments",
                       "No single packet of the flow holds the rule's contents, the reassembled "
                       "bytes of one direction do: Suricata inspects the stream; vigil inspects "
                       "each packet with the 58 bytes before it in its stream, in order only, "
                       "for rules not tied to packets (docs/rules.md, \"Across TCP "
                       "segments\"), so contents further apart, segments out of order, or a "
                       "rule with offset/depth/dsize are missed."),
    "vigil-midstream-not-established": (
        "Suricata only", "midstream flow not yet established for vigil",
        "The flow has no SYN in the capture. The rule needs `flow:established` and its contents "
        "are only in packets sent before the other side's first packet: vigil inspects each "
        "packet as it arrives and considers a flow picked up midstream established only once "
        "both sides were seen (docs/rules.md, \"In the dataplane\"); Suricata with "
        "stream.midstream: true takes the session up as established and inspects the stream "
        "later. (With Suricata's default stream.midstream: false this cannot occur.)"),
    "alert-cap": ("Suricata only", "vigil's 16 alerts per packet",
                  "vigil reports at most 16 alerts per packet (docs/events.md, \"Alerts\"); "
                  "the packet that would have raised this one already had 16."),
    "vigil-run-failed": ("Suricata only", "vigil did not replay the capture",
                         "vigil-dataplane failed on the capture (see the capture's note)."),
    "suricata-rejected": ("vigil only", "Suricata rejects the rule",
                          "Suricata 7 fails to load the rule (its suricata.log error is quoted); "
                          "vigil's loader accepts it."),
    "suricata-not-established": ("vigil only", "flow not established for Suricata",
                                 "The rule needs `flow:established`; the capture lacks the TCP "
                                 "handshake and Suricata (stream.midstream: false, its default) "
                                 "never considers the flow established, while vigil takes it up "
                                 "midstream."),
    "suricata-app-proto": ("vigil only", "Suricata identified the flow as another protocol",
                           "The rule's header protocol is not the one Suricata's app layer gave "
                           "the flow."),
    "vigil-retransmission": ("vigil only", "vigil matched a retransmitted segment",
                             "Every packet vigil alerted on repeats bytes an earlier segment of "
                             "the same direction carried (retransmission or overlap). vigil "
                             "inspects each packet as it arrives; Suricata inspects the "
                             "reassembled stream, where the first copy is kept."),
    "suricata-alert-cap": ("vigil only", "Suricata's alerts per packet",
                           "Suricata keeps at most detect.packet-alert-max (default 15) alerts "
                           "per packet and had that many on the packet that matched in the "
                           "flow; vigil's limit is 16."),
    "unexplained": ("either", "unexplained", "No class applies; see the analysis below."),
}


def class_base(cid):
    return cid.split(":", 1)[0]


def static_reason(rule, rejected, never):
    """Why vigil can never alert on this rule, from the rule alone: (class id, detail) or None."""
    if rule.sid in rejected:
        kw, reason, loc = rejected[rule.sid]
        cat = kw if reason == "not supported" else f"{kw} ({reason.split(':')[0]})"
        also = (f"; it also needs app-layer buffers {', '.join(rule.app_buffers())}"
                if rule.app_buffers() else "")
        return f"vigil-rejected:{cat}", f"{loc}: {kw}: {reason}{also}"
    if rule.sid in never:
        return "vigil-never-alerts", never[rule.sid]
    if rule.app_buffers():
        return "app-layer-buffer", "buffers " + ", ".join(rule.app_buffers())
    proto = rule.app_proto()
    if proto and proto not in VIGIL_APP_PROTOS:
        return "app-proto-not-identified", f"alert {proto}"
    return None


def flowbit_reason(rule, rules, can_run):
    """(class id, detail) when a flowbit the rule checks is set only by rules that cannot run in
    one engine; can_run(rule) -> None or a reason."""
    for name in sorted(rule.flowbit_names("isset")):
        setters = [r for r in rules.values() if name in r.flowbit_names("set", "toggle")]
        if not setters:
            return "flowbit-dependency", f"flowbit {name} is set by no rule of the set"
        reasons = [(r.sid, can_run(r)) for r in setters]
        if all(why for _, why in reasons):
            return "flowbit-dependency", (f"flowbit {name} is set only by " + "; ".join(
                f"sid {sid} ({why})" for sid, why in reasons[:4]))
    return None


def classify(diff, ctx):
    """Adds 'class' and 'detail' to a difference."""
    sid, key, side = diff["sid"], diff["flow"], diff["side"]
    rule = ctx["rules"].get(sid)
    cap = ctx["captures"][diff["capture"]]
    if rule is None:
        return "unexplained", "sid not among the enabled rules of the rule files"
    if side == "suricata":
        if cap.get("vigil_error"):
            return "vigil-run-failed", cap["vigil_error"]
        why = static_reason(rule, ctx["rejected"], ctx["never"])
        if why:
            return why
        proto = rule.app_proto()
        vflow = cap["vigil_flows"].get(key)
        vproto = (vflow or {}).get("app_proto")
        if proto and vproto and proto != vproto and not (proto == "dcerpc" and vproto == "smb"):
            return "app-proto-differs", f"alert {proto}; vigil: app_proto {vproto}"

        def vigil_cannot(r):
            w = static_reason(r, ctx["rejected"], ctx["never"])
            return w[1] if w else None
        why = flowbit_reason(rule, ctx["rules"], vigil_cannot)
        if why:
            return why
        if rule.threshold and any(k[0] == sid for k in cap["vigil_alerts"]):
            others = [flow_text(k[1]) for k in cap["vigil_alerts"] if k[0] == sid]
            return "threshold", "vigil alerted it on " + "; ".join(others[:3])
        counts = collections.Counter(n for k, ns in cap["vigil_alerts"].items() if k[1] == key
                                     for n in ns)
        full = sorted(n for n, c in counts.items() if n and c >= VIGIL_ALERT_MAX)
        if full:
            return "alert-cap", f"vigil raised {VIGIL_ALERT_MAX} alerts on packet {full[0]}"
        packets = ctx["packets"](diff["capture"])
        early, detail = midstream_analysis(rule, packets, key)
        if early:
            return "vigil-midstream-not-established", detail
        spans, detail = segment_analysis(rule, packets, key)
        if spans:
            return "spans-segments", detail
        return "unexplained", detail
    # vigil only
    if sid in ctx["suricata_failed"]:
        return "suricata-rejected", ctx["suricata_failed"][sid]
    proto = rule.app_proto()
    sflow = cap["suricata_flows"].get(key) or {}
    sproto = sflow.get("app_proto") or (cap["suricata_flow_proto"].get(key))
    if proto and proto != (sproto or "") and not (proto == "dcerpc" and sproto == "smb"):
        return "suricata-app-proto", f"alert {proto}; Suricata: app_proto {sproto or 'none'}"
    if "established" in rule.flow and key[0] == "TCP" and sflow and \
            not ctx["suricata_midstream"] and not (sflow.get("tcp") or {}).get("syn"):
        return "suricata-not-established", "Suricata's flow record has no SYN"

    frames = [n for n in diff["pcap_cnt"] if n]
    again, detail = retransmission_analysis(ctx["packets"](diff["capture"]), key, frames)
    if again:
        return "vigil-retransmission", detail

    def suricata_cannot(r):
        return ctx["suricata_failed"].get(r.sid)
    why = flowbit_reason(rule, ctx["rules"], suricata_cannot)
    if why:
        return why
    if rule.threshold and any(k[0] == sid for k in cap["suricata_alerts"]):
        others = [flow_text(k[1]) for k in cap["suricata_alerts"] if k[0] == sid]
        return "threshold", "Suricata alerted it on " + "; ".join(others[:3])
    per_packet = collections.Counter(n for k, ns in cap["suricata_alerts"].items() if k[1] == key
                                     for n in ns)
    full = sorted(n for n, c in per_packet.items() if c >= ctx["suricata_alert_max"])
    if full:
        return "suricata-alert-cap", (f"Suricata raised {ctx['suricata_alert_max']} alerts on "
                                      f"packet {full[0]} of the flow")
    return "unexplained", ""


# ----------------------------------------------------------------------------------------------
# Report


def pct(a, b):
    return f"{100.0 * a / b:.1f} %" if b else "n/a"


def md_escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def build_report(res):
    t = res["totals"]
    lines = ["# Suricata agreement report", ""]
    m = res["meta"]
    lines += [
        f"- Measured {m['date']} on vigil commit `{m['commit']}` (build `{m['build']}`), "
        f"Suricata {m['suricata_version']} (`--suricata-mode {m['suricata_mode']}`, runmode "
        f"single, `-k none`, " + ", ".join(f"`--set {x}`" for x in m["suricata_sets"]) + ").",
        f"- vigil binaries: {m['binaries']}.",
        f"- Rules: `{m['rules_dir']}`, {m['rule_files']} files, {m['rules_enabled']} enabled "
        f"rules. vigil: {m['vigil_summary']}; {m['vigil_never']} never alert. Suricata: "
        f"{m['suricata_loaded']} loaded, {m['suricata_failed']} failed.",
        f"- Variables: {m['vars_check']}",
        f"- Captures: {len(res['captures'])} under `{m['pcaps_dir']}`.",
        f"- Time: {m['elapsed_s']:.0f} s in all (Suricata: rule load "
        f"{fmt_s(m['suricata_load_s'])}, replay {fmt_s(m['suricata_replay_s'])}; vigil: rule "
        f"check {fmt_s(m['vigil_check_s'])}, replays {fmt_s(m['vigil_replay_s'])}).",
        "",
        "## Agreement", "",
        "Alerts are compared as sets of (capture, sid, flow); flow = protocol and the two "
        "endpoints sorted.", "",
        "| | (capture, sid, flow) | alert events |",
        "|---|---:|---:|",
        f"| both | {t['both']} | |",
        f"| Suricata only | {t['suricata']} | |",
        f"| vigil only | {t['vigil']} | |",
        f"| union | {t['union']} | |",
        f"| Suricata, all | {t['both'] + t['suricata']} | {t['suricata_events']} |",
        f"| vigil, all | {t['both'] + t['vigil']} | {t['vigil_events']} |",
        "",
        f"**Agreement rate |both| / |union| = {t['both']} / {t['union']} = "
        f"{pct(t['both'], t['union'])}.**", "",
        "## Differences by class", "",
        "| class | side | count | sids | explanation |",
        "|---|---|---:|---|---|"]
    by_class = collections.defaultdict(list)
    for d in res["differences"]:
        by_class[d["class"]].append(d)
    for cid in sorted(by_class, key=lambda c: (-len(by_class[c]), c)):
        ds = by_class[cid]
        side = ", ".join(sorted({"Suricata only" if d["side"] == "suricata" else "vigil only"
                                 for d in ds}))
        sids = ", ".join(str(s) for s in sorted({d["sid"] for d in ds}))
        base = CLASSES.get(class_base(cid), CLASSES["unexplained"])
        extra = f" Keyword: `{cid.split(':', 1)[1]}`." if ":" in cid else ""
        lines.append(f"| `{cid}` | {side} | {len(ds)} | {sids} | {md_escape(base[2])}{extra} |")
    if not by_class:
        lines.append("| (none) | | 0 | | |")
    lines += ["", "## Per capture", "",
              "| capture | both | Suricata only | vigil only | Suricata events | vigil events | "
              "sids in both | notes |", "|---|---:|---:|---:|---:|---:|---|---|"]
    for name, c in res["captures"].items():
        sids = ", ".join(str(x) for x in sorted({k[0] for k in c["both_keys"]}))
        lines.append(f"| `{name}` | {c['both']} | {c['suricata_only']} | {c['vigil_only']} | "
                     f"{c['suricata_events']} | {c['vigil_events']} | {sids} | "
                     f"{md_escape('; '.join(c['notes']))} |")
    lines += [f"| **total** | {t['both']} | {t['suricata']} | {t['vigil']} | "
              f"{t['suricata_events']} | {t['vigil_events']} | | |", ""]
    lines += ["## Rules that alerted", "",
              "(capture, flow) pairs per rule, and alert events per engine.", "",
              "| sid | msg | both | Suricata only | vigil only | Suricata events | vigil events |",
              "|---:|---|---:|---:|---:|---:|---:|"]
    per_sid = collections.defaultdict(collections.Counter)
    for c in res["captures"].values():
        for side in ("suricata", "vigil"):
            for (sid, key), frames in c[side + "_alerts"].items():
                per_sid[sid][side + "_events"] += len(frames)
                other = c["vigil_alerts" if side == "suricata" else "suricata_alerts"]
                if (sid, key) not in other:
                    per_sid[sid][side] += 1
                elif side == "suricata":
                    per_sid[sid]["both"] += 1
    for sid in sorted(per_sid):
        n = per_sid[sid]
        msg = res["rules"][sid].msg if sid in res["rules"] else ""
        lines.append(f"| {sid} | {md_escape(msg)} | {n['both']} | {n['suricata']} | "
                     f"{n['vigil']} | {n['suricata_events']} | {n['vigil_events']} |")
    lines += ["", "## Every difference", "",
              "| capture | sid | flow | side | class | detail |", "|---|---:|---|---|---|---|"]
    for d in res["differences"]:
        side = "Suricata only" if d["side"] == "suricata" else "vigil only"
        lines.append(f"| `{d['capture']}` | {d['sid']} | {flow_text(d['flow'])} | {side} | "
                     f"`{d['class']}` | {md_escape(d['msg'])}: {md_escape(d['detail'])} "
                     f"(packets {d['pcap_cnt']}) |")
    if not res["differences"]:
        lines.append("| (none) | | | | | |")
    unexplained = [d for d in res["differences"] if d["class"] == "unexplained"]
    lines += ["", "## Unexplained", ""]
    if unexplained:
        for d in unexplained:
            lines.append(f"- `{d['capture']}` sid {d['sid']} {flow_text(d['flow'])} "
                         f"({'Suricata' if d['side'] == 'suricata' else 'vigil'} only, packets "
                         f"{d['pcap_cnt']}): {md_escape(d['detail']) or 'no automatic reason'}")
    else:
        lines.append("None: every difference has a class.")
    lines.append("")
    return "\n".join(lines)


def fmt_s(v):
    return "n/a" if v is None else f"{v:.1f} s"


# ----------------------------------------------------------------------------------------------


def built_at(path):
    t = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def git_commit():
    """HEAD's short hash, and the top-level directories with uncommitted changes to tracked
    files (the build may include them)."""
    try:
        run = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h"], capture_output=True,
                             text=True, timeout=30)
        commit = run.stdout.strip() or "?"
        status = subprocess.run(["git", "-C", ROOT, "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=30).stdout.splitlines()
        dirs = sorted({line[3:].split("/")[0] for line in status if len(line) > 3})
        return commit + (f" (uncommitted changes in {', '.join(dirs)})" if dirs else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare the alerts of Suricata and vigil on the same rules and captures.",
        epilog="Exit status: 0 when it ran (1 with --strict and an unexplained difference), 2 on "
        "a usage or harness error; 'skipped: ...' and --skip-status when suricata, the rules or "
        "the captures are absent.")
    parser.add_argument("--rules", default=DEFAULT_RULES, metavar="DIR",
                        help="rule directory: every *.rules file in it, and its "
                        "classification.config (default: %(default)s)")
    parser.add_argument("--pcaps", default=DEFAULT_PCAPS, metavar="DIR",
                        help="captures: every pcap/pcapng below DIR (default: %(default)s)")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), metavar="DIR",
                        help="build directory with dataplane/vigil-dataplane and "
                        "rules/vigil-rules (default: %(default)s)")
    parser.add_argument("--output", metavar="FILE.md",
                        help="markdown report (default: WORK/agreement.md)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--work", default=DEFAULT_WORK, metavar="DIR",
                        help="work directory: binaries, outputs, the Hyperscan cache "
                        "(default: %(default)s; kept, reused by the next run)")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="captures whose path relative to --pcaps matches (glob or "
                        "substring); repeatable")
    parser.add_argument("--suricata-mode", choices=("socket", "run"), default="socket",
                        help="socket: load the rules once, replay through --unix-socket "
                        "(default); run: one suricata -r per capture")
    parser.add_argument("--suricata-config", default=SURICATA_CONFIG, metavar="FILE",
                        help="Suricata's base configuration (default: %(default)s)")
    parser.add_argument("--suricata-set", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra Suricata --set (e.g. stream.midstream=true); repeatable")
    parser.add_argument("--jobs", type=int, default=1,
                        help="vigil replays run at once (default 1)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a difference is unexplained")
    parser.add_argument("--skip-status", type=int, default=0, metavar="N",
                        help="exit status when skipped (default 0)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no per-capture progress lines")
    args = parser.parse_args(argv)
    started = time.monotonic()
    commit = git_commit()  # before the run: the build being measured

    def skip(reason):
        print(f"skipped: {reason}")
        return args.skip_status

    if not shutil.which("suricata"):
        return skip("suricata is not installed (Debian: apt-get install suricata)")
    if not os.path.isfile(args.suricata_config):
        return skip(f"{args.suricata_config} is absent")
    rule_files = sorted(glob.glob(os.path.join(os.path.abspath(args.rules), "*.rules")))
    if not rule_files:
        return skip(f"no *.rules in {args.rules}")
    if not os.path.isdir(args.pcaps):
        return skip(f"{args.pcaps} is absent")
    pcaps = os.path.abspath(args.pcaps)
    captures = find_captures(pcaps, args.only)
    if not captures:
        if args.only:
            print(f"error: no capture under {pcaps} matches {', '.join(args.only)}")
            return 2
        return skip(f"no capture under {pcaps}")
    classification = os.path.join(os.path.abspath(args.rules), "classification.config")
    if not os.path.exists(classification):
        classification = ""
    build = os.path.abspath(args.build)
    work = os.path.abspath(args.work)
    os.makedirs(os.path.join(work, "bin"), exist_ok=True)
    bins = {}
    for rel in ("dataplane/vigil-dataplane", "rules/vigil-rules"):
        src = os.path.join(build, rel)
        if not os.access(src, os.X_OK):
            print(f"error: {src} is missing: build first (ninja -C {build})")
            return 2
        dst = os.path.join(work, "bin", os.path.basename(rel))
        shutil.copy2(src, dst + ".tmp")
        os.replace(dst + ".tmp", dst)
        bins[os.path.basename(rel)] = dst
    binaries_built = ", ".join(f"{os.path.basename(rel)} built {built_at(os.path.join(build, rel))}"
                               for rel in ("dataplane/vigil-dataplane", "rules/vigil-rules"))
    cache = os.path.join(work, "cache")
    os.makedirs(cache, exist_ok=True)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))

    rules, enabled = read_rules(rule_files)
    svars, suricata_alert_max, suricata_midstream = suricata_settings(
        args.suricata_config, SURICATA_SETS + args.suricata_set)
    vvars, vsource = vigil_default_vars()
    diffs = sorted(n for n in set(svars) | set(vvars) if svars.get(n) != vvars.get(n))
    if diffs:
        vars_check = ("DIFFERENT from Suricata's: " + "; ".join(
            f"{n}: vigil {vvars.get(n)!r}, Suricata {svars.get(n)!r}" for n in diffs))
        print(f"warning: vigil's default variables differ from Suricata's: {vars_check}")
    else:
        vars_check = (f"vigil's built-in defaults ({vsource}) equal the {len(svars)} address "
                      f"and port groups of {args.suricata_config}.")

    # Suricata loads its rules in the background while vigil checks and replays.
    override = os.path.join(work, "suricata-include.yaml")
    write_suricata_override(override, rule_files, classification)
    sur_dir = os.path.join(work, "suricata")
    shutil.rmtree(sur_dir, ignore_errors=True)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    abort = threading.Event()
    sur_future = pool.submit(run_suricata, args.suricata_mode, args.suricata_config, override,
                             args.suricata_set, captures, pcaps, sur_dir, abort)

    t0 = time.monotonic()
    try:
        rejected, never, vsummary = vigil_rule_facts(bins["vigil-rules"], rule_files,
                                                     classification, cache)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"error: {e}")
        abort.set()  # Suricata stops once its rules are loaded
        return 2
    vigil_check_s = time.monotonic() - t0
    say(f"vigil-rules: {' / '.join(vsummary)}")

    vig_dir = os.path.join(work, "vigil")
    os.makedirs(vig_dir, exist_ok=True)
    t0 = time.monotonic()
    vresults = {}

    def one(i, rel):
        d = os.path.join(vig_dir, safe_name(i, rel))
        return rel, d, run_vigil_one(bins["vigil-dataplane"], rule_files, classification, cache,
                                     os.path.join(pcaps, rel), d, i)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for rel, d, r in ex.map(lambda a: one(*a), enumerate(captures)):
            vresults[rel] = (d, r)
            say(f"vigil: {rel}: {'error: ' + r[2] if r[2] else 'ok'} ({r[3]:.1f} s)")
    vigil_replay_s = time.monotonic() - t0
    try:
        sres = sur_future.result()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"error: suricata: {e}")
        return 2
    finally:
        pool.shutdown()
    say(f"suricata: {sres['loaded']} rules loaded, {sres['nfailed']} failed; rule load "
        f"{fmt_s(sres['load_s'])}, replay {fmt_s(sres['replay_s'])}")

    # Compare.
    caps, differences = collections.OrderedDict(), []
    totals = collections.Counter()
    for i, rel in enumerate(captures):
        salerts, sflows, srecords, sn = read_eve(os.path.join(sres["dirs"][i], "eve.json"))
        vdir, (prepared, notes, verror, _) = vresults[rel]
        valerts, vflows, vrecords, vn = read_eve(os.path.join(vdir, "eve.json"))
        sproto = {k[1]: recs[0].get("app_proto") for k, recs in srecords.items()}
        cap = {"suricata_alerts": salerts, "vigil_alerts": valerts, "suricata_flows": sflows,
               "vigil_flows": vflows, "suricata_flow_proto": sproto, "prepared": prepared,
               "vigil_error": verror}
        keys = set(salerts) | set(valerts)
        both = [k for k in keys if k in salerts and k in valerts]
        only_s = sorted(k for k in keys if k not in valerts)
        only_v = sorted(k for k in keys if k not in salerts)
        notes = list(notes) + ([f"vigil: {verror}"] if verror else [])
        cap.update({"both": len(both), "suricata_only": len(only_s), "vigil_only": len(only_v),
                    "suricata_events": sn, "vigil_events": vn, "notes": notes,
                    "both_keys": sorted(both)})
        caps[rel] = cap
        totals.update(both=len(both), suricata=len(only_s), vigil=len(only_v),
                      suricata_events=sn, vigil_events=vn)
        for side, ks, al in (("suricata", only_s, salerts), ("vigil", only_v, valerts)):
            for k in ks:
                rule = rules.get(k[0])
                differences.append({"capture": rel, "sid": k[0], "flow": k[1], "side": side,
                                    "pcap_cnt": [n for n in al[k]],
                                    "suricata_pcap_cnt": salerts.get(k, []),
                                    "msg": rule.msg if rule else ""})
    totals["union"] = totals["both"] + totals["suricata"] + totals["vigil"]

    packet_cache = {}

    def packets_of(rel):
        if rel not in packet_cache:
            p = caps[rel]["prepared"]
            packet_cache[rel] = capture_packets(p) if p else []
        return packet_cache[rel]
    ctx = {"rules": rules, "rejected": rejected, "never": never, "captures": caps,
           "suricata_failed": sres["failed"], "packets": packets_of,
           "suricata_alert_max": suricata_alert_max, "suricata_midstream": suricata_midstream}
    for d in differences:
        d["class"], d["detail"] = classify(d, ctx)

    elapsed = time.monotonic() - started
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit, "build": build, "suricata_version": suricata_version(),
            "suricata_mode": args.suricata_mode,
            "suricata_sets": SURICATA_SETS + args.suricata_set, "binaries": binaries_built,
            "rules_dir": os.path.abspath(args.rules),
            "rule_files": len(rule_files), "rules_enabled": enabled,
            "vigil_summary": vsummary[0] if vsummary else "?", "vigil_never": len(never),
            "suricata_loaded": sres["loaded"], "suricata_failed": sres["nfailed"],
            "vars_check": vars_check, "pcaps_dir": pcaps, "elapsed_s": elapsed,
            "suricata_load_s": sres["load_s"], "suricata_replay_s": sres["replay_s"],
            "vigil_check_s": vigil_check_s, "vigil_replay_s": vigil_replay_s}
    res = {"meta": meta, "totals": dict(totals), "captures": caps, "differences": differences,
           "rules": rules}
    report = build_report(res)
    output = args.output or os.path.join(work, "agreement.md")
    with open(output, "w") as f:
        f.write(report)

    # Summary on stdout.
    print(f"agreement: {len(captures)} captures, both {totals['both']}, Suricata only "
          f"{totals['suricata']}, vigil only {totals['vigil']}, union {totals['union']}: "
          f"{pct(totals['both'], totals['union'])}")
    by_class = collections.Counter(d["class"] for d in differences)
    for cid, n in by_class.most_common():
        print(f"  class {cid}: {n}")
    for d in differences:
        print(f"  {'S-only' if d['side'] == 'suricata' else 'V-only'} {d['capture']} sid "
              f"{d['sid']} {flow_text(d['flow'])}: {d['class']}: {d['detail']}")
    unexplained = by_class.get("unexplained", 0)
    print(f"agreement: {unexplained} unexplained; report {output}; {elapsed:.0f} s")
    if args.json:
        out = {"meta": meta, "totals": dict(totals),
               "captures": {rel: {"both": [[k[0], flow_text(k[1])] for k in c["both_keys"]],
                                  "suricata_only": c["suricata_only"],
                                  "vigil_only": c["vigil_only"],
                                  "suricata_events": c["suricata_events"],
                                  "vigil_events": c["vigil_events"], "notes": c["notes"]}
                            for rel, c in caps.items()},
               "differences": [dict(d, flow=flow_text(d["flow"])) for d in differences]}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 1 if args.strict and unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
