#!/usr/bin/python3
"""Regenerates fields.json: every Query2 field of Ganeti 3.0 with its title
and kind (names, titles and kinds are the compatibility contract; the docs
are not copied). Run on a host with Ganeti 3.0 under /usr/share/ganeti/3.0:

    /usr/bin/python3 tests/golden/query/gen_fields.py > tests/golden/query/fields.json
"""
import json
import sys

sys.path.insert(0, "/usr/share/ganeti/3.0")
from ganeti import query  # noqa: E402

out = {}
for resource, table in [("node", query.NODE_FIELDS),
                        ("instance", query.INSTANCE_FIELDS),
                        ("group", query.GROUP_FIELDS),
                        ("cluster", query.CLUSTER_FIELDS),
                        ("job", query.JOB_FIELDS)]:
    out[resource] = sorted([fdef.name, fdef.title, fdef.kind]
                           for (fdef, _, _, _) in table.values())
json.dump(out, sys.stdout, indent=0)
sys.stdout.write("\n")
