"""Unit tests of sv_checks.py (the suricata-verify check evaluator) and of the pure helpers of
suricata_verify.py. Run: python3 tests/scenarios/sv_checks_test.py [-v]"""
import json
import os
import struct
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sv_checks  # noqa: E402
from sv_checks import FAIL, NA, PASS, Target, evaluate_check, find_value, match_event  # noqa

SMB = {
    "event_type": "smb", "src_port": 49266, "app_proto": "smb",
    "smb": {"command": "SMB2_COMMAND_WRITE", "filename": "atsvc", "tree_id": 1,
            "flags": "0x0", "named_pipe": None,
            "dcerpc": {"request": "BIND",
                       "interfaces": [{"uuid": "1ff70682", "ack_result": 2},
                                      {"uuid": "1ff70682", "ack_result": 0}]}},
}
FLOW = {"event_type": "flow", "app_proto": "smb", "proto": "TCP",
        "flow": {"state": "established", "alerted": False, "pkts_toserver": 11},
        "tcp": {"state": "established", "syn": True}}
DNS = {"event_type": "dns", "dns": {"type": "response", "flags": "81a0", "id": 36146,
                                    "answers": [{"rrname": "a.org", "ttl": 244}],
                                    "grouped": {"A": ["192.0.78.24", "192.0.78.25"]}}}
EVENTS = [SMB, FLOW, DNS]
TARGET = Target("8.0.1", features=["HAVE_JA4"], os_name="Linux", arch="x86_64")


def flt(count, match, **extra):
    return {"filter": dict(count=count, match=match, **extra)}


def run(check, events=EVENTS, target=TARGET):
    return evaluate_check(check, events, target)


class FindValue(unittest.TestCase):
    def test_paths(self):
        self.assertEqual(find_value("event_type", SMB), "smb")
        self.assertEqual(find_value("smb.dcerpc.request", SMB), "BIND")
        self.assertEqual(find_value("smb.dcerpc.interfaces[1].ack_result", SMB), 0)
        self.assertEqual(find_value("dns.grouped.A[1]", DNS), "192.0.78.25")

    def test_missing_is_none(self):
        self.assertIsNone(find_value("smb.nothing", SMB))
        self.assertIsNone(find_value("nothing.at.all", SMB))
        self.assertIsNone(find_value("smb.dcerpc.interfaces[2].uuid", SMB))  # out of range
        self.assertIsNone(find_value("smb.filename.x", SMB))   # a string is not an object
        self.assertIsNone(find_value("smb[0]", SMB))           # an object is not a list
        self.assertIsNone(find_value("smb.named_pipe", SMB))   # JSON null reads as missing

    def test_len(self):
        self.assertEqual(find_value("smb.dcerpc.interfaces.__len", SMB), 2)
        self.assertEqual(find_value("smb.filename.__len", SMB), 5)
        self.assertEqual(find_value("smb.dcerpc.__len", SMB), 2)
        self.assertEqual(find_value("smb.tree_id.__len", SMB), -1)  # a number has no length
        self.assertEqual(find_value("smb.named_pipe.__len", SMB), -1)
        self.assertIsNone(find_value("smb.nothing.__len", SMB))  # a missing path stays None
        self.assertEqual(find_value("__len", {"a": 1, "b": 2}), 2)

    def test_index_into_string(self):
        # As run.py: the index applies to whatever the name reached, a string included.
        self.assertEqual(find_value("smb.filename[0]", SMB), "a")
        self.assertIsNone(find_value("smb.tree_id[0]", SMB))

    def test_operators_stop_the_walk(self):
        self.assertEqual(find_value("smb.filename.__contains", SMB), "atsvc")
        self.assertEqual(find_value("dns.grouped.A.__find", DNS), ["192.0.78.24", "192.0.78.25"])
        self.assertEqual(find_value("flow.pkts_toserver.__gte", FLOW), 11)


class Match(unittest.TestCase):
    def count(self, match, events=EVENTS):
        return sum(match_event(match, e) for e in events)

    def test_equality_and_types(self):
        self.assertEqual(self.count({"smb.tree_id": 1}), 1)
        self.assertEqual(self.count({"smb.tree_id": "1"}), 0)      # str never equals int
        self.assertEqual(self.count({"smb.tree_id": 1.0}), 1)      # Python: 1 == 1.0
        self.assertEqual(self.count({"smb.tree_id": True}), 1)     # Python: True == 1
        self.assertEqual(self.count({"flow.alerted": 0}), 1)       # and False == 0
        self.assertEqual(self.count({"dns.flags": "81a0"}), 1)
        self.assertEqual(self.count({"dns.answers[0]": {"rrname": "a.org", "ttl": 244}}), 1)
        self.assertEqual(self.count({"dns.grouped.A": ["192.0.78.24", "192.0.78.25"]}), 1)

    def test_null_expected_means_absent(self):
        self.assertEqual(self.count({"event_type": "smb", "smb.named_pipe": None}), 1)
        self.assertEqual(self.count({"event_type": "smb", "smb.nothing": None}), 1)
        self.assertEqual(self.count({"smb.filename": None}), 2)

    def test_empty_match_matches_everything(self):
        self.assertEqual(self.count({}), 3)

    def test_has_key(self):
        self.assertEqual(self.count({"has-key": "smb.dcerpc"}), 1)
        self.assertEqual(self.count({"has-key": "app_proto"}), 2)
        self.assertEqual(self.count({"has-key": "smb.named_pipe"}), 0)  # null is absent
        self.assertEqual(self.count({"has-key": "smb.dcerpc.interfaces[5]"}), 0)
        self.assertEqual(self.count({"has-key": ["app_proto", "tcp.syn"]}), 1)
        self.assertEqual(self.count({"has-key": "flow.alerted"}), 1)  # false is a value

    def test_not_has_key(self):
        self.assertEqual(self.count({"not-has-key": "app_proto"}), 1)
        self.assertEqual(self.count({"not-has-key": "smb.named_pipe", "event_type": "smb"}), 1)
        self.assertEqual(self.count({"not-has-key": ["smb", "dns"]}), 1)

    def test_contains(self):
        self.assertEqual(self.count({"dns.grouped.A.__contains": "192.0.78.25"}), 1)  # element
        self.assertEqual(self.count({"dns.grouped.A.__contains": "192.0.78"}), 0)
        self.assertEqual(self.count({"smb.filename.__contains": "svc"}), 1)  # substring
        self.assertEqual(self.count({"smb.dcerpc.__contains": "request"}), 1)  # object key
        self.assertEqual(self.count({"smb.filename.__contains": 5}), 0)  # TypeError: no match
        self.assertEqual(self.count({"smb.nothing.__contains": "x"}), 0)  # missing: no match
        self.assertEqual(self.count({"smb.tree_id.__contains": 1}), 0)    # int: no match

    def test_find_startswith_endswith(self):
        self.assertEqual(self.count({"smb.filename.__find": "tsv"}), 1)
        self.assertEqual(self.count({"smb.filename.__find": "xyz"}), 0)
        self.assertEqual(self.count({"smb.filename.__startswith": "ats"}), 1)
        self.assertEqual(self.count({"smb.filename.__endswith": "svc"}), 1)
        self.assertEqual(self.count({"smb.filename.__endswith": "ats"}), 0)
        self.assertEqual(self.count({"dns.id.__startswith": 361}), 1)  # text of a number
        self.assertEqual(self.count({"smb.nothing.__startswith": ""}), 0)  # missing: no match
        # A suffix glued to the last part (no dot) is not a walk stop: the key is missing.
        self.assertEqual(self.count({"smb.filename__startswith": "ats"}), 0)

    def test_comparisons(self):
        self.assertEqual(self.count({"flow.pkts_toserver.__gt": 10}), 1)
        self.assertEqual(self.count({"flow.pkts_toserver.__gt": 11}), 0)
        self.assertEqual(self.count({"flow.pkts_toserver.__gte": 11}), 1)
        self.assertEqual(self.count({"flow.pkts_toserver.__lt": 11.5}), 1)
        self.assertEqual(self.count({"flow.pkts_toserver.__lte": 10}), 0)
        self.assertEqual(self.count({"tcp.syn.__gte": 0}), 0)       # a bool is not a number
        self.assertEqual(self.count({"dns.flags.__gt": 0}), 0)      # nor is a string
        self.assertEqual(self.count({"smb.dcerpc.interfaces.__len": 2}), 1)


class Filter(unittest.TestCase):
    def test_pass_and_count(self):
        r = run(flt(1, {"event_type": "flow", "app_proto": "smb", "tcp.state": "established",
                        "flow.state": "established"}))
        self.assertEqual((r.status, r.reason), (PASS, "1 event match"))
        self.assertEqual(run(flt(3, {})).status, PASS)
        self.assertEqual(run(flt(2, {})).status, FAIL)

    def test_count_zero(self):
        self.assertEqual(run(flt(0, {"event_type": "anomaly"})).status, PASS)
        r = run(flt(0, {"event_type": "flow"}))
        self.assertEqual(r.status, FAIL)
        self.assertEqual(r.reason, "1 events match, expected 0")

    def test_no_events(self):
        r = run(flt(1, {"event_type": "flow"}), events=[])
        self.assertEqual((r.status, r.reason), (FAIL, "no events (0 of 1 event)"))
        self.assertEqual(run(flt(0, {"event_type": "flow"}), events=[]).status, PASS)

    def test_reason_names_the_differing_field(self):
        r = run(flt(1, {"event_type": "smb", "smb.filename": "atsvc2"}))
        self.assertEqual(r.status, FAIL)
        self.assertEqual(r.reason, 'smb.filename expected "atsvc2" got "atsvc" in the 1 nearest '
                                   'event (1/2 fields) (0 of 1 event)')

    def test_reason_prefers_event_type(self):
        # The flow event shares proto and app_proto, but lacks the event type: say that.
        r = run(flt(1, {"proto": "TCP", "app_proto": "smb", "event_type": "smb",
                        "smb.x": 1}), events=[FLOW])
        self.assertEqual(r.reason, 'event_type expected "smb" got "flow" in the 1 nearest event '
                                   '(2/4 fields) (0 of 1 event)')

    def test_reason_nearest_is_of_the_expected_type(self):
        # The flow event holds as many entries as the smb one, but the smb one is nearer.
        r = run(flt(1, {"event_type": "smb", "app_proto": "smb", "smb.filename": "x"}),
                events=[FLOW, SMB])
        self.assertEqual(r.reason, 'smb.filename expected "x" got "atsvc" in the 1 nearest event '
                                   '(2/3 fields) (0 of 1 event)')

    def test_reason_missing_field(self):
        r = run(flt(2, {"event_type": "flow", "app_proto": "smb"}),
                events=[FLOW, dict(FLOW, app_proto=None), {"event_type": "flow"}])
        self.assertEqual(r.reason, 'app_proto expected "smb" got none in the 2 nearest events '
                                   '(1/2 fields) (1 of 2 events)')

    def test_reason_type_mismatch(self):
        r = run(flt(1, {"event_type": "smb", "smb.tree_id": "1"}))
        self.assertIn('smb.tree_id expected "1" got 1', r.reason)
        self.assertIn("same text, different types: expected str, got int", r.reason)

    def test_reason_has_key(self):
        r = run(flt(1, {"event_type": "smb", "has-key": "community_id"}))
        self.assertTrue(r.reason.startswith("has-key community_id: absent"), r.reason)
        r = run(flt(1, {"event_type": "smb", "not-has-key": "smb.dcerpc"}))
        self.assertTrue(r.reason.startswith("not-has-key smb.dcerpc: present"), r.reason)

    def test_reason_many_values_cut(self):
        events = [{"event_type": "x", "v": i} for i in range(5)]
        r = run(flt(1, {"v": 9}), events=events)
        self.assertEqual(r.reason, "v expected 9 got 0, 1, 2, ... (0 of 1 event)")

    def test_every_event_matches_but_too_few(self):
        r = run(flt(3, {"event_type": "flow"}), events=[FLOW])
        self.assertEqual(r.reason, "every one of the 1 event matches (1 of 3 events)")

    def test_comment(self):
        r = run(flt(1, {"event_type": "tls"}, comment="one tls event"))
        self.assertTrue(r.reason.startswith("one tls event: "), r.reason)

    def test_other_output_file(self):
        r = run(flt(1, {"event_type": "flow"}, filename="eve-alerts.json"))
        self.assertEqual((r.status, r.category), (NA, "other-output"))
        self.assertEqual(run(flt(1, {"event_type": "flow"}, filename="eve.json")).status, PASS)

    def test_malformed(self):
        self.assertEqual(run({"filter": {"match": {"a": 1}}}).category, "malformed")
        self.assertEqual(run({"filter": {"count": 1, "match": ["a"]}}).category, "malformed")


class Versions(unittest.TestCase):
    def test_parse(self):
        p = sv_checks.parse_version
        self.assertEqual(p("4.0.3"), (4, 0, 3))
        self.assertEqual(p("4.1.0-dev"), (4, 1, 0))
        self.assertEqual(p(6.0), (6, 0, 0))      # YAML float
        self.assertEqual(p(9), (9, 0, 0))        # YAML int
        self.assertEqual(p("7"), (7, 0, 0))
        self.assertEqual(p("4.0", "equal"), (4, 0, None))
        self.assertEqual(p("Suricata version 7.0.2 RELEASE"), (7, 0, 2))
        self.assertIsNone(p("dev"))

    def test_compatible(self):
        c = sv_checks.version_compatible
        self.assertTrue(c("8", (8, 0, 1), "gte"))
        self.assertTrue(c("8.0.1", (8, 0, 1), "gte"))
        self.assertFalse(c("8.0.5", (8, 0, 1), "gte"))
        self.assertFalse(c(9, (8, 0, 1), "gte"))
        self.assertTrue(c("9", (8, 9, 9), "lt"))
        self.assertFalse(c("8", (8, 0, 0), "lt"))
        # run.py's lt compares the patch even when the minor differs; tuples do not.
        self.assertFalse(c("6.1.5", (6, 2, 0), "lt"))
        self.assertTrue(c("7.0.0", (7, 0, 1), "gt"))
        self.assertTrue(c("8", (8, 0, 1), "equal"))
        self.assertTrue(c("8.0", (8, 0, 1), "equal"))
        self.assertFalse(c("8.0.2", (8, 0, 1), "equal"))
        self.assertFalse(c("8.1", (8, 0, 1), "equal"))

    def test_check_level_gates(self):
        ok = flt(1, {"event_type": "flow"})
        for gate, status in [({"min-version": 8}, PASS), ({"min-version": "8.0.5"}, NA),
                             ({"min-version": 9}, NA), ({"lt-version": 9}, PASS),
                             ({"lt-version": "8.0.1"}, NA), ({"version": "8.0"}, PASS),
                             ({"version": 7}, NA), ({"gt-version": 8}, PASS),
                             ({"gt-version": "8.0.1"}, NA)]:
            check = {"filter": dict(ok["filter"], **gate)}
            self.assertEqual(run(check).status, status, gate)
            check = {"filter": dict(ok["filter"], requires=gate)}
            self.assertEqual(run(check).status, status, gate)
        r = run({"filter": dict(ok["filter"], requires={"min-version": 9})})
        self.assertEqual(r.category, "version")
        self.assertEqual(r.reason, "requires Suricata >= 9 (target 8.0.1)")

    def test_gate_before_count(self):
        # A gated check is not applicable even when it would fail.
        r = run(flt(5, {"event_type": "nothing"}, **{"min-version": 10}))
        self.assertEqual(r.status, NA)


class Requires(unittest.TestCase):
    def na(self, requires):
        return sv_checks.check_requires(requires, TARGET)

    def test_satisfied(self):
        self.assertIsNone(self.na(None))
        self.assertIsNone(self.na({}))
        self.assertIsNone(self.na({"min-version": 7, "features": ["HAVE_JA4"], "pcap": True,
                                   "os": "linux", "arch": "x86"}))

    def test_features(self):
        r = self.na({"features": ["HAVE_JA4", "MAGIC"]})
        self.assertEqual((r.status, r.category), (NA, "feature"))
        self.assertIn("MAGIC", r.reason)
        r = run(flt(1, {"event_type": "flow"}, feature="HAVE_LUA"))
        self.assertEqual(r.category, "feature")

    def test_unsupported(self):
        for key in ("lambda", "script"):
            r = self.na({key: "true"})
            self.assertEqual((r.status, r.category), (NA, "unsupported-requires"), key)
            self.assertIn("not supported", r.reason)
        self.assertEqual(self.na({"files": ["src/x.c"]}).category, "unsupported-requires")
        self.assertEqual(self.na({"bogus": 1}).category, "unsupported-requires")

    def test_platform_env_command(self):
        self.assertEqual(self.na({"os": "windows"}).category, "platform")
        self.assertEqual(self.na({"arch": "aarch64"}).category, "platform")
        self.assertEqual(self.na({"env": ["SV_TEST_SURELY_UNSET_42"]}).category, "environment")
        self.assertEqual(self.na({"command": ["surely-not-a-command-42"]}).category,
                         "environment")
        self.assertIsNone(self.na({"command": ["sh"]}))


class CheckKinds(unittest.TestCase):
    def test_not_applicable_kinds(self):
        r = run({"shell": {"args": "test -e filestore/1d/1d4d", "expect": 1}})
        self.assertEqual((r.status, r.category), (NA, "shell"))
        self.assertIn("test -e filestore/1d/1d4d", r.reason)
        r = run({"stats": {"file_store.fs_errors": 0}})
        self.assertEqual((r.status, r.category), (NA, "stats"))
        self.assertIn("file_store.fs_errors", r.reason)
        r = run({"file-compare": {"filename": "a", "expected": "b"}})
        self.assertEqual((r.status, r.category), (NA, "file-compare"))
        r = run({"lua": {}})
        self.assertEqual((r.status, r.category), (NA, "unsupported-check"))
        self.assertEqual(run("filter").category, "unsupported-check")

    def test_evaluate_checks_in_order(self):
        rs = sv_checks.evaluate_checks([flt(1, {"event_type": "smb"}), {"stats": {}},
                                        flt(9, {"event_type": "smb"})], EVENTS, TARGET)
        self.assertEqual([r.status for r in rs], [PASS, NA, FAIL])
        self.assertEqual(sv_checks.evaluate_checks(None, EVENTS, TARGET), [])


class LoadEvents(unittest.TestCase):
    def test_lines(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "eve.json")
            with open(path, "w") as f:
                f.write(json.dumps(FLOW) + "\n\n" + json.dumps(DNS) + "\n")
            self.assertEqual(sv_checks.load_events(path), [FLOW, DNS])
            with open(path, "a") as f:
                f.write("{not json\n")
            with self.assertRaisesRegex(ValueError, r"eve.json:4: invalid JSON"):
                sv_checks.load_events(path)
            with open(path, "w") as f:
                f.write("[1, 2]\n")
            with self.assertRaisesRegex(ValueError, "not a JSON object"):
                sv_checks.load_events(path)


class Runner(unittest.TestCase):
    """The pure helpers of suricata_verify.py."""

    @classmethod
    def setUpClass(cls):
        import suricata_verify
        cls.sv = suricata_verify

    def test_split_args(self):
        self.assertEqual(self.sv.split_args({"args": ["-k none --set stream.midstream=true",
                                                      "--simulate-ips"]}),
                         [("-k", "none"), ("--set", "stream.midstream=true"),
                          ("--simulate-ips", None)])
        self.assertEqual(self.sv.split_args({}), [])

    def _pcap(self, path, linktype, frames):
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
            for i, fr in enumerate(frames):
                f.write(struct.pack("<IIII", 1000 + i, 5, len(fr), len(fr)) + fr)

    def test_to_ethernet(self):
        ipv4 = bytes([0x45]) + bytes(19)
        ipv6 = bytes([0x60]) + bytes(39)
        sll = struct.pack(">HHH8sH", 0, 1, 6, bytes(8), 0x0800) + ipv4
        null = struct.pack("<I", 30) + ipv6
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "in.pcap"), os.path.join(tmp, "out.pcap")
            self._pcap(src, 113, [sll])
            self.assertIn("link type 113", self.sv.to_ethernet(src, dst))
            with open(dst, "rb") as f:
                data = f.read()
            self.assertEqual(struct.unpack("<I", data[20:24])[0], 1)
            incl, orig = struct.unpack("<II", data[32:40])
            self.assertEqual((incl, orig), (14 + 20, 14 + 20))
            self.assertEqual(data[40 + 12:40 + 14], b"\x08\x00")
            self.assertEqual(data[40 + 14:], ipv4)
            self._pcap(src, 0, [null])
            self.sv.to_ethernet(src, dst)
            with open(dst, "rb") as f:
                data = f.read()
            self.assertEqual(data[40 + 12:40 + 14], b"\x86\xdd")
            self._pcap(src, 1, [bytes(60)])
            self.assertEqual(self.sv.to_ethernet(src, dst), "")
            self._pcap(src, 147, [bytes(60)])
            with self.assertRaisesRegex(ValueError, "link type 147"):
                self.sv.to_ethernet(src, dst)

    def test_exceptions_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ex.yaml")
            with open(path, "w") as f:
                f.write("exceptions:\n"
                        "  - {test: a/b, checks: [1, 3], category: alert, reason: rules}\n"
                        "  - {test: c, checks: all, category: x, reason: y}\n"
                        "  - {test: gone, checks: [1], category: x, reason: y}\n")
            table, entries = self.sv.load_exceptions(path)
            self.assertEqual(table[("a/b", 3)].category, "alert")
            self.assertNotIn(("a/b", 2), table)
            self.assertIn(("c", None), table)
            warnings = self.sv.stale_exceptions(entries, {"a/b": {"checks": [1, 2]},
                                                          "c": {"checks": []}})
            self.assertEqual(warnings, ["sv_exceptions.yaml: a/b has 2 checks, no check 3",
                                        "sv_exceptions.yaml: test gone not found"])
            with open(path, "w") as f:
                f.write("exceptions:\n  - {test: a, checks: [0], category: x, reason: y}\n")
            with self.assertRaisesRegex(ValueError, "1-based"):
                self.sv.load_exceptions(path)

    def test_project_exceptions_file_loads(self):
        table, entries = self.sv.load_exceptions(self.sv.EXCEPTIONS)
        self.assertTrue(entries)
        self.assertTrue(all(r.status == NA and r.reason for r in table.values()))


if __name__ == "__main__":
    unittest.main()
