"""Replay the suricata-verify captures through vigil-dataplane and evaluate each test's `checks`
against the EVE events vigil writes: the published expectations for vigil's EVE-compatible
events (docs/events-parts/testing.md).

usage: python3 tests/scenarios/suricata_verify.py BUILD_DIR [--only NAME]... [--verbose]
                                                  [--report-only] [--suricata-version V]
                                                  [--feature F]...

Tests are the directories with a test.yaml under ../shared/data/pcaps/suricata-verify (relative
to the repository root), at any depth (grouped tests such as dns/dns-eve). A test's capture is its
`pcap:` (relative to the test directory) or else the single *.pcap/*.pcapng in its directory.
Checks that test what only Suricata does are not applicable, each with its reason: failed
`requires`, `shell`/`stats`/`file-compare` checks, Suricata command-line options vigil has no
equivalent of, and the per-check decisions in sv_exceptions.yaml (alerts from the test's rules,
Suricata's stats events, Suricata configuration). The checks are evaluated by sv_checks.py with
the semantics of suricata-verify's run.py.

Prints one line per test (PASS/FAIL/N/A, passed/applicable checks, the first failure) and the
totals. Exit status: 0 when no check failed, 1 otherwise (0 with --report-only), 77 (skip) when
the shared data or PyYAML is absent, 2 on a usage or harness error.
"""
import argparse
import collections
import fnmatch
import glob
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "pcaps", "suricata-verify")
EXCEPTIONS = os.path.join(HERE, "sv_exceptions.yaml")
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import sv_checks  # noqa: E402  (beside this file)

SKIP = 77

# The Suricata version whose EVE output vigil reproduces: the newest, so that the expectations of
# the suricata-verify snapshot apply unchanged (checks gated on min-version 9 included).
DEFAULT_SURICATA_VERSION = "9.0.0"
# Suricata build features (`requires: features`) vigil has: JA4 (the TLS parser computes it).
# MAGIC (libmagic file types), HAVE_LUA and the like gate tests that are not applicable until
# vigil has them.
VIGIL_FEATURES = ("HAVE_JA4",)

# Suricata command-line options found in tests' `args`, and what they mean for vigil. An option
# listed here with no vigil.yaml override is vigil's behaviour already, so the test's checks
# apply unchanged; any other option makes every filter check of the test not applicable (add
# the option here once vigil has an equivalent, with the vigil.yaml lines that select it).
KNOWN_ARGS = {
    ("-k", "none"): "vigil does not discard packets for bad checksums",
    ("--set", "stream.midstream=true"): "vigil takes up TCP sessions whose handshake it missed",
    ("--set", "stream.reassembly.depth=0"): "vigil reassembles streams without a depth limit",
    ("--set", "app-layer.protocols.tls.ja4-fingerprints=yes"): "vigil always computes JA4",
}

# EVE `types` in a test's suricata.yaml and the event_type each one writes.
EVE_TYPE_EVENTS = {"files": "fileinfo", "file": "fileinfo"}

REPLAY_CONFIG = """
sensor: {{name: vigil}}
eal: {{file_prefix: "{prefix}"}}
ports:
  - {{name: a, device: "net_null0"}}
  - {{name: b, device: "net_null1"}}
bridges: [[a, b]]
workers: {{lcores: [1]}}
flow:
  capacity: 65536
  hash_seed: 12345
outputs:
  eve: {{enabled: true, path: /dev/null}}
  files: {{enabled: true, dir: "{files}"}}
detect: {{enabled: {detect}, rules: {rules}{classification}}}
"""
# Suricata's default classification.config, as shipped with ET Open (categories and severities).
CLASSIFICATION = os.path.join(os.path.dirname(ROOT), "shared", "data", "rules", "et-open-2019",
                              "classification.config")


# ----------------------------------------------------------------------------------------------
# Captures


def _read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        return None
    return endian, data


# Link types vigil does not read, and how to find the ethertype of their frames. Each gives the
# length of the link header and the ethertype (None: from the IP version of the payload).
def _sll(frame, _endian):
    return 16, struct.unpack(">H", frame[14:16])[0] if len(frame) >= 16 else None


def _sll2(frame, _endian):
    return 20, struct.unpack(">H", frame[0:2])[0] if len(frame) >= 20 else None


LINK_HEADERS = {
    0: lambda f, e: (4, None),      # BSD loopback (DLT_NULL), family in the writer's byte order
    108: lambda f, e: (4, None),    # OpenBSD loopback
    12: lambda f, e: (0, None),     # raw IP
    14: lambda f, e: (0, None),
    101: lambda f, e: (0, None),
    228: lambda f, e: (0, None),    # raw IPv4
    229: lambda f, e: (0, None),    # raw IPv6
    113: _sll,                      # Linux cooked capture
    276: _sll2,                     # Linux cooked capture v2
}


def to_ethernet(src, dst):
    """Writes src as an Ethernet pcap at dst when it has another link type. Returns a note when
    it converted, "" when src is Ethernet already (dst is then not written); raises ValueError
    for link types it cannot convert."""
    parsed = _read_pcap(src)
    if parsed is None:
        raise ValueError(f"{src}: not a classic pcap file")
    endian, data = parsed
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0xFFFF
    if linktype == 1:
        return ""
    if linktype not in LINK_HEADERS:
        raise ValueError(f"link type {linktype} cannot be converted to Ethernet")
    snaplen = struct.unpack(endian + "I", data[16:20])[0]
    out = [data[:16], struct.pack(endian + "II", snaplen + 14, 1)]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        hdr, ethertype = LINK_HEADERS[linktype](frame, endian)
        payload = frame[hdr:]
        if ethertype is None:
            version = payload[0] >> 4 if payload else 0
            ethertype = {4: 0x0800, 6: 0x86DD}.get(version, 0x0800)
        eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + struct.pack(
            ">H", ethertype)
        new = eth + payload
        out.append(struct.pack(endian + "IIII", sec, frac, len(new), max(orig - hdr + 14, 0)))
        out.append(new)
    with open(dst, "wb") as f:
        f.write(b"".join(out))
    return f"converted link type {linktype} to Ethernet"


def prepare_capture(pcap, tmp):
    """The capture as a classic Ethernet pcap vigil can replay, and a note on what was done."""
    notes = []
    with open(pcap, "rb") as f:
        magic = f.read(4)
    if magic == b"\x0a\x0d\x0d\x0a":
        if not shutil.which("editcap"):
            raise ValueError("pcapng capture and no editcap to convert it")
        classic = os.path.join(tmp, "classic.pcap")
        subprocess.run(["editcap", "-F", "pcap", pcap, classic], check=True, capture_output=True)
        pcap = classic
        notes.append("converted pcapng to pcap")
    eth = os.path.join(tmp, "ethernet.pcap")
    note = to_ethernet(pcap, eth)
    if note:
        notes.append(note)
        pcap = eth
    return pcap, notes


def replay(build, pcap, tmp, rules=()):
    """Runs the capture through vigil-dataplane, with the signature engine on the test's rule
    files (absolute paths) when it has any; returns (eve.json path, error or None)."""
    cfg = os.path.join(tmp, "vigil.yaml")
    classification = CLASSIFICATION if os.path.exists(CLASSIFICATION) else ""
    with open(cfg, "w") as f:
        f.write(REPLAY_CONFIG.format(prefix=f"vigil-sv-{os.getpid()}",
                                     files=os.path.join(tmp, "files"),
                                     detect="true" if rules else "false",
                                     rules="[" + ", ".join(f'"{r}"' for r in rules) + "]",
                                     classification=(f', classification: "{classification}"'
                                                     if classification else "")))
    eve = os.path.join(tmp, "eve.json")
    out = os.path.join(tmp, "out.pcap")
    for p in (eve, out):
        if os.path.exists(p):
            os.remove(p)
    args = [os.path.join(build, "dataplane", "vigil-dataplane"), "--config", cfg,
            "--pcap-in", pcap, "--pcap-out", out, "--eve", eve]
    try:
        run = subprocess.run(args, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return eve, "vigil-dataplane did not finish in 300 s"
    if run.returncode != 0:
        tail = run.stderr.strip().splitlines()[-3:]
        return eve, f"vigil-dataplane exit {run.returncode}: {' | '.join(tail)}"
    if not os.path.exists(eve):
        return eve, "vigil-dataplane wrote no eve.json"
    return eve, None


# ----------------------------------------------------------------------------------------------
# Tests


def discover(data):
    """Test directories (those with a test.yaml), as names relative to data, sorted."""
    tests = []
    for dirpath, dirnames, filenames in os.walk(data):
        if dirpath != data and "test.yaml" in filenames:
            tests.append(os.path.relpath(dirpath, data))
            dirnames[:] = []
        dirnames.sort()
    return sorted(tests)


def selected(name, patterns):
    if not patterns:
        return True
    base = os.path.basename(name)
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


def find_capture(test_dir, config):
    """(path, None) or (None, Result) when the test has no capture to replay."""
    requires = config.get("requires") or {}
    if "pcap" in config:
        if not config["pcap"]:
            return None, sv_checks.Result(sv_checks.NA, "test runs without a capture",
                                          "no-capture")
        path = os.path.normpath(os.path.join(test_dir, str(config["pcap"])))
        if not os.path.exists(path):
            return None, sv_checks.Result(sv_checks.FAIL, f"pcap {config['pcap']} not found")
        return path, None
    pcaps = sorted(glob.glob(os.path.join(test_dir, "*.pcap")) +
                   glob.glob(os.path.join(test_dir, "*.pcapng")))
    if len(pcaps) > 1:
        return None, sv_checks.Result(sv_checks.FAIL, f"more than one capture: {pcaps}")
    if not pcaps:
        if isinstance(requires, dict) and requires.get("pcap") is False:
            return None, sv_checks.Result(sv_checks.NA, "test runs without a capture",
                                          "no-capture")
        return None, sv_checks.Result(sv_checks.NA, "no capture in the test directory",
                                      "no-capture")
    return pcaps[0], None


def test_level_na(config, target, test_dir):
    """A not-applicable Result for the whole test, or None."""
    na = sv_checks.check_requires(config.get("requires") or {}, target, test_dir)
    if na:
        return na
    skip = config.get("skip")
    if skip is True:
        return sv_checks.Result(sv_checks.NA, "skipped by default (skip: true)", "skip")
    if isinstance(skip, list):
        for entry in skip:
            if not isinstance(entry, dict):
                continue
            if "uid" in entry and hasattr(os, "getuid") and os.getuid() == entry["uid"]:
                return sv_checks.Result(sv_checks.NA, entry.get("msg", f"not for uid "
                                                        f"{entry['uid']}"), "skip")
            if "feature" in entry and entry["feature"] in target.features:
                return sv_checks.Result(sv_checks.NA, entry.get(
                    "msg", f"not for feature {entry['feature']}"), "skip")
    if "command" in config:
        return sv_checks.Result(sv_checks.NA, "runs its own Suricata command line",
                                "suricata-command")
    if config.get("exit-code", 0) != 0:
        return sv_checks.Result(sv_checks.NA, f"expects Suricata to exit with "
                                f"{config['exit-code']}", "suricata-command")
    return None


def split_args(config):
    """The test's Suricata options as (option, value) pairs, as run.py splits them."""
    tokens = []
    for arg in config.get("args") or []:
        tokens += [t for t in re.split(r"\s", str(arg)) if t]
    pairs, i = [], 0
    while i < len(tokens):
        if tokens[i] in ("-k", "--set") and i + 1 < len(tokens):
            pairs.append((tokens[i], tokens[i + 1]))
            i += 2
        else:
            pairs.append((tokens[i], None))
            i += 1
    return pairs


def eve_types(test_dir):
    """The event types the test's own suricata.yaml writes to eve.json, or None (all: no
    suricata.yaml, or none that lists types)."""
    import yaml
    path = os.path.join(test_dir, "suricata.yaml")
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            conf = yaml.safe_load(f)
    except (yaml.YAMLError, OSError):
        return None
    for output in (conf or {}).get("outputs") or []:
        eve = output.get("eve-log") if isinstance(output, dict) else None
        if not isinstance(eve, dict) or eve.get("enabled", True) in (False, "no"):
            continue
        if os.path.basename(str(eve.get("filename", "eve.json"))) != "eve.json":
            continue
        types = set()
        for t in eve.get("types") or []:
            name = next(iter(t)) if isinstance(t, dict) else str(t)
            types.add(EVE_TYPE_EVENTS.get(name, name))
        return types or None
    return None


def load_exceptions(path):
    """{(test, check number): Result} from sv_exceptions.yaml, and the entries as listed."""
    import yaml
    if not os.path.exists(path):
        return {}, []
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    table, entries = {}, []
    for n, entry in enumerate(doc.get("exceptions") or [], 1):
        missing = [k for k in ("test", "checks", "category", "reason") if k not in entry]
        if missing:
            raise ValueError(f"{path}: exception {n}: missing {', '.join(missing)}")
        checks = entry["checks"]
        if checks != "all" and not (isinstance(checks, list) and
                                    all(isinstance(c, int) and c >= 1 for c in checks)):
            raise ValueError(f"{path}: exception {n}: checks must be 'all' or a list of "
                             f"check numbers (1-based)")
        entries.append(entry)
        for c in ([None] if checks == "all" else checks):
            table[(entry["test"], c)] = sv_checks.Result(sv_checks.NA, entry["reason"].strip(),
                                                         entry["category"])
    return table, entries


def stale_exceptions(entries, tests):
    """Warnings for exceptions that name a test or check that does not exist."""
    warnings = []
    for e in entries:
        if e["test"] not in tests:
            warnings.append(f"sv_exceptions.yaml: test {e['test']} not found")
            continue
        n = len(tests[e["test"]].get("checks") or [])
        if e["checks"] != "all":
            bad = [c for c in e["checks"] if c > n]
            if bad:
                warnings.append(f"sv_exceptions.yaml: {e['test']} has {n} checks, no check "
                                f"{', '.join(map(str, bad))}")
    return warnings


def run_test(name, config, build, target, exceptions, tmp):
    """(results, notes): one Result per check of the test."""
    test_dir = os.path.join(DATA, name)
    checks = config.get("checks") or []
    notes = []
    na = test_level_na(config, target, test_dir)
    if na:
        return [na] * max(len(checks), 1), notes
    pcap, problem = find_capture(test_dir, config)
    if problem:
        return [problem] * max(len(checks), 1), notes
    notes.append(f"capture {os.path.relpath(pcap, DATA)}")

    unknown = [f"{o} {v}" if v else o for o, v in split_args(config) if (o, v) not in KNOWN_ARGS]
    known = [f"{o} {v}" for o, v in split_args(config) if (o, v) in KNOWN_ARGS]
    if known:
        notes.append(f"Suricata options vigil matches by default: {', '.join(known)}")
    rules = sorted(os.path.basename(p) for p in glob.glob(os.path.join(test_dir, "*.rules")))
    if rules:
        notes.append(f"Suricata rules: {', '.join(rules)}")

    results, pending = [None] * len(checks), []
    for i, check in enumerate(checks, 1):
        explicit = exceptions.get((name, i)) or exceptions.get((name, None))
        if explicit:
            results[i - 1] = explicit
        elif unknown and sv_checks.check_kind(check) == "filter":
            results[i - 1] = sv_checks.Result(
                sv_checks.NA, f"Suricata option {', '.join(unknown)} has no vigil equivalent",
                "suricata-option")
        elif sv_checks.check_kind(check) != "filter":
            results[i - 1] = sv_checks.evaluate_check(check, [], target)
        else:
            pending.append(i)
    if not pending and checks:
        return results, notes

    try:
        replayed, conv_notes = prepare_capture(pcap, tmp)
    except (ValueError, OSError, subprocess.CalledProcessError) as e:
        err = sv_checks.Result(sv_checks.FAIL, f"capture not replayable: {e}")
        return [err if i in pending else r for i, r in enumerate(results, 1)] or [err], notes
    notes += conv_notes
    eve, error = replay(build, replayed, tmp,
                        sorted(glob.glob(os.path.join(test_dir, "*.rules"))))
    if error:
        err = sv_checks.Result(sv_checks.FAIL, error)
        return [err if i in pending else r for i, r in enumerate(results, 1)] or [err], notes
    try:
        events = sv_checks.load_events(eve)
    except ValueError as e:
        err = sv_checks.Result(sv_checks.FAIL, str(e))
        return [err if i in pending else r for i, r in enumerate(results, 1)] or [err], notes
    by_type = collections.Counter(str(e.get("event_type")) for e in events)
    notes.append("vigil wrote " + (", ".join(f"{n} {t}" for t, n in sorted(by_type.items()))
                                   or "no events"))
    types = eve_types(test_dir)
    if types is not None:
        kept = [e for e in events if e.get("event_type") in types]
        notes.append(f"the test's suricata.yaml logs only {', '.join(sorted(types))} to "
                     f"eve.json: {len(kept)} of {len(events)} events kept")
        events = kept
    for i in pending:
        r = sv_checks.evaluate_check(checks[i - 1], events, target)
        if types is not None and r.status == sv_checks.FAIL and r.reason.startswith("no events"):
            r.reason += (f"; the test's suricata.yaml logs only {', '.join(sorted(types))}, "
                         f"vigil wrote {', '.join(sorted(by_type)) or 'nothing'}")
        results[i - 1] = r
    if not checks:  # as run.py: a test without checks passes when the run succeeds
        results = [sv_checks.Result(sv_checks.PASS, "no checks; the replay ran cleanly")]
    return results, notes


def summary_line(name, results):
    passed = sum(r.status == sv_checks.PASS for r in results)
    failed = [(i, r) for i, r in enumerate(results, 1) if r.status == sv_checks.FAIL]
    na = [r for r in results if r.status == sv_checks.NA]
    applicable = passed + len(failed)
    na_text = ""
    if na:
        cats = collections.Counter(r.category for r in na)
        na_text = f" ({len(na)} n/a: " + ", ".join(f"{c} {n}" for c, n in sorted(cats.items()))
        na_text += ")"
    if failed:
        i, r = failed[0]
        more = f"; +{len(failed) - 1} more failed" if len(failed) > 1 else ""
        return f"FAIL {name} {passed}/{applicable}: check {i}: {r.reason}{more}{na_text}"
    if applicable == 0:
        return f"N/A  {name} 0/0{na_text}"
    return f"PASS {name} {passed}/{applicable}{na_text}"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Evaluate suricata-verify checks against vigil's EVE output.")
    parser.add_argument("build", metavar="BUILD_DIR")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="a test (name relative to suricata-verify/, its directory name, "
                        "or a glob); repeatable")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="every check's result and reason, and notes on each replay")
    parser.add_argument("--report-only", action="store_true",
                        help="exit 0 even when checks fail")
    parser.add_argument("--suricata-version", default=DEFAULT_SURICATA_VERSION,
                        help=f"the Suricata version requires are judged against "
                        f"(default {DEFAULT_SURICATA_VERSION})")
    parser.add_argument("--feature", action="append", default=list(VIGIL_FEATURES),
                        help="a Suricata build feature vigil has (requires: features); "
                        "repeatable")
    args = parser.parse_args(argv)

    if not os.path.isdir(DATA):
        print(f"SKIP: {DATA} is absent: no suricata-verify tests to run")
        return SKIP
    try:
        import yaml  # noqa: F401
    except ImportError:
        print("SKIP: PyYAML is not installed for this python3 (Debian: python3-yaml)")
        return SKIP
    binary = os.path.join(args.build, "dataplane", "vigil-dataplane")
    if not os.access(binary, os.X_OK):
        print(f"error: {binary} is missing: build first (ninja -C {args.build})")
        return 2
    target = sv_checks.Target(args.suricata_version, args.feature)
    try:
        exceptions, entries = load_exceptions(EXCEPTIONS)
    except (ValueError, yaml.YAMLError) as e:
        print(f"error: {e}")
        return 2

    names = discover(DATA)
    configs, load_errors = {}, {}
    for name in names:
        try:
            with open(os.path.join(DATA, name, "test.yaml"), encoding="utf-8") as f:
                configs[name] = yaml.safe_load(f) or {}
        except (yaml.YAMLError, OSError) as e:
            load_errors[name] = str(e).replace("\n", " ")
    warnings = stale_exceptions(entries, configs)
    selection = [n for n in names if selected(n, args.only)]
    if args.only and not selection:
        print(f"error: no test matches {', '.join(args.only)}")
        return 2

    totals = collections.Counter()
    na_reasons = collections.Counter()
    tests = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="vigil-sv-") as tmp:
        for name in selection:
            if name in load_errors:
                results, notes = [sv_checks.Result(sv_checks.FAIL,
                                                   f"test.yaml: {load_errors[name]}")], []
            else:
                try:
                    results, notes = run_test(name, configs[name], args.build, target,
                                              exceptions, tmp)
                except Exception as e:  # a harness error is a failure, with its reason
                    results, notes = [sv_checks.Result(
                        sv_checks.FAIL, f"harness error: {type(e).__name__}: {e}")], []
            line = summary_line(name, results)
            tests[line.split()[0]] += 1
            print(line, flush=True)
            if args.verbose:
                for note in notes:
                    print(f"     note: {note}")
                for i, r in enumerate(results, 1):
                    tag = r.status.upper() + (f" ({r.category})" if r.category else "")
                    print(f"     check {i}: {tag}: {r.reason}")
            for r in results:
                totals[r.status] += 1
                if r.status == sv_checks.NA:
                    na_reasons[r.category] += 1
    for w in warnings:
        print(f"WARN {w}")
    by_reason = ", ".join(f"{c} {n}" for c, n in sorted(na_reasons.items(),
                                                         key=lambda kv: (-kv[1], kv[0])))
    print(f"suricata-verify: {totals[sv_checks.PASS]} checks passed, {totals[sv_checks.FAIL]} "
          f"failed, {totals[sv_checks.NA]} not applicable"
          + (f" (by reason: {by_reason})" if by_reason else ""))
    print(f"suricata-verify: {sum(tests.values())} tests: {tests['PASS']} passed, "
          f"{tests['FAIL']} failed, {tests['N/A']} not applicable; "
          f"Suricata {args.suricata_version}, features: {', '.join(args.feature) or 'none'}")
    if totals[sv_checks.FAIL] and not args.report_only:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
