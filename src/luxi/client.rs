//! The blocking LUXI client used by every `gnt-*` program.
//!
//! One connection per client; calls are sequential. Timeouts follow
//! Ganeti's defaults (connect quickly, reads up to `LUXI_DEFAULT_RWTO_SECS`).

use super::{frame, take_messages, LuxiFailure, Method, Request, Response, ETX, LUXI_VERSION};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A LUXI call that did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum LuxiError {
    /// masterd is not listening (not running, or not the master node).
    #[error("cannot connect to the master daemon at {path} (is ganeti-masterd running on this node, and is it the master?)")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the socket failed (or timed out).
    #[error("talking to the master daemon at {path}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The reply was not a LUXI response.
    #[error("malformed reply from the master daemon: {0}")]
    Protocol(String),
    /// masterd answered with an error.
    #[error("{0}")]
    Failed(LuxiFailure),
}

/// A connection to masterd.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Self, LuxiError> {
        let stream = UnixStream::connect(path).map_err(|source| LuxiError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let timeout = Some(Duration::from_secs(
            crate::constants::LUXI_DEFAULT_RWTO_SECS,
        ));
        let io = |source| LuxiError::Io {
            path: path.to_path_buf(),
            source,
        };
        stream.set_read_timeout(timeout).map_err(io)?;
        stream.set_write_timeout(timeout).map_err(io)?;
        Ok(Client {
            path: path.to_path_buf(),
            stream,
            buf: Vec::new(),
        })
    }

    /// Calls `method` with positional `args` (a JSON list) and returns its result.
    pub fn call(&mut self, method: Method, args: Value) -> Result<Value, LuxiError> {
        let req = Request {
            method: method.name().to_string(),
            args,
            version: Some(LUXI_VERSION),
        };
        let path = self.path.clone();
        let io = |source| LuxiError::Io {
            path: path.clone(),
            source,
        };
        self.stream.write_all(&frame(&req)).map_err(io)?;
        let msg = loop {
            if let Some(m) = take_messages(&mut self.buf).into_iter().next() {
                break m;
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).map_err(io)?;
            if n == 0 {
                return Err(LuxiError::Protocol(
                    "connection closed before a reply arrived".into(),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if self.buf.len() > crate::constants::LUXI_MAX_MESSAGE_BYTES && !self.buf.contains(&ETX)
            {
                return Err(LuxiError::Protocol(
                    "reply exceeds the maximum message size".into(),
                ));
            }
        };
        let resp: Response =
            serde_json::from_slice(&msg).map_err(|e| LuxiError::Protocol(e.to_string()))?;
        if resp.success {
            Ok(resp.result)
        } else {
            Err(LuxiError::Failed(LuxiFailure::decode(&resp.result)))
        }
    }
}
