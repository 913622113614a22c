#!/usr/bin/env python3
"""A positive and a negative capture for each shipped model (rules/models/*.yaml): the positive
contains the behaviour the model looks for, the negative is similar benign traffic that must not
make that model fire. Written from the specifications (MS-SMB2, MS-RPCE, MS-NLMP, MS-SCMR,
MS-RRP, MS-SAMR, MS-LSAT, MS-DRSR, MS-TSCH, MS-DCOM, RFC 4120) with smbgen; the DCE-RPC stubs
are NDR20 of the methods' IDL, so that Wireshark decodes them without malformed packets.

Each case in CASES names the models it is for (`models`: exact model names, or the part after
"Category / ") and says which vigil events prove the capture holds what it should: `expect`
(positive), `neg_expect` (negative) and `absent` (must not occur in the negative), each a list
of (event_type, regular expression on `message`, minimum count).

usage: /usr/bin/python3 tests/gen/models.py OUTDIR [--only KEY]...   (writes KEY-pos.pcap and
KEY-neg.pcap for each case)
"""
import argparse
import calendar
import os
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smbgen as g  # noqa: E402

ATT = g.Host("10.0.0.66", "WS066")     # the acting workstation
SRV = g.Host("10.0.0.5", "SRV05")      # member server
DC = g.Host("10.0.0.2", "DC01")        # domain controller, KDC, DNS
FS = g.Host("10.0.0.20", "FS01")       # file server
T0 = calendar.timegm(time.strptime("2024-03-11T14:00", "%Y-%m-%dT%H:%M"))
DOMAIN_SID = "S-1-5-21-1004336348-1177238915-682003330"

SVCCTL = ("367abb81-9844-35f1-ad32-98f038001003", (2, 0))
WINREG = ("338cd001-2244-31f1-aaaa-900038001003", (1, 0))
SAMR = ("12345778-1234-abcd-ef00-0123456789ac", (1, 0))
LSARPC = ("12345778-1234-abcd-ef00-0123456789ab", (0, 0))
DRSUAPI = ("e3514235-4b06-11d1-ab04-00c04fc2dcd2", (4, 0))
EPM = ("e1af8308-5d1f-11c9-91a4-08002b14a0fa", (3, 0))
TSCH = ("86d35949-83c9-4044-b424-db363231fd0c", (1, 0))
ATSVC = ("1ff70682-0a51-30e8-076d-740be8cee98b", (1, 0))
REMOTE_SCM_ACTIVATOR = ("000001a0-0000-0000-c000-000000000046", (0, 0))
OBJECT_EXPORTER = ("99fcfec4-5260-101b-bbcb-00aa0021347a", (0, 0))
WBEM_LEVEL1_LOGIN = ("f309ad18-d86a-11d0-a075-00c04fb68820", (0, 0))


# ----------------------------------------------------------------------------------------------
# Building blocks


def logon(cap, client, server, t, user="appadmin", domain="CORP", success=True):
    c = g.TcpConn(cap, client, server, 445, t)
    s = g.Smb2(c, server_name=server.name)
    s.negotiate()
    s.session_setup(user, domain, client.name, success)
    return c, s


def finish(c, s):
    s.logoff()
    c.close()
    return c.t


def ipc_pipe(s, server, name, iface):
    tid = s.tree_connect(f"\\\\{server.ip}\\IPC$")
    p = s.open_pipe(tid, name)
    p.bind(iface[0], iface[1])
    return tid, p


def done_pipe(s, tid, p):
    p.close()
    s.tree_disconnect(tid)


def ok():
    return struct.pack("<I", 0)


def handle_out(rng, status=0):
    return g.policy_handle(rng) + struct.pack("<I", status)


# ----------------------------------------------------------------------------------------------
# MS-SCMR (svcctl)


def scm_open(p, rng, server):
    n = g.Ndr()
    n.ptr().wstr(server.ip).ptr().wstr("ServicesActive").u32(0xF003F)
    h = g.policy_handle(rng)
    p.call(15, n.bytes(), h + ok())  # ROpenSCManagerW
    return h


def scm_close(p, h):
    p.call(0, h, b"\0" * 20 + ok())  # RCloseServiceHandle


def svcctl_pos(cap):
    c, s = logon(cap, ATT, SRV, T0)
    rng = cap.rng
    tid, p = ipc_pipe(s, SRV, "svcctl", SVCCTL)
    scm = scm_open(p, rng, SRV)
    n = g.Ndr()  # RCreateServiceW (MS-SCMR 3.1.4.12)
    n.raw(scm).wstr("WinSvcUpd").ptr().wstr("Windows Update Helper").u32(0xF01FF).u32(0x10)
    n.u32(3).u32(1).wstr("%COMSPEC% /C C:\\Windows\\Temp\\upd.bat").ptr(False).ptr(False)
    n.ptr(False).u32(0).ptr(False).ptr(False).u32(0)
    svc = g.policy_handle(rng)
    p.call(12, n.bytes(), struct.pack("<I", 0) + svc + ok())
    n = g.Ndr().raw(svc).u32(0).ptr(False)  # RStartServiceW (3.1.4.30), no arguments
    p.call(19, n.bytes(), ok())
    scm_close(p, svc)
    scm_close(p, scm)
    done_pipe(s, tid, p)
    return finish(c, s)


def svcctl_neg(cap):
    """Service monitoring: open the SCM, open a service, query its status."""
    c, s = logon(cap, ATT, SRV, T0)
    rng = cap.rng
    tid, p = ipc_pipe(s, SRV, "svcctl", SVCCTL)
    scm = scm_open(p, rng, SRV)
    n = g.Ndr().raw(scm).wstr("Spooler").u32(0x4)  # ROpenServiceW, SERVICE_QUERY_STATUS
    svc = g.policy_handle(rng)
    p.call(16, n.bytes(), svc + ok())
    status = struct.pack("<7I", 0x110, 4, 0x85, 0, 0, 0, 0)  # SERVICE_STATUS: running
    p.call(6, svc, status + ok())  # RQueryServiceStatus
    scm_close(p, svc)
    scm_close(p, scm)
    done_pipe(s, tid, p)
    return finish(c, s)


# ----------------------------------------------------------------------------------------------
# MS-RRP (winreg)


def winreg_pos(cap):
    c, s = logon(cap, ATT, SRV, T0)
    rng = cap.rng
    tid, p = ipc_pipe(s, SRV, "winreg", WINREG)
    hklm = g.policy_handle(rng)
    p.call(2, g.Ndr().ptr(False).u32(0x02000000).bytes(), hklm + ok())  # OpenLocalMachine
    key = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run"
    n = g.Ndr().raw(hklm).ustr_hdr(key, nul=True).ustr_body(key, nul=True).u32(0).u32(0x20006)
    hkey = g.policy_handle(rng)
    p.call(15, n.bytes(), hkey + ok())  # BaseRegOpenKey
    value = g.utf16("C:\\Users\\Public\\upd.exe") + b"\0\0"
    n = g.Ndr().raw(hkey).ustr_hdr("Updater", nul=True).ustr_body("Updater", nul=True)
    n.u32(1).u32(len(value)).raw(value).align(4).u32(len(value))
    p.call(22, n.bytes(), ok())  # BaseRegSetValue, REG_SZ
    p.call(5, hkey, b"\0" * 20 + ok())  # BaseRegCloseKey
    p.call(5, hklm, b"\0" * 20 + ok())
    done_pipe(s, tid, p)
    return finish(c, s)


def lsa_open(p, rng, server):
    """LsarOpenPolicy2 (MS-LSAD 3.1.4.4.1) with a security QoS, as Windows sends it."""
    n = g.Ndr().ptr().wstr("\\\\" + server.ip)
    n.u32(24).ptr(False).ptr(False).u32(0).ptr(False).ptr()  # OBJECT_ATTRIBUTES
    n.u32(12).u16(2).u8(1).u8(0)  # SECURITY_QUALITY_OF_SERVICE
    n.u32(0x00000801)
    h = g.policy_handle(rng)
    p.call(44, n.bytes(), h + ok())
    return h


def benign_ipc(cap, client=ATT, server=SRV, t=T0):
    """An ordinary IPC$ session: LSA policy open and close (what name resolution does), then a
    file read from a disk share."""
    c, s = logon(cap, client, server, t)
    tid, p = ipc_pipe(s, server, "lsarpc", LSARPC)
    h = lsa_open(p, cap.rng, server)
    p.call(0, h, b"\0" * 20 + ok())  # LsarClose
    done_pipe(s, tid, p)
    body = cap.rng.randbytes(3000)
    tid = s.tree_connect(f"\\\\{server.ip}\\Public")
    fid = s.create(tid, "docs\\readme.txt", size=len(body))
    s.read(tid, fid, body)
    s.close(tid, fid, size=len(body))
    s.tree_disconnect(tid)
    return finish(c, s)


# ----------------------------------------------------------------------------------------------
# MS-SAMR and MS-LSAT


def sam_array(n, entries):
    """SAMPR_ENUMERATION_BUFFER* (out): pointer, count, pointer to the conformant array of
    SAMPR_RID_ENUMERATION, then the names' deferred bodies."""
    n.ptr().u32(len(entries)).ptr().u32(len(entries))
    for rid, name in entries:
        n.u32(rid).ustr_hdr(name)
    for rid, name in entries:
        n.ustr_body(name)
    n.u32(len(entries))  # CountReturned
    return n


def samr_prologue(p, rng, server):
    n = g.Ndr().ptr().wstr("\\\\" + server.ip).u32(0x30).u32(1).u32(1).u32(3).u32(0)
    sh = g.policy_handle(rng)
    p.call(64, n.bytes(), g.Ndr().u32(1).u32(1).u32(3).u32(0).raw(sh).u32(0).bytes())  # Connect5
    return sh


def samr_domain(p, rng, sh):
    n = g.Ndr().raw(sh).ustr_hdr("CORP").ustr_body("CORP")
    p.call(5, n.bytes(), g.Ndr().ptr().sid(DOMAIN_SID).u32(0).bytes())  # LookupDomainInSamServer
    n = g.Ndr().raw(sh).u32(0x205).sid(DOMAIN_SID)
    dh = g.policy_handle(rng)
    p.call(7, n.bytes(), dh + ok())  # SamrOpenDomain
    return dh


def samr_pos(cap):
    c, s = logon(cap, ATT, DC, T0)
    rng = cap.rng
    tid, p = ipc_pipe(s, DC, "samr", SAMR)
    sh = samr_prologue(p, rng, DC)
    n = g.Ndr().raw(sh).u32(0).u32(0xFFFF)
    p.call(6, n.bytes(), sam_array(g.Ndr().u32(0), [(0, "CORP"), (0, "Builtin")]).u32(0).bytes())
    dh = samr_domain(p, rng, sh)
    users = [(500, "Administrator"), (501, "Guest"), (502, "krbtgt"), (1104, "appadmin"),
             (1105, "jsmith"), (1106, "svc-sql"), (1107, "svc-backup"), (1108, "mlopez")]
    n = g.Ndr().raw(dh).u32(0).u32(0x10).u32(0xFFFF)
    p.call(13, n.bytes(), sam_array(g.Ndr().u32(0), users).u32(0).bytes())  # EnumerateUsers
    groups = [(512, "Domain Admins"), (513, "Domain Users"), (519, "Enterprise Admins")]
    n = g.Ndr().raw(dh).u32(0).u32(0xFFFF)
    p.call(11, n.bytes(), sam_array(g.Ndr().u32(0), groups).u32(0).bytes())  # EnumerateGroups
    p.call(1, dh, b"\0" * 20 + ok())
    p.call(1, sh, b"\0" * 20 + ok())
    done_pipe(s, tid, p)
    return finish(c, s)


def samr_neg(cap):
    """Looking up and opening one user by name (what a password change does)."""
    c, s = logon(cap, ATT, DC, T0)
    rng = cap.rng
    tid, p = ipc_pipe(s, DC, "samr", SAMR)
    sh = samr_prologue(p, rng, DC)
    dh = samr_domain(p, rng, sh)
    n = g.Ndr().raw(dh).u32(1).u32(1000).u32(0).u32(1).ustr_hdr("jsmith").ustr_body("jsmith")
    out = g.Ndr().u32(1).ptr().u32(1).u32(1105).u32(1).ptr().u32(1).u32(1).u32(0)
    p.call(17, n.bytes(), out.bytes())  # SamrLookupNamesInDomain
    uh = g.policy_handle(rng)
    p.call(34, g.Ndr().raw(dh).u32(0x2011B).u32(1105).bytes(), uh + ok())  # SamrOpenUser
    p.call(1, uh, b"\0" * 20 + ok())
    p.call(1, dh, b"\0" * 20 + ok())
    p.call(1, sh, b"\0" * 20 + ok())
    done_pipe(s, tid, p)
    return finish(c, s)


def lsa_lookup_sids(p, rng, h, rids):
    sids = [f"{DOMAIN_SID}-{r}" for r in rids]
    n = g.Ndr().raw(h).u32(len(sids)).ptr().u32(len(sids))
    for _ in sids:
        n.ptr()
    for sid in sids:
        n.sid(sid)
    n.u32(0).ptr(False).u16(1).u32(0)  # TranslatedNames (empty), LookupLevel, MappedCount
    out = g.Ndr().ptr().u32(1).ptr().u32(32).u32(1).ustr_hdr("CORP").ptr()
    out.ustr_body("CORP").sid(DOMAIN_SID)
    out.u32(len(sids)).ptr().u32(len(sids))
    for r in rids:
        out.u16(1).ustr_hdr(f"user{r}").u32(0)
    for r in rids:
        out.ustr_body(f"user{r}")
    out.u32(len(sids)).u32(0)
    p.call(15, n.bytes(), out.bytes())  # LsarLookupSids (MS-LSAT 3.1.4.11)


def lsarpc_pos(cap):
    """SID brute-forcing: LsarLookupSids over ranges of RIDs (as lookupsid tools do)."""
    c, s = logon(cap, ATT, DC, T0)
    rng = cap.rng
    tid, p = ipc_pipe(s, DC, "lsarpc", LSARPC)
    h = lsa_open(p, rng, DC)
    for start in range(500, 1500, 100):
        lsa_lookup_sids(p, rng, h, list(range(start, start + 100, 10)))
    p.call(0, h, b"\0" * 20 + ok())
    done_pipe(s, tid, p)
    return finish(c, s)


# ----------------------------------------------------------------------------------------------
# MS-DRSR over TCP after the endpoint mapper


def tower(iface, ip, port):
    """A TCP/IP protocol tower (C706 appendix L): interface, NDR, connection-oriented RPC, TCP
    port, IP address."""
    def floor(lhs, rhs):
        return struct.pack("<H", len(lhs)) + lhs + struct.pack("<H", len(rhs)) + rhs
    u, (major, minor) = iface
    return struct.pack("<H", 5) + b"".join([
        floor(b"\x0d" + g.uuid_le(u) + struct.pack("<H", major), struct.pack("<H", minor)),
        floor(b"\x0d" + g.uuid_le(g.NDR[0]) + struct.pack("<H", 2), struct.pack("<H", 0)),
        floor(b"\x0b", struct.pack("<H", 0)),
        floor(b"\x07", struct.pack(">H", port)),
        floor(b"\x09", bytes(int(x) for x in ip.split(".")))])


def ept_map(cap, client, server, t, iface, port):
    """Endpoint mapper lookup on TCP 135 (ept_map, C706 appendix O); returns the time after."""
    c = g.TcpConn(cap, client, server, 135, t)
    r = g.RpcTcp(c)
    r.bind(*EPM)
    tw = tower(iface, "0.0.0.0", 0)
    # Full pointers numbered as Windows numbers them (1, 2 in the request, 3 in the answer).
    n = g.Ndr().u32(1).raw(b"\0" * 16).u32(2).u32(len(tw)).u32(len(tw)).raw(tw).align(4)
    n.raw(b"\0" * 20).u32(4)
    tw2 = tower(iface, server.ip, port)
    out = g.Ndr().raw(b"\0" * 20).u32(1).u32(4).u32(0).u32(1).u32(3)
    out.u32(len(tw2)).u32(len(tw2)).raw(tw2).align(4).u32(0)
    r.call(3, n.bytes(), out.bytes())
    c.close()
    return c.t


def drs_session(cap, crack_only):
    port = 49667
    t = ept_map(cap, ATT, DC, T0, DRSUAPI, port)
    c = g.TcpConn(cap, ATT, DC, port, t + 0.01)
    r = g.RpcTcp(c, auth={"user": "appadmin", "domain": "CORP", "workstation": ATT.name,
                          "server_name": DC.name, "dns_domain": "corp.local",
                          "spn": "E3514235-4B06-11D1-AB04-00C04FC2DCD2/dc01.corp.local"})
    r.bind(*DRSUAPI)
    r.call(0, b"\0" * 76, b"\0" * 100)  # IDL_DRSBind (sealed)
    if crack_only:
        r.call(12, b"\0" * 120, b"\0" * 160)  # IDL_DRSCrackNames
    else:
        r.call(12, b"\0" * 120, b"\0" * 160)
        for _ in range(2):
            r.call(3, b"\0" * 240, b"\0" * 3900)  # IDL_DRSGetNCChanges
    r.call(1, b"\0" * 20, b"\0" * 28)  # IDL_DRSUnbind
    c.close()
    return c.t


def dcsync_pos(cap):
    return drs_session(cap, crack_only=False)


def dcsync_neg(cap):
    """Name cracking (what admin tools and Exchange do): drsuapi without GetNCChanges."""
    return drs_session(cap, crack_only=True)


# ----------------------------------------------------------------------------------------------
# MS-TSCH: ITaskSchedulerService and ATSvc over \PIPE\atsvc

TASK_XML = ("<?xml version=\"1.0\" encoding=\"UTF-16\"?><Task version=\"1.2\" xmlns=\"http://"
            "schemas.microsoft.com/windows/2004/02/mit/task\"><Triggers><CalendarTrigger>"
            "<StartBoundary>2024-03-11T14:05:00</StartBoundary><ScheduleByDay><DaysInterval>1"
            "</DaysInterval></ScheduleByDay></CalendarTrigger></Triggers><Principals><Principal "
            "id=\"LocalSystem\"><UserId>S-1-5-18</UserId><RunLevel>HighestAvailable</RunLevel>"
            "</Principal></Principals><Actions Context=\"LocalSystem\"><Exec><Command>cmd.exe"
            "</Command><Arguments>/C whoami &gt; C:\\Windows\\Temp\\o.txt</Arguments></Exec>"
            "</Actions></Task>")


def tsch_pos(cap):
    c, s = logon(cap, ATT, SRV, T0)
    tid, p = ipc_pipe(s, SRV, "atsvc", TSCH)
    p.call(0, b"", struct.pack("<II", 0x00010006, 0))  # SchRpcHighestVersion
    n = g.Ndr().ptr().wstr("\\SysUpd").wstr(TASK_XML).u32(6).ptr(False).u32(3).u32(0)
    n.ptr(False)
    p.call(1, n.bytes(), g.Ndr().ptr().wstr("\\SysUpd").ptr(False).u32(0).bytes())
    n = g.Ndr().wstr("\\SysUpd").u32(0).ptr(False).u32(0).u32(0).ptr(False)
    p.call(12, n.bytes(), g.Ndr().raw(g.uuid_le("1b2f9a3c-7d4e-4f50-9a61-72b83c94d0a5")).u32(0)
           .bytes())  # SchRpcRun
    done_pipe(s, tid, p)
    return finish(c, s)


def tsch_neg(cap):
    """Viewing a task's definition (SchRpcRetrieveTask), as the Task Scheduler console does."""
    c, s = logon(cap, ATT, SRV, T0)
    tid, p = ipc_pipe(s, SRV, "atsvc", TSCH)
    p.call(0, b"", struct.pack("<II", 0x00010006, 0))
    n = g.Ndr().wstr("\\Microsoft\\Windows\\Defrag\\ScheduledDefrag").wstr("en-US").u32(1)
    p.call(2, n.bytes(), g.Ndr().ptr().wstr(TASK_XML).u32(0).bytes())
    done_pipe(s, tid, p)
    return finish(c, s)


def at_pos(cap):
    c, s = logon(cap, ATT, SRV, T0)
    tid, p = ipc_pipe(s, SRV, "atsvc", ATSVC)
    n = g.Ndr().ptr().wstr("\\\\" + SRV.ip)
    n.u32((14 * 60 + 5) * 60 * 1000).u32(0).u8(0).u8(0).ptr()  # AT_INFO (MS-TSCH 2.3.4)
    n.wstr("cmd.exe /C net user backdoor P@ss /add")
    p.call(0, n.bytes(), struct.pack("<II", 1, 0))  # NetrJobAdd
    done_pipe(s, tid, p)
    return finish(c, s)


# ----------------------------------------------------------------------------------------------
# Files on admin shares, remote execution pipes


def mz_body(rng, size):
    return b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0" + rng.randbytes(size - 16)


def write_file(s, share_path, name, body):
    tid = s.tree_connect(share_path)
    fid = s.create(tid, name, disposition=g.FILE_OVERWRITE_IF, access=0x0012019F,
                   size=0, action=2)
    s.write_file(tid, fid, body)
    s.close(tid, fid, size=len(body))
    s.tree_disconnect(tid)


def read_file(s, share_path, name, body):
    tid = s.tree_connect(share_path)
    fid = s.create(tid, name, size=len(body))
    s.read_file(tid, fid, body)
    s.close(tid, fid, size=len(body))
    s.tree_disconnect(tid)


def admin_write_pos(cap):
    c, s = logon(cap, ATT, SRV, T0)
    write_file(s, f"\\\\{SRV.ip}\\ADMIN$", "Temp\\wupdsvc.exe", mz_body(cap.rng, 90000))
    write_file(s, f"\\\\{SRV.ip}\\C$", "Users\\Public\\svchost32.exe", mz_body(cap.rng, 40000))
    return finish(c, s)


def admin_write_neg(cap):
    """A log written to C$ and an installer read from a software share."""
    c, s = logon(cap, ATT, SRV, T0)
    write_file(s, f"\\\\{SRV.ip}\\C$", "Windows\\Temp\\inventory.log", cap.rng.randbytes(5000))
    finish(c, s)
    c, s = logon(cap, ATT, FS, c.t + 1)
    read_file(s, f"\\\\{FS.ip}\\Software", "7zip\\7z2301-x64.exe", mz_body(cap.rng, 70000))
    return finish(c, s)


def open_close_pipes(cap, names, t=T0):
    c, s = logon(cap, ATT, SRV, t)
    tid = s.tree_connect(f"\\\\{SRV.ip}\\IPC$")
    for name in names:
        fid = s.create(tid, name, pipe=True)
        s.close(tid, fid, pipe=True)
    s.tree_disconnect(tid)
    return finish(c, s)


def remexec_pos(cap):
    t = open_close_pipes(cap, ["PSEXESVC", "PSEXESVC-WS066-4242-stdin",
                               "PSEXESVC-WS066-4242-stdout", "PSEXESVC-WS066-4242-stderr"])
    return open_close_pipes(cap, ["RemCom_communicaton"], t + 5)


def remexec_neg(cap):
    return open_close_pipes(cap, ["srvsvc", "wkssvc", "lsarpc"])


# ----------------------------------------------------------------------------------------------
# Authentication: SMBv1, anonymous, brute force, Kerberoasting


def smb1_pos(cap):
    c = g.TcpConn(cap, ATT, SRV, 445, T0)
    g.smb1_negotiate(c, ["PC NETWORK PROGRAM 1.0", "LANMAN1.0", "Windows for Workgroups 3.1a",
                         "LM1.2X002", "LANMAN2.1", "NT LM 0.12"], "NT LM 0.12",
                     cap.rng.randbytes(16))
    c.close()
    return c.t


def smb2_only(cap):
    c, s = logon(cap, ATT, SRV, T0)
    read_file(s, f"\\\\{SRV.ip}\\Public", "docs\\readme.txt", cap.rng.randbytes(2000))
    return finish(c, s)


def anon_pos(cap):
    """A null session: anonymous NTLM logon, IPC$, the srvsvc pipe (share enumeration)."""
    c, s = logon(cap, ATT, SRV, T0, user="", domain="")
    tid = s.tree_connect(f"\\\\{SRV.ip}\\IPC$")
    fid = s.create(tid, "srvsvc", pipe=True)
    s.close(tid, fid, pipe=True)
    s.tree_disconnect(tid)
    return finish(c, s)


def anon_neg(cap):
    c, s = logon(cap, ATT, SRV, T0, user="jsmith")
    tid = s.tree_connect(f"\\\\{SRV.ip}\\IPC$")
    fid = s.create(tid, "srvsvc", pipe=True)
    s.close(tid, fid, pipe=True)
    s.tree_disconnect(tid)
    return finish(c, s)


def failed_logon(cap, t, user):
    c = g.TcpConn(cap, ATT, SRV, 445, t)
    s = g.Smb2(c, server_name=SRV.name)
    s.negotiate()
    s.session_setup(user, "CORP", ATT.name, success=False)
    c.close()
    return c.t


def brute_pos(cap):
    """30 failed NTLM logons from one source within 3 minutes."""
    t = T0
    for i in range(30):
        failed_logon(cap, t, "administrator")
        t += 6 + cap.rng.random()
    return t


def brute_neg(cap):
    """A user mistypes the password twice, then logs on."""
    t = failed_logon(cap, T0, "jsmith")
    t = failed_logon(cap, t + 8, "jsmith")
    c, s = logon(cap, ATT, SRV, t + 10, user="jsmith")
    return finish(c, s)


SPNS = ["MSSQLSvc/sql01.corp.local:1433", "MSSQLSvc/sql02.corp.local:1433",
        "HTTP/web01.corp.local", "HTTP/intranet.corp.local", "exchangeMDB/mail01.corp.local",
        "CIFS/backup01.corp.local", "TERMSRV/rds01.corp.local", "WSMAN/mgmt01.corp.local",
        "FIMService/fim01.corp.local", "kafka/kafka01.corp.local", "ftp/ftp01.corp.local",
        "sapservice/sap01.corp.local", "MSOMSdkSvc/scom01.corp.local",
        "iSCSITarget/san01.corp.local",
        "SIP/lync01.corp.local", "MSServerClusterMgmtAPI/clu01.corp.local", "vnc/jump01.corp.local",
        "postgres/pg01.corp.local", "oracle/ora01.corp.local", "Backup/veeam01.corp.local"]


def kerberos(cap, spns, etypes, ticket_etype):
    rng = cap.rng
    t = T0
    req = g.krb_as_req(rng, "jsmith", "CORP.LOCAL", t)
    rep = g.krb_rep(rng, 11, "jsmith", "CORP.LOCAL", ["krbtgt", "CORP.LOCAL"], g.ETYPE_AES256,
                    g.ETYPE_AES256)
    t = g.krb_tcp(cap, ATT, DC, t, req, rep)
    for spn in spns:
        t += 0.3 + rng.random() * 0.5
        parts = spn.split("/")
        req = g.krb_tgs_req(rng, "jsmith", "CORP.LOCAL", parts, etypes, t)
        rep = g.krb_rep(rng, 13, "jsmith", "CORP.LOCAL", parts, ticket_etype, etypes[0])
        t = g.krb_tcp(cap, ATT, DC, t, req, rep)
    return t


def kerberoast_pos(cap):
    return kerberos(cap, SPNS, [g.ETYPE_RC4], g.ETYPE_RC4)


def kerberoast_neg(cap):
    return kerberos(cap, ["cifs/srv05.corp.local", "ldap/dc01.corp.local"],
                    [g.ETYPE_AES256, g.ETYPE_AES128, g.ETYPE_RC4], g.ETYPE_AES256)


# ----------------------------------------------------------------------------------------------
# MS-DCOM remote activation on TCP 135


def dcom_auth():
    return {"user": "appadmin", "domain": "CORP", "workstation": ATT.name,
            "server_name": SRV.name, "dns_domain": "corp.local", "spn": "RPCSS/srv05.corp.local"}


def wmi_pos(cap):
    """WMI remote process creation's first steps: RemoteCreateInstance of the WMI level-1 login
    class on 135, then IWbemLevel1Login::NTLMLogin on the dynamic port (sealed stubs)."""
    c = g.TcpConn(cap, ATT, SRV, 135, T0)
    r = g.RpcTcp(c, auth=dcom_auth())
    r.bind(*REMOTE_SCM_ACTIVATOR)
    r.call(4, b"\0" * 1100, b"\0" * 1400)  # RemoteCreateInstance
    c.close()
    c2 = g.TcpConn(cap, ATT, SRV, 49712, c.t + 0.01)
    r = g.RpcTcp(c2, auth=dcom_auth())
    r.bind(*WBEM_LEVEL1_LOGIN)
    r.call(6, b"\0" * 80, b"\0" * 60, object_uuid=cap.rng.randbytes(16))  # NTLMLogin
    c2.close()
    return c2.t


def wmi_neg(cap):
    """DCOM liveness check: IObjectExporter::ServerAlive2 (MS-DCOM 3.1.2.5.1.6) on 135."""
    c = g.TcpConn(cap, ATT, SRV, 135, T0)
    r = g.RpcTcp(c)
    r.bind(*OBJECT_EXPORTER)
    bindings = b"".join(struct.pack("<H", 7) + g.utf16(a) + b"\0\0"
                        for a in ("SRV05", SRV.ip)) + b"\0\0"
    # Security bindings WINNT, GSS_NEGOTIATE, GSS_KERBEROS (empty principal names). Their count
    # keeps the array an even number of shorts: Wireshark reads pReserved unaligned.
    sec = b"".join(struct.pack("<HH", a, 0xFFFF) + b"\0\0" for a in (10, 9, 16)) + b"\0\0"
    arr = bindings + sec
    n16 = len(arr) // 2
    out = g.Ndr().u16(5).u16(7).ptr().u32(n16).u16(n16).u16(len(bindings) // 2).raw(arr)
    out.align(4).u32(0).u32(0)
    r.call(5, b"", out.bytes())
    c.close()
    return c.t


# ----------------------------------------------------------------------------------------------
# More remote registry, SAMR paging, share enumeration, Netlogon, DNS and TLS


def winreg_open_hklm(p, rng):
    hklm = g.policy_handle(rng)
    p.call(2, g.Ndr().ptr(False).u32(0x02000000).bytes(), hklm + ok())  # OpenLocalMachine
    return hklm


def winreg_open_key(p, rng, parent, key, access=0x20019):
    n = g.Ndr().raw(parent).ustr_hdr(key, nul=True).ustr_body(key, nul=True).u32(0).u32(access)
    h = g.policy_handle(rng)
    p.call(15, n.bytes(), h + ok())  # BaseRegOpenKey
    return h


def winreg_read(cap):
    """Inventory: open HKLM, open a key, query its info (read only)."""
    c, s = logon(cap, ATT, SRV, T0)
    rng = cap.rng
    tid, p = ipc_pipe(s, SRV, "winreg", WINREG)
    hklm = winreg_open_hklm(p, rng)
    key = winreg_open_key(p, rng, hklm, "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion")
    n = g.Ndr().raw(key).ustr_hdr("").ustr_body("").bytes()  # BaseRegQueryInfoKey, no class
    out = g.Ndr().u16(0).u16(0).ptr(False).u32(12).u32(64).u32(0).u32(28).u32(260).u32(1024)
    ft = g.filetime(T0 - 86400 * 90)  # FILETIME: two DWORDs, 4-byte aligned
    out.u32(0).u32(ft & 0xFFFFFFFF).u32(ft >> 32).u32(0)
    p.call(16, n, out.bytes())
    p.call(5, key, b"\0" * 20 + ok())
    p.call(5, hklm, b"\0" * 20 + ok())
    done_pipe(s, tid, p)
    return finish(c, s)


def hive_save_pos(cap):
    """Credential dumping: BaseRegSaveKey of HKLM\\SAM and HKLM\\SYSTEM to files."""
    c, s = logon(cap, ATT, SRV, T0)
    rng = cap.rng
    tid, p = ipc_pipe(s, SRV, "winreg", WINREG)
    hklm = winreg_open_hklm(p, rng)
    for hive in ("SAM", "SYSTEM"):
        key = winreg_open_key(p, rng, hklm, hive, 0x02000000)
        path = f"C:\\Windows\\Temp\\{hive.lower()}.save"
        n = g.Ndr().raw(key).ustr_hdr(path, nul=True).ustr_body(path, nul=True).ptr(False)
        p.call(20, n.bytes(), ok())  # BaseRegSaveKey
        p.call(5, key, b"\0" * 20 + ok())
    p.call(5, hklm, b"\0" * 20 + ok())
    done_pipe(s, tid, p)
    return finish(c, s)


def samr_enum_pos(cap):
    """Domain account enumeration with paging: more than five enumeration calls."""
    c, s = logon(cap, ATT, DC, T0)
    rng = cap.rng
    tid, p = ipc_pipe(s, DC, "samr", SAMR)
    sh = samr_prologue(p, rng, DC)
    n = g.Ndr().raw(sh).u32(0).u32(0xFFFF)
    p.call(6, n.bytes(), sam_array(g.Ndr().u32(0), [(0, "CORP"), (0, "Builtin")]).u32(0).bytes())
    dh = samr_domain(p, rng, sh)
    names = ["Administrator", "Guest", "krbtgt", "appadmin", "jsmith", "svc-sql", "svc-backup",
             "mlopez", "akim", "tnguyen", "bwhite", "cjones", "dpatel", "emartin", "fgarcia",
             "hlee"]
    for page in range(4):
        users = [(1100 + page * 4 + i, names[page * 4 + i]) for i in range(4)]
        status = 0x105 if page < 3 else 0  # STATUS_MORE_ENTRIES until the last page
        n = g.Ndr().raw(dh).u32(page * 4).u32(0x10).u32(200)
        p.call(13, n.bytes(), sam_array(g.Ndr().u32((page + 1) * 4), users).u32(status).bytes())
    groups = [(512, "Domain Admins"), (513, "Domain Users"), (519, "Enterprise Admins")]
    n = g.Ndr().raw(dh).u32(0).u32(0xFFFF)
    p.call(11, n.bytes(), sam_array(g.Ndr().u32(0), groups).u32(0).bytes())  # EnumerateGroups
    p.call(15, n.bytes(), sam_array(g.Ndr().u32(0), [(1101, "RAS Servers")]).u32(0).bytes())
    p.call(1, dh, b"\0" * 20 + ok())
    p.call(1, sh, b"\0" * 20 + ok())
    done_pipe(s, tid, p)
    return finish(c, s)


SRVSVC = ("4b324fc8-1670-01d3-1278-5a47bf6ee188", (3, 0))
SHARES = [("ADMIN$", 0x80000000, "Remote Admin"), ("C$", 0x80000000, "Default share"),
          ("IPC$", 0x80000003, "Remote IPC"), ("Public", 0, "")]


def share_enum(cap, server, t):
    """NetrShareEnum at level 1 (MS-SRVS 3.1.4.8) over \\PIPE\\srvsvc."""
    c, s = logon(cap, ATT, server, t)
    tid, p = ipc_pipe(s, server, "srvsvc", SRVSVC)
    n = g.Ndr().ptr().wstr("\\\\" + server.ip).u32(1).u32(1).ptr().u32(0).ptr(False)
    n.u32(0xFFFFFFFF).ptr().u32(0)
    out = g.Ndr().u32(1).u32(1).ptr().u32(len(SHARES)).ptr().u32(len(SHARES))
    for name, typ, remark in SHARES:
        out.ptr().u32(typ).ptr()
    for name, typ, remark in SHARES:
        out.wstr(name).wstr(remark)
    out.u32(len(SHARES)).ptr().u32(0).u32(0)
    p.call(15, n.bytes(), out.bytes())
    done_pipe(s, tid, p)
    return finish(c, s)


def share_enum_pos(cap):
    """A share sweep: NetrShareEnum against eight hosts within two minutes."""
    t = T0
    for i in range(8):
        t = share_enum(cap, g.Host(f"10.0.0.{100 + i}", f"HOST{100 + i}"), t + 10)
    return t


def share_enum_neg(cap):
    """A user opening \\\\FS01 in Explorer: one NetrShareEnum."""
    return share_enum(cap, FS, T0)


NETLOGON = ("12345678-1234-abcd-ef00-01234567cffb", (1, 0))


def netlogon_session(cap, attempts, success):
    """Netlogon secure channel setup over TCP after the endpoint mapper: NetrServerReqChallenge
    and NetrServerAuthenticate3 (MS-NRPC 3.5.4.4), `attempts` times."""
    port = 49668
    t = ept_map(cap, ATT, DC, T0, NETLOGON, port)
    c = g.TcpConn(cap, ATT, DC, port, t + 0.01)
    r = g.RpcTcp(c)
    r.bind(*NETLOGON)
    for i in range(attempts):
        n = g.Ndr().ptr().wstr("\\\\DC01").wstr("WS066").raw(cap.rng.randbytes(8))
        r.call(4, n.bytes(), cap.rng.randbytes(8) + ok())  # NetrServerReqChallenge
        n = g.Ndr().ptr().wstr("\\\\DC01").wstr("WS066$").u16(2).wstr("WS066")
        n.raw(b"\0" * 8 if not success else cap.rng.randbytes(8)).u32(0x212FFFFF)
        status = 0 if success else 0xC0000022
        out = g.Ndr().raw(b"\0" * 8 if not success else cap.rng.randbytes(8)).u32(0x212FFFFF)
        out.u32(0 if not success else 1107).u32(status)
        r.call(26, n.bytes(), out.bytes())  # NetrServerAuthenticate3
        c.sleep(0.05)
    c.close()
    return c.t


def netlogon_pos(cap):
    """Zerologon-style: 40 challenge/authenticate attempts with zero credentials in seconds."""
    return netlogon_session(cap, 40, success=False)


def netlogon_neg(cap):
    return netlogon_session(cap, 1, success=True)


def dns_pos_long(cap):
    """DNS tunnelling: 30 queries whose names carry 100 characters of encoded data."""
    rng = cap.rng
    t = T0
    for i in range(30):
        data = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(100))
        name = f"{data[:50]}.{data[50:]}.{i:04x}.t.badtunnel.net"
        g.dns_exchange(cap, ATT, DC, t, name, "10.0.0.%d" % rng.randint(1, 254))
        t += 2 + rng.random()
    return t


def dns_neg_long(cap):
    """Ordinary lookups, including long CDN names (under 70 characters) and reverse lookups."""
    t = T0
    names = ["www.example.com", "login.microsoftonline.com", "fs01.corp.local",
             "r4---sn-4g5e6nez.googlevideo.com",
             "e3f1a9c2b7d4.cdn.assets-static.edge.contoso-content.example.net",
             "5.0.0.10.in-addr.arpa"]
    for i in range(30):
        name = names[i % len(names)]
        rtype = "PTR" if name.endswith(".arpa") else "A"
        g.dns_exchange(cap, ATT, DC, t, name, "srv05.corp.local" if rtype == "PTR" else
                       "10.0.0.%d" % (10 + i), rtype=rtype)
        t += 2
    return t


def dns_pos_tld(cap):
    g.dns_exchange(cap, ATT, DC, T0, "update-check.invoice-portal.xyz", "10.9.9.9")
    g.dns_exchange(cap, ATT, DC, T0 + 5, "cdn.freegift.top", None)
    return T0 + 6


def dns_neg_tld(cap):
    g.dns_exchange(cap, ATT, DC, T0, "update.microsoft.com", "10.9.9.9")
    g.dns_exchange(cap, ATT, DC, T0 + 5, "www.example.org", "10.9.9.10")
    return T0 + 6


def tls_record(ctype, body, version=0x0303):
    return struct.pack(">BHH", ctype, version, len(body)) + body


def tls_ext(typ, data):
    return struct.pack(">HH", typ, len(data)) + data


def tls13_session(cap, client, server, t, sni):
    """A TLS 1.3 handshake (RFC 8446 4.1.2, 4.1.3): ClientHello (with or without server_name),
    ServerHello, change_cipher_spec, then encrypted records."""
    rng = cap.rng
    exts = b""
    if sni:
        host = sni.encode()
        sn = struct.pack(">BH", 0, len(host)) + host
        exts += tls_ext(0, struct.pack(">H", len(sn)) + sn)
    exts += tls_ext(10, struct.pack(">HHH", 4, 0x001D, 0x0017))  # supported_groups
    exts += tls_ext(13, struct.pack(">HHHHH", 8, 0x0403, 0x0804, 0x0401, 0x0201))  # sig algs
    exts += tls_ext(43, struct.pack(">BHH", 4, 0x0304, 0x0303))  # supported_versions
    exts += tls_ext(51, struct.pack(">HHH", 36, 0x001D, 32) + rng.randbytes(32))  # key_share
    suites = struct.pack(">HHHH", 6, 0x1301, 0x1302, 0xC02F)
    sid = rng.randbytes(32)
    hello = struct.pack(">H", 0x0303) + rng.randbytes(32) + bytes([32]) + sid + suites + \
        b"\x01\x00" + struct.pack(">H", len(exts)) + exts
    ch = b"\x01" + len(hello).to_bytes(3, "big") + hello
    sexts = tls_ext(43, struct.pack(">H", 0x0304)) + \
        tls_ext(51, struct.pack(">HH", 0x001D, 32) + rng.randbytes(32))
    shello = struct.pack(">H", 0x0303) + rng.randbytes(32) + bytes([32]) + sid + \
        struct.pack(">HB", 0x1301, 0) + struct.pack(">H", len(sexts)) + sexts
    sh = b"\x02" + len(shello).to_bytes(3, "big") + shello
    c = g.TcpConn(cap, client, server, 443, t)
    c.c2s(tls_record(22, ch, 0x0301))
    c.s2c(tls_record(22, sh) + tls_record(20, b"\x01") + tls_record(23, rng.randbytes(2400)))
    c.c2s(tls_record(20, b"\x01") + tls_record(23, rng.randbytes(74)) +
          tls_record(23, rng.randbytes(400)))
    c.s2c(tls_record(23, rng.randbytes(1200)), ack_after=True)
    c.close()
    return c.t


def tls_pos(cap):
    return tls13_session(cap, ATT, g.Host("10.20.30.40", "EXT"), T0, None)


def tls_neg(cap):
    return tls13_session(cap, ATT, g.Host("10.20.30.40", "EXT"), T0, "www.example.com")


def weak_ticket_pos(cap):
    """One service ticket for a legacy account that only has an RC4 key."""
    return kerberos(cap, ["MSSQLSvc/legacy01.corp.local:1433"], [g.ETYPE_AES256, g.ETYPE_AES128,
                                                                 g.ETYPE_RC4], g.ETYPE_RC4)


# ----------------------------------------------------------------------------------------------
# The cases


class Case:
    def __init__(self, key, models, pos, neg, expect, absent, neg_expect=()):
        self.key, self.models, self.pos, self.neg = key, models, pos, neg
        self.expect, self.absent, self.neg_expect = expect, absent, neg_expect


SMB = "smb"
RPC = "dcerpc"
CASES = [
    Case("svcctl", ["Remote Service Creation"], svcctl_pos, svcctl_neg,
         [(SMB, r"IPC\$ svcctl DCERPC REQUEST svcctl CreateServiceW opnum 12 ok", 1),
          (SMB, r"svcctl StartServiceW opnum 19 ok", 1)],
         [(SMB, r"CreateService|ChangeServiceConfig", 1)],
         [(SMB, r"svcctl QueryServiceStatus opnum 6 ok", 1)]),
    Case("winreg", ["Remote Registry Access"], winreg_read, benign_ipc,
         [(SMB, r"DCERPC BIND winreg v1.0 accepted", 1),
          (SMB, r"winreg OpenLocalMachine opnum 2 ok", 1),
          (SMB, r"winreg BaseRegQueryInfoKey opnum 16 ok", 1)],
         [(SMB, r"winreg", 1)], [(SMB, r"lsarpc LsarOpenPolicy2 opnum 44 ok", 1)]),
    Case("winreg_modify", ["Remote Registry Modification"], winreg_pos, winreg_read,
         [(SMB, r"winreg BaseRegOpenKey opnum 15 ok", 1),
          (SMB, r"winreg BaseRegSetValue opnum 22 ok", 1)],
         [(SMB, r"BaseRegSetValue|BaseRegCreateKey|BaseRegDelete", 1)],
         [(SMB, r"winreg BaseRegQueryInfoKey opnum 16 ok", 1)]),
    Case("hive_save", ["Remote Registry Hive Save"], hive_save_pos, winreg_read,
         [(SMB, r"winreg BaseRegSaveKey opnum 20 ok", 2)], [(SMB, r"BaseRegSaveKey", 1)],
         [(SMB, r"winreg BaseRegOpenKey opnum 15 ok", 1)]),
    Case("samr", ["SAMR Account Enumeration"], samr_enum_pos, samr_neg,
         [(SMB, r"samr SamrEnumerateUsersInDomain opnum 13 ok", 4),
          (SMB, r"samr SamrEnumerateGroupsInDomain opnum 11 ok", 1),
          (SMB, r"samr SamrEnumerateAliasesInDomain opnum 15 ok", 1)],
         [(SMB, r"SamrEnumerate|SamrQueryDisplayInformation|SamrLookupNamesInDomain|"
                r"SamrLookupIdsInDomain|SamrQueryInformationUser|SamrGetGroupsForUser|"
                r"SamrGetMembersIn|SamrGetAliasMembership", 6)],
         [(SMB, r"samr SamrLookupNamesInDomain opnum 17 ok", 1)]),
    Case("lsarpc", ["LSARPC Account Lookups"], lsarpc_pos, benign_ipc,
         [(SMB, r"lsarpc LsarLookupSids opnum 15 ok", 10)],
         [(SMB, r"LsarLookup|LsarEnumerate|LsarQueryInformationPolicy", 2)],
         [(SMB, r"lsarpc LsarClose opnum 0 ok", 1)]),
    Case("dcsync", ["DCSync Replication Request"], dcsync_pos, dcsync_neg,
         [(RPC, r"drsuapi DRSGetNCChanges opnum 3 ok", 2),
          (RPC, r"epmapper ept_map opnum 3 ok -> 10\.0\.0\.2:49667", 1),
          (RPC, r"AUTH3 NTLM AUTH CORP\\appadmin from WS066", 1)],
         [(RPC, r"DRSGetNCChanges", 1)], [(RPC, r"drsuapi DRSCrackNames opnum 12 ok", 1)]),
    Case("tsch", ["Remote Scheduled Task Registration"], tsch_pos, tsch_neg,
         [(SMB, r"ITaskSchedulerService SchRpcRegisterTask opnum 1 ok", 1),
          (SMB, r"ITaskSchedulerService SchRpcRun opnum 12 ok", 1)],
         [(SMB, r"SchRpcRegisterTask|SchRpcRun|SASetAccountInformation", 1)],
         [(SMB, r"ITaskSchedulerService SchRpcRetrieveTask opnum 2 ok", 1)]),
    Case("at", ["AT Service Scheduled Task"], at_pos, benign_ipc,
         [(SMB, r"IPC\$ atsvc \(pipe\)", 1), (SMB, r"atsvc NetrJobAdd opnum 0 ok", 1)],
         [(SMB, r"atsvc", 1)], [(SMB, r"IPC\$ lsarpc \(pipe\)", 1)]),
    Case("admin_write", ["Executable Written to Admin Share"], admin_write_pos, admin_write_neg,
         [(SMB, r"SMB2 WRITE success \\\\10\.0\.0\.5\\ADMIN\$ Temp\\wupdsvc\.exe 90000 bytes", 1),
          (SMB, r"SMB2 WRITE success \\\\10\.0\.0\.5\\C\$ Users\\Public\\svchost32\.exe", 1)],
         [(SMB, r"WRITE .*\$ .*\.(exe|dll|sys|scr|bat|cmd|ps1|vbs|hta)\b", 1)],
         [(SMB, r"SMB2 WRITE success .*inventory\.log", 1), (SMB, r"SMB2 READ success .*7z", 1)]),
    Case("remexec", ["Remote Execution Pipe"], remexec_pos, remexec_neg,
         [(SMB, r"IPC\$ PSEXESVC \(pipe\)", 1), (SMB, r"IPC\$ RemCom_communicaton \(pipe\)", 1)],
         [(SMB, r"(?i)psexesvc|remcom|csexecsvc|paexec|ahexec|winexesvc", 1)],
         [(SMB, r"IPC\$ srvsvc \(pipe\)", 1)]),
    Case("smb1", ["SMBv1 In Use"], smb1_pos, smb2_only,
         [(SMB, r"^SMB1 NEGOTIATE_PROTOCOL success dialect NT LM 0\.12", 1)],
         [(SMB, r"^SMB1", 1)], [(SMB, r"SMB2 NEGOTIATE_PROTOCOL success dialect 3.02", 1)]),
    Case("anonymous", ["Anonymous NTLM Logon"], anon_pos, anon_neg,
         [(SMB, r"SESSION_SETUP success NTLM AUTH anonymous from WS066", 1)],
         [(SMB, r"anonymous", 1)],
         [(SMB, r"SESSION_SETUP success NTLM AUTH CORP\\jsmith from WS066", 1)]),
    Case("brute", ["NTLM Brute Force"], brute_pos, brute_neg,
         [(SMB, r"SESSION_SETUP STATUS_LOGON_FAILURE NTLM AUTH CORP\\administrator", 30)],
         [(SMB, r"STATUS_LOGON_FAILURE", 3)],
         [(SMB, r"SESSION_SETUP STATUS_LOGON_FAILURE", 2),
          (SMB, r"SESSION_SETUP success NTLM AUTH CORP\\jsmith", 1)]),
    Case("kerberoast", ["Kerberoasting TGS Burst"], kerberoast_pos, kerberoast_neg,
         [("krb5", r"KRB5 TGS-REP .*rc4-hmac \(weak\)", 20)], [("krb5", r"rc4-hmac", 1)],
         [("krb5", r"KRB5 TGS-REP .*aes256-cts-hmac-sha1-96", 2)]),
    Case("weak_ticket", ["Weak Kerberos Service Ticket"], weak_ticket_pos, kerberoast_neg,
         [("krb5", r"KRB5 TGS-REP jsmith@CORP.LOCAL for MSSQLSvc/legacy01.corp.local:1433 "
                   r"rc4-hmac \(weak\)", 1)],
         [("krb5", r"TGS-REP .*rc4-hmac", 1)],
         [("krb5", r"KRB5 TGS-REP .*aes256-cts-hmac-sha1-96", 2)]),
    Case("dcom", ["DCOM or WMI Remote Activation"], wmi_pos, wmi_neg,
         [(RPC, r"IRemoteSCMActivator RemoteCreateInstance opnum 4 ok", 1),
          (RPC, r"IWbemLevel1Login NTLMLogin opnum 6 ok", 1)],
         [(RPC, r"IRemoteSCMActivator|RemoteCreateInstance|IWbemLevel1Login", 1)],
         [(RPC, r"IObjectExporter ServerAlive2 opnum 5 ok", 1)]),
    Case("share_enum", ["Network Share Enumeration"], share_enum_pos, share_enum_neg,
         [(SMB, r"srvsvc NetrShareEnum opnum 15 ok", 8)], [(SMB, r"NetrShareEnum", 5)],
         [(SMB, r"srvsvc NetrShareEnum opnum 15 ok", 1)]),
    Case("netlogon", ["Netlogon Authentication Burst"], netlogon_pos, netlogon_neg,
         [(RPC, r"netlogon NetrServerReqChallenge opnum 4 ok", 40),
          (RPC, r"netlogon NetrServerAuthenticate3 opnum 26 ok", 40)],
         [(RPC, r"NetrServerReqChallenge|NetrServerAuthenticate", 20)],
         [(RPC, r"netlogon NetrServerAuthenticate3 opnum 26 ok", 1)]),
    Case("dns_long", ["Long DNS Query Names"], dns_pos_long, dns_neg_long,
         [("dns", r"^DNS QUERY A [a-z2-7]{50}\.[a-z2-7]{50}\.", 30)],
         [("dns", r"^DNS QUERY \S+ (?![^ ]*\.arpa)\S{70,}", 1)],
         [("dns", r"^DNS QUERY PTR 5\.0\.0\.10\.in-addr\.arpa", 1)]),
    Case("dns_tld", ["DNS Query to Suspicious TLD"], dns_pos_tld, dns_neg_tld,
         [("dns", r"^DNS QUERY A update-check\.invoice-portal\.xyz$", 1)],
         [("dns", r"^DNS QUERY \S+ \S+\.(top|xyz|tk|ml|ga|cf|gq|su|zip|mov|cyou|icu|onion|bit)$",
           1)],
         [("dns", r"^DNS QUERY A update\.microsoft\.com$", 1)]),
    Case("tls_sni", ["TLS Without SNI"], tls_pos, tls_neg,
         [("tls", r"TLS", 1)], [("tls", r"^(?!.*www\.example\.com)", 1)],
         [("tls", r"www\.example\.com", 1)]),
]


def build(case, outdir, kind):
    """Writes OUTDIR/KEY-KIND.pcap (kind: pos or neg); returns its path."""
    cap = g.Capture(seed=sum(map(ord, case.key + kind)))
    (case.pos if kind == "pos" else case.neg)(cap)
    path = os.path.join(outdir, f"{case.key}-{kind}.pcap")
    cap.write(path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--only", action="append", default=[])
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    for case in CASES:
        if not a.only or case.key in a.only:
            for kind in ("pos", "neg"):
                print(build(case, a.outdir, kind))


if __name__ == "__main__":
    main()
