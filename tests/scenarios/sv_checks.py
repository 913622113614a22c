"""Evaluate suricata-verify `test.yaml` checks against EVE events.

A library: suricata_verify.py replays the captures and calls it; sv_checks_test.py tests it.
The semantics are those of suricata-verify's own runner (OISF/suricata-verify run.py,
FilterCheck, ShellCheck, StatsCheck and check_requires), re-implemented here:

- A `filter` check counts the events for which every `match` entry holds and passes when that
  count equals `count` exactly.
- A match key is a dotted path into the event. A part may end in `[N]` to index a list
  (`smb.dcerpc.interfaces[0].uuid`). A missing key, an index out of range, or a step into
  something that is not an object gives "no value" (None), exactly like a JSON null: run.py does
  not tell the two apart, so `has-key` on a null field is false and `field: null` in a match
  holds when the field is absent.
- `__len` as a part ends the walk with the length of what was reached (-1 when it has none,
  e.g. a number); a missing path before it still gives None.
- A key ending in `__contains` (`expected in value`: substring, list element or object key),
  `__find` / `__startswith` / `__endswith` (on the text of the value) stops the walk at that
  part. A missing value never matches them.
- `__gt`, `__gte`, `__lt`, `__lte` (newer suricata-verify) compare numbers; booleans and
  non-numbers never match.
- `has-key: PATH` holds when the path gives a value; `not-has-key: PATH` when it does not. Both
  take a list of paths too.
- Anything else compares with Python's `==`, as run.py does: 1 == 1.0 and True == 1 hold, but the
  number 1 never equals the string "1" (the failure reason then says the text is the same and
  the types differ).
- `requires` (on the test or on one check) and the `version` / `min-version` / `lt-version` /
  `gt-version` / `feature` keys of a check gate it against the Suricata version and features the
  product under test claims (Target). Missing parts of a version default to 0 (`min-version: 6`
  is 6.0.0) except for `version`, where 4.0 matches any 4.0.x. `lambda` and `script` run Python
  or shell in Suricata's source tree and are not supported: such a test or check is not
  applicable, with that reason.
- `shell`, `stats` and `file-compare` checks look at Suricata's output directory and its
  internal counters; they are not applicable to another product, with that reason.

Differences from run.py, on purpose: run.py's version `lt` comparison compares the patch number
even when the minor numbers differ (6.2.0 < 6.1.5 holds there); here versions compare as tuples.
run.py raises (a test error) when `__find`/`__startswith`/`__endswith` meet a missing or
non-text value; here that is "no match", as in the newer shared suricata-verify helpers.
"""
import json
import os
import platform
import re
import shutil

PASS, FAIL, NA = "pass", "fail", "n/a"

_INDEX = re.compile(r"^(.*)\[(\d+)\]$")
_MATCH_OPS = ("__contains", "__find", "__startswith", "__endswith")
_CMP_OPS = ("__gt", "__gte", "__lt", "__lte")


class Target:
    """What the product under test claims to be, for `requires`: a Suricata version whose EVE
    output it reproduces, the Suricata build features it has, its OS and architecture."""

    def __init__(self, version="9.0.0", features=(), os_name=None, arch=None):
        self.version = parse_version(version)
        self.version_text = str(version)
        self.features = frozenset(features)
        self.os_name = (os_name or platform.system()).lower()
        self.arch = (arch or platform.machine()).lower()


class Result:
    """The outcome of one check: status PASS, FAIL or NA; reason says why (for NA, category is a
    short name used to group reasons in totals)."""

    def __init__(self, status, reason, category=None):
        self.status = status
        self.reason = reason
        self.category = category

    def __repr__(self):
        return f"Result({self.status!r}, {self.reason!r}, {self.category!r})"


# ----------------------------------------------------------------------------------------------
# Versions and requirements


def parse_version(text, expr=None):
    """(major, minor, patch) of a version such as 6, "6.0", 8.0.5, "7.0.0-dev" or
    "Suricata version 7.0.2". A missing part is 0, or None when expr == "equal". None when the
    text holds no version."""
    m = re.search(r"(?:Suricata version |^)(\d+)\.?(\d+)?\.?(\d+)?", str(text).strip())
    if not m:
        return None
    default = None if expr == "equal" else 0
    return tuple(int(g) if g is not None else default for g in m.groups())


def version_compatible(required, actual, expr):
    """Whether the actual version (a tuple) satisfies `expr` ("gte", "lt", "gt", "equal")
    against the required version text."""
    req = parse_version(required, expr)
    if req is None:
        raise ValueError(f"not a version: {required!r}")
    if expr == "equal":
        return all(r is None or r == a for r, a in zip(req, actual))
    if expr == "gte":
        return actual >= req
    if expr == "gt":
        return actual > req
    if expr == "lt":
        return actual < req
    raise ValueError(f"unknown version comparison {expr!r}")


def check_requires(requires, target, test_dir=None):
    """None when the `requires` mapping is satisfied by target, else a not-applicable Result.
    `pcap` is not looked at here (the runner decides where the capture is)."""
    if not requires:
        return None
    if not isinstance(requires, dict):
        return Result(NA, f"requires is not a mapping: {requires!r}", "malformed")
    for key, value in requires.items():
        if key == "min-version":
            if not version_compatible(value, target.version, "gte"):
                return Result(NA, f"requires Suricata >= {value} (target {target.version_text})",
                              "version")
        elif key == "lt-version":
            if not version_compatible(value, target.version, "lt"):
                return Result(NA, f"only for Suricata < {value} (target {target.version_text})",
                              "version")
        elif key == "gt-version":
            if not version_compatible(value, target.version, "gt"):
                return Result(NA, f"only for Suricata > {value} (target {target.version_text})",
                              "version")
        elif key == "version":
            if not version_compatible(value, target.version, "equal"):
                return Result(NA, f"only for Suricata {value} (target {target.version_text})",
                              "version")
        elif key == "features":
            for feature in value or []:
                if feature not in target.features:
                    return Result(NA, f"requires Suricata build feature {feature}", "feature")
        elif key == "env":
            for name in value or []:
                if name not in os.environ:
                    return Result(NA, f"requires environment variable {name}", "environment")
        elif key == "files":
            return Result(NA, f"requires files {value} (of Suricata's source tree)",
                          "unsupported-requires")
        elif key in ("lambda", "script"):
            return Result(NA, f"requires {key} ({value!r}) is not supported",
                          "unsupported-requires")
        elif key == "os":
            if not target.os_name.startswith(str(value).lower()):
                return Result(NA, f"only for OS {value}", "platform")
        elif key == "arch":
            if not target.arch.startswith(str(value).lower()):
                return Result(NA, f"only for architecture {value}", "platform")
        elif key == "command":
            for command in value or []:
                if shutil.which(command) is None:
                    return Result(NA, f"requires command {command}", "environment")
        elif key == "pcap":
            pass
        else:
            return Result(NA, f"unknown requires key {key!r}", "unsupported-requires")
    return None


def check_level_requires(check):
    """The requirements of one check: its `requires` plus the shorthand keys run.py accepts on
    the check itself (version, min-version, lt-version, gt-version, feature)."""
    requires = dict(check.get("requires") or {})
    for key in ("version", "min-version", "lt-version", "gt-version"):
        if check.get(key) is not None:
            requires[key] = check[key]
    if check.get("feature") is not None:
        requires["features"] = list(requires.get("features") or []) + [check["feature"]]
    return requires


# ----------------------------------------------------------------------------------------------
# Values and matching


def find_value(path, obj):
    """The value at a dotted path (see the module doc), or None."""
    for part in path.split("."):
        if part == "__len":
            try:
                return len(obj)
            except TypeError:
                return -1
        if part in _MATCH_OPS or part in _CMP_OPS:
            break
        m = _INDEX.match(part)
        name, index = (m.group(1), int(m.group(2))) if m else (part, None)
        if not isinstance(obj, dict) or name not in obj:
            return None
        obj = obj[name]
        if index is not None:
            try:
                obj = obj[index]
            except (IndexError, KeyError, TypeError):
                return None
    return obj


def _operator(key):
    last = key.rsplit(".", 1)[-1]
    if last in _CMP_OPS:
        return last
    for op in _MATCH_OPS:
        if key.endswith(op):
            return op
    return None


def _compare(op, value, expected):
    if op == "__contains":
        if value is None:
            return False
        try:
            return expected in value
        except TypeError:
            return False
    if op in ("__find", "__startswith", "__endswith"):
        if value is None:
            return False
        text, want = str(value), str(expected)
        if op == "__find":
            return text.find(want) >= 0
        return text.startswith(want) if op == "__startswith" else text.endswith(want)
    if op in _CMP_OPS:
        numeric = (int, float)
        if (isinstance(value, bool) or isinstance(expected, bool) or
                not isinstance(value, numeric) or not isinstance(expected, numeric)):
            return False
        return {"__gt": value > expected, "__gte": value >= expected,
                "__lt": value < expected, "__lte": value <= expected}[op]
    return value == expected


def _paths(spec):
    return spec if isinstance(spec, list) else [spec]


def condition_holds(key, expected, event):
    """Whether one `match` entry holds for one event."""
    if key == "has-key":
        return all(find_value(p, event) is not None for p in _paths(expected))
    if key == "not-has-key":
        return all(find_value(p, event) is None for p in _paths(expected))
    return _compare(_operator(key), find_value(key, event), expected)


def match_event(match, event):
    """Whether every entry of a `match` mapping holds for the event."""
    return all(condition_holds(k, v, event) for k, v in match.items())


# ----------------------------------------------------------------------------------------------
# Reasons


def fmt(value, limit=60):
    """A value as it appears in reasons: JSON, None as `none`, long values cut."""
    if value is None:
        return "none"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def _describe_failure(key, expected, events):
    """What one failing entry found in the given events."""
    if key == "has-key":
        missing = [p for p in _paths(expected) if any(find_value(p, e) is None for e in events)]
        return f"has-key {', '.join(missing)}: absent"
    if key == "not-has-key":
        present = [p for p in _paths(expected)
                   if any(find_value(p, e) is not None for e in events)]
        return f"not-has-key {', '.join(present)}: present"
    got, seen = [], set()
    for e in events:
        v = find_value(key, e)
        marker = fmt(v, 1000)
        if marker not in seen:
            seen.add(marker)
            got.append(v)
    shown = ", ".join(fmt(v) for v in got[:3]) + (", ..." if len(got) > 3 else "")
    text = f"{key} expected {fmt(expected)} got {shown}"
    op = _operator(key)
    if op is None and any(v is not None and v != expected and str(v) == str(expected) and
                          type(v) is not type(expected) for v in got):
        v = next(v for v in got if v is not None and str(v) == str(expected))
        text += (f" (same text, different types: expected {type(expected).__name__}, "
                 f"got {type(v).__name__})")
    return text


def diagnose(match, events, expected_count, matched):
    """Why a filter found `matched` events instead of `expected_count`."""
    summary = f"({matched} of {_plural(expected_count, 'event')})"
    if matched > expected_count:
        return f"{matched} events match, expected {expected_count}"
    if not events:
        return f"no events {summary}"
    keys = list(match.items())
    type_index = next((i for i, (k, _) in enumerate(keys) if k == "event_type"), None)
    scored = []
    for e in events:
        held = [condition_holds(k, v, e) for k, v in keys]
        if not all(held):
            # Nearest: events of the expected type first, then those that hold most entries.
            of_type = type_index is not None and held[type_index]
            scored.append(((of_type, sum(held)), held, e))
    if not scored:
        return f"every one of the {_plural(len(events), 'event')} matches {summary}"
    top = max(s for s, _, _ in scored)
    best = top[1]
    nearest = [(held, e) for s, held, e in scored if s == top]
    failing = [i for i in range(len(keys)) if any(not held[i] for held, _ in nearest)]
    # The event type is the most telling difference: name it first when it is one.
    failing.sort(key=lambda i: (keys[i][0] != "event_type", i))
    i = failing[0]
    key, expected = keys[i]
    text = _describe_failure(key, expected, [e for held, e in nearest if not held[i]])
    if best > 0:
        text += f" in the {_plural(len(nearest), 'nearest event')} ({best}/{len(keys)} fields)"
    return f"{text} {summary}"


# ----------------------------------------------------------------------------------------------
# Checks


def evaluate_filter(check, events, target):
    """PASS/FAIL/NA of one `filter` check over a list of events."""
    na = check_requires(check_level_requires(check), target)
    if na:
        return na
    filename = check.get("filename")
    if filename is not None and os.path.basename(str(filename)) != "eve.json":
        return Result(NA, f"reads {filename}, a Suricata output other than eve.json",
                      "other-output")
    if "count" not in check or not isinstance(check.get("match", {}), dict):
        return Result(NA, f"malformed filter (needs count and a match mapping): {check}",
                      "malformed")
    match = check.get("match") or {}
    expected = check["count"]
    matched = sum(1 for e in events if match_event(match, e))
    if matched == expected:
        return Result(PASS, f"{_plural(matched, 'event')} match")
    reason = diagnose(match, events, expected, matched)
    if check.get("comment"):
        reason = f"{check['comment']}: {reason}"
    return Result(FAIL, reason)


CHECK_TYPES = ("filter", "shell", "stats", "file-compare")


def check_kind(check):
    """The type of a check: the first key of its mapping that run.py knows (filter, shell,
    stats, file-compare), else its first key; None when it is not a mapping."""
    if not isinstance(check, dict) or not check:
        return None
    return next((k for k in check if k in CHECK_TYPES), next(iter(check)))


def evaluate_check(check, events, target):
    """PASS/FAIL/NA of one entry of a test's `checks` list."""
    kind = check_kind(check)
    if kind == "filter":
        return evaluate_filter(check["filter"] or {}, events, target)
    if kind == "shell":
        args = (check["shell"] or {}).get("args", "")
        return Result(NA, f"shell command on Suricata's output directory: {str(args).strip()}",
                      "shell")
    if kind == "stats":
        keys = ", ".join(sorted(check["stats"] or {}))
        return Result(NA, f"Suricata's internal counters (stats: {keys})", "stats")
    if kind == "file-compare":
        return Result(NA, "compares a file Suricata writes", "file-compare")
    return Result(NA, f"unknown check type {kind if kind else repr(check)}", "unsupported-check")


def evaluate_checks(checks, events, target):
    """One Result per entry of `checks`, in order."""
    return [evaluate_check(c, events, target) for c in checks or []]


def load_events(path):
    """The events of an eve.json (one JSON object per line; blank lines are skipped). A line
    that is not a JSON object raises ValueError naming the line."""
    events = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: invalid JSON: {e}") from None
            if not isinstance(event, dict):
                raise ValueError(f"{path}:{n}: not a JSON object")
            events.append(event)
    return events
