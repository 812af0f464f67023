#!/usr/bin/python3
"""Renders every tests/golden/query/*.json query answer with Ganeti 3.0's
own `cli.FormatQueryResult` (and the column overrides its gnt-* list
commands use) and checks that the matching .txt golden file is identical.
Run on a host with Ganeti 3.0 under /usr/share/ganeti/3.0, in UTC (we print
times in UTC):

    TZ=UTC /usr/bin/python3 tests/golden/query/check_format.py
"""
import glob
import json
import os
import sys

sys.path.insert(0, "/usr/share/ganeti/3.0")
from ganeti import cli, objects, utils  # noqa: E402


def _join(value):
    return ",".join(str(item) for item in value)


def _fmt_dict(data):
    if not data:
        return "(empty)"
    return utils.CommaJoin(["%s=%s" % (key, value)
                            for key, value in data.items()])


OVERRIDES = {
    "node": dict.fromkeys(["pinst_list", "sinst_list", "tags"],
                          (",".join, False)),
    "instance": dict.fromkeys(["tags", "disk.sizes", "nic.macs", "nic.ips",
                               "nic.modes", "nic.links", "nic.bridges",
                               "nic.networks", "snodes", "snodes.group",
                               "snodes.group.uuid"], (_join, False)),
    "group": {"node_list": (",".join, False),
              "pinst_list": (",".join, False),
              "ndparams": (_fmt_dict, False)},
}

here = os.path.dirname(os.path.abspath(__file__))
failed = 0
cases = sorted(glob.glob(os.path.join(here, "*.json")))
cases = [c for c in cases
         if os.path.basename(c) not in ("fields.json", "filters.json")]
for path in cases:
    with open(path) as f:
        case = json.load(f)
    opts = case["options"]
    result = objects.QueryResponse.FromDict(case["response"])
    (_, lines) = cli.FormatQueryResult(
        result, unit=opts["units"],
        format_override=OVERRIDES.get(opts["resource"], {}),
        separator=opts["separator"], header=opts["header"],
        verbose=opts["verbose"])
    text = "".join(line + "\n" for line in lines)
    with open(path[:-len(".json")] + ".txt") as f:
        want = f.read()
    name = os.path.basename(path)
    if text == want:
        print("ok", name)
    else:
        failed += 1
        print("DIFFERS", name)
        sys.stdout.write(text)
print("%d passed, %d failed" % (len(cases) - failed, failed))
sys.exit(1 if failed else 0)
