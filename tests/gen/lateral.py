#!/usr/bin/env python3
"""The issue 4 lateral-movement scenario as a capture: every day at about the same time
(02:15 UTC +- 5 minutes) device 10.0.0.9 (AVMGMT01) logs on to 10.0.0.5 (SRV05) over SMB2 with
NTLM as CORP\\appadmin, tree connects \\\\10.0.0.5\\IPC$, opens the pipe atsvc, binds the SASec
interface (378e52b0-c0a9-11cf-822d-00aa0051e40f v1.0, MS-TSCH 3.2.5.3) and calls
SASetAccountInformation for AV.job, then tree connects \\\\10.0.0.5\\C$ and reads
Windows\\Tasks\\AV.job (an MS-TSCH 2.4 .JOB body running an AV scanner). Benign noise in
between: DNS lookups and SMB reads of ordinary files by other workstations and by AVMGMT01.

usage: /usr/bin/python3 tests/gen/lateral.py OUT.pcap [--days N] [--start YYYY-MM-DDTHH:MM]
                                                      [--seed S]
"""
import argparse
import calendar
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smbgen as g  # noqa: E402

AVMGMT = g.Host("10.0.0.9", "AVMGMT01")
SRV = g.Host("10.0.0.5", "SRV05")
DC = g.Host("10.0.0.2", "DC01")
FS = g.Host("10.0.0.20", "FS01")
WS = [g.Host("10.0.0.21", "WS021"), g.Host("10.0.0.22", "WS022"), g.Host("10.0.0.23", "WS023")]

SASEC = "378e52b0-c0a9-11cf-822d-00aa0051e40f"
SA_SET_ACCOUNT_INFORMATION = 0
TASK_FLAG_RUN_ONLY_IF_LOGGED_ON = 0x2000
DEFAULT_START = "2024-03-04T02:15"


def sa_set_account_information(server, job, account):
    """SASetAccountInformation request stub (MS-TSCH 3.2.5.3.4): [in, string, unique]
    SASEC_HANDLE Handle, [in, string] pwszJobName, [in, string] pwszAccount, [in, string,
    unique] pwszPassword (NULL: run only if logged on), [in] DWORD dwJobFlags."""
    n = g.Ndr()
    n.ptr().wstr(server)
    n.wstr(job)
    n.wstr(account)
    n.ptr(False)
    n.u32(TASK_FLAG_RUN_ONLY_IF_LOGGED_ON)
    return n.bytes()


def av_job(rng, t):
    tm = time.gmtime(t)
    return g.job_file(rng, "C:\\Program Files\\AVScan\\avscan.exe",
                      "/quick /quiet /log C:\\ProgramData\\AVScan\\daily.log",
                      "C:\\Program Files\\AVScan",
                      "CORP\\appadmin", "Daily AV scan", t - 86400 * 20, 2, 30,
                      (tm.tm_year, tm.tm_mon, tm.tm_mday))


def lateral_session(cap, t, job_body):
    """One day's sequence; returns the time it ended."""
    g.dns_exchange(cap, AVMGMT, DC, t - 0.05, "srv05.corp.local", SRV.ip)
    c = g.TcpConn(cap, AVMGMT, SRV, 445, t)
    s = g.Smb2(c, server_name="SRV05")
    s.negotiate()
    s.session_setup("appadmin", "CORP", "AVMGMT01")
    ipc = s.tree_connect("\\\\10.0.0.5\\IPC$")
    pipe = s.open_pipe(ipc, "atsvc")
    pipe.bind(SASEC, (1, 0))
    pipe.call(SA_SET_ACCOUNT_INFORMATION,
              sa_set_account_information("\\\\10.0.0.5", "AV.job", "CORP\\appadmin"),
              g.struct.pack("<I", 0))
    pipe.close()
    s.tree_disconnect(ipc)
    cdrive = s.tree_connect("\\\\10.0.0.5\\C$")
    fid = s.create(cdrive, "Windows\\Tasks\\AV.job", size=len(job_body))
    s.read(cdrive, fid, job_body)
    s.close(cdrive, fid, size=len(job_body))
    s.tree_disconnect(cdrive)
    s.logoff()
    c.close()
    return c.t


def file_read(cap, client, server, t, user, share, path, body):
    """Benign noise: a workstation logs on and reads one file from a disk share."""
    c = g.TcpConn(cap, client, server, 445, t)
    s = g.Smb2(c, server_name=server.name)
    s.negotiate()
    s.session_setup(user, "CORP", client.name)
    tid = s.tree_connect(f"\\\\{server.ip}\\{share}")
    fid = s.create(tid, path, size=len(body))
    s.read_file(tid, fid, body)
    s.close(tid, fid, size=len(body))
    s.tree_disconnect(tid)
    s.logoff()
    c.close()
    return c.t


NOISE_FILES = [
    ("Public", "reports\\weekly-sales.xlsx", 6000),
    ("Public", "handbook\\it-policy.pdf", 9000),
    ("Projects", "alpha\\plan.docx", 5000),
    ("Public", "menus\\canteen.txt", 700),
]
NOISE_NAMES = ["intranet.corp.local", "fs01.corp.local", "www.example.com", "mail.corp.local",
               "wpad.corp.local", "time.windows.com"]


def noise(cap, rng, day_start):
    """A handful of benign events spread over the day."""
    for i in range(6):
        ws = WS[rng.randrange(len(WS))]
        t = day_start + rng.uniform(7 * 3600, 18 * 3600)
        name = NOISE_NAMES[rng.randrange(len(NOISE_NAMES))]
        answer = "10.0.0.%d" % rng.randint(30, 200)
        answer = FS.ip if name.startswith("fs01") else None if name.startswith("wpad") else answer
        g.dns_exchange(cap, ws, DC, t, name, answer)
    for i in range(2):
        ws = WS[rng.randrange(len(WS))]
        share, path, size = NOISE_FILES[rng.randrange(len(NOISE_FILES))]
        t = day_start + rng.uniform(8 * 3600, 17 * 3600)
        file_read(cap, ws, FS, t, "user%s" % ws.name[-2:], share, path, rng.randbytes(size))
    # AVMGMT01 fetches its signature update from the file server an hour after the job read.
    t = day_start + 3 * 3600 + rng.uniform(0, 600)
    g.dns_exchange(cap, AVMGMT, DC, t - 0.05, "fs01.corp.local", FS.ip)
    file_read(cap, AVMGMT, FS, t, "svc-avupdate", "AVUpdates", "defs\\daily.cvd",
              rng.randbytes(20000))


def build(path, days=14, start=DEFAULT_START, seed=4):
    """Writes the capture; returns a dict describing it (the days' dates and job start times)."""
    t0 = calendar.timegm(time.strptime(start, "%Y-%m-%dT%H:%M"))
    cap = g.Capture(seed)
    rng = cap.rng
    job = av_job(rng, t0)
    runs = []
    for day in range(days):
        day_start = t0 - (t0 % 86400) + day * 86400
        t = t0 + day * 86400 + rng.uniform(-300, 300)
        lateral_session(cap, t, job)
        runs.append(t)
        noise(cap, rng, day_start)
    n = cap.write(path)
    return {"packets": n, "runs": runs, "job_size": len(job),
            "dates": [time.strftime("%Y-%m-%d", time.gmtime(t)) for t in runs]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--start", default=DEFAULT_START)
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()
    info = build(a.out, a.days, a.start, a.seed)
    print(f"{a.out}: {info['packets']} packets, {a.days} days from {info['dates'][0]}")


if __name__ == "__main__":
    main()
