#!/usr/bin/python3
"""Generates vectors.json: confd packets signed with Python's own hmac/json.

The Rust codec (src/confd/codec.rs) is tested against these values, so its
HMAC-SHA1 and envelope handling are checked by an implementation that is not
ours. Run from this directory:  python3 gen.py > vectors.json

Only the standard library is used; the packet layout follows Ganeti's
design 2.1 (fourcc "plj0", JSON envelope {"msg", "salt", "hmac"}, HMAC-SHA1
over salt + msg, lower-case hex).
"""

import hashlib
import hmac
import json

NOW = 1700000000


def sign(key, salt, msg):
    return hmac.new(key.encode(), (salt + msg).encode(), hashlib.sha1).hexdigest()


def packet(key, salt, msg, mac=None):
    env = {"msg": msg, "salt": salt, "hmac": mac if mac is not None else sign(key, salt, msg)}
    return "plj0" + json.dumps(env)


def req_msg(rtype, query=None, rsalt="d3f8a1c2-0000-4000-8000-000000000001", protocol=1):
    d = {"protocol": protocol, "type": rtype, "rsalt": rsalt}
    if query is not None:
        d["query"] = query
    # Ganeti's DumpJson ends every document with a newline.
    return json.dumps(d) + "\n"


KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 hex chars, like hmac.key
OTHER = "fedcba9876543210fedcba9876543210fedcba98"
LONG = "k" * 100  # longer than SHA-1's 64-byte block: hashed first by HMAC

signs = [
    {"key": KEY, "salt": "", "msg": ""},
    {"key": KEY, "salt": str(NOW), "msg": req_msg(0)},
    {"key": LONG, "salt": "salt", "msg": "{\"a\": 1}"},
    {"key": KEY + "\n", "salt": "x", "msg": "caf\u00e9 \u2603"},
]
for s in signs:
    s["hmac"] = sign(s["key"], s["salt"], s["msg"])

requests = []


def add_req(name, pkt, now, expect, **parsed):
    requests.append({"name": name, "packet": pkt, "now": now, "expect": expect, **parsed})


m = req_msg(0)
add_req("ping", packet(KEY, str(NOW), m), NOW, "ok", type=0, query=None,
        rsalt="d3f8a1c2-0000-4000-8000-000000000001")
m = req_msg(1, "node1.example.com", rsalt="r1")
add_req("node role", packet(KEY, str(NOW - 300), m), NOW, "ok", type=1,
        query="node1.example.com", rsalt="r1")
m = req_msg(2, {"0": "br0", "1": "192.0.2.10"}, rsalt="r2")
add_req("pip by ip dict", packet(KEY, str(NOW + 299), m), NOW, "ok", type=2,
        query={"0": "br0", "1": "192.0.2.10"}, rsalt="r2")
m = req_msg(3, {"3": [0, 1, 2]}, rsalt="r3")
add_req("master fields", packet(KEY, str(NOW), m), NOW, "ok", type=3,
        query={"3": [0, 1, 2]}, rsalt="r3")
m = req_msg(2, {"2": ["192.0.2.1", "192.0.2.2"]}, rsalt="r4")
add_req("pip by ip list", packet(KEY, str(NOW), m), NOW, "ok", type=2,
        query={"2": ["192.0.2.1", "192.0.2.2"]}, rsalt="r4")
# The failures the daemon must drop, each with its reason.
m = req_msg(0)
add_req("wrong key", packet(OTHER, str(NOW), m), NOW, "bad_hmac")
add_req("tampered msg", packet(KEY, str(NOW), m).replace('\\"type\\": 0', '\\"type\\": 1'), NOW, "bad_hmac")
add_req("hmac not hex", packet(KEY, str(NOW), m, mac="zz" * 20), NOW, "bad_hmac")
add_req("hmac upper case", packet(KEY, str(NOW), m, mac=sign(KEY, str(NOW), m).upper()), NOW, "ok",
        type=0, query=None, rsalt="d3f8a1c2-0000-4000-8000-000000000001")
add_req("stale", packet(KEY, str(NOW - 301), m), NOW, "clock_skew")
add_req("future", packet(KEY, str(NOW + 301), m), NOW, "clock_skew")
add_req("float salt", packet(KEY, "%f" % NOW, m), NOW, "bad_timestamp")
add_req("text salt", packet(KEY, "hello", m), NOW, "bad_timestamp")
add_req("no magic", packet(KEY, str(NOW), m)[4:], NOW, "bad_magic")
add_req("other magic", "plj1" + packet(KEY, str(NOW), m)[4:], NOW, "bad_magic")
add_req("envelope not json", "plj0{\"msg\": ", NOW, "bad_envelope")
add_req("envelope missing hmac", "plj0" + json.dumps({"msg": m, "salt": str(NOW)}), NOW, "bad_envelope")
add_req("envelope msg not text", "plj0" + json.dumps({"msg": 1, "salt": str(NOW), "hmac": "00"}), NOW, "bad_envelope")
bad = "not json at all"
add_req("signed garbage", packet(KEY, str(NOW), bad), NOW, "bad_request")
add_req("unknown type", packet(KEY, str(NOW), req_msg(99)), NOW, "unknown_type")
add_req("string fields", packet(KEY, str(NOW), req_msg(3, {"3": ["0"]})), NOW, "bad_request")
add_req("no rsalt", packet(KEY, str(NOW), json.dumps({"protocol": 1, "type": 0})), NOW, "bad_request")
add_req("oversize", "plj0" + " " * 61437, NOW, "oversize")

replies = []
for rsalt, status, answer, serial in [
    ("d3f8a1c2-0000-4000-8000-000000000001", 0, 3000000, 7),
    ("r1", 0, 1, 12),
    ("r2", 1, 0, 12),
    ("r3", 0, ["node1", "192.0.2.100", "192.0.2.1"], 99),
]:
    msg = json.dumps({"protocol": 1, "status": status, "answer": answer, "serial": serial})
    replies.append({"rsalt": rsalt, "packet": packet(KEY, rsalt, msg), "status": status,
                    "answer": answer, "serial": serial})

print(json.dumps({"key": KEY, "other_key": OTHER, "sign": signs, "requests": requests,
                  "replies": replies}, indent=1, ensure_ascii=False))
