#!/usr/bin/python3
"""Generates dataplane/proto/smb_names.inc: SMB1/SMB2 command names, SMB2 dialects, SMB1
transaction subcommands and NT status names for the SMB parser.

Input: Zeek's SMB consts script (base/protocols/smb/consts.zeek). Its tables give the command
codes and the order of names; the spellings the parser emits are Suricata's EVE spellings
("SMB2_COMMAND_FIND" where Zeek says QUERY_DIRECTORY), mapped below. Zeek's `statuses` table is
used when it has entries; NT status codes it lacks come from MS-ERREF 2.3.1 (NTSTATUS Values),
listed in MS_ERREF_STATUSES below.

Usage (from the repository root):
  /usr/bin/python3 scripts/gen-smb-names.py [../shared/data/ref/zeek-smb-consts.zeek] \
      [-o dataplane/proto/smb_names.inc]
Without -o the output goes to stdout. The output depends only on the input file's tables (not on
its path), so a unit test can regenerate it and compare.
"""

import argparse
import re
import sys

DEFAULT_INPUT = "../shared/data/ref/zeek-smb-consts.zeek"

# Zeek name -> Suricata EVE name (suffix after SMB1_COMMAND_ / SMB2_COMMAND_).
SMB1_RENAMES = {
    "NEGOTIATE": "NEGOTIATE_PROTOCOL",
    "TRANSACTION": "TRANS",
    "TRANSACTION_SECONDARY": "TRANS_SECONDARY",
    "TRANSACTION2": "TRANS2",
    "TRANSACTION2_SECONDARY": "TRANS2_SECONDARY",
    "NT_TRANSACT": "NT_TRANS",
    "NT_TRANSACT_SECONDARY": "NT_TRANS_SECONDARY",
    "QUERY_INFORMATION_DISK": "QUERY_INFO_DISK",
}
SMB2_RENAMES = {
    "LOGOFF": "SESSION_LOGOFF",
    "ECHO": "KEEPALIVE",
    "QUERY_DIRECTORY": "FIND",
    "QUERY_INFO": "GET_INFO",
}
# Suricata's SMB2 dialect spellings (Zeek writes "2.0.2", "2.1", ...).
SMB2_DIALECTS = {
    0x0202: "2.02",
    0x0210: "2.10",
    0x0222: "2.22",
    0x0224: "2.24",
    0x02FF: "2.??",
    0x0300: "3.00",
    0x0302: "3.02",
    0x0310: "3.10",
    0x0311: "3.11",
}

# MS-ERREF 2.3.1: the NT status codes an SMB server commonly returns.
MS_ERREF_STATUSES = {
    0x00000000: "SUCCESS",
    0x00000102: "TIMEOUT",
    0x00000103: "PENDING",
    0x00000104: "REPARSE",
    0x00000105: "MORE_ENTRIES",
    0x00000106: "NOT_ALL_ASSIGNED",
    0x00000107: "SOME_NOT_MAPPED",
    0x00000108: "OPLOCK_BREAK_IN_PROGRESS",
    0x0000010B: "NOTIFY_CLEANUP",
    0x0000010C: "NOTIFY_ENUM_DIR",
    0x80000005: "BUFFER_OVERFLOW",
    0x80000006: "NO_MORE_FILES",
    0x80000011: "DEVICE_BUSY",
    0x8000001A: "NO_MORE_ENTRIES",
    0x8000002D: "STOPPED_ON_SYMLINK",
    0xC0000001: "UNSUCCESSFUL",
    0xC0000002: "NOT_IMPLEMENTED",
    0xC0000003: "INVALID_INFO_CLASS",
    0xC0000004: "INFO_LENGTH_MISMATCH",
    0xC0000005: "ACCESS_VIOLATION",
    0xC0000008: "INVALID_HANDLE",
    0xC000000D: "INVALID_PARAMETER",
    0xC000000E: "NO_SUCH_DEVICE",
    0xC000000F: "NO_SUCH_FILE",
    0xC0000010: "INVALID_DEVICE_REQUEST",
    0xC0000011: "END_OF_FILE",
    0xC0000013: "NO_MEDIA_IN_DEVICE",
    0xC0000016: "MORE_PROCESSING_REQUIRED",
    0xC0000017: "NO_MEMORY",
    0xC0000022: "ACCESS_DENIED",
    0xC0000023: "BUFFER_TOO_SMALL",
    0xC0000024: "OBJECT_TYPE_MISMATCH",
    0xC0000030: "INVALID_PARAMETER_MIX",
    0xC0000033: "OBJECT_NAME_INVALID",
    0xC0000034: "OBJECT_NAME_NOT_FOUND",
    0xC0000035: "OBJECT_NAME_COLLISION",
    0xC0000039: "OBJECT_PATH_INVALID",
    0xC000003A: "OBJECT_PATH_NOT_FOUND",
    0xC000003B: "OBJECT_PATH_SYNTAX_BAD",
    0xC0000043: "SHARING_VIOLATION",
    0xC0000044: "QUOTA_EXCEEDED",
    0xC000004F: "EAS_NOT_SUPPORTED",
    0xC0000054: "FILE_LOCK_CONFLICT",
    0xC0000055: "LOCK_NOT_GRANTED",
    0xC0000056: "DELETE_PENDING",
    0xC000005E: "NO_LOGON_SERVERS",
    0xC000005F: "NO_SUCH_LOGON_SESSION",
    0xC0000060: "NO_SUCH_PRIVILEGE",
    0xC0000061: "PRIVILEGE_NOT_HELD",
    0xC0000062: "INVALID_ACCOUNT_NAME",
    0xC0000063: "USER_EXISTS",
    0xC0000064: "NO_SUCH_USER",
    0xC0000065: "GROUP_EXISTS",
    0xC000006A: "WRONG_PASSWORD",
    0xC000006C: "PASSWORD_RESTRICTION",
    0xC000006D: "LOGON_FAILURE",
    0xC000006E: "ACCOUNT_RESTRICTION",
    0xC000006F: "INVALID_LOGON_HOURS",
    0xC0000070: "INVALID_WORKSTATION",
    0xC0000071: "PASSWORD_EXPIRED",
    0xC0000072: "ACCOUNT_DISABLED",
    0xC0000073: "NONE_MAPPED",
    0xC000007C: "NO_TOKEN",
    0xC000007E: "RANGE_NOT_LOCKED",
    0xC000007F: "DISK_FULL",
    0xC000009A: "INSUFFICIENT_RESOURCES",
    0xC00000A2: "MEDIA_WRITE_PROTECTED",
    0xC00000AB: "INSTANCE_NOT_AVAILABLE",
    0xC00000AC: "PIPE_NOT_AVAILABLE",
    0xC00000AD: "INVALID_PIPE_STATE",
    0xC00000AE: "PIPE_BUSY",
    0xC00000AF: "ILLEGAL_FUNCTION",
    0xC00000B0: "PIPE_DISCONNECTED",
    0xC00000B1: "PIPE_CLOSING",
    0xC00000B5: "IO_TIMEOUT",
    0xC00000BA: "FILE_IS_A_DIRECTORY",
    0xC00000BB: "NOT_SUPPORTED",
    0xC00000BC: "REMOTE_NOT_LISTENING",
    0xC00000BD: "DUPLICATE_NAME",
    0xC00000BE: "BAD_NETWORK_PATH",
    0xC00000BF: "NETWORK_BUSY",
    0xC00000C0: "DEVICE_DOES_NOT_EXIST",
    0xC00000C1: "TOO_MANY_COMMANDS",
    0xC00000C3: "INVALID_NETWORK_RESPONSE",
    0xC00000C4: "UNEXPECTED_NETWORK_ERROR",
    0xC00000C5: "BAD_REMOTE_ADAPTER",
    0xC00000C6: "PRINT_QUEUE_FULL",
    0xC00000C7: "NO_SPOOL_SPACE",
    0xC00000C8: "PRINT_CANCELLED",
    0xC00000C9: "NETWORK_NAME_DELETED",
    0xC00000CA: "NETWORK_ACCESS_DENIED",
    0xC00000CB: "BAD_DEVICE_TYPE",
    0xC00000CC: "BAD_NETWORK_NAME",
    0xC00000CD: "TOO_MANY_NAMES",
    0xC00000CE: "TOO_MANY_SESSIONS",
    0xC00000CF: "SHARING_PAUSED",
    0xC00000D0: "REQUEST_NOT_ACCEPTED",
    0xC00000D1: "REDIRECTOR_PAUSED",
    0xC00000D2: "NET_WRITE_FAULT",
    0xC00000D4: "NOT_SAME_DEVICE",
    0xC00000D5: "FILE_RENAMED",
    0xC00000D9: "PIPE_EMPTY",
    0xC00000E5: "INTERNAL_ERROR",
    0xC0000101: "DIRECTORY_NOT_EMPTY",
    0xC0000103: "NOT_A_DIRECTORY",
    0xC0000106: "NAME_TOO_LONG",
    0xC0000120: "CANCELLED",
    0xC0000121: "CANNOT_DELETE",
    0xC0000122: "INVALID_COMPUTER_NAME",
    0xC0000123: "FILE_DELETED",
    0xC0000128: "FILE_CLOSED",
    0xC0000133: "TIME_DIFFERENCE_AT_DC",
    0xC000013B: "LOCAL_DISCONNECT",
    0xC000013C: "REMOTE_DISCONNECT",
    0xC000013D: "REMOTE_RESOURCES",
    0xC0000140: "INVALID_CONNECTION",
    0xC0000148: "INVALID_LEVEL",
    0xC000014B: "PIPE_BROKEN",
    0xC000015B: "LOGON_TYPE_NOT_GRANTED",
    0xC0000184: "INVALID_DEVICE_STATE",
    0xC000018B: "NO_TRUST_SAM_ACCOUNT",
    0xC000018D: "TRUSTED_RELATIONSHIP_FAILURE",
    0xC0000190: "TRUST_FAILURE",
    0xC0000192: "NETLOGON_NOT_STARTED",
    0xC0000193: "ACCOUNT_EXPIRED",
    0xC0000198: "NOLOGON_INTERDOMAIN_TRUST_ACCOUNT",
    0xC0000199: "NOLOGON_WORKSTATION_TRUST_ACCOUNT",
    0xC000019A: "NOLOGON_SERVER_TRUST_ACCOUNT",
    0xC0000203: "USER_SESSION_DELETED",
    0xC0000205: "INSUFF_SERVER_RESOURCES",
    0xC0000206: "INVALID_BUFFER_SIZE",
    0xC000020C: "CONNECTION_DISCONNECTED",
    0xC000020D: "CONNECTION_RESET",
    0xC0000224: "PASSWORD_MUST_CHANGE",
    0xC0000225: "NOT_FOUND",
    0xC0000234: "ACCOUNT_LOCKED_OUT",
    0xC0000236: "CONNECTION_REFUSED",
    0xC000023C: "NETWORK_UNREACHABLE",
    0xC0000257: "PATH_NOT_COVERED",
    0xC0000275: "NOT_A_REPARSE_POINT",
    0xC000035C: "NETWORK_SESSION_EXPIRED",
    0xC0000388: "DOWNGRADE_DETECTED",
    0xC0000466: "SERVER_UNAVAILABLE",
    0xC000A000: "INVALID_SIGNATURE",
}


def parse_table(text, module, name):
    """Returns {code: string} of `const <name>: table[count] of string` in `module`."""
    mod = re.search(r"^module\s+%s\s*;(.*?)(?=^module\s|\Z)" % re.escape(module), text,
                    re.S | re.M)
    if not mod:
        return {}
    tab = re.search(r"const\s+%s\s*:\s*table\[count\][^{]*\{(.*?)\}" % re.escape(name), mod.group(1),
                    re.S)
    if not tab:
        return {}
    out = {}
    for m in re.finditer(r"\[\s*(0x[0-9A-Fa-f]+|\d+)\s*\]\s*=\s*\"([^\"]*)\"", tab.group(1)):
        out[int(m.group(1), 0)] = m.group(2)
    return out


def parse_statuses(text):
    """Zeek's SMB::statuses: {code: id} where id is e.g. "SUCCESS"."""
    out = {}
    for m in re.finditer(r"\[\s*(0x[0-9A-Fa-f]+|\d+)\s*\]\s*=\s*StatusCode\(\s*\$id\s*=\s*\"([^\"]+)\"",
                         text):
        out[int(m.group(1), 0)] = m.group(2)
    return out


def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("zeek", nargs="?", default=DEFAULT_INPUT)
    ap.add_argument("-o", "--output", default="-")
    args = ap.parse_args()
    with open(args.zeek, encoding="utf-8") as f:
        text = f.read()

    smb1 = parse_table(text, "SMB1", "commands")
    smb2 = parse_table(text, "SMB2", "commands")
    trans = parse_table(text, "SMB1", "trans_sub_commands")
    trans2 = parse_table(text, "SMB1", "trans2_sub_commands")
    share_types = parse_table(text, "SMB2", "share_types")
    if not smb1 or not smb2:
        sys.exit("gen-smb-names: %s lacks the SMB1/SMB2 command tables" % args.zeek)

    statuses = {code: "STATUS_" + name for code, name in MS_ERREF_STATUSES.items()}
    zeek_statuses = parse_statuses(text)
    for code, ident in zeek_statuses.items():
        if not ident.startswith("unknown"):
            statuses[code] = ident if ident.startswith("STATUS_") else "STATUS_" + ident

    out = []
    w = out.append
    w("// Generated by scripts/gen-smb-names.py; do not edit. Regenerate from the repository root:")
    w("//   /usr/bin/python3 scripts/gen-smb-names.py")
    w("//       ../shared/data/ref/zeek-smb-consts.zeek -o dataplane/proto/smb_names.inc")
    w("//")
    w("// Source: Zeek's SMB constants (scripts/base/protocols/smb/consts.zeek), Copyright (c)")
    w("// The Regents of the University of California through the Lawrence Berkeley National")
    w("// Laboratory and the International Computer Science Institute, distributed under Zeek's")
    w("// BSD-style license. Command codes come from its SMB1/SMB2 tables, written with Suricata's")
    w("// EVE spellings. NT status names: %d from that file's `statuses` table, the rest from"
      % len([c for c in zeek_statuses if not zeek_statuses[c].startswith("unknown")]))
    w("// MS-ERREF 2.3.1 (NTSTATUS Values, Microsoft Open Specifications).")
    w("// Included once, by dataplane/proto/smb.cc, inside namespace vigil::proto.")
    w("")
    w("struct SmbCodeName {")
    w("  uint32_t code;")
    w("  const char* name;")
    w("};")
    w("")
    w("// NT status codes, sorted by code.")
    w("inline constexpr SmbCodeName kSmbNtStatusNames[] = {")
    for code in sorted(statuses):
        w("    {0x%08Xu, %s}," % (code, c_str(statuses[code])))
    w("};")
    w("")
    w("// SMB1 commands (MS-CIFS 2.2.2.1), sorted by code.")
    w("inline constexpr SmbCodeName kSmb1CommandNames[] = {")
    for code in sorted(smb1):
        name = SMB1_RENAMES.get(smb1[code], smb1[code])
        w("    {0x%02Xu, %s}," % (code, c_str("SMB1_COMMAND_" + name)))
    w("};")
    w("")
    w("// SMB2 commands (MS-SMB2 2.2.1), indexed by code.")
    w("inline constexpr const char* kSmb2CommandNames[] = {")
    for code in range(max(smb2) + 1):
        if code in smb2:
            name = SMB2_RENAMES.get(smb2[code], smb2[code])
            w("    %s," % c_str("SMB2_COMMAND_" + name))
        else:
            w("    nullptr,")
    w("};")
    w("")
    w("// SMB2 dialect revisions as Suricata writes them, sorted by code.")
    w("inline constexpr SmbCodeName kSmb2DialectNames[] = {")
    for code in sorted(SMB2_DIALECTS):
        w("    {0x%04Xu, %s}," % (code, c_str(SMB2_DIALECTS[code])))
    w("};")
    w("")
    w("// SMB1 TRANSACTION subcommands (named pipes), sorted by code.")
    w("inline constexpr SmbCodeName kSmb1TransNames[] = {")
    for code in sorted(trans):
        w("    {0x%02Xu, %s}," % (code, c_str(trans[code])))
    w("};")
    w("")
    w("// SMB1 TRANSACTION2 subcommands, sorted by code.")
    w("inline constexpr SmbCodeName kSmb1Trans2Names[] = {")
    for code in sorted(trans2):
        w("    {0x%02Xu, %s}," % (code, c_str(trans2[code])))
    w("};")
    w("")
    w("// SMB2 TREE_CONNECT share types.")
    w("inline constexpr SmbCodeName kSmb2ShareTypeNames[] = {")
    for code in sorted(share_types):
        w("    {%du, %s}," % (code, c_str(share_types[code])))
    w("};")
    text_out = "\n".join(out) + "\n"
    if args.output == "-":
        sys.stdout.write(text_out)
    else:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text_out)


if __name__ == "__main__":
    main()
