#!/usr/bin/env python3
"""Generated captures check: builds every capture of tests/gen (the issue 4 lateral-movement
scenario and each model's positive and negative capture), replays each through the whole
appliance with scripts/replay.sh (dataplane, event channel, vigil-control and its models, using
BUILD_DIR), and checks that vigil's events show the intended behaviour, that each case's models
breach on its positive capture and not on its negative, and that tshark decodes each capture
without malformed packets or expert warnings (docs/control.md, "Generated test captures").

usage: python3 tests/scenarios/gen_check.py BUILD_DIR [--days N] [--keep DIR] [--only NAME]...
                                                      [--jobs N] [--verbose]

Prints PASS/FAIL per capture with the first problems and a totals line. Exit status: 0 when all
pass, 1 on any failure, 77 (skip) when scapy is missing (this script re-runs itself under
/usr/bin/python3, Debian's python3-scapy, when its own interpreter lacks scapy), 2 on a usage
error or a missing binary. tshark is optional: without it the decode check is skipped (noted).
"""
import argparse
import collections
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GEN = os.path.join(ROOT, "tests", "gen")
MODELS_DIR = os.path.join(ROOT, "rules", "models")
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, GEN)
SKIP = 77
SCAPY_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")

# Anomaly events a capture may legitimately produce: (app_proto, event). Kerberoasting's RC4
# replies raise Suricata's krb5 weak_encryption by design.
ALLOWED_ANOMALIES = {("krb5", "weak_encryption")}
# Expert infos at warning level or above, or TCP analysis flags, fail the decode check.
TSHARK_FILTER = "_ws.malformed || _ws.expert.severity >= 6291456 || tcp.analysis.flags"


def have_scapy():
    try:
        import scapy  # noqa: F401
        return True
    except ImportError:
        return False


def reexec_with_scapy():
    for py in SCAPY_PYTHONS:
        if os.path.exists(py) and os.path.realpath(py) != os.path.realpath(sys.executable):
            ok = subprocess.run([py, "-c", "import scapy"], capture_output=True).returncode == 0
            if ok:
                os.execv(py, [py] + sys.argv)
    print("SKIP: scapy is not installed (python3-scapy)")
    sys.exit(SKIP)


# ----------------------------------------------------------------------------------------------
# Replay


def replay(build, pcap, workdir):
    """Runs the capture through the whole appliance with scripts/replay.sh (vigil-control on a
    store of its own, the dataplane sending its events over the event channel), then reads the
    EVE file the dataplane wrote and the breaches with vigilctl. Returns (events, breaches,
    error)."""
    store = os.path.join(workdir, "store")
    shutil.rmtree(store, ignore_errors=True)  # a --keep directory from an earlier run
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ, VIGIL_BUILD=build)
    try:
        run = subprocess.run([os.path.join(ROOT, "scripts", "replay.sh"), "--data-dir", store,
                              "--models-dir", MODELS_DIR, pcap],
                             capture_output=True, text=True, timeout=300, env=env)
    except subprocess.TimeoutExpired:
        return [], [], "scripts/replay.sh did not finish in 300 s"
    if run.returncode != 0:
        tail = (run.stderr.strip() or run.stdout.strip()).splitlines()[-3:]
        return [], [], f"scripts/replay.sh exit {run.returncode}: {' | '.join(tail)}"
    if not re.search(r" 0 lost", run.stdout):
        return [], [], f"events lost on the way to control: {run.stdout.strip()[:200]}"
    events = []
    with open(os.path.join(store, "run", "eve.json"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                events.append(json.loads(line))
    ctl = subprocess.run([os.path.join(build, "control", "vigilctl"), "--data-dir", store,
                          "--models-dir", MODELS_DIR, "--json", "breaches", "--limit", "10000"],
                         capture_output=True, text=True, timeout=60)
    if ctl.returncode != 0:
        return events, [], f"vigilctl breaches exit {ctl.returncode}: {ctl.stderr.strip()[:200]}"
    return events, json.loads(ctl.stdout)["breaches"], None


def tshark_problems(pcap):
    """Lines tshark flags (malformed, expert warning/error, TCP analysis), or None without
    tshark."""
    if not shutil.which("tshark"):
        return None
    run = subprocess.run(["tshark", "-n", "-r", pcap, "-Y", TSHARK_FILTER], capture_output=True,
                         text=True, timeout=300)
    if run.returncode != 0:
        return [f"tshark exit {run.returncode}: {run.stderr.strip()[:200]}"]
    return [line.strip() for line in run.stdout.splitlines() if line.strip()]


# ----------------------------------------------------------------------------------------------
# Checks


def matching(events, etype, pattern):
    rx = re.compile(pattern)
    return [e for e in events if e.get("event_type") == etype and rx.search(e.get("message", ""))]


def check_expect(events, expect, problems, what="expected"):
    for etype, pattern, minimum in expect:
        n = len(matching(events, etype, pattern))
        if n < minimum:
            problems.append(f"{what} >= {minimum} {etype} /{pattern}/, found {n}")


def check_absent(events, absent, problems):
    for etype, pattern, limit in absent:
        found = matching(events, etype, pattern)
        # `limit` is the count at which the behaviour starts (1: any; 3: brute force needs 3).
        if len(found) >= limit:
            problems.append(f"negative has {len(found)} {etype} /{pattern}/: "
                            f"{found[0].get('message')!r}")


def check_anomalies(events, problems):
    for e in events:
        if e.get("event_type") == "anomaly":
            a = e.get("anomaly") or {}
            key = (a.get("app_proto") or a.get("type"), a.get("event"))
            if key not in ALLOWED_ANOMALIES:
                problems.append(f"anomaly {key[0]} {key[1]}: {e.get('message')!r}")
        if e.get("truncated") or (isinstance(e.get("smb"), dict) and
                                  isinstance(e["smb"].get("dcerpc"), dict) and
                                  e["smb"]["dcerpc"].get("truncated")):
            problems.append(f"truncated event: {e.get('message')!r}")


def lateral_checks(events, info, problems):
    """Every day: the logon, IPC$, atsvc, the SASec bind and call, C$, and one AV.job read of
    the whole .JOB body, all from 10.0.0.9 to 10.0.0.5; no other device touches .job files."""
    per_day = collections.defaultdict(list)
    for e in events:
        if e.get("src_ip") == "10.0.0.9" and e.get("dest_ip") == "10.0.0.5":
            per_day[e.get("timestamp", "")[:10]].append(e)
    wanted = [
        ("smb", r"^SMB2 SESSION_SETUP success NTLM AUTH CORP\\appadmin from AVMGMT01$"),
        ("smb", r"^SMB2 TREE_CONNECT success \\\\10\.0\.0\.5\\IPC\$ \(IPC\)$"),
        ("smb", r"^SMB2 CREATE success \\\\10\.0\.0\.5\\IPC\$ atsvc \(pipe\)$"),
        ("smb", r"atsvc DCERPC BIND sasec v1\.0 accepted$"),
        ("smb", r"atsvc DCERPC REQUEST sasec SASetAccountInformation opnum 0 ok$"),
        ("smb", r"^SMB2 TREE_CONNECT success \\\\10\.0\.0\.5\\C\$$"),
        ("smb", r"^SMB2 READ success \\\\10\.0\.0\.5\\C\$ Windows\\Tasks\\AV\.job "
                rf"{info['job_size']} bytes$"),
    ]
    for day in info["dates"]:
        evs = per_day.get(day, [])
        for etype, pattern in wanted:
            n = len(matching(evs, etype, pattern))
            if n != 1:
                problems.append(f"{day}: {n} {etype} /{pattern}/ (want 1)")
        for e in matching(evs, "smb", r"AV\.job"):
            smb = e.get("smb") or {}
            if e["message"].startswith("SMB2 READ") and smb.get("filename") != \
                    "Windows\\Tasks\\AV.job":
                problems.append(f"{day}: READ event filename {smb.get('filename')!r}")
        for e in matching(evs, "smb", r"SESSION_SETUP success"):
            n = (e.get("smb") or {}).get("ntlmssp") or {}
            if (n.get("user"), n.get("domain"), n.get("host")) != ("appadmin", "CORP",
                                                                   "AVMGMT01"):
                problems.append(f"{day}: smb.ntlmssp {n}")
        for e in matching(evs, "smb", r"DCERPC BIND sasec"):
            ifs = ((e.get("smb") or {}).get("dcerpc") or {}).get("interfaces") or [{}]
            if ifs[0].get("uuid") != "378e52b0-c0a9-11cf-822d-00aa0051e40f":
                problems.append(f"{day}: bind interfaces {ifs}")
    stray = [e for e in matching(events, "smb", r"(?i)\.job\b") if e.get("src_ip") != "10.0.0.9"]
    if stray:
        problems.append(f".job events from other devices: {stray[0].get('message')!r}")
    days_seen = sorted({e["timestamp"][:10] for e in matching(events, "smb", r"AV\.job \d+ bytes")})
    if days_seen != sorted(info["dates"]):
        problems.append(f"AV.job reads on {days_seen}, want {info['dates']}")


def breach_checks(breaches, names, positive, problems):
    """The case's models breach on its positive capture and stay silent on its negative."""
    fired = collections.Counter(b["model"] for b in breaches)
    for name in names:
        if positive and not fired[name]:
            others = ", ".join(sorted(fired)) or "none"
            problems.append(f"model {name!r} did not breach (breaches: {others})")
        if not positive and fired[name]:
            b = next(x for x in breaches if x["model"] == name)
            problems.append(f"model {name!r} breached on the negative: device {b['device']}, "
                            f"{b['event_count']} events")


def lateral_breaches(breaches, info, problems):
    at = [b for b in breaches if b["model"] == "Device / AT Service Scheduled Task"]
    days = sorted({b["time"][:10] for b in at})
    if days != sorted(info["dates"]) or len(at) != len(info["dates"]) or \
            any(b["device"] != "10.0.0.9" for b in at):
        problems.append(f"AT model: {len(at)} breaches on days {days}, devices "
                        f"{sorted({b['device'] for b in at})}; want one a day for 10.0.0.9")


def shipped_models():
    """Model names from rules/models/*.yaml (`name:` lines), with their files."""
    out = []
    if not os.path.isdir(MODELS_DIR):
        return out
    for fn in sorted(os.listdir(MODELS_DIR)):
        if not fn.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(MODELS_DIR, fn), encoding="utf-8") as f:
            for line in f:
                m = re.match(r"""^name:\s*["']?(.*?)["']?\s*$""", line)
                if m:
                    out.append((m.group(1), fn))
                    break
    return out


def full_names(case, shipped):
    """The shipped model names a case is for (`models` holds full names or the part after
    "Category / ")."""
    out = []
    for m in case.models:
        out += [n for n, _ in shipped if m.lower() in (n.lower(), n.split(" / ", 1)[-1].lower())]
    return out


def case_for_model(name, cases):
    short = name.split(" / ", 1)[-1].strip().lower()
    for c in cases:
        for m in c.models:
            if m.lower() in (name.lower(), short):
                return c
    return None


# ----------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--keep", help="write the captures and eve files here and keep them")
    ap.add_argument("--only", action="append", default=[],
                    help="a capture name (lateral, svcctl-pos, ...) or case key (svcctl)")
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    if not have_scapy():
        reexec_with_scapy()
    binary = os.path.join(args.build, "dataplane", "vigil-dataplane")
    if not os.path.exists(binary):
        print(f"error: {binary} not found", file=sys.stderr)
        return 2
    import lateral
    import models

    start = time.monotonic()
    tmp = args.keep or tempfile.mkdtemp(prefix="vigil-gen-")
    os.makedirs(tmp, exist_ok=True)

    def wanted(name, key):
        return not args.only or name in args.only or key in args.only

    # (name, build() -> pcap path, checker(events, problems)); captures are built inside the
    # worker threads so that generation overlaps the replays of earlier captures.
    jobs = []
    shipped = shipped_models()
    if wanted("lateral", "lateral"):
        path = os.path.join(tmp, "lateral.pcap")
        info = {}

        def build_lateral(path=path, info=info):
            info.update(lateral.build(path, days=args.days))
            return path

        def lateral_check(ev, br, pr, info=info):
            lateral_checks(ev, info, pr)
            lateral_breaches(br, info, pr)
        jobs.append(("lateral", build_lateral, lateral_check))
    for case in models.CASES:
        if not (wanted(f"{case.key}-pos", case.key) or wanted(f"{case.key}-neg", case.key)):
            continue

        names = full_names(case, shipped)

        def pos_check(ev, br, pr, c=case, names=names):
            check_expect(ev, c.expect, pr)
            breach_checks(br, names, True, pr)

        def neg_check(ev, br, pr, c=case, names=names):
            check_absent(ev, c.absent, pr)
            check_expect(ev, c.neg_expect, pr, "benign")
            breach_checks(br, names, False, pr)
        jobs.append((f"{case.key}-pos", lambda c=case: models.build(c, tmp, "pos"), pos_check))
        jobs.append((f"{case.key}-neg", lambda c=case: models.build(c, tmp, "neg"), neg_check))
    gen_lock = threading.Lock()  # scapy building is not thread-safe
    gen_time = [0.0]  # CPU seconds spent generating

    def run(i_job):
        i, (name, build, checker) = i_job
        problems = []
        try:
            with gen_lock:
                t = time.process_time()
                pcap = build()
                gen_time[0] += time.process_time() - t
        except Exception as e:  # a generator bug is this capture's failure, not the run's
            return name, [], [], [f"generation failed: {type(e).__name__}: {e}"], ""
        events, breaches, error = replay(args.build, pcap, os.path.join(tmp, "run-" + name))
        if error:
            problems.append(error)
        else:
            check_anomalies(events, problems)
            checker(events, breaches, problems)
        tsh = tshark_problems(pcap)
        note = ""
        if tsh is None:
            note = " (tshark absent: decode not checked)"
        elif tsh:
            problems.append(f"tshark flags {len(tsh)} packets: {tsh[0][:160]}")
        return name, events, breaches, problems, note

    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for r in pool.map(run, enumerate(jobs)):
            results.append(r)

    failed = 0
    for name, events, breaches, problems, note in results:
        counts = collections.Counter(e.get("event_type") for e in events
                                     if e.get("event_type") != "flow")
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        fired = collections.Counter(b["model"].split(" / ", 1)[-1] for b in breaches)
        summary += "; breaches: " + (", ".join(f"{k} {v}" for k, v in sorted(fired.items()))
                                     or "none")
        if problems:
            failed += 1
            print(f"FAIL {name}: {problems[0]}" + (f" (+{len(problems) - 1} more)"
                                                   if len(problems) > 1 else ""))
            if args.verbose:
                for p in problems[1:]:
                    print(f"     {p}")
        else:
            print(f"PASS {name}: {summary}{note}")

    # Every shipped model needs a positive and a negative generator.
    model_failures = 0
    if not args.only:
        for name, fn in shipped:
            if case_for_model(name, models.CASES) is None:
                model_failures += 1
                print(f"FAIL model {name!r} ({fn}): no generator case in tests/gen/models.py")
    total = len(results)
    print(f"{total - failed} of {total} captures passed, {failed} failed"
          + (f"; {model_failures} shipped models without a generator" if model_failures else "")
          + f" (generation {gen_time[0]:.1f} s CPU, total {time.monotonic() - start:.1f} s)")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed or model_failures else 0


if __name__ == "__main__":
    sys.exit(main())
