#!/usr/bin/env python3
# tests/unit/t0004-pymarshal.py - core/pymarshal.c writes what Python's json writes, byte for byte
#
# Every value is marshalled (marshal.dumps(value, 4), as the Python package
# does) and converted by $TS_BUILD/tests/tools/t-pymarshal.  Where json takes
# the value, the text must be json.dumps(value, ensure_ascii=False,
# separators=(",", ":")) encoded as UTF-8 with lone surrogates as '?'; where
# json refuses it, or it is deeper or longer than the limits, the converter
# must refuse too (the package then encodes it with json).  Values: hand-made
# edge cases, shared objects (marshal's references) and a few thousand random
# ones from a fixed seed; floats: every kind of double, compared with repr()
# (subnormals are refused).
# Prints "ok - name" / "not ok - name" per case; exits non-zero on any failure.
import json
import marshal
import math
import os
import random
import struct
import subprocess
import sys

TOP = os.environ.get("TS_TOP") or os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TS_BUILD") or os.path.join(TOP, "build", "san")
TOOL = os.path.join(BUILD, "tests", "tools", "t-pymarshal")
MAX_DEPTH = 58          # what libtracesift allows a field (FIELD_MAX_DEPTH)
PYM_TOO_DEEP, PYM_TOO_LARGE = -2, -3

failed = 0


def case(name, problems):
    global failed
    for p in problems[:10]:
        print("# " + p)
    if len(problems) > 10:
        print("# ... %d more" % (len(problems) - 10))
    print(("not ok - " if problems else "ok - ") + name)
    failed += bool(problems)


def reference(v):
    try:
        text = json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return text.encode("utf-8", "replace")


def convert(values, max_depth=MAX_DEPTH, max_bytes=0):
    """What the tool says of each value: bytes of JSON, or the refusal code."""
    data = b"".join(struct.pack("<I", len(m)) + m for m in (marshal.dumps(v, 4) for v in values))
    out = subprocess.run([TOOL, "json", str(max_depth), str(max_bytes)], input=data,
                         capture_output=True, check=True).stdout.split(b"\n")
    got = []
    for line in out[:len(values)]:
        got.append(line[3:] if line.startswith(b"ok ") else int(line.split()[1]))
    return got


def compare(values, **limits):
    problems = []
    for v, got in zip(values, convert(values, **limits)):
        want = reference(v)
        if isinstance(got, bytes):
            if got != want:
                problems.append("%r:\n#   got  %r\n#   want %r" % (v, got[:300], want and want[:300]))
        elif want is not None and not refusable(v, got):
            problems.append("%r refused (%d), json writes %r" % (v, got, want[:300]))
    return problems


def refusable(v, code):
    """Values json takes but the converter may refuse: too deep, too long,
    huge ints, subnormal floats."""
    return code in (PYM_TOO_DEEP, PYM_TOO_LARGE) or unusual_number(v)


def unusual_number(v):
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return abs(v).bit_length() > 256 * 15
    if isinstance(v, float):
        return 0 < abs(v) < SMALLEST_NORMAL
    if isinstance(v, dict):
        return any(unusual_number(k) or unusual_number(x) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return any(unusual_number(x) for x in v)
    return False


SMALLEST_NORMAL = 2.2250738585072014e-308


# ---- hand-made cases -------------------------------------------------------

shared_s = "shared string " + "x" * 3
shared_l = [1, "two", 3.0]
shared_d = {"k": shared_l}
EDGES = [
    None, True, False, 0, 1, -1, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**63 - 1, -2**63, 2**64,
    10**40, -10**40, 2**100 - 1, int("9" * 300), -int("1" + "0" * 200), 2**15, 2**30, 2**45, 2**60,
    0.0, -0.0, 1.0, -1.5, 0.1, 0.2 + 0.1, 1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 0.00012, 5e-324,
    2.2250738585072014e-308, 1.7976931348623157e308, 123456789.125, 1 / 3, 2 / 3, 100.0, 1e22, 1e23,
    float("nan"), float("inf"), -float("inf"),
    "", "plain", "quote \" backslash \\ slash /", "\n\r\t\b\f\x00\x01\x1f\x7f", "é ü 日本語 🙂",
    "\ud800", "a\udfffb", "\ud83d\ude00", "\U0001f600", "x" * 300, "é" * 200,
    [], (), {}, [[]], [{}], {"": ""}, (1,), (1, 2, 3), list(range(300)), tuple(range(300)),
    {"a": 1, "b": [1, 2, {"c": None}]}, {1: "int key", True: "bool", None: "none", 2.5: "float key"},
    {-5: 1, 10**30: 2}, {float("inf"): 1}, {(1, 2): "tuple key"}, {b"k": 1},
    b"bytes", {1, 2}, frozenset([3]), 1j, Ellipsis, StopIteration,
    [shared_s, shared_s, {"k": shared_s}], [shared_l, shared_l, shared_d, shared_d],
    {shared_s: shared_s}, {"id": "kb-1", "text": "t"}, [{"id": "kb-%d" % i, "score": 1 - i / 10} for i in range(5)],
]
case("edge_cases", compare(EDGES))

cycle = []
cycle.append(cycle)
selfdict = {}
selfdict["me"] = selfdict
deep = []
for _ in range(MAX_DEPTH + 5):
    deep = [deep]
at_limit = []
for _ in range(MAX_DEPTH - 1):
    at_limit = [at_limit]
problems = compare([cycle, selfdict, deep, at_limit])
got = convert([cycle, selfdict, deep, at_limit])
if got[0] != PYM_TOO_DEEP or got[1] != PYM_TOO_DEEP:
    problems.append("a cycle is refused as too deep: %r" % (got[:2],))
if got[2] != PYM_TOO_DEEP:
    problems.append("%d levels refused as too deep, got %r" % (MAX_DEPTH + 6, got[2]))
if not isinstance(got[3], bytes):
    problems.append("%d levels accepted, got %r" % (MAX_DEPTH, got[3]))
case("cycles_and_depth", problems)

big = {"text": "y" * 5000}
got = convert([big, big], max_bytes=4000)
problems = [] if got[0] == PYM_TOO_LARGE else ["5 KB with a 4000-byte limit: %r" % (got[0],)]
got = convert([big], max_bytes=6000)
if got[0] != reference(big):
    problems.append("5 KB with a 6000-byte limit refused: %r" % (got[0],))
# a small DAG that would be written 2^40 times over: stopped by the limit
dag = [1]
for _ in range(40):
    dag = [dag, dag]
got = convert([dag], max_depth=100, max_bytes=100000)
if got[0] != PYM_TOO_LARGE:
    problems.append("a 2^40 DAG is refused as too large: %r" % (got[0],))
case("size_limit", problems)

# malformed input: refused, never a crash (ASan watches)
m = marshal.dumps({"a": [1, "x" * 20, 2.5]}, 4)
bad = [m[:i] for i in range(len(m))] + [m + b"N", b"r\x05\x00\x00\x00", b"\xff", b"l\xff\xff\xff\x7f",
                                       b"u\xff\xff\xff\xff", b"[\x10\x00\x00\x00N", b"z\x05ab"]
data = b"".join(struct.pack("<I", len(x)) + x for x in bad)
out = subprocess.run([TOOL, "json", "58", "0"], input=data, capture_output=True).stdout.split(b"\n")
case("malformed_refused", ["%r: %r" % (x, line) for x, line in zip(bad, out) if not line.startswith(b"refused")])

# ---- random values ---------------------------------------------------------

rnd = random.Random(20261127)
ALPHABET = "abc xyz\"\\/\n\t\x00\x1fé日🙂\u2028\ud800"


def rstr():
    n = rnd.choice([0, 1, 3, 10, 40])
    return "".join(rnd.choice(ALPHABET) for _ in range(n)) if rnd.random() < 0.5 else "w%d" % rnd.randrange(50)


def rfloat():
    r = rnd.random()
    if r < 0.3:
        return round(rnd.uniform(-1000, 1000), rnd.randrange(0, 6))
    if r < 0.6:
        return rnd.random()
    x = struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0]
    return x if math.isfinite(x) else 1.5


def rscalar():
    return rnd.choice([None, True, False, rnd.randrange(-300, 300), rnd.getrandbits(rnd.choice([16, 40, 70])),
                       -rnd.getrandbits(64), rfloat(), rstr(), rstr()])


def rkey():
    r = rnd.random()
    return rstr() if r < 0.8 else rnd.choice([rnd.randrange(-9, 9), True, None, rfloat()])


def rvalue(depth=0):
    r = rnd.random()
    if depth > 6 or r < 0.45:
        return rscalar()
    n = rnd.randrange(0, 6)
    if r < 0.65:
        return [rvalue(depth + 1) for _ in range(n)]
    if r < 0.75:
        return tuple(rvalue(depth + 1) for _ in range(n))
    return {rkey(): rvalue(depth + 1) for _ in range(n)}


values = [rvalue() for _ in range(3000)]
pool = values[:50]
values += [[rnd.choice(pool) for _ in range(4)] for _ in range(300)]  # shared objects: marshal's references
problems = compare(values)
refused = sum(1 for g in convert(values) if not isinstance(g, bytes))
if refused:
    problems.append("%d random JSON values refused" % refused)
case("random_values", problems)

# ---- floats ------------------------------------------------------------------

floats = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308,
          1e-4, 0.00009999999999999999, 1e16, 9999999999999998.0, 1e15, 0.1, 0.3, 0.30000000000000004]
floats += [10.0 ** e for e in range(-30, 30)] + [2.0 ** e for e in range(-80, 80)]
floats += [struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0] for _ in range(100000)]
floats += [rnd.random() for _ in range(50000)] + [rnd.uniform(-1e6, 1e6) for _ in range(50000)]
floats += [round(rnd.uniform(0, 100), rnd.randrange(0, 8)) for _ in range(50000)]
floats += [float(rnd.getrandbits(53)) * 2.0 ** rnd.randrange(-70, 10) for _ in range(50000)]
floats = [x for x in floats if math.isfinite(x)]
out = subprocess.run([TOOL, "float"], input=b"".join(struct.pack("<d", x) for x in floats),
                     capture_output=True, check=True).stdout.decode().split("\n")
case("float_repr", ["%r: got %r" % (x, got) for x, got in zip(floats, out)
                    if got != ("" if 0 < abs(x) < SMALLEST_NORMAL else repr(x))])

sys.exit(1 if failed else 0)
