//! The confd wire format (design 2.1; Ganeti's `confd.PackMagic`,
//! `serializer.DumpSignedJson`/`LoadSignedJson`).
//!
//! A packet is the fourcc `plj0` followed by a JSON envelope
//! `{"msg": TEXT, "salt": TEXT, "hmac": HEX}` where `hmac` is the hex
//! HMAC-SHA1, keyed with the bytes of `hmac.key`, of `salt` followed by
//! `msg` (and by the optional `key_selector`, which Ganeti appends to the
//! salt). In a request the salt is the sender's clock in whole seconds and
//! `msg` is `{"protocol": 1, "type": N, "query": Q, "rsalt": TEXT}`; in a
//! reply the salt is the request's `rsalt` and `msg` is `{"protocol": 1,
//! "status": N, "answer": V, "serial": N}`.
//!
//! Everything here is a pure function over bounded input: a packet longer
//! than [`MAX_PACKET_BYTES`] is refused before it is parsed, the signature
//! is checked (in constant time) before the message is parsed, and every
//! failure is a [`DropReason`] the daemon counts.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    ReplyStatus, ReqField, RequestType, MAGIC_FOURCC, MAX_CLOCK_SKEW_SECS, MAX_PACKET_BYTES,
};

/// The cluster's confd key (the bytes of `hmac.key`, used as they are, as
/// Ganeti's `utils.ReadFile` hands them to `hmac`).
#[derive(Clone)]
pub struct HmacKey(ring::hmac::Key);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

impl HmacKey {
    /// A key from the raw bytes of `hmac.key`.
    pub fn new(bytes: &[u8]) -> HmacKey {
        HmacKey(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            bytes,
        ))
    }

    /// The raw 20-byte HMAC-SHA1 of `parts` concatenated.
    fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut ctx = ring::hmac::Context::with_key(&self.0);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; 20];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The lower-case hex HMAC-SHA1 of `salt` + `msg`, as Ganeti's
    /// `utils.Sha1Hmac(key, msg, salt=salt)`.
    pub fn sign_hex(&self, salt: &str, msg: &str) -> String {
        hex(&self.tag(&[salt.as_bytes(), msg.as_bytes()]))
    }

    /// Whether `hmac_hex` (either case, as Ganeti compares lower-cased
    /// digests) is the signature of `salt` + `selector` + `msg`. The
    /// comparison takes the same time wherever the first difference is.
    fn verify(&self, salt: &str, selector: &str, msg: &str, hmac_hex: &str) -> bool {
        let Some(given) = unhex20(hmac_hex) else {
            return false;
        };
        let want = self.tag(&[salt.as_bytes(), selector.as_bytes(), msg.as_bytes()]);
        given
            .iter()
            .zip(want.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Why a packet was dropped without an answer. Each reason is a counter in
/// the daemon's stats line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub enum DropReason {
    /// Longer than [`MAX_PACKET_BYTES`].
    #[error("packet longer than {MAX_PACKET_BYTES} bytes")]
    Oversize,
    /// Does not start with `plj0`.
    #[error("packet does not start with the confd fourcc plj0")]
    BadMagic,
    /// The envelope is not JSON `{"msg", "salt", "hmac"}` with text values.
    #[error("envelope is not a JSON object with text msg, salt and hmac")]
    BadEnvelope,
    /// The HMAC does not match (bad signature or another cluster's key).
    #[error("HMAC does not match")]
    BadHmac,
    /// The request's salt is not a timestamp (whole seconds).
    #[error("request salt is not a timestamp")]
    BadTimestamp,
    /// The request's timestamp is more than [`MAX_CLOCK_SKEW_SECS`] away
    /// from our clock (a replay or a badly set clock).
    #[error("request timestamp more than {MAX_CLOCK_SKEW_SECS} s from our clock")]
    ClockSkew,
    /// The signed message is not a well-formed request.
    #[error("signed message is not a well-formed confd request")]
    BadRequest,
    /// The request's type is a number confd does not define.
    #[error("unknown request type")]
    UnknownType,
}

impl DropReason {
    /// Every reason, in the order of the stats line.
    pub const ALL: [DropReason; 8] = [
        DropReason::Oversize,
        DropReason::BadMagic,
        DropReason::BadEnvelope,
        DropReason::BadHmac,
        DropReason::BadTimestamp,
        DropReason::ClockSkew,
        DropReason::BadRequest,
        DropReason::UnknownType,
    ];

    /// The key of this reason in the stats line.
    pub fn key(self) -> &'static str {
        match self {
            DropReason::Oversize => "oversize",
            DropReason::BadMagic => "bad_magic",
            DropReason::BadEnvelope => "bad_envelope",
            DropReason::BadHmac => "bad_hmac",
            DropReason::BadTimestamp => "bad_timestamp",
            DropReason::ClockSkew => "clock_skew",
            DropReason::BadRequest => "bad_request",
            DropReason::UnknownType => "unknown_type",
        }
    }

    /// Index into [`DropReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The query part of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// No query (`null` or absent).
    Empty,
    /// A text query (a node name, a link, an IP).
    Plain(String),
    /// A dictionary query.
    Dict(DictQuery),
}

/// A dictionary query: keys `"0"` link, `"1"` IP, `"2"` IP list, `"3"`
/// fields (`CONFD_REQQ_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DictQuery {
    /// `"0"`: the NIC link (default: the cluster's default link).
    pub link: Option<String>,
    /// `"1"`: one instance IP.
    pub ip: Option<String>,
    /// `"2"`: several instance IPs.
    pub ip_list: Vec<String>,
    /// `"3"`: the fields wanted (cluster master query).
    pub fields: Vec<ReqField>,
}

impl Query {
    /// The JSON form of the query (`null`, a string or an object).
    pub fn to_json(&self) -> Value {
        match self {
            Query::Empty => Value::Null,
            Query::Plain(s) => Value::String(s.clone()),
            Query::Dict(d) => {
                let mut m = Map::new();
                if let Some(l) = &d.link {
                    m.insert("0".into(), Value::String(l.clone()));
                }
                if let Some(ip) = &d.ip {
                    m.insert("1".into(), Value::String(ip.clone()));
                }
                if !d.ip_list.is_empty() {
                    m.insert("2".into(), d.ip_list.clone().into());
                }
                if !d.fields.is_empty() {
                    let f: Vec<Value> = d.fields.iter().map(|f| f.number().into()).collect();
                    m.insert("3".into(), f.into());
                }
                Value::Object(m)
            }
        }
    }

    fn from_json(v: &Value) -> Result<Query, DropReason> {
        match v {
            Value::Null => Ok(Query::Empty),
            Value::String(s) => Ok(Query::Plain(s.clone())),
            Value::Object(m) => {
                let text = |k: &str| -> Result<Option<String>, DropReason> {
                    match m.get(k) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(s)) => Ok(Some(s.clone())),
                        Some(_) => Err(DropReason::BadRequest),
                    }
                };
                let list = |k: &str| -> Result<Vec<&Value>, DropReason> {
                    match m.get(k) {
                        None | Some(Value::Null) => Ok(Vec::new()),
                        Some(Value::Array(a)) => Ok(a.iter().collect()),
                        Some(_) => Err(DropReason::BadRequest),
                    }
                };
                let ip_list = list("2")?
                    .into_iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or(DropReason::BadRequest)?;
                // Field ids are numbers; Ganeti's server refuses strings
                // (which is why its stock confd-client tool fails).
                let fields = list("3")?
                    .into_iter()
                    .map(|v| v.as_u64().and_then(ReqField::from_number))
                    .collect::<Option<Vec<_>>>()
                    .ok_or(DropReason::BadRequest)?;
                Ok(Query::Dict(DictQuery {
                    link: text("0")?,
                    ip: text("1")?,
                    ip_list,
                    fields,
                }))
            }
            _ => Err(DropReason::BadRequest),
        }
    }
}

/// A confd request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The sender's protocol version (Ganeti sends 1).
    pub protocol: u64,
    /// What is asked.
    pub kind: RequestType,
    /// The argument.
    pub query: Query,
    /// The salt the reply must carry (clients match replies by it).
    pub rsalt: String,
}

impl Request {
    /// The signed message text (`msg`) of this request.
    pub fn to_msg(&self) -> String {
        let mut m = Map::new();
        m.insert("protocol".into(), self.protocol.into());
        m.insert("type".into(), self.kind.number().into());
        if self.query != Query::Empty {
            m.insert("query".into(), self.query.to_json());
        }
        m.insert("rsalt".into(), Value::String(self.rsalt.clone()));
        Value::Object(m).to_string()
    }

    fn from_msg(msg: &str) -> Result<Request, DropReason> {
        let v: Value = serde_json::from_str(msg).map_err(|_| DropReason::BadRequest)?;
        let m = v.as_object().ok_or(DropReason::BadRequest)?;
        let protocol = m
            .get("protocol")
            .and_then(Value::as_u64)
            .ok_or(DropReason::BadRequest)?;
        let kind = match m.get("type") {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(n) => RequestType::from_number(n).ok_or(DropReason::UnknownType)?,
                None => return Err(DropReason::UnknownType),
            },
            _ => return Err(DropReason::BadRequest),
        };
        let query = Query::from_json(m.get("query").unwrap_or(&Value::Null))?;
        let rsalt = m
            .get("rsalt")
            .and_then(Value::as_str)
            .ok_or(DropReason::BadRequest)?
            .to_string();
        Ok(Request {
            protocol,
            kind,
            query,
            rsalt,
        })
    }
}

/// A confd reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The server's protocol version (1).
    pub protocol: u64,
    /// Whether the answer is a result.
    pub status: ReplyStatus,
    /// The result, or what was wrong.
    pub answer: Value,
    /// The serial number (`serial_no`) of the config that was asked.
    pub serial: u64,
}

impl Reply {
    /// The signed message text (`msg`) of this reply.
    pub fn to_msg(&self) -> String {
        let mut m = Map::new();
        m.insert("protocol".into(), self.protocol.into());
        m.insert("status".into(), self.status.number().into());
        m.insert("answer".into(), self.answer.clone());
        m.insert("serial".into(), self.serial.into());
        Value::Object(m).to_string()
    }

    fn from_msg(msg: &str) -> Option<Reply> {
        let v: Value = serde_json::from_str(msg).ok()?;
        let m = v.as_object()?;
        Some(Reply {
            protocol: m.get("protocol")?.as_u64()?,
            status: ReplyStatus::from_number(m.get("status")?.as_u64()?)?,
            answer: m.get("answer").cloned().unwrap_or(Value::Null),
            serial: m.get("serial")?.as_u64()?,
        })
    }
}

#[derive(Deserialize)]
struct Envelope {
    msg: String,
    salt: String,
    hmac: String,
    #[serde(default)]
    key_selector: Option<String>,
}

/// Packs `msg` signed with `salt` into a packet: `plj0` + envelope.
pub fn pack(key: &HmacKey, salt: &str, msg: &str) -> Vec<u8> {
    let env = serde_json::json!({
        "msg": msg,
        "salt": salt,
        "hmac": key.sign_hex(salt, msg),
    });
    let mut out = Vec::with_capacity(msg.len() + salt.len() + 96);
    out.extend_from_slice(MAGIC_FOURCC);
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &env);
    out
}

/// Checks size, fourcc and signature; returns the salt and the message.
pub fn unpack(key: &HmacKey, packet: &[u8]) -> Result<(String, String), DropReason> {
    if packet.len() > MAX_PACKET_BYTES {
        return Err(DropReason::Oversize);
    }
    let body = packet
        .strip_prefix(MAGIC_FOURCC.as_slice())
        .ok_or(DropReason::BadMagic)?;
    let env: Envelope = serde_json::from_slice(body).map_err(|_| DropReason::BadEnvelope)?;
    let selector = env.key_selector.as_deref().unwrap_or("");
    if !key.verify(&env.salt, selector, &env.msg, &env.hmac) {
        return Err(DropReason::BadHmac);
    }
    Ok((env.salt, env.msg))
}

/// Packs a request, salted with the time `now_secs` (what Ganeti's client
/// does with `"%d" % time.time()`).
pub fn pack_request(key: &HmacKey, req: &Request, now_secs: i64) -> Vec<u8> {
    pack(key, &now_secs.to_string(), &req.to_msg())
}

/// Parses a request packet received at `now_secs`: size, fourcc,
/// signature, timestamp window, then the message.
pub fn parse_request(key: &HmacKey, packet: &[u8], now_secs: i64) -> Result<Request, DropReason> {
    let (salt, msg) = unpack(key, packet)?;
    let ts = parse_timestamp(&salt).ok_or(DropReason::BadTimestamp)?;
    if ts.abs_diff(now_secs) > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return Err(DropReason::ClockSkew);
    }
    Request::from_msg(&msg)
}

/// Packs a reply to a request with reply salt `rsalt`.
pub fn pack_reply(key: &HmacKey, rsalt: &str, reply: &Reply) -> Vec<u8> {
    pack(key, rsalt, &reply.to_msg())
}

/// Parses a reply packet; returns its salt (the request's `rsalt`) and the
/// reply. `None` when anything is wrong (clients ignore such packets, as
/// Ganeti's client does).
pub fn parse_reply(key: &HmacKey, packet: &[u8]) -> Option<(String, Reply)> {
    let (salt, msg) = unpack(key, packet).ok()?;
    Some((salt, Reply::from_msg(&msg)?))
}

/// An integer timestamp: optional `-`, then 1 to 18 digits (no overflow).
fn parse_timestamp(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn unhex20(s: &str) -> Option<[u8; 20]> {
    let b = s.as_bytes();
    if b.len() != 40 {
        return None;
    }
    let nibble = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let mut out = [0u8; 20];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confd::{ErrorCode, PROTOCOL_VERSION};

    /// Generated by `tests/confd_vectors/gen.py` with Python's `hmac` and
    /// `json`: an implementation that is not ours.
    const VECTORS: &str = include_str!("../../tests/confd_vectors/vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).unwrap()
    }

    fn s(v: &Value) -> &str {
        v.as_str().unwrap()
    }

    #[test]
    fn signatures_match_python_hmac() {
        let v = vectors();
        for case in v["sign"].as_array().unwrap() {
            let key = HmacKey::new(s(&case["key"]).as_bytes());
            assert_eq!(
                key.sign_hex(s(&case["salt"]), s(&case["msg"])),
                s(&case["hmac"]),
                "{case}"
            );
        }
    }

    #[test]
    fn request_vectors_parse_or_drop_for_the_right_reason() {
        let v = vectors();
        let key = HmacKey::new(s(&v["key"]).as_bytes());
        let cases = v["requests"].as_array().unwrap();
        assert!(cases.len() > 20);
        for case in cases {
            let name = s(&case["name"]);
            let now = case["now"].as_i64().unwrap();
            let got = parse_request(&key, s(&case["packet"]).as_bytes(), now);
            match s(&case["expect"]) {
                "ok" => {
                    let req = got.unwrap_or_else(|e| panic!("{name}: dropped: {e}"));
                    assert_eq!(req.kind.number(), case["type"].as_u64().unwrap(), "{name}");
                    assert_eq!(req.query.to_json(), case["query"], "{name}");
                    assert_eq!(req.rsalt, s(&case["rsalt"]), "{name}");
                    assert_eq!(req.protocol, PROTOCOL_VERSION, "{name}");
                }
                reason => {
                    let e = got.expect_err(name);
                    assert_eq!(e.key(), reason, "{name}");
                }
            }
        }
    }

    #[test]
    fn reply_vectors_parse_and_ours_verify_in_python_form() {
        let v = vectors();
        let key = HmacKey::new(s(&v["key"]).as_bytes());
        let other = HmacKey::new(s(&v["other_key"]).as_bytes());
        for case in v["replies"].as_array().unwrap() {
            let packet = s(&case["packet"]).as_bytes();
            let (salt, reply) = parse_reply(&key, packet).unwrap();
            assert_eq!(salt, s(&case["rsalt"]));
            assert_eq!(reply.status.number(), case["status"].as_u64().unwrap());
            assert_eq!(reply.answer, case["answer"]);
            assert_eq!(reply.serial, case["serial"].as_u64().unwrap());
            assert!(parse_reply(&other, packet).is_none(), "wrong key accepted");
            // Our own packing of the same reply verifies too.
            let ours = pack_reply(&key, &salt, &reply);
            assert_eq!(parse_reply(&key, &ours).unwrap(), (salt, reply));
        }
    }

    #[test]
    fn request_round_trip_and_window_edges() {
        let key = HmacKey::new(b"secret");
        let req = Request {
            protocol: 1,
            kind: RequestType::NodePipByInstanceIp,
            query: Query::Dict(DictQuery {
                link: Some("br0".into()),
                ip: None,
                ip_list: vec!["192.0.2.1".into()],
                fields: vec![ReqField::Name, ReqField::MnodePip],
            }),
            rsalt: "abc".into(),
        };
        let p = pack_request(&key, &req, 1000);
        assert_eq!(&p[..4], b"plj0");
        assert_eq!(parse_request(&key, &p, 1000).unwrap(), req);
        assert_eq!(parse_request(&key, &p, 1300).unwrap(), req);
        assert_eq!(parse_request(&key, &p, 700).unwrap(), req);
        assert_eq!(parse_request(&key, &p, 1301), Err(DropReason::ClockSkew));
        assert_eq!(parse_request(&key, &p, 699), Err(DropReason::ClockSkew));
        assert_eq!(
            parse_request(&HmacKey::new(b"other"), &p, 1000),
            Err(DropReason::BadHmac)
        );
        // Every prefix of a good packet is dropped, never accepted or a panic.
        for n in 0..p.len() {
            assert!(parse_request(&key, &p[..n], 1000).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn empty_and_error_replies_round_trip() {
        let key = HmacKey::new(b"k");
        let r = Reply {
            protocol: 1,
            status: ReplyStatus::Error,
            answer: ErrorCode::UnknownEntry.answer(),
            serial: 3,
        };
        let p = pack_reply(&key, "salt", &r);
        assert_eq!(parse_reply(&key, &p), Some(("salt".to_string(), r)));
        assert!(parse_reply(&key, b"plj0{}").is_none());
        assert!(parse_reply(&key, b"").is_none());
    }

    #[test]
    fn timestamps_are_whole_seconds_without_overflow() {
        assert_eq!(parse_timestamp("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_timestamp("-5"), Some(-5));
        for bad in ["", "-", "1.5", " 1", "1e3", "+1", "9999999999999999999999"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
        // Extremes never overflow the window check.
        let key = HmacKey::new(b"k");
        let msg = r#"{"protocol":1,"type":0,"rsalt":"x"}"#;
        for salt in ["-999999999999999999", "999999999999999999"] {
            let p = pack(&key, salt, msg);
            assert_eq!(
                parse_request(&key, &p, i64::MIN),
                Err(DropReason::ClockSkew)
            );
            assert_eq!(
                parse_request(&key, &p, i64::MAX),
                Err(DropReason::ClockSkew)
            );
        }
    }
}
