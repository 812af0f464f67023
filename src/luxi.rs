//! LUXI: the protocol between front ends (`gnt-*`, RAPI, watcher) and
//! masterd, over a unix socket.
//!
//! A message is one JSON document followed by the byte `0x03` (ETX).
//! Requests are `{"method": M, "args": A, "version": V}`; replies are
//! `{"success": bool, "result": R}`. A failed call's `result` is Ganeti's
//! encoded exception `[ClassName, [args…]]`, so Ganeti's own Python client
//! re-raises it as the matching `errors.*` class.
//!
//! - [`client`]: the blocking client every `gnt-*` program uses.
//! - [`server`]: the async accept loop masterd runs; it calls a [`server::Handler`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod client;
pub mod server;

/// The message terminator.
pub const ETX: u8 = 0x03;
/// Protocol version sent in requests (Ganeti 3.0: `LUXI_VERSION`).
pub const LUXI_VERSION: u64 = 3_000_000;

macro_rules! methods {
    ($($variant:ident),* $(,)?) => {
        /// Every LUXI method of Ganeti 3.0 (`LUXI_REQ_ALL`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Method {
            $(
                #[doc = concat!("`", stringify!($variant), "`")]
                $variant,
            )*
        }

        impl Method {
            /// All methods.
            pub const ALL: &'static [Method] = &[$(Method::$variant),*];

            /// The wire name.
            pub fn name(self) -> &'static str {
                match self { $(Method::$variant => stringify!($variant)),* }
            }

            /// Looks a method up by wire name.
            pub fn from_name(name: &str) -> Option<Method> {
                match name { $(stringify!($variant) => Some(Method::$variant),)* _ => None }
            }
        }
    };
}

methods!(
    SubmitJob,
    SubmitJobToDrainedQueue,
    SubmitManyJobs,
    WaitForJobChange,
    PickupJob,
    CancelJob,
    ArchiveJob,
    ChangeJobPriority,
    AutoArchiveJobs,
    Query,
    QueryFields,
    QueryJobs,
    QueryFilters,
    ReplaceFilter,
    DeleteFilter,
    QueryInstances,
    QueryNodes,
    QueryGroups,
    QueryNetworks,
    QueryExports,
    QueryConfigValues,
    QueryClusterInfo,
    QueryTags,
    SetDrainFlag,
    SetWatcherPause,
);

/// A request as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Method name.
    pub method: String,
    /// Positional arguments (a JSON list).
    pub args: Value,
    /// Client protocol version; Ganeti's clients send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// A reply as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the call succeeded.
    pub success: bool,
    /// The result, or the encoded error.
    pub result: Value,
    /// Server protocol version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// A failed call as Ganeti encodes it: the exception class name (from
/// Ganeti's `errors` module) and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuxiFailure {
    /// Ganeti error class (`OpPrereqError`, `LuxiError`, `ProgrammerError`, …).
    pub class: String,
    /// Its arguments; the first is the message.
    pub args: Vec<Value>,
}

impl LuxiFailure {
    /// A prerequisite failure with Ganeti's error code (e.g. `wrong_input`).
    pub fn prereq(message: impl Into<String>, kind: crate::error::ErrorKind) -> Self {
        let code = serde_json::to_value(kind).unwrap_or(Value::Null);
        LuxiFailure {
            class: "OpPrereqError".into(),
            args: vec![Value::String(message.into()), code],
        }
    }

    /// A protocol-level failure (bad frame, unknown method, bad arguments).
    pub fn protocol(message: impl Into<String>) -> Self {
        LuxiFailure {
            class: "LuxiError".into(),
            args: vec![Value::String(message.into())],
        }
    }

    /// The message (first argument), for printing.
    pub fn message(&self) -> String {
        match self.args.first() {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => self.class.clone(),
        }
    }

    /// The wire form `[class, [args]]`.
    pub fn encode(&self) -> Value {
        Value::Array(vec![
            Value::String(self.class.clone()),
            Value::Array(self.args.clone()),
        ])
    }

    /// Parses the wire form; anything else becomes a `LuxiError` with the raw text.
    pub fn decode(v: &Value) -> Self {
        if let Some([Value::String(class), Value::Array(args)]) = v.as_array().map(Vec::as_slice) {
            return LuxiFailure {
                class: class.clone(),
                args: args.clone(),
            };
        }
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        LuxiFailure::protocol(text)
    }
}

impl std::fmt::Display for LuxiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// Splits complete ETX-terminated messages off the front of `buf`.
///
/// Returns the messages found (without the terminator) and leaves any
/// incomplete tail in `buf`.
pub fn take_messages(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(pos) = buf.iter().position(|&b| b == ETX) {
        let rest = buf.split_off(pos + 1);
        let mut msg = std::mem::replace(buf, rest);
        msg.pop();
        out.push(msg);
    }
    out
}

/// Serialises a value and appends the terminator.
pub fn frame(v: &impl Serialize) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    out.push(ETX);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_splits_and_keeps_tail() {
        let mut buf = b"{\"a\":1}\x03{\"b\":2}\x03{\"c\"".to_vec();
        let msgs = take_messages(&mut buf);
        assert_eq!(msgs, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert_eq!(buf, b"{\"c\"".to_vec());
    }

    #[test]
    fn methods_round_trip_names() {
        assert_eq!(Method::ALL.len(), 25);
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name()), Some(*m));
        }
        assert_eq!(Method::from_name("Frobnicate"), None);
    }

    #[test]
    fn failures_use_ganeti_encoding() {
        let f = LuxiFailure::prereq("no such node", crate::error::ErrorKind::NoEnt);
        let wire = f.encode();
        assert_eq!(
            wire,
            serde_json::json!(["OpPrereqError", ["no such node", "unknown_entity"]])
        );
        assert_eq!(LuxiFailure::decode(&wire), f);
        assert_eq!(
            LuxiFailure::decode(&serde_json::json!("boom")).message(),
            "boom"
        );
    }

    /// A tiny deterministic generator, so the randomized tests replay.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    #[allow(clippy::cast_possible_truncation)] // taking random low bytes on purpose
    fn random_frames_never_panic() {
        let seeds: &[&[u8]] = &[
            br#"{"method":"SubmitJob","args":[[{"OP_ID":"OP_TEST_DELAY","duration":1}]],"version":3000000}"#,
            br#"{"method":"Query","args":["instance",["name"],null]}"#,
            br#"{"success":true,"result":[1,2,3]}"#,
        ];
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..20_000 {
            let mut msg = seeds[round % seeds.len()].to_vec();
            for _ in 0..(xorshift(&mut rng) % 6) {
                let r = xorshift(&mut rng);
                let pos = usize::try_from(r % (msg.len() as u64 + 1)).unwrap_or(0);
                match r % 4 {
                    0 if pos < msg.len() => msg[pos] = (r >> 8) as u8,
                    1 => msg.insert(pos.min(msg.len()), (r >> 16) as u8),
                    2 if pos < msg.len() => {
                        msg.remove(pos);
                    }
                    _ => msg.truncate(pos),
                }
            }
            msg.push(ETX);
            let mut buf = msg;
            for m in take_messages(&mut buf) {
                // Whatever the bytes, parsing yields a value or an error.
                let _ = serde_json::from_slice::<Request>(&m);
                let _ = serde_json::from_slice::<Response>(&m);
                if let Ok(v) = serde_json::from_slice::<Value>(&m) {
                    let _ = LuxiFailure::decode(&v).message();
                    let _ = crate::opcodes::OpCode::from_json(&v);
                }
            }
        }
    }
}
