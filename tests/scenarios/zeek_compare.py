"""Compare vigil's SMB, DCE-RPC and NTLM events with Zeek's logs for the same traces: the
Zeek ground truth in ../shared/data/pcaps/zeek (relative to the repository root).

usage: python3 tests/scenarios/zeek_compare.py BUILD_DIR [--only PATTERN]... [--verbose]
                                               [--report-only]

Each directory Baseline/<test>/ that holds one of smb_mapping.log, smb_files.log, dce_rpc.log
or ntlm.log names a Zeek test script (`scripts.base.protocols.smb.smb2` is scripts/smb/smb2.*);
the script's `zeek -r $TRACES/...` line names the trace. The trace is replayed through
vigil-dataplane (with suricata_verify.py's helpers: pcapng and non-Ethernet link types are
converted) and the rows of the same four logs are derived from vigil's `smb`, `dcerpc` and
`flow` events the way Zeek's scripts build them (docs/events-parts/zeek-compare.md). Both sides
are compared as multisets of rows on the columns both have; ts and uid (masked XXXX in the
baselines) and the columns listed under `not_compared` in zeek_exceptions.yaml are left out.
Per-row and per-column decisions (a Zeek quirk, a granularity difference, a vigil parser gap)
are listed in zeek_exceptions.yaml with a category and a reason; the report shows each.

Prints one line per baseline log (PASS/FAIL, matched/Zeek rows, the first difference with the
closest vigil row), the columns not compared per log kind, the parser gaps, and the totals.
Exit status: 0 when no row differs, is missing or is extra beyond the exceptions, 1 otherwise
(0 with --report-only), 77 (skip) when the shared data or PyYAML is absent, 2 on a usage or
harness error.
"""
import argparse
import collections
import datetime
import fnmatch
import glob
import json
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "pcaps", "zeek")
EXCEPTIONS = os.path.join(HERE, "zeek_exceptions.yaml")
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import suricata_verify as sv  # noqa: E402  (beside this file: capture conversion and replay)

SKIP = 77
LOG_KINDS = ("smb_mapping", "smb_files", "dce_rpc", "ntlm")
CONN_COLUMNS = ("id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")
TIME_COLUMNS = ("times.modified", "times.accessed", "times.created", "times.changed")
# Zeek's SMB::logged_file_actions default (base/protocols/smb/main.zeek).
DEFAULT_FILE_ACTIONS = frozenset({"FILE_OPEN", "FILE_RENAME", "FILE_DELETE",
                                  "PRINT_OPEN", "PRINT_CLOSE"})
# DCE_RPC::ignored_operations default (base/protocols/dce-rpc/main.zeek): never logged.
IGNORED_OPERATIONS = {
    "winreg": {"BaseRegCloseKey", "BaseRegGetVersion", "BaseRegOpenKey", "BaseRegQueryValue",
               "BaseRegDeleteKeyEx", "OpenLocalMachine", "BaseRegEnumKey", "OpenClassesRoot"},
    "spoolss": {"RpcSplOpenPrinter", "RpcClosePrinter"},
    "wkssvc": {"NetrWkstaGetInfo"},
}
MASKED = re.compile(r"^X+(\.X+)?$")


# ----------------------------------------------------------------------------------------------
# Zeek logs


def _unescape(text):
    """Zeek's ASCII writer escapes `\\` as `\\\\` and unprintable bytes as `\\xNN`."""
    if "\\" not in text:
        return text
    out = bytearray()
    i = 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt == 0x5C:
                out.append(0x5C)
                i += 2
                continue
            if nxt == ord("x") and re.fullmatch(rb"[0-9a-fA-F]{2}", raw[i + 2:i + 4]):
                out.append(int(raw[i + 2:i + 4], 16))
                i += 4
                continue
        out.append(c)
        i += 1
    return out.decode("utf-8", "replace")


def parse_zeek_log(text):
    """(fields, types, rows) of a Zeek ASCII (TSV) log. Handles the `#separator`, `#set_separator`,
    `#empty_field`, `#unset_field`, `#fields` and `#types` headers, and the header-less form that
    btest-diff-cut writes (first non-comment line = column names). A row is a dict: unset values
    are None, set/vector columns are tuples (empty for `(empty)`), other values strings ("" for
    `(empty)`); escapes are undone."""
    sep, set_sep, empty, unset = "\t", ",", "(empty)", "-"
    fields, types, rows = None, None, []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("#"):
            key, _, value = line[1:].partition(sep if not line.startswith("#separator") else " ")
            if key == "separator":
                sep = value.strip().encode().decode("unicode_escape")
            elif key == "set_separator":
                set_sep = value
            elif key == "empty_field":
                empty = value
            elif key == "unset_field":
                unset = value
            elif key == "fields":
                fields = value.split(sep)
            elif key == "types":
                types = value.split(sep)
            continue
        cells = line.split(sep)
        if fields is None:  # btest-diff-cut -m: a plain header line
            fields = cells
            continue
        row = {}
        for i, name in enumerate(fields):
            cell = cells[i] if i < len(cells) else unset
            typ = types[i] if types and i < len(types) else ""
            container = typ.startswith(("set[", "vector["))
            if cell == unset:
                row[name] = None
            elif cell == empty:
                row[name] = () if container else ""
            elif container:
                row[name] = tuple(_unescape(p) for p in cell.split(set_sep))
            else:
                row[name] = _unescape(cell)
        rows.append(row)
    return fields or [], types or [], rows


def masked_columns(fields, rows):
    """Columns whose every value is masked by btest (XXXX...)."""
    out = set()
    for f in fields:
        values = [r.get(f) for r in rows]
        if values and all(isinstance(v, str) and MASKED.match(v) for v in values):
            out.add(f)
    return out


# ----------------------------------------------------------------------------------------------
# Baselines, scripts and traces


def script_for(test_dir_name, scripts):
    """scripts.base.protocols.smb.smb2 -> scripts/smb/smb2.test (path relative to scripts)."""
    name = test_dir_name
    for prefix in ("scripts.base.protocols.", "scripts.policy.protocols.", "scripts.base.",
                   "scripts."):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    group, _, base = name.partition(".")
    for ext in ("zeek", "test", "bro"):
        cand = os.path.join(scripts, group, f"{base}.{ext}")
        if os.path.exists(cand):
            return os.path.relpath(cand, scripts)
    return None


TRACE_RE = re.compile(r"-\w*r\s+\$\{?TRACES\}?/(\S+)")
ACTIONS_RE = re.compile(r"redef\s+SMB::logged_file_actions\s*\+=\s*\{([^}]*)\}")


def script_info(text):
    """(trace relative to Traces/, logged SMB file actions) from a Zeek test script."""
    trace = None
    for line in text.splitlines():
        if "@TEST-EXEC" in line:
            m = TRACE_RE.search(line)
            if m:
                trace = m.group(1)
                break
    actions = set(DEFAULT_FILE_ACTIONS)
    for m in ACTIONS_RE.finditer(text):
        actions |= {a.strip().split("::")[-1] for a in m.group(1).split(",") if a.strip()}
    return trace, frozenset(actions)


def discover(data):
    """[(test name, baseline dir, script path, trace path or None, actions, [log kinds])]."""
    base = os.path.join(data, "Baseline")
    scripts = os.path.join(data, "scripts")
    out = []
    for d in sorted(os.listdir(base)):
        kinds = [k for k in LOG_KINDS if os.path.exists(os.path.join(base, d, f"{k}.log"))]
        if not kinds:
            continue
        rel = script_for(d, scripts)
        trace, actions = None, DEFAULT_FILE_ACTIONS
        if rel:
            with open(os.path.join(scripts, rel), encoding="utf-8", errors="replace") as f:
                trace, actions = script_info(f.read())
        name = rel or d
        out.append((name, os.path.join(base, d), rel, trace, actions, kinds))
    return out


# ----------------------------------------------------------------------------------------------
# vigil rows


def _conn(ev):
    return {"id.orig_h": str(ev.get("src_ip")), "id.orig_p": str(ev.get("src_port")),
            "id.resp_h": str(ev.get("dest_ip")), "id.resp_p": str(ev.get("dest_port"))}


def _flow_key(ev):
    return (ev.get("src_ip"), ev.get("src_port"), ev.get("dest_ip"), ev.get("dest_port"),
            ev.get("flow_id"))


def _nonempty(v):
    return v if v not in (None, "") else None


def _cmd(smb):
    return str(smb.get("command") or "")


def _success(smb):
    return smb.get("status") == "STATUS_SUCCESS"


def mapping_rows(events):
    """smb_mapping: one row per successful tree connect (SMB2 TREE_CONNECT / SMB1
    TREE_CONNECT_ANDX), as smb2_tree_connect_response / smb1_tree_connect_andx_response log."""
    rows = []
    for ev in events:
        smb = ev.get("smb") if ev.get("event_type") == "smb" else None
        if not smb or not _cmd(smb).endswith(("TREE_CONNECT", "TREE_CONNECT_ANDX")):
            continue
        if not _success(smb):
            continue
        path = _nonempty(smb.get("share")) or _nonempty(smb.get("named_pipe"))
        service = (smb.get("service") or {}).get("response") if isinstance(
            smb.get("service"), dict) else None
        st = smb.get("share_type")
        if st:
            share_type = {"FILE": "DISK"}.get(st, st)
        else:  # SMB1: Zeek's TreeInfo default DISK, PIPE when the service is IPC
            share_type = "PIPE" if service == "IPC" else "DISK"
        # SMB1: smb.native_file_system ("" when the response has none, as Zeek's event passes);
        # SMB2 has no such field (Zeek: unset).
        nfs = smb.get("native_file_system", "") if _cmd(smb).startswith("SMB1_") else None
        row = dict(_conn(ev))
        row.update({"path": path, "service": _nonempty(service), "share_type": share_type,
                    "native_file_system": nfs})
        rows.append(row)
    return rows


FILETIME_UNIX_EPOCH = 116444736000000000  # 1970-01-01 in 100 ns intervals since 1601
FILETIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{7})$")


def filetime_of(text):
    """The FILETIME (100 ns intervals since 1601) of vigil's smb.times.* text
    ("2022-07-15T19:46:29.9513320", docs/events.md), or None."""
    m = FILETIME_RE.match(str(text or ""))
    if not m:
        return None
    y, mo, d, h, mi, sec, frac = (int(g) for g in m.groups())
    days = (datetime.date(y, mo, d) - datetime.date(1601, 1, 1)).days
    return ((days * 86400 + h * 3600 + mi * 60 + sec) * 10_000_000) + frac


def zeek_time(filetime):
    """A FILETIME as Zeek logs it: filetime2zeektime (double arithmetic), printed %.6f."""
    return f"{filetime / 10000000.0 - 11644473600.0:.6f}"


def _times(smb):
    """MAC times of a CREATE as Zeek keeps them (only when modified > 0, i.e. after 1970), from
    the full-precision smb.times.* rendered as Zeek renders them."""
    precise = smb.get("times") if isinstance(smb.get("times"), dict) else {}
    out = {}
    for col in TIME_COLUMNS:
        ft = filetime_of(precise.get(col.split(".")[1]))
        out[col] = None if ft is None else zeek_time(ft)
    modified = filetime_of(precise.get("modified"))
    if modified is None or modified <= FILETIME_UNIX_EPOCH:
        return None
    return out


def files_rows(events, actions=DEFAULT_FILE_ACTIONS):
    """smb_files: the rows Zeek's SMB scripts log, derived from vigil's smb events: FILE_OPEN per
    successful CREATE/NT_CREATE_ANDX on a tree not known as a pipe or printer, FILE_DELETE per
    delete (SET_INFO disposition, SMB1 TRANS2 disposition, and a successful delete-on-close
    create), FILE_RENAME per rename (name = new name, prev_name = old), FILE_READ/FILE_WRITE per
    file READ/WRITE event. Attributes (size, times, path) are those of the open with the same
    fuid. Zeek's dedup (SMB::write_file_log: action, name, path, size and times but the access
    time, when times are known) is applied on the times as Zeek logs them (smb.times.*)."""
    rows = []
    trees = collections.defaultdict(dict)       # flow -> tree_id -> (path, share_type)
    opens = collections.defaultdict(dict)       # flow -> fuid -> file info
    recent = collections.defaultdict(set)       # flow -> file idents already logged

    def emit(ev, info, action, extra=None):
        if action not in actions:
            return
        row = dict(_conn(ev))
        row.update({"action": "SMB::" + action, "path": info.get("path"),
                    "name": info.get("name"), "size": str(info.get("size") or 0),
                    "prev_name": info.get("prev_name")})
        times = info.get("times")
        for c in TIME_COLUMNS:
            row[c] = None if times is None else times[c]
        if extra:
            row.update(extra)
        if times is not None:
            ident = (row["action"], row["name"], row["path"], row["size"],
                     row["times.modified"], row["times.created"], row["times.changed"])
            if ident in recent[_flow_key(ev)]:
                return
            recent[_flow_key(ev)].add(ident)
        rows.append(row)

    for ev in events:
        smb = ev.get("smb") if ev.get("event_type") == "smb" else None
        if not smb:
            continue
        flow = _flow_key(ev)
        cmd = _cmd(smb)
        tid = smb.get("tree_id")
        if cmd.endswith(("TREE_CONNECT", "TREE_CONNECT_ANDX")) and _success(smb):
            path = _nonempty(smb.get("share")) or _nonempty(smb.get("named_pipe"))
            st = smb.get("share_type")
            if not st:
                svc = (smb.get("service") or {}).get("response") if isinstance(
                    smb.get("service"), dict) else None
                st = "PIPE" if (svc == "IPC" or smb.get("named_pipe")) else "DISK"
            trees[flow][tid] = (path, {"FILE": "DISK"}.get(st, st))
            continue
        tree_path, tree_type = trees[flow].get(tid, (None, "DISK"))
        fuid = smb.get("fuid")
        if cmd in ("SMB2_COMMAND_CREATE", "SMB1_COMMAND_NT_CREATE_ANDX"):
            if not _success(smb):
                continue
            name = smb.get("filename")
            if name is None:
                name = smb.get("directory")
            info = {"name": name if name not in (None, "") else "<share_root>",
                    "size": smb.get("size") or 0, "times": _times(smb), "path": tree_path,
                    "tree_type": tree_type}
            if fuid:
                opens[flow][fuid] = info
            kind = {"PIPE": "PIPE", "PRINT": "PRINT"}.get(tree_type, "FILE")
            emit(ev, info, kind + "_OPEN")
            if smb.get("access") == "delete on close" and kind == "FILE":
                emit(ev, info, "FILE_DELETE")
            continue
        info = opens[flow].get(fuid) if fuid else None
        known_name = _nonempty(smb.get("filename"))
        if info is None and known_name in (None, "<unknown>"):
            # Zeek's set_current_file makes a nameless record for a file id it has not seen
            # opened, and write_file_log logs only named files.
            known_name = None
        if smb.get("rename"):
            base = dict(info or {"name": None, "size": 0, "times": None, "path": tree_path})
            old = base.get("name") or _nonempty(smb["rename"].get("from"))
            base["prev_name"] = None if old == "<unknown>" else old
            base["name"] = smb["rename"].get("to")
            if info is not None:
                info["name"] = base["name"]
            emit(ev, base, "FILE_RENAME")
            continue
        is_delete = (cmd == "SMB2_COMMAND_SET_INFO" or smb.get("level_of_interest") ==
                     "Set Disposition Information") and not smb.get("rename")
        if is_delete:
            if info is None and known_name is None:
                continue
            base = dict(info or {"name": known_name, "size": 0, "times": None,
                                 "path": tree_path})
            emit(ev, base, "FILE_DELETE")
            continue
        if cmd.endswith(("_READ", "_READ_ANDX", "_WRITE", "_WRITE_ANDX")) and not smb.get("dcerpc"):
            if info is None and known_name is None:
                continue
            base = dict(info or {"name": known_name, "size": 0, "times": None,
                                 "path": _nonempty(smb.get("share"))})
            if base.get("path") is None:
                base["path"] = tree_path
            action = "FILE_READ" if "READ" in cmd else "FILE_WRITE"
            emit(ev, base, action)
    return rows


def _dcerpc_of(ev):
    if ev.get("event_type") == "dcerpc":
        return ev.get("dcerpc")
    if ev.get("event_type") == "smb":
        return (ev.get("smb") or {}).get("dcerpc")
    return None


def dce_rpc_rows(events):
    """dce_rpc: one row per answered REQUEST whose interface and operation are known (Zeek logs
    at dce_rpc_response), except DCE_RPC::ignored_operations; named_pipe is the secondary address
    of the last bind_ack on the same pipe (SMB fuid) or TCP connection."""
    rows = []
    pipes = {}
    for ev in events:
        d = _dcerpc_of(ev)
        if not d:
            continue
        smb = ev.get("smb") or {}
        key = (_flow_key(ev), smb.get("fuid") or smb.get("tree_id"))
        if d.get("response") in ("BINDACK", "ALTER_CONTEXT_RESP"):
            if _nonempty(d.get("secondary_address")):
                pipes[key] = d["secondary_address"]
            continue
        if d.get("request") != "REQUEST" or d.get("response") not in ("RESPONSE", "FAULT"):
            continue
        endpoint = d.get("interface")
        if not endpoint:
            continue
        operation = d.get("operation")
        if not operation:
            operation = f"unknown-{(d.get('req') or {}).get('opnum', d.get('opnum'))}"
        if operation in IGNORED_OPERATIONS.get(endpoint, ()):
            continue
        row = dict(_conn(ev))
        row.update({"named_pipe": pipes.get(key), "endpoint": endpoint, "operation": operation})
        rows.append(row)
    return rows


def ntlm_rows(events):
    """ntlm: one row per connection that carried an NTLMSSP message (dcerpc.ntlmssp, smb.ntlmssp,
    smb.ntlmssp_challenge), with the names of its first AUTHENTICATE (empty names are unset, as
    Zeek leaves them), the server names of its CHALLENGEs (server_nb_computer_name,
    server_dns_computer_name, server_tree_name = the DNS tree name; a later CHALLENGE overrides,
    as Zeek's ntlm_challenge handler does) and, for SMB, success from the session setup's status
    (dcerpc: unset, as in Zeek)."""
    rows = {}
    order = []
    for ev in events:
        t = ev.get("event_type")
        body = ev.get(t) if t in ("smb", "dcerpc") else None
        if not isinstance(body, dict):
            continue
        msgs = [body.get("ntlmssp")]
        if t == "smb":
            challenge = body.get("ntlmssp_challenge")
            if isinstance(challenge, dict):
                msgs.append(dict(challenge, type="CHALLENGE"))
            if isinstance(body.get("dcerpc"), dict):
                msgs.append(body["dcerpc"].get("ntlmssp"))
        for n in msgs:
            if not isinstance(n, dict):
                continue
            flow = _flow_key(ev)
            if flow not in rows:
                row = dict(_conn(ev))
                row.update({"username": None, "hostname": None, "domainname": None,
                            "server_nb_computer_name": None, "server_dns_computer_name": None,
                            "server_tree_name": None, "success": None, "_auth": False})
                rows[flow] = row
                order.append(flow)
            row = rows[flow]
            if n.get("type") == "CHALLENGE":
                for col, key in (("server_nb_computer_name", "server_nb_computer_name"),
                                 ("server_dns_computer_name", "server_dns_computer_name"),
                                 ("server_tree_name", "server_dns_tree_name")):
                    if key in n:
                        row[col] = n[key]
            is_auth = n.get("type", "AUTHENTICATE") == "AUTHENTICATE" and (
                "user" in n or "domain" in n or "host" in n)
            if is_auth and not row["_auth"]:
                row["_auth"] = True
                row["username"] = _nonempty(n.get("user"))
                row["hostname"] = _nonempty(n.get("host"))
                row["domainname"] = _nonempty(n.get("domain"))
                if t == "smb" and body.get("status"):
                    row["success"] = "T" if body.get("status") == "STATUS_SUCCESS" else "F"
    out = []
    for flow in order:
        row = rows[flow]
        del row["_auth"]
        out.append(row)
    return out


DERIVE = {"smb_mapping": mapping_rows, "dce_rpc": dce_rpc_rows, "ntlm": ntlm_rows}


def vigil_rows(kind, events, actions=DEFAULT_FILE_ACTIONS):
    if kind == "smb_files":
        return files_rows(events, actions)
    return DERIVE[kind](events)


# ----------------------------------------------------------------------------------------------
# Comparison


def values_equal(column, zeek, vigil):
    """Column equality (times too: vigil's are rendered as Zeek renders them, see _times)."""
    del column
    if zeek is None or vigil is None:
        return zeek is None and vigil is None
    return str(zeek) == str(vigil)


class Exceptions:
    """zeek_exceptions.yaml: `not_compared` (columns left out of a log kind, with the reason) and
    `exceptions` (test or "*", log, rows: [N...] or "all", optional columns, category, reason)."""

    def __init__(self, doc):
        doc = doc or {}
        self.not_compared = {}
        for n, e in enumerate(doc.get("not_compared") or [], 1):
            for k in ("log", "column", "reason"):
                if k not in e:
                    raise ValueError(f"not_compared {n}: missing {k}")
            self.not_compared.setdefault(e["log"], {})[e["column"]] = (
                e.get("category", "zeek-only"), " ".join(str(e["reason"]).split()))
        self.entries = []
        for n, e in enumerate(doc.get("exceptions") or [], 1):
            missing = [k for k in ("test", "log", "category", "reason") if k not in e]
            if ("rows" in e) == ("extra" in e):
                missing.append("exactly one of rows, extra")
            if missing:
                raise ValueError(f"exception {n}: missing {', '.join(missing)}")
            if "extra" in e:
                if not isinstance(e["extra"], dict) or not e["extra"] or e.get("columns"):
                    raise ValueError(f"exception {n}: extra must map columns to the values "
                                     f"of the vigil row(s) (and takes no columns)")
                self.entries.append(dict(e, rows=[], reason=" ".join(str(e["reason"]).split()),
                                         used=0))
                continue
            rows = e["rows"]
            if rows != "all" and not (isinstance(rows, list) and
                                      all(isinstance(r, int) and r >= 1 for r in rows)):
                raise ValueError(f"exception {n}: rows must be 'all' or 1-based row numbers")
            cols = e.get("columns")
            if cols is not None and not (isinstance(cols, list) and cols):
                raise ValueError(f"exception {n}: columns must be a non-empty list")
            self.entries.append(dict(e, reason=" ".join(str(e["reason"]).split()), used=0))

    @classmethod
    def load(cls, path):
        import yaml
        if not os.path.exists(path):
            return cls({})
        with open(path, encoding="utf-8") as f:
            return cls(yaml.safe_load(f))

    def _applies(self, e, test, log, row):
        return ((e["test"] == "*" or e["test"] == test) and e["log"] == log and
                "extra" not in e and
                (e["rows"] == "all" or row in e["rows"]))

    def columns(self, test, log, row):
        """{column: entry} of column exceptions for this Zeek row."""
        out = {}
        for e in self.entries:
            if e.get("columns") and self._applies(e, test, log, row):
                for c in e["columns"]:
                    out.setdefault(c, e)
        return out

    def row(self, test, log, row):
        """The row exception (no columns) for a Zeek row that vigil does not produce, or None."""
        for e in self.entries:
            if not e.get("columns") and self._applies(e, test, log, row):
                return e
        return None


Outcome = collections.namedtuple("Outcome", "status zeek_row vigil_row detail excepted")
# status: match | excepted | differ | missing | extra


def compare_rows(zeek_rows, vigil, columns, exc=None, test="", log=""):
    """Multiset comparison on `columns`. Exact matches first (excepted columns left out), then
    the rest paired greedily with the vigil row that agrees on most columns. Returns Outcomes:
    one per Zeek row (match, excepted, differ, missing) and one per unpaired vigil row (extra).
    `excepted` lists (column, entry, zeek value, vigil value) of accepted differences."""
    exc = exc or Exceptions({})
    free = list(range(len(vigil)))
    out = [None] * len(zeek_rows)
    col_exc = [exc.columns(test, log, i + 1) for i in range(len(zeek_rows))]

    def cols_for(i):
        return [c for c in columns if c not in col_exc[i]]

    for i, z in enumerate(zeek_rows):
        cols = cols_for(i)
        for j in free:
            if all(values_equal(c, z.get(c), vigil[j].get(c)) for c in cols):
                free.remove(j)
                accepted = [(c, col_exc[i][c], z.get(c), vigil[j].get(c)) for c in col_exc[i]
                            if c in columns and not values_equal(c, z.get(c), vigil[j].get(c))]
                for _, e, _, _ in accepted:
                    e["used"] += 1
                out[i] = Outcome("excepted" if accepted else "match", i + 1, vigil[j], None,
                                 accepted)
                break
    for i, z in enumerate(zeek_rows):
        if out[i] is not None:
            continue
        cols = cols_for(i)
        best, best_score = None, -1
        for j in free:
            score = sum(values_equal(c, z.get(c), vigil[j].get(c)) for c in cols)
            if score > best_score:
                best, best_score = j, score
        row_e = exc.row(test, log, i + 1)
        if row_e is not None:
            # An accepted missing row: it takes no vigil row, so that one still counts as extra.
            row_e["used"] += 1
            out[i] = Outcome("excepted", i + 1, vigil[best] if best is not None else None, None,
                             [(None, row_e, None, None)])
        elif best is not None and best_score * 2 >= len(cols):
            # A pairing is a difference only when the rows are recognisably the same record
            # (at least half the columns agree); otherwise the Zeek row is missing.
            diffs = [c for c in cols if not values_equal(c, z.get(c), vigil[best].get(c))]
            free.remove(best)
            out[i] = Outcome("differ", i + 1, vigil[best], diffs, [])
        else:
            out[i] = Outcome("missing", i + 1, vigil[best] if best is not None else None, None,
                             [])
    extras = []
    for j in free:
        e = None
        for cand in exc.entries:
            if (cand["test"] in ("*", test) and cand["log"] == log and cand.get("extra") and
                    all(values_equal(c, v, vigil[j].get(c)) or str(v) == str(vigil[j].get(c))
                        for c, v in cand["extra"].items())):
                e = cand
                break
        if e is not None:
            e["used"] += 1
            extras.append(Outcome("excepted", None, vigil[j], None, [(None, e, None, None)]))
        else:
            extras.append(Outcome("extra", None, vigil[j], None, []))
    return out + extras


def _show(v):
    return "-" if v is None else f'"{v}"'


def _row_text(row, columns):
    if row is None:
        return "none"
    return "{" + ", ".join(f"{c}={_show(row.get(c))}" for c in columns) + "}"


def summary_line(test, kind, outcomes, zeek_rows, columns):
    """One report line for a baseline log."""
    counts = collections.Counter(o.status for o in outcomes)
    n = len(zeek_rows)
    ok = counts["match"] + sum(1 for o in outcomes if o.status == "excepted" and
                               o.zeek_row is not None)
    cats = collections.Counter(c for o in outcomes
                               for c in sorted({e["category"] for _, e, _, _ in o.excepted}))
    note = ""
    if cats:
        note = " (excepted: " + ", ".join(f"{c} {k}" for c, k in sorted(cats.items())) + ")"
    bad = [o for o in outcomes if o.status in ("differ", "missing", "extra")]
    if not bad:
        return f"PASS zeek {test} {kind}: {ok}/{n} rows{note}"
    first = bad[0]
    if first.status == "differ":
        c = first.detail[0]
        z = zeek_rows[first.zeek_row - 1]
        what = (f"row {first.zeek_row}: column {c} zeek {_show(z.get(c))} vigil "
                f"{_show(first.vigil_row.get(c))} (closest vigil row "
                f"{_row_text(first.vigil_row, columns)})")
    elif first.status == "missing":
        z = zeek_rows[first.zeek_row - 1]
        what = (f"row {first.zeek_row}: missing in vigil: {_row_text(z, columns)}; closest "
                f"vigil row {_row_text(first.vigil_row, columns)}")
    else:
        what = f"extra vigil row {_row_text(first.vigil_row, columns)}"
    more = f"; +{len(bad) - 1} more" if len(bad) > 1 else ""
    return f"FAIL zeek {test} {kind}: {ok}/{n} rows: {what}{more}{note}"


# ----------------------------------------------------------------------------------------------
# Driver


def load_events(path):
    events = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                events.append(json.loads(line))
    return events


def run_trace(build, trace, tmp):
    """vigil's events for a trace: (events, notes); raises RuntimeError on a replay error."""
    work = tempfile.mkdtemp(dir=tmp)
    pcap, notes = sv.prepare_capture(trace, work)
    eve, err = sv.replay(build, pcap, work)
    if err:
        raise RuntimeError(err)
    return load_events(eve), notes


def compared_columns(kind, fields, zrows, exc, vrows):
    """Columns compared for one log: Zeek's columns less ts/uid, masked ones and not_compared."""
    skip = {"ts", "uid"} | masked_columns(fields, zrows) | set(exc.not_compared.get(kind, {}))
    return [f for f in fields if f not in skip]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare vigil's SMB/DCE-RPC/NTLM events with Zeek's baseline logs.")
    parser.add_argument("build", metavar="BUILD_DIR")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="a test (scripts path such as smb/smb2.test, or a glob); repeatable")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="every row's outcome and every accepted difference")
    parser.add_argument("--report-only", action="store_true", help="exit 0 whatever differs")
    args = parser.parse_args(argv)

    if not os.path.isdir(os.path.join(DATA, "Baseline")):
        print(f"SKIP: {DATA} is absent: no Zeek baselines to compare with")
        return SKIP
    try:
        import yaml
    except ImportError:
        print("SKIP: PyYAML is not installed for this python3 (Debian: python3-yaml)")
        return SKIP
    binary = os.path.join(args.build, "dataplane", "vigil-dataplane")
    if not os.access(binary, os.X_OK):
        print(f"error: {binary} is missing: build first (ninja -C {args.build})")
        return 2
    try:
        exc = Exceptions.load(EXCEPTIONS)
    except (ValueError, yaml.YAMLError) as e:
        print(f"error: zeek_exceptions.yaml: {e}")
        return 2

    tests = discover(DATA)
    if args.only:
        tests = [t for t in tests if any(fnmatch.fnmatch(t[0], p) or t[0] == p or
                                         os.path.basename(t[0]).startswith(p + ".")
                                         for p in args.only)]
        if not tests:
            print(f"error: no test matches {', '.join(args.only)}")
            return 2

    totals = collections.Counter()
    by_category = collections.Counter()
    gaps = []  # (test, log, row, column, zeek value, vigil value, reason)
    kinds_seen = set()
    cache = {}
    with tempfile.TemporaryDirectory(prefix="vigil-zeek-") as tmp:
        for name, bdir, _rel, trace, actions, kinds in tests:
            trace_path = os.path.join(DATA, "Traces", trace) if trace else None
            err = None
            if trace_path is None:
                err = "no `-r $TRACES/...` in the test script"
            elif not os.path.exists(trace_path):
                err = f"trace {trace} is not in Traces/"
            elif trace_path not in cache:
                try:
                    cache[trace_path] = run_trace(args.build, trace_path, tmp)
                except (RuntimeError, ValueError, OSError) as e:
                    cache[trace_path] = e
            if err is None and isinstance(cache[trace_path], Exception):
                err = f"replay: {cache[trace_path]}"
            for kind in kinds:
                with open(os.path.join(bdir, f"{kind}.log"), encoding="utf-8",
                          errors="replace") as f:
                    fields, _types, zrows = parse_zeek_log(f.read())
                kinds_seen.add(kind)
                if err:
                    print(f"FAIL zeek {name} {kind}: 0/{len(zrows)} rows: {err}")
                    totals["missing"] += len(zrows)
                    continue
                events, notes = cache[trace_path]
                vrows = vigil_rows(kind, events, actions)
                columns = compared_columns(kind, fields, zrows, exc, vrows)
                outcomes = compare_rows(zrows, vrows, columns, exc, name, kind)
                print(summary_line(name, kind, outcomes, zrows, columns), flush=True)
                for o in outcomes:
                    totals[o.status] += 1
                    for cat in {e["category"] for _, e, _, _ in o.excepted}:
                        by_category[cat] += 1
                    for col, e, zv, vv in o.excepted:
                        if e["category"] == "parser-gap":
                            z = zrows[o.zeek_row - 1] if o.zeek_row else None
                            example = (f"column {col} zeek {_show(zv)} vigil {_show(vv)}" if col
                                       else f"zeek row {_row_text(z, columns)} not in vigil")
                            gaps.append((id(e), e, f"{name} {kind} row {o.zeek_row}: {example}"))
                if args.verbose:
                    for note in notes:
                        print(f"     note: {note}")
                    print(f"     trace {trace}; columns compared: {', '.join(columns)}")
                    for o in outcomes:
                        where = f"row {o.zeek_row}" if o.zeek_row else "extra"
                        z = zrows[o.zeek_row - 1] if o.zeek_row else None
                        text = f"     {where}: {o.status.upper()}"
                        if o.status == "differ":
                            text += ": " + "; ".join(
                                f"{c} zeek {_show(z.get(c))} vigil {_show(o.vigil_row.get(c))}"
                                for c in o.detail)
                        elif z is not None:
                            text += ": " + _row_text(z, columns)
                        else:
                            text += ": " + _row_text(o.vigil_row, columns)
                        print(text)
                        for col, e, zv, vv in o.excepted:
                            what = (f"column {col} zeek {_show(zv)} vigil {_show(vv)}" if col
                                    else "row")
                            print(f"       excepted ({e['category']}): {what}: {e['reason']}")

    for kind in LOG_KINDS:
        if kind not in kinds_seen:
            continue
        for col, (cat, reason) in exc.not_compared.get(kind, {}).items():
            print(f"N/A  zeek {kind}.{col}: not compared ({cat}): {reason}")
    gap_columns = [(k, c, r) for k in LOG_KINDS if k in kinds_seen
                   for c, (cat, r) in exc.not_compared.get(k, {}).items() if cat == "parser-gap"]
    if gaps or gap_columns:
        print("parser gaps (Zeek has the value, vigil's events could carry it):")
        seen = {}
        for key, e, example in gaps:
            seen.setdefault(key, (e, []))[1].append(example)
        for e, examples in seen.values():
            cols = f" [{', '.join(e['columns'])}]" if e.get("columns") else ""
            print(f"GAP  zeek {e['log']}{cols}: {e['reason']}")
            for example in examples:
                print(f"       e.g. {example}")
        for kind, col, reason in gap_columns:
            print(f"GAP  zeek {kind} [{col}]: never produced: {reason}")
    for e in exc.entries:
        if not e["used"] and not (args.only and e["test"] != "*"):
            print(f"WARN zeek_exceptions.yaml: unused exception {e['test']} {e['log']} rows "
                  f"{e['rows']}{' columns ' + ','.join(e['columns']) if e.get('columns') else ''}"
                  f" ({e['category']})")
    not_compared = ", ".join(f"{k}.{c}" for k in LOG_KINDS if k in kinds_seen
                             for c in exc.not_compared.get(k, {}))
    cats = ", ".join(f"{c} {n}" for c, n in sorted(by_category.items()))
    print(f"zeek: {totals['match']} rows matched, {totals['differ']} differ, "
          f"{totals['missing']} missing, {totals['extra']} extra; {totals['excepted']} excepted"
          + (f" (rows by category: {cats})" if cats else "")
          + f"; columns not compared: ts, uid (masked), {not_compared or 'none'}")
    if (totals["differ"] or totals["missing"] or totals["extra"]) and not args.report_only:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
