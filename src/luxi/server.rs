//! The LUXI accept loop masterd runs.
//!
//! Each connection is served by its own task: frames are split on ETX,
//! parsed, and handed to the [`Handler`]; its answer (or error) goes back
//! as one frame. A malformed frame or unknown method gets an error reply
//! and the connection stays usable; an oversized frame closes only that
//! connection. Nothing a client sends can stop the server.

use super::{frame, take_messages, LuxiFailure, Method, Request, Response, LUXI_VERSION};
use serde_json::Value;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::unix::{UnixListener, UnixStream};
use std::future::Future;
use std::sync::Arc;

/// What masterd does with a call.
pub trait Handler: Send + Sync + 'static {
    /// Answers `method` with positional `args`.
    fn call(
        &self,
        method: Method,
        args: Value,
    ) -> impl Future<Output = Result<Value, LuxiFailure>> + Send;
}

/// Accepts connections on `listener` forever, serving each on `ex`.
pub async fn serve<H: Handler>(
    listener: UnixListener,
    handler: Arc<H>,
    ex: Arc<smol::Executor<'static>>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let h = Arc::clone(&handler);
                ex.spawn(async move { serve_connection(stream, h).await })
                    .detach();
            }
            Err(e) => {
                log::warn!("luxi accept failed: {e}");
                smol::Timer::after(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one client until it disconnects.
pub async fn serve_connection<H: Handler>(mut stream: UnixStream, handler: Arc<H>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        for msg in take_messages(&mut buf) {
            let reply = answer(&msg, &*handler).await;
            if stream.write_all(&frame(&reply)).await.is_err() {
                return;
            }
        }
        if buf.len() > crate::constants::LUXI_MAX_MESSAGE_BYTES {
            let reply = failure(LuxiFailure::protocol(
                "message exceeds the maximum size; closing",
            ));
            let _ = stream.write_all(&frame(&reply)).await;
            return;
        }
    }
}

async fn answer<H: Handler>(msg: &[u8], handler: &H) -> Response {
    let req: Request = match serde_json::from_slice(msg) {
        Ok(r) => r,
        Err(e) => {
            return failure(LuxiFailure::protocol(format!(
                "malformed LUXI request: {e}"
            )))
        }
    };
    let Some(method) = Method::from_name(&req.method) else {
        return failure(LuxiFailure::protocol(format!(
            "unknown LUXI method {:?}",
            req.method
        )));
    };
    if !req.args.is_array() {
        return failure(LuxiFailure::protocol(format!(
            "arguments of {} must be a list",
            req.method
        )));
    }
    log::debug!("luxi method={} ", method.name());
    match handler.call(method, req.args).await {
        Ok(result) => Response {
            success: true,
            result,
            version: Some(LUXI_VERSION),
        },
        Err(f) => failure(f),
    }
}

fn failure(f: LuxiFailure) -> Response {
    Response {
        success: false,
        result: f.encode(),
        version: Some(LUXI_VERSION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::luxi::client::{Client, LuxiError};

    struct Echo;
    impl Handler for Echo {
        async fn call(&self, method: Method, args: Value) -> Result<Value, LuxiFailure> {
            match method {
                Method::QueryConfigValues => Ok(args),
                _ => Err(LuxiFailure::protocol(format!("{} not here", method.name()))),
            }
        }
    }

    #[test]
    fn serves_calls_and_survives_garbage() {
        let dir = std::env::temp_dir().join(format!("ganeti-luxi-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("ganeti-master");
        let listener = UnixListener::bind(&sock).unwrap();
        let ex = Arc::new(smol::Executor::new());
        let ex2 = Arc::clone(&ex);
        std::thread::spawn(move || {
            smol::block_on(ex2.run(serve(listener, Arc::new(Echo), Arc::clone(&ex2))))
        });

        // Garbage, a non-list, and an unknown method on a raw socket: error replies, same connection.
        use std::io::{Read, Write};
        let mut raw = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        raw.write_all(b"{not json\x03{\"method\":\"Query\",\"args\":5}\x03{\"method\":\"Nope\",\"args\":[]}\x03").unwrap();
        let mut got = Vec::new();
        while got.iter().filter(|&&b| b == crate::luxi::ETX).count() < 3 {
            let mut c = [0u8; 4096];
            let n = raw.read(&mut c).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&c[..n]);
        }
        let text = String::from_utf8(got).unwrap();
        assert!(text.contains("malformed LUXI request"), "{text}");
        assert!(text.contains("must be a list"), "{text}");
        assert!(text.contains("unknown LUXI method"), "{text}");

        let mut c = Client::connect(&sock).unwrap();
        let v = c
            .call(
                Method::QueryConfigValues,
                serde_json::json!(["cluster_name"]),
            )
            .unwrap();
        assert_eq!(v, serde_json::json!(["cluster_name"]));
        match c.call(Method::Query, serde_json::json!([])) {
            Err(LuxiError::Failed(f)) => assert_eq!(f.message(), "Query not here"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
