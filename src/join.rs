//! The node-join protocol: one-time tokens and the mutual proof between
//! master and a new node before any secret moves (`docs/rpc.md`, "Join protocol").
//!
//! Master side: [`TokenStore`] keeps the tokens `gnt-cluster` issues in
//! `/var/lib/ganeti/join-tokens`, and [`join_node`] runs the two calls
//! against the new node's unconfigured `ganeti-noded`. Node side:
//! [`JoinResponder`] (used by `daemons::noded`) answers them with the
//! token the operator put in `/var/lib/ganeti/join-token`.
//!
//! The token's secret never travels: each side proves it holds it with an
//! HMAC-SHA256 over a transcript that binds both nonces and both TLS
//! certificates as each side saw them, so a man in the middle (who must
//! present other certificates) is detected by whichever side it fooled.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;
use crate::rpc::proto::{self, FileUpload, JoinComplete, JoinHello, JoinHelloReply};
use crate::rpc::{NodeRpc, Peer, Target};

/// Domain-separation tag at the start of every transcript.
pub const TRANSCRIPT_TAG: &str = "ganeti-rs-join-v1";
/// How long a node nonce from `join_hello` stays usable.
pub const NONCE_TTL: Duration = Duration::from_secs(60);
/// Mode of the token files (both sides).
pub const TOKEN_FILE_MODE: u32 = 0o600;
/// Most unanswered hellos a node remembers (older ones are forgotten).
const MAX_PENDING_HELLOS: usize = 16;
/// Bytes of a token's secret.
const SECRET_BYTES: usize = 32;
/// Bytes of a token's id.
const ID_BYTES: usize = 4;
/// Bytes of a nonce.
const NONCE_BYTES: usize = 16;

/// Why a join failed. Each variant names the problem so both operators
/// (master and node) can see what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The node has no token file.
    #[error("no join token at {path}; put the token `gnt-cluster` printed there (mode 0600)")]
    NoToken {
        /// The expected file.
        path: String,
    },
    /// The node's token file may be read by others.
    #[error("{path} has mode {mode:04o}; a join token must not be readable by group or others (chmod 600)")]
    TokenFileMode {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// A token (text or stored record) is malformed.
    #[error("malformed join token: {reason}")]
    MalformedToken {
        /// What is wrong.
        reason: String,
    },
    /// The token's expiry has passed.
    #[error("join token {id} expired at {expiry} (unix time); issue a new one")]
    TokenExpired {
        /// The token's id.
        id: String,
        /// When it expired, seconds since the epoch.
        expiry: u64,
    },
    /// The master does not know the node's token (never issued, already
    /// used, or pruned after expiring).
    #[error("join token {id} is not known to the master (already used, or never issued)")]
    UnknownToken {
        /// The token id the node gave.
        id: String,
    },
    /// The node's certificate is not the one the TLS connection showed.
    #[error("node {node} claims certificate {claimed} but the connection presented {observed}; possible man in the middle")]
    CertMismatch {
        /// The node.
        node: String,
        /// SHA-256 the node reported.
        claimed: String,
        /// SHA-256 the connection presented.
        observed: String,
    },
    /// A MAC did not verify: the other side does not hold the token, or the
    /// transcript differs (someone in the middle).
    #[error("the {side}'s proof of the join token does not verify (wrong token, or a man in the middle)")]
    BadMac {
        /// Whose MAC failed: `node` or `master`.
        side: &'static str,
    },
    /// `join_complete` named a nonce the node never gave or already used.
    #[error("unknown or already used join nonce (replayed join_complete?)")]
    UnknownNonce,
    /// `join_complete` came too late after `join_hello`.
    #[error("join nonce expired ({} s after join_hello); start the join again", NONCE_TTL.as_secs())]
    NonceExpired,
    /// `join_complete` came from another client certificate than `join_hello`.
    #[error("join_complete came from another client certificate than join_hello")]
    PeerChanged,
    /// An argument or reply field is malformed.
    #[error("invalid {field} in {step}: {reason}")]
    BadField {
        /// The protocol step.
        step: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A call to the node failed.
    #[error("{step} to {node} failed: {message}")]
    Rpc {
        /// The protocol step.
        step: &'static str,
        /// The node.
        node: String,
        /// The failure as the RPC layer gave it.
        message: String,
    },
    /// Reading or writing a token file failed.
    #[error("{action} {path}: {message}")]
    Store {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The cause.
        message: String,
    },
    /// Installing the cluster files on the node failed.
    #[error("installing the cluster files: {message}")]
    Install {
        /// The cause.
        message: String,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn is_hex_of_len(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn random_hex(n: usize) -> Result<String, JoinError> {
    let mut buf = vec![0u8; n];
    crate::sys::fs::random_bytes(&mut buf).map_err(|e| JoinError::Store {
        action: "drawing random bytes for",
        path: "a join token or nonce".into(),
        message: crate::error::chain(&e),
    })?;
    Ok(hex(&buf))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One join token: the public id and expiry, and the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Token {
    /// 8 hex digits.
    id: String,
    /// Seconds since the epoch.
    expiry: u64,
    /// 64 hex digits (32 bytes).
    secret: String,
}

impl Token {
    /// Parses `<id>.<expiry_unix>.<secret>`.
    fn parse(text: &str) -> Result<Token, JoinError> {
        let bad = |reason: &str| JoinError::MalformedToken {
            reason: reason.to_string(),
        };
        let mut parts = text.trim().split('.');
        let (Some(id), Some(expiry), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected ID.EXPIRY.SECRET"));
        };
        let token = Token {
            id: id.to_ascii_lowercase(),
            expiry: expiry
                .parse()
                .map_err(|_| bad("expiry is not a unix time"))?,
            secret: secret.to_ascii_lowercase(),
        };
        token.check()?;
        Ok(token)
    }

    fn check(&self) -> Result<(), JoinError> {
        let bad = |reason: &str| JoinError::MalformedToken {
            reason: reason.to_string(),
        };
        if !is_hex_of_len(&self.id, 2 * ID_BYTES, 2 * ID_BYTES) {
            return Err(bad("the id must be 8 hex digits"));
        }
        if !is_hex_of_len(&self.secret, 2 * SECRET_BYTES, 2 * SECRET_BYTES) {
            return Err(bad("the secret must be 64 hex digits"));
        }
        Ok(())
    }

    fn text(&self) -> String {
        format!("{}.{}.{}", self.id, self.expiry, self.secret)
    }

    /// The public part the node shows: `id.expiry`.
    fn public_id(&self) -> String {
        format!("{}.{}", self.id, self.expiry)
    }

    fn check_unexpired(&self, now: u64) -> Result<(), JoinError> {
        if self.expiry <= now {
            return Err(JoinError::TokenExpired {
                id: self.id.clone(),
                expiry: self.expiry,
            });
        }
        Ok(())
    }

    fn key(&self) -> ring::hmac::Key {
        let raw = unhex(&self.secret).unwrap_or_default();
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &raw)
    }
}

/// Which side a transcript MAC speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Node,
    Master,
}

/// `TAG|side|master_nonce|node_nonce|node_cert_sha256|master_cert_sha256`.
fn transcript(
    side: Side,
    master_nonce: &str,
    node_nonce: &str,
    node_cert: &str,
    master_cert: &str,
) -> String {
    let side = match side {
        Side::Node => "node",
        Side::Master => "master",
    };
    format!("{TRANSCRIPT_TAG}|{side}|{master_nonce}|{node_nonce}|{node_cert}|{master_cert}")
}

fn sign(token: &Token, transcript: &str) -> String {
    hex(ring::hmac::sign(&token.key(), transcript.as_bytes()).as_ref())
}

/// Constant-time check of a hex MAC.
fn verify(token: &Token, transcript: &str, mac_hex: &str) -> bool {
    match unhex(mac_hex) {
        Some(mac) => ring::hmac::verify(&token.key(), transcript.as_bytes(), &mac).is_ok(),
        None => false,
    }
}

/// The stored form of the master's token file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    tokens: Vec<Token>,
}

/// The master's join tokens (`/var/lib/ganeti/join-tokens`, 0600). Expired
/// tokens are dropped on every access.
#[derive(Debug, Clone)]
pub struct TokenStore {
    paths: Paths,
}

impl TokenStore {
    /// The store of the cluster whose data dir is under `paths`.
    pub fn new(paths: &Paths) -> TokenStore {
        TokenStore {
            paths: paths.clone(),
        }
    }

    fn file(&self) -> PathBuf {
        self.paths.data_dir().join("join-tokens")
    }

    /// Serialises read-modify-write of the store between processes
    /// (`gnt-cluster join-token` and masterd's node-add jobs).
    fn lock(&self) -> Result<std::fs::File, JoinError> {
        let path = self.paths.data_dir().join("join-tokens.lock");
        crate::sys::fs::lock_exclusive(&path)
            .map_err(|e| self.store_err("locking", crate::error::chain(&e)))
    }

    fn store_err(&self, action: &'static str, message: String) -> JoinError {
        JoinError::Store {
            action,
            path: self.file().display().to_string(),
            message,
        }
    }

    /// The unexpired tokens; rewrites the file when some had expired.
    fn load(&self, now: u64) -> Result<Vec<Token>, JoinError> {
        let path = self.file();
        let raw = match std::fs::read(&path) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.store_err("reading", e.to_string())),
        };
        let file: StoreFile =
            serde_json::from_slice(&raw).map_err(|e| self.store_err("parsing", e.to_string()))?;
        let before = file.tokens.len();
        let live: Vec<Token> = file
            .tokens
            .into_iter()
            .filter(|t| t.check().is_ok() && t.expiry > now)
            .collect();
        if live.len() != before {
            self.save(&live)?;
        }
        Ok(live)
    }

    fn save(&self, tokens: &[Token]) -> Result<(), JoinError> {
        let file = StoreFile {
            tokens: tokens.to_vec(),
        };
        let text = serde_json::to_vec_pretty(&file)
            .map_err(|e| self.store_err("encoding", e.to_string()))?;
        crate::sys::fs::atomic_write(&self.file(), &text, TOKEN_FILE_MODE)
            .map_err(|e| self.store_err("writing", crate::error::chain(&e)))
    }

    /// Issues a new token valid for `ttl`; returns the token text to give
    /// to the new node's operator.
    pub fn issue(&self, ttl: Duration) -> Result<String, JoinError> {
        let _lock = self.lock()?;
        let now = now_unix();
        let mut tokens = self.load(now)?;
        let token = Token {
            id: random_hex(ID_BYTES)?,
            expiry: now.saturating_add(ttl.as_secs().max(1)),
            secret: random_hex(SECRET_BYTES)?,
        };
        tokens.push(token.clone());
        self.save(&tokens)?;
        log::info!("issued join token id={} expiry={}", token.id, token.expiry);
        Ok(token.text())
    }

    /// The unexpired token with `id`, if any.
    fn lookup(&self, id: &str) -> Result<Option<Token>, JoinError> {
        let _lock = self.lock()?;
        Ok(self.load(now_unix())?.into_iter().find(|t| t.id == id))
    }

    /// Removes the token with `id` (after a successful join).
    fn consume(&self, id: &str) -> Result<(), JoinError> {
        let _lock = self.lock()?;
        let mut tokens = self.load(now_unix())?;
        tokens.retain(|t| t.id != id);
        self.save(&tokens)
    }

    /// Ids and expiries of the unexpired tokens.
    pub fn list(&self) -> Result<Vec<(String, u64)>, JoinError> {
        let _lock = self.lock()?;
        Ok(self
            .load(now_unix())?
            .into_iter()
            .map(|t| (t.id, t.expiry))
            .collect())
    }
}

fn rpc_err(step: &'static str, e: crate::rpc::RpcError) -> JoinError {
    JoinError::Rpc {
        step,
        node: e.node().to_string(),
        message: e.to_string(),
    }
}

/// Runs the join protocol against `target` (an unconfigured noded) and, once
/// both sides are proven, installs `files` on it. Returns the SHA-256 of the
/// node's join certificate. The token is consumed only when the node has
/// accepted the files.
pub fn join_node(
    rpc: &dyn NodeRpc,
    target: &Target,
    tokens: &TokenStore,
    cluster_name: &str,
    files: Vec<FileUpload>,
    timeout: Duration,
) -> Result<String, JoinError> {
    const HELLO: &str = "join_hello";
    let master_nonce = random_hex(NONCE_BYTES)?;
    let hello = JoinHello {
        master_nonce: master_nonce.clone(),
        cluster_name: cluster_name.to_string(),
    };
    let args = serde_json::to_value(&hello).map_err(|e| JoinError::BadField {
        step: HELLO,
        field: "arguments",
        reason: e.to_string(),
    })?;
    let (reply, observed) = rpc
        .join_call(proto::JOIN_HELLO, target, &args, timeout)
        .map_err(|e| rpc_err(HELLO, e))?;
    let reply: JoinHelloReply = serde_json::from_value(reply).map_err(|e| JoinError::BadField {
        step: HELLO,
        field: "reply",
        reason: e.to_string(),
    })?;
    let bad = |field: &'static str, reason: &str| JoinError::BadField {
        step: HELLO,
        field,
        reason: reason.to_string(),
    };
    let (id, expiry) = reply
        .token_id
        .split_once('.')
        .ok_or_else(|| bad("token_id", "expected ID.EXPIRY"))?;
    let expiry: u64 = expiry
        .parse()
        .map_err(|_| bad("token_id", "expiry is not a unix time"))?;
    if !is_hex_of_len(&reply.node_nonce, 2 * NONCE_BYTES, 2 * NONCE_BYTES) {
        return Err(bad("node_nonce", "expected 32 hex digits"));
    }
    if expiry <= now_unix() {
        return Err(JoinError::TokenExpired {
            id: id.to_string(),
            expiry,
        });
    }
    let token = tokens
        .lookup(id)?
        .filter(|t| t.expiry == expiry)
        .ok_or_else(|| JoinError::UnknownToken { id: id.to_string() })?;
    if reply.node_cert_sha256 != observed {
        return Err(JoinError::CertMismatch {
            node: target.name.clone(),
            claimed: reply.node_cert_sha256,
            observed,
        });
    }
    let master_cert = rpc.own_cert_sha256();
    let node_transcript = transcript(
        Side::Node,
        &master_nonce,
        &reply.node_nonce,
        &observed,
        &master_cert,
    );
    if !verify(&token, &node_transcript, &reply.mac) {
        return Err(JoinError::BadMac { side: "node" });
    }
    let master_transcript = transcript(
        Side::Master,
        &master_nonce,
        &reply.node_nonce,
        &observed,
        &master_cert,
    );
    let complete = JoinComplete {
        node_nonce: reply.node_nonce.clone(),
        mac: sign(&token, &master_transcript),
        files,
    };
    const COMPLETE: &str = "join_complete";
    let args = serde_json::to_value(&complete).map_err(|e| JoinError::BadField {
        step: COMPLETE,
        field: "arguments",
        reason: e.to_string(),
    })?;
    let (_, observed_again) = rpc
        .join_call(proto::JOIN_COMPLETE, target, &args, timeout)
        .map_err(|e| rpc_err(COMPLETE, e))?;
    if observed_again != observed {
        // The files went to whoever answered; report it loudly. The token
        // stays unusable for a retry only if the node consumed it.
        return Err(JoinError::CertMismatch {
            node: target.name.clone(),
            claimed: observed,
            observed: observed_again,
        });
    }
    tokens.consume(&token.id)?;
    log::info!(
        "node joined node={} token={} cert_sha256={observed}",
        target.name,
        token.id
    );
    Ok(observed)
}

/// A hello the node answered and waits to see completed.
#[derive(Debug)]
struct PendingHello {
    master_nonce: String,
    master_cert: String,
    token: Token,
    at: Instant,
}

/// The node side of the join protocol: answers `join_hello` and
/// `join_complete` with the token in `/var/lib/ganeti/join-token`.
#[derive(Debug)]
pub struct JoinResponder {
    paths: Paths,
    node_cert_sha256: String,
    pending: Mutex<HashMap<String, PendingHello>>,
}

impl JoinResponder {
    /// A responder for the node under `paths` whose join certificate has
    /// SHA-256 `node_cert_sha256` (lowercase hex).
    pub fn new(paths: &Paths, node_cert_sha256: &str) -> JoinResponder {
        JoinResponder {
            paths: paths.clone(),
            node_cert_sha256: node_cert_sha256.to_string(),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Where the node's operator puts the token.
    pub fn token_file(paths: &Paths) -> PathBuf {
        paths.data_dir().join("join-token")
    }

    fn read_token(&self) -> Result<Token, JoinError> {
        let path = Self::token_file(&self.paths);
        let shown = path.display().to_string();
        let mode = match crate::sys::fs::mode_of(&path) {
            Ok(m) => m,
            Err(_) if !path.exists() => return Err(JoinError::NoToken { path: shown }),
            Err(e) => {
                return Err(JoinError::Store {
                    action: "checking",
                    path: shown,
                    message: crate::error::chain(&e),
                })
            }
        };
        if mode & 0o077 != 0 {
            let e = JoinError::TokenFileMode { path: shown, mode };
            log::error!("{e}");
            return Err(e);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| JoinError::Store {
            action: "reading",
            path: shown,
            message: e.to_string(),
        })?;
        Token::parse(&text)
    }

    /// `join_hello`: proves this node holds an unexpired token, binding the
    /// master's nonce, a fresh node nonce and both certificates.
    pub fn hello(&self, args: &JoinHello, peer: &Peer) -> Result<JoinHelloReply, JoinError> {
        if !is_hex_of_len(&args.master_nonce, 2 * NONCE_BYTES, 128) {
            return Err(JoinError::BadField {
                step: "join_hello",
                field: "master_nonce",
                reason: "expected 32 to 128 hex digits".into(),
            });
        }
        let token = self.read_token()?;
        token.check_unexpired(now_unix())?;
        let node_nonce = random_hex(NONCE_BYTES)?;
        let mac = sign(
            &token,
            &transcript(
                Side::Node,
                &args.master_nonce,
                &node_nonce,
                &self.node_cert_sha256,
                &peer.cert_sha256,
            ),
        );
        let reply = JoinHelloReply {
            node_nonce: node_nonce.clone(),
            token_id: token.public_id(),
            node_cert_sha256: self.node_cert_sha256.clone(),
            mac,
        };
        log::info!(
            "join hello from={} cluster={} token={} master_cert_sha256={}",
            peer.address,
            args.cluster_name,
            token.id,
            peer.cert_sha256
        );
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, h| h.at.elapsed() < NONCE_TTL);
        while pending.len() >= MAX_PENDING_HELLOS {
            let oldest = pending
                .iter()
                .min_by_key(|(_, h)| h.at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => pending.remove(&k),
                None => break,
            };
        }
        pending.insert(
            node_nonce,
            PendingHello {
                master_nonce: args.master_nonce.clone(),
                master_cert: peer.cert_sha256.clone(),
                token,
                at: Instant::now(),
            },
        );
        Ok(reply)
    }

    /// `join_complete`: checks the master's proof, then hands the files to
    /// `install` and, once installed, deletes the token file. The nonce is
    /// used up whatever the outcome.
    pub fn complete(
        &self,
        args: &JoinComplete,
        peer: &Peer,
        install: impl FnOnce(&[FileUpload]) -> Result<(), String>,
    ) -> Result<(), JoinError> {
        let hello = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&args.node_nonce)
            .ok_or(JoinError::UnknownNonce)?;
        if hello.at.elapsed() >= NONCE_TTL {
            return Err(JoinError::NonceExpired);
        }
        if hello.master_cert != peer.cert_sha256 {
            return Err(JoinError::PeerChanged);
        }
        hello.token.check_unexpired(now_unix())?;
        let expected = transcript(
            Side::Master,
            &hello.master_nonce,
            &args.node_nonce,
            &self.node_cert_sha256,
            &peer.cert_sha256,
        );
        if !verify(&hello.token, &expected, &args.mac) {
            let e = JoinError::BadMac { side: "master" };
            log::error!("join refused from={}: {e}", peer.address);
            return Err(e);
        }
        // The token must still be there: a join that completed already
        // removed it.
        let current = self.read_token()?;
        if current != hello.token {
            return Err(JoinError::UnknownNonce);
        }
        install(&args.files).map_err(|message| JoinError::Install { message })?;
        let path = Self::token_file(&self.paths);
        if let Err(e) = std::fs::remove_file(&path) {
            log::warn!("joined, but cannot remove {}: {e}", path.display());
        }
        log::info!(
            "joined the cluster from={} token={} files={}",
            peer.address,
            hello.token.id,
            args.files.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{NodeResult, RpcError};
    use serde_json::Value;
    use std::os::unix::fs::PermissionsExt;

    const NODE_CERT: &str = "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11";
    const MASTER_CERT: &str = "bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22";
    const MITM_CERT: &str = "cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33";

    fn node(tag: &str, name: &str) -> Paths {
        crate::paths::test_support::temp_node(&format!("join-{tag}"), name, &["/var/lib/ganeti"])
    }

    fn cleanup(p: &Paths) {
        crate::paths::test_support::remove_temp_node(p);
    }

    fn give_token(p: &Paths, text: &str) {
        crate::sys::fs::atomic_write(
            &JoinResponder::token_file(p),
            format!("{text}\n").as_bytes(),
            0o600,
        )
        .unwrap();
    }

    /// How the fake network between master and node misbehaves.
    #[derive(Default)]
    struct Knobs {
        /// The certificate the master sees (default: the node's).
        presented: Option<&'static str>,
        /// The client certificate the node sees (default: the master's).
        client_seen: Option<&'static str>,
        tamper_hello_mac: bool,
        tamper_complete_mac: bool,
        fake_token_id: Option<String>,
    }

    /// A NodeRpc whose join_call runs the node side in-process.
    struct FakeNode {
        responder: JoinResponder,
        knobs: Knobs,
        installed: Mutex<Vec<FileUpload>>,
        last_complete: Mutex<Option<JoinComplete>>,
    }

    impl FakeNode {
        fn new(paths: &Paths, knobs: Knobs) -> FakeNode {
            FakeNode {
                responder: JoinResponder::new(paths, NODE_CERT),
                knobs,
                installed: Mutex::new(Vec::new()),
                last_complete: Mutex::new(None),
            }
        }

        fn peer(&self) -> Peer {
            Peer {
                address: "127.0.0.1:40000".into(),
                cert_sha256: self.knobs.client_seen.unwrap_or(MASTER_CERT).into(),
            }
        }

        fn complete(&self, args: &JoinComplete) -> Result<(), JoinError> {
            self.responder.complete(args, &self.peer(), |files| {
                self.installed.lock().unwrap().extend_from_slice(files);
                Ok(())
            })
        }
    }

    fn flip_first(hex_text: &mut String) {
        let c = if hex_text.starts_with('0') { "1" } else { "0" };
        hex_text.replace_range(0..1, c);
    }

    impl NodeRpc for FakeNode {
        fn call_each(
            &self,
            _procedure: &str,
            calls: &[(Target, Value)],
            _timeout: Duration,
        ) -> Vec<(String, NodeResult)> {
            calls
                .iter()
                .map(|(t, _)| {
                    (
                        t.name.clone(),
                        Err(RpcError::Offline {
                            node: t.name.clone(),
                        }),
                    )
                })
                .collect()
        }

        fn join_call(
            &self,
            procedure: &str,
            target: &Target,
            args: &Value,
            _timeout: Duration,
        ) -> Result<(Value, String), RpcError> {
            let remote = |e: JoinError| RpcError::Remote {
                node: target.name.clone(),
                message: e.to_string(),
            };
            let presented = self.knobs.presented.unwrap_or(NODE_CERT).to_string();
            match procedure {
                proto::JOIN_HELLO => {
                    let hello: JoinHello = serde_json::from_value(args.clone()).unwrap();
                    let mut reply = self.responder.hello(&hello, &self.peer()).map_err(remote)?;
                    if self.knobs.tamper_hello_mac {
                        flip_first(&mut reply.mac);
                    }
                    if let Some(id) = &self.knobs.fake_token_id {
                        reply.token_id = id.clone();
                    }
                    Ok((serde_json::to_value(reply).unwrap(), presented))
                }
                proto::JOIN_COMPLETE => {
                    let mut c: JoinComplete = serde_json::from_value(args.clone()).unwrap();
                    if self.knobs.tamper_complete_mac {
                        flip_first(&mut c.mac);
                    }
                    *self.last_complete.lock().unwrap() = Some(c.clone());
                    self.complete(&c).map_err(remote)?;
                    Ok((Value::Null, presented))
                }
                other => panic!("unexpected {other}"),
            }
        }

        fn own_cert_sha256(&self) -> String {
            MASTER_CERT.into()
        }
    }

    fn files() -> Vec<FileUpload> {
        vec![FileUpload {
            path: "/var/lib/ganeti/hmac.key".into(),
            data: crate::rpc::b64::encode(b"secret\n"),
            mode: 0o600,
        }]
    }

    fn target() -> Target {
        Target::new("node2", "127.0.0.2")
    }

    fn setup(tag: &str, knobs: Knobs) -> (Paths, TokenStore, FakeNode, Paths) {
        let master = node(tag, "node1");
        let newnode = node(tag, "node2");
        let store = TokenStore::new(&master);
        let token = store.issue(Duration::from_secs(600)).unwrap();
        give_token(&newnode, &token);
        let fake = FakeNode::new(&newnode, knobs);
        (master, store, fake, newnode)
    }

    fn join(store: &TokenStore, fake: &FakeNode) -> Result<String, JoinError> {
        join_node(
            fake,
            &target(),
            store,
            "cluster.example.com",
            files(),
            Duration::from_secs(5),
        )
    }

    #[test]
    fn full_handshake_installs_files_and_uses_up_the_token() {
        let (master, store, fake, newnode) = setup("ok", Knobs::default());
        let mode = std::fs::metadata(master.data_dir().join("join-tokens"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.list().unwrap().len(), 1);
        assert_eq!(join(&store, &fake).unwrap(), NODE_CERT);
        assert_eq!(
            fake.installed.lock().unwrap().as_slice(),
            files().as_slice()
        );
        assert!(store.list().unwrap().is_empty(), "token consumed");
        assert!(
            !JoinResponder::token_file(&newnode).exists(),
            "node token deleted"
        );

        // Replaying the recorded join_complete is refused.
        let replay = fake.last_complete.lock().unwrap().clone().unwrap();
        assert_eq!(fake.complete(&replay), Err(JoinError::UnknownNonce));
        // And a second join has no token on either side.
        assert!(matches!(join(&store, &fake), Err(JoinError::Rpc { .. })));
        cleanup(&master);
    }

    #[test]
    fn tampered_node_mac_is_refused_and_token_kept() {
        let knobs = Knobs {
            tamper_hello_mac: true,
            ..Knobs::default()
        };
        let (master, store, fake, _) = setup("nodemac", knobs);
        assert_eq!(join(&store, &fake), Err(JoinError::BadMac { side: "node" }));
        assert_eq!(store.list().unwrap().len(), 1, "token kept for a retry");
        assert!(fake.installed.lock().unwrap().is_empty());
        cleanup(&master);
    }

    #[test]
    fn tampered_master_mac_is_refused_by_the_node() {
        let knobs = Knobs {
            tamper_complete_mac: true,
            ..Knobs::default()
        };
        let (master, store, fake, newnode) = setup("mastermac", knobs);
        let err = join(&store, &fake).unwrap_err();
        assert!(err.to_string().contains("master's proof"), "{err}");
        assert!(fake.installed.lock().unwrap().is_empty());
        assert_eq!(store.list().unwrap().len(), 1);
        assert!(JoinResponder::token_file(&newnode).exists());
        cleanup(&master);
    }

    #[test]
    fn man_in_the_middle_is_detected_by_both_sides() {
        // Master sees the MITM's server certificate.
        let knobs = Knobs {
            presented: Some(MITM_CERT),
            ..Knobs::default()
        };
        let (master, store, fake, _) = setup("mitm1", knobs);
        assert!(matches!(
            join(&store, &fake),
            Err(JoinError::CertMismatch { .. })
        ));
        assert_eq!(store.list().unwrap().len(), 1);
        cleanup(&master);

        // Node sees the MITM's client certificate: the node's MAC binds it,
        // so the master's check fails.
        let knobs = Knobs {
            client_seen: Some(MITM_CERT),
            ..Knobs::default()
        };
        let (master, store, fake, _) = setup("mitm2", knobs);
        assert_eq!(join(&store, &fake), Err(JoinError::BadMac { side: "node" }));
        assert!(fake.installed.lock().unwrap().is_empty());
        cleanup(&master);
    }

    #[test]
    fn expired_and_unknown_tokens_are_refused() {
        // Expired on the node.
        let (master, store, fake, newnode) = setup("expired", Knobs::default());
        give_token(&newnode, &format!("0badcafe.1000.{}", "ab".repeat(32)));
        let err = join(&store, &fake).unwrap_err().to_string();
        assert!(err.contains("expired"), "{err}");
        cleanup(&master);

        // Expired as the master sees it (node's clock is off).
        let knobs = Knobs {
            fake_token_id: Some("0badcafe.1000".into()),
            ..Knobs::default()
        };
        let (master, store, fake, _) = setup("expired2", knobs);
        assert!(matches!(
            join(&store, &fake),
            Err(JoinError::TokenExpired { .. })
        ));
        cleanup(&master);

        // A token the master never issued.
        let (master, store, fake, newnode) = setup("unknown", Knobs::default());
        give_token(
            &newnode,
            &format!("12345678.{}.{}", now_unix() + 600, "cd".repeat(32)),
        );
        assert_eq!(
            join(&store, &fake),
            Err(JoinError::UnknownToken {
                id: "12345678".into()
            })
        );
        cleanup(&master);
    }

    #[test]
    fn node_refuses_a_readable_or_missing_token_file() {
        let p = node("mode", "node2");
        let r = JoinResponder::new(&p, NODE_CERT);
        let hello = JoinHello {
            master_nonce: "ab".repeat(16),
            cluster_name: "c".into(),
        };
        let peer = Peer {
            address: "x".into(),
            cert_sha256: MASTER_CERT.into(),
        };
        assert!(matches!(
            r.hello(&hello, &peer),
            Err(JoinError::NoToken { .. })
        ));
        give_token(
            &p,
            &format!("12345678.{}.{}", now_unix() + 600, "cd".repeat(32)),
        );
        std::fs::set_permissions(
            JoinResponder::token_file(&p),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = r.hello(&hello, &peer).unwrap_err();
        assert!(err.to_string().contains("0644"), "{err}");
        let short = JoinHello {
            master_nonce: "ab".into(),
            cluster_name: "c".into(),
        };
        assert!(matches!(
            r.hello(&short, &peer),
            Err(JoinError::BadField { .. })
        ));
        cleanup(&p);
    }

    #[test]
    fn token_text_and_store_pruning() {
        assert!(Token::parse("xyz").is_err());
        assert!(Token::parse("1234567.5.aa").is_err());
        let secret = "ef".repeat(32);
        let t = Token::parse(&format!("DEADBEEF.42.{secret}")).unwrap();
        assert_eq!(t.text(), format!("deadbeef.42.{secret}"));
        assert_eq!(t.public_id(), "deadbeef.42");

        let p = node("prune", "node1");
        let store = TokenStore::new(&p);
        store.issue(Duration::from_secs(600)).unwrap();
        // An expired record written by hand is dropped on the next access.
        let path = p.data_dir().join("join-tokens");
        let mut file: StoreFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        file.tokens.push(Token {
            id: "00000001".into(),
            expiry: 5,
            secret: secret.clone(),
        });
        crate::sys::fs::atomic_write(&path, &serde_json::to_vec(&file).unwrap(), 0o600).unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
        let file: StoreFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(file.tokens.len(), 1, "pruned on disk too");
        cleanup(&p);
    }
}
