#!/usr/bin/env python3
"""The autonomous-response scenario as a capture: workstation 10.0.0.66 (WS066) logs on to
10.0.0.5 (SRV05) over SMB2, creates and starts a service through svcctl (MS-SCMR
RCreateServiceW: the behaviour of "Device / Remote Service Creation"), and then, on the same
connection, keeps writing a large executable to ADMIN$. Meanwhile another workstation,
10.0.0.21 (WS021), reads a file from the file server 10.0.0.20 and looks up names in DNS:
traffic that a block of the attacker's connection must not touch.

Replayed at a bounded packet rate (scripts/replay.sh --replay-pps) with a model whose response
is `block_connection` in `autonomous` mode, the write's later packets never reach the output.

usage: /usr/bin/python3 tests/gen/respond.py OUT.pcap   (prints one JSON line describing it)
"""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models as m  # noqa: E402
import smbgen as g  # noqa: E402

WS = g.Host("10.0.0.21", "WS021")


def build(path):
    cap = g.Capture(11)
    rng = cap.rng
    c, s = m.logon(cap, m.ATT, m.SRV, m.T0)
    tid, p = m.ipc_pipe(s, m.SRV, "svcctl", m.SVCCTL)
    scm = m.scm_open(p, rng, m.SRV)
    n = g.Ndr()  # RCreateServiceW (MS-SCMR 3.1.4.12)
    n.raw(scm).wstr("WinSvcUpd").ptr().wstr("Windows Update Helper").u32(0xF01FF).u32(0x10)
    n.u32(3).u32(1).wstr("%COMSPEC% /C C:\\Windows\\Temp\\upd.bat").ptr(False).ptr(False)
    n.ptr(False).u32(0).ptr(False).ptr(False).u32(0)
    svc = g.policy_handle(rng)
    p.call(12, n.bytes(), b"\0\0\0\0" + svc + m.ok())
    trigger_t = c.t
    m.scm_close(p, svc)
    m.scm_close(p, scm)
    m.done_pipe(s, tid, p)
    # The same connection goes on: a 1.2 MB executable written to ADMIN$ in 16 KiB writes.
    c.sleep(0.2)
    write_start = c.t
    body = m.mz_body(rng, 1200 * 1024)
    tid = s.tree_connect(f"\\\\{m.SRV.ip}\\ADMIN$")
    fid = s.create(tid, "Temp\\wupd.exe", disposition=g.FILE_OVERWRITE_IF, access=0x0012019F,
                   size=0, action=2)
    s.write_file(tid, fid, body, chunk=16384)
    s.close(tid, fid, size=len(body))
    m.finish(c, s)
    # Bystanders over the same time span: a file read and DNS lookups by another workstation.
    fs_c, fs_s = m.logon(cap, WS, m.FS, write_start, user="user21")
    fs_c.step = 0.001
    m.read_file(fs_s, f"\\\\{m.FS.ip}\\Public", "handbook\\it-policy.pdf", rng.randbytes(300000))
    m.finish(fs_c, fs_s)
    for i in range(40):
        g.dns_exchange(cap, WS, m.DC, write_start + i * 0.01, "intranet.corp.local", "10.0.0.80")
    packets = cap.write(path)
    return {"packets": packets, "attacker": m.ATT.ip, "server": m.SRV.ip,
            "attacker_port": c.sport, "trigger_time": trigger_t}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(json.dumps(build(sys.argv[1])))
