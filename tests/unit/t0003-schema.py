#!/usr/bin/env python3
# tests/unit/t0003-schema.py - docs/trace-v1.schema.json accepts the examples and rejects the invalid records
#
# Every docs/examples/*.json must validate against the JSON Schema (draft 2020-12),
# and every invalid record that rec_validate rejects for a schema reason
# (tests/data/records/invalid/EXPECTED.tsv: "schema" or "no_trace_id") must be
# rejected by the JSON Schema too, except the rules a JSON Schema cannot state,
# listed in BEYOND_SCHEMA; those must be accepted, so the list stays true.
# Syntax, UTF-8, depth and size failures are the parser's business, not the schema's.
# Prints "ok - name" / "not ok - name" per case; exits non-zero on any failure.
import glob
import json
import os
import re
import sys

try:
    import jsonschema
except ImportError:
    print("not ok - import jsonschema (install python3-jsonschema)")
    sys.exit(1)

TOP = os.environ.get("TS_TOP") or os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Rules core/record.c checks that a JSON Schema cannot express (docs/trace-format.md).
BEYOND_SCHEMA = {
    "end-before-start.json": "end_time >= start_time",
    "end-before-start-offset.json": "end_time >= start_time",
    "span-end-before-start.json": "end_time >= start_time",
    "duplicate-span-id.json": "span ids unique within the record",
    "unknown-parent.json": "parent_span_id names a span of the record",
    "self-parent.json": "a span is not its own parent",
    "parent-cycle.json": "parents do not loop",
    "duplicate-key.json": "a known key appears once (parsers keep only one)",
    "duplicate-span-key.json": "a known key appears once (parsers keep only one)",
    "duplicate-usage-key.json": "a known key appears once (parsers keep only one)",
}
# Needs the date-time format checker (rfc3339-validator); a pattern cannot know Feb 29.
NEEDS_FORMAT = {"bad-date.json"}

failed = 0


def report(ok, name, why=""):
    global failed
    if not ok:
        failed += 1
        if why:
            print("# " + why.replace("\n", "\n# "))
    print("%s - %s" % ("ok" if ok else "not ok", name))
    sys.stdout.flush()


def main():
    with open(os.path.join(TOP, "docs", "trace-v1.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        report(True, "schema is a valid draft 2020-12 schema")
    except jsonschema.exceptions.SchemaError as e:
        report(False, "schema is a valid draft 2020-12 schema", str(e))
        return
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    has_date_time = "date-time" in checker.checkers
    validator = jsonschema.Draft202012Validator(schema, format_checker=checker)

    examples = sorted(glob.glob(os.path.join(TOP, "docs", "examples", "*.json")))
    report(len(examples) >= 4, "docs/examples has examples (%d)" % len(examples))
    for path in examples:
        name = "example " + os.path.basename(path)
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        report(not errors, name, "\n".join("%s: %s" % (list(e.absolute_path), e.message) for e in errors[:3]))

    # the records shown in docs/trace-format.md are valid, and are the example files
    with open(os.path.join(TOP, "docs", "trace-format.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```json\n(.*?)```", f.read(), re.S)
    files = [json.load(open(p, encoding="utf-8")) for p in examples]
    for i, block in enumerate(blocks):
        doc = json.loads(block)
        report(validator.is_valid(doc) and doc in files,
               "trace-format.md record %d is valid and is one of docs/examples" % (i + 1))

    inv = os.path.join(TOP, "tests", "data", "records", "invalid")
    rows = []
    with open(os.path.join(inv, "EXPECTED.tsv"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            rows.append(line.split("\t"))
    report(all(len(r) == 3 for r in rows), "EXPECTED.tsv has 3 columns on every row")
    listed = {r[0] for r in rows}
    for name in list(BEYOND_SCHEMA) + list(NEEDS_FORMAT):
        report(name in listed, "exception %s is in EXPECTED.tsv" % name)

    for file, reason, _ in rows:
        if reason not in ("schema", "no_trace_id"):
            continue
        name = "invalid " + file
        with open(os.path.join(inv, file), "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
        valid = validator.is_valid(doc)
        if file in BEYOND_SCHEMA:
            report(valid, name + " # beyond JSON Schema: " + BEYOND_SCHEMA[file],
                   "the schema rejects it now: drop it from BEYOND_SCHEMA")
        elif file in NEEDS_FORMAT and not has_date_time:
            report(True, name + " # skip: no date-time format checker (needs the Python module rfc3339-validator)")
        else:
            report(not valid, name, "the JSON Schema accepts a record rec_validate rejects (%s)" % reason)


if __name__ == "__main__":
    main()
    sys.exit(1 if failed else 0)
