#!/usr/bin/python3
"""Regenerates filters.json from Ganeti 3.0's own qlang (run on a host with
Ganeti 3.0 under /usr/share/ganeti/3.0 and pyparsing installed):

    /usr/bin/python3 tests/golden/query/gen_filters.py > tests/golden/query/filters.json

Each case is a filter string (or a list of `gnt-* list` arguments) and what
Ganeti turns it into, or "error" when Ganeti refuses it.
"""
import json
import sys

sys.path.insert(0, "/usr/share/ganeti/3.0")
from ganeti import qlang  # noqa: E402

PARSE = [
    'name == "web1"',
    "name == 'web1'",
    'name = "x"',
    'name != "x"',
    "be/maxmem > 512",
    "be/maxmem >= -12",
    "be/maxmem < +3",
    "pinst_cnt <= 0",
    "admin_up",
    "not admin_up",
    "not not offline",
    'name =~ /^web/',
    'name =~ m/^web/i',
    'name =~ #a/b#s',
    'name =~ |x|',
    'name =~ ^x^',
    r'name =~ /a\/b/',
    r'name =~ /\d+/',
    'name !~ /^db/',
    'name =* "*.site"',
    'name =* "web?.example.com"',
    'name !* "db-*"',
    '"foo" in tags',
    '"foo" not in tags',
    '12 in nic.count',
    'master_candidate and not offline',
    'a and b and c',
    'a or b or c',
    'a and b or c and d',
    'a or b and c',
    '(a or b) and c',
    'not (a or b)',
    '((a))',
    'name == "x" and (pnode == "n1" or snodes == "n2")',
    r'name == "a\"b"',
    'name == "a""b"',
    r"name == 'it\'s'",
    'name=="tight"and offline',
    'status == "running" or status == "ERROR_down"',
    'disk.size/0 > 1024',
    'nic.mac/0 == "aa:00:00:00:00:01"',
    'name =~ /x/ and offline',
    'name =~ /x/i and offline',
    '',
    'name ==',
    '== "x"',
    'name == x',
    '(a',
    'a)',
    'a and',
    'name =~ /x/q',
    'name =~ /(/',
    '1name',
    'name == 1.5',
    'name == "unterminated',
    '"x" in',
    'a b',
    'not',
]

MAKE = [
    [],
    ["web1"],
    ["web1", "web2.example.com"],
    ["*.example.com"],
    ["web?", "db1"],
    ["name == 'x'"],
    ["a-b.c_d"],
    ["a+b"],
    ["x y"],
]

cases = []
for text in PARSE:
    try:
        cases.append({"parse": text, "result": qlang.ParseFilter(text)})
    except Exception:  # pylint: disable=W0703
        cases.append({"parse": text, "error": True})
for args in MAKE:
    try:
        cases.append({"make": args, "result": qlang.MakeFilter(args, False)})
    except Exception:  # pylint: disable=W0703
        cases.append({"make": args, "error": True})
for args in [["12", "13"], ["x"]]:
    try:
        cases.append({"make_numeric": args,
                      "result": qlang.MakeFilter(args, False, namefield="id",
                                                 isnumeric=True)})
    except Exception:  # pylint: disable=W0703
        cases.append({"make_numeric": args, "error": True})

json.dump(cases, sys.stdout, indent=1)
sys.stdout.write("\n")
