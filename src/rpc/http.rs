//! The small HTTP/1.1 subset node RPC speaks, for both sides.
//!
//! A request is `POST /<procedure> HTTP/1.1` with `Host`, `Content-Length`,
//! `Content-Type: application/json` and [`VERSION_HEADER`]; a response is
//! `HTTP/1.1 <code> <reason>` with `Content-Length`, its body Ganeti's
//! noded reply pair `[true, result]` or `[false, "message"]`. Connections
//! are kept alive unless either side says `Connection: close`. No chunked
//! encoding, no `Expect`, no pipelining guarantees beyond in-order replies.
//!
//! Heads are limited to [`MAX_HEAD_BYTES`] and bodies to [`MAX_BODY_BYTES`]
//! (a 10,000-instance `config.data` is about 10 MB, 13 MB in base64).
//! The parsing functions are pure; [`read_request`] and [`read_response`]
//! read one message incrementally off a buffered stream.

use super::VERSION_HEADER;
use serde_json::Value;
use smol::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Largest accepted request or status line plus headers, in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest accepted body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The peer closed the connection before sending any byte of a message
    /// (the normal end of a keep-alive connection).
    #[error("connection closed before a message started")]
    Closed,
    /// Reading or writing the stream failed.
    #[error("{doing}")]
    Io {
        /// What was being done.
        doing: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The head or the body exceeds its limit.
    #[error("{what} exceeds {limit} bytes")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not the HTTP this module speaks.
    #[error("malformed HTTP: {0}")]
    Malformed(String),
}

impl HttpError {
    fn malformed(msg: impl Into<String>) -> Self {
        HttpError::Malformed(msg.into())
    }
}

/// Whether the connection stays open after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Keep it for the next request.
    KeepAlive,
    /// Close it after this exchange.
    Close,
}

/// A parsed request line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The request method (`POST` for every procedure).
    pub method: String,
    /// The procedure: the path without its leading `/`.
    pub procedure: String,
    /// The value of [`VERSION_HEADER`], if sent.
    pub version: Option<String>,
    /// The body length.
    pub content_length: usize,
    /// Keep-alive or close, from the HTTP version and `Connection`.
    pub connection: Connection,
}

/// A parsed status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub code: u16,
    /// The body length.
    pub content_length: usize,
    /// Keep-alive or close.
    pub connection: Connection,
}

/// One whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its head.
    pub head: RequestHead,
    /// Its body (JSON, not yet parsed).
    pub body: Vec<u8>,
}

/// One whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Its head.
    pub head: ResponseHead,
    /// Its body.
    pub body: Vec<u8>,
}

/// The position just past the blank line ending the head, if `buf` holds it.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Headers common to both directions.
struct Headers {
    content_length: Option<usize>,
    connection: Option<Connection>,
    version: Option<String>,
}

fn parse_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Headers, HttpError> {
    let mut h = Headers {
        content_length: None,
        connection: None,
        version: None,
    };
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HttpError::malformed(format!("header line without ':': {line:?}")))?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(HttpError::malformed(format!("bad header name {name:?}")));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| HttpError::malformed(format!("bad Content-Length {value:?}")))?;
            if h.content_length.is_some_and(|old| old != n) {
                return Err(HttpError::malformed("conflicting Content-Length headers"));
            }
            h.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::malformed(format!(
                "Transfer-Encoding {value:?} not supported; send Content-Length"
            )));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                let t = token.trim();
                if t.eq_ignore_ascii_case("close") {
                    h.connection = Some(Connection::Close);
                } else if t.eq_ignore_ascii_case("keep-alive") && h.connection.is_none() {
                    h.connection = Some(Connection::KeepAlive);
                }
            }
        } else if name.eq_ignore_ascii_case(VERSION_HEADER) {
            h.version = Some(value.to_string());
        }
    }
    if h.content_length.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(HttpError::TooLarge {
            what: "body",
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(h)
}

fn head_text(head: &[u8]) -> Result<&str, HttpError> {
    if head.len() > MAX_HEAD_BYTES {
        return Err(HttpError::TooLarge {
            what: "header block",
            limit: MAX_HEAD_BYTES,
        });
    }
    std::str::from_utf8(head).map_err(|_| HttpError::malformed("header block is not UTF-8"))
}

fn default_connection(http_version: &str) -> Result<Connection, HttpError> {
    match http_version {
        "HTTP/1.1" => Ok(Connection::KeepAlive),
        "HTTP/1.0" => Ok(Connection::Close),
        other => Err(HttpError::malformed(format!(
            "unsupported HTTP version {other:?}"
        ))),
    }
}

/// Parses a request head (everything up to and including the blank line).
pub fn parse_request_head(head: &[u8]) -> Result<RequestHead, HttpError> {
    let text = head_text(head)?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::malformed(format!("bad request line {first:?}")));
    };
    let default = default_connection(version)?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HttpError::malformed(format!("bad method {method:?}")));
    }
    let procedure = path
        .strip_prefix('/')
        .ok_or_else(|| HttpError::malformed(format!("path {path:?} does not start with '/'")))?;
    if procedure.is_empty()
        || !procedure
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(HttpError::malformed(format!(
            "bad procedure name {procedure:?}"
        )));
    }
    let h = parse_headers(lines)?;
    let content_length = match (h.content_length, method) {
        (Some(n), _) => n,
        (None, "POST") => return Err(HttpError::malformed("POST without Content-Length")),
        (None, _) => 0,
    };
    Ok(RequestHead {
        method: method.to_string(),
        procedure: procedure.to_string(),
        version: h.version,
        content_length,
        connection: h.connection.unwrap_or(default),
    })
}

/// Parses a response head (everything up to and including the blank line).
pub fn parse_response_head(head: &[u8]) -> Result<ResponseHead, HttpError> {
    let text = head_text(head)?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(HttpError::malformed(format!("bad status line {first:?}")));
    };
    let default = default_connection(version)?;
    let code: u16 = code
        .parse()
        .ok()
        .filter(|c| (100..600).contains(c))
        .ok_or_else(|| HttpError::malformed(format!("bad status code in {first:?}")))?;
    let h = parse_headers(lines)?;
    let content_length = h
        .content_length
        .ok_or_else(|| HttpError::malformed("response without Content-Length"))?;
    Ok(ResponseHead {
        code,
        content_length,
        connection: h.connection.unwrap_or(default),
    })
}

/// The request bytes for calling `procedure` on `host` with a JSON `body`.
pub fn encode_request(procedure: &str, host: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST /{procedure} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{VERSION_HEADER}: {}\r\n\r\n",
        body.len(),
        super::PROTOCOL_VERSION
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The response bytes for status `code` with a JSON `body`.
pub fn encode_response(code: u16, body: &[u8], connection: Connection) -> Vec<u8> {
    let conn = match connection {
        Connection::KeepAlive => "keep-alive",
        Connection::Close => "close",
    };
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: {conn}\r\n\r\n",
        reason(code),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Ganeti's reply pair: `[true, result]` or `[false, "message"]`.
pub fn reply_body(result: Result<&Value, &str>) -> Vec<u8> {
    let pair = match result {
        Ok(v) => serde_json::json!([true, v]),
        Err(m) => serde_json::json!([false, m]),
    };
    serde_json::to_vec(&pair).expect("serializing a JSON value cannot fail")
}

/// Reads a reply pair: `Ok(Ok(result))`, `Ok(Err(message))` for a
/// `[false, message]` pair, `Err` when the body is not a pair.
pub fn parse_reply_body(body: &[u8]) -> Result<Result<Value, String>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("reply body is not JSON: {e}"))?;
    match v {
        Value::Array(mut a) if a.len() == 2 => {
            let payload = a.pop().expect("length checked");
            match a.pop().expect("length checked") {
                Value::Bool(true) => Ok(Ok(payload)),
                Value::Bool(false) => Ok(Err(match payload {
                    Value::String(s) => s,
                    other => other.to_string(),
                })),
                other => Err(format!("reply status is {other}, not a boolean")),
            }
        }
        other => Err(format!(
            "reply body is not a [status, payload] pair: {}",
            truncate(&other.to_string(), 80)
        )),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Reads a head off `r`. Returns [`HttpError::Closed`] when the stream ends
/// before its first byte.
async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<u8>, HttpError> {
    let mut head = Vec::new();
    loop {
        let buf = r.fill_buf().await.map_err(|source| {
            if head.is_empty() && is_disconnect(&source) {
                HttpError::Closed
            } else {
                HttpError::Io {
                    doing: "reading a message head",
                    source,
                }
            }
        })?;
        if buf.is_empty() {
            return Err(if head.is_empty() {
                HttpError::Closed
            } else {
                HttpError::malformed("connection closed in the middle of a head")
            });
        }
        // The terminator may straddle the old data and the new chunk.
        let from = head.len().saturating_sub(3);
        let take = buf.len().min(MAX_HEAD_BYTES + 1 - head.len());
        head.extend_from_slice(&buf[..take]);
        if let Some(end) = head_end(&head[from..]).map(|e| e + from) {
            let consumed = take - (head.len() - end);
            r.consume(consumed);
            head.truncate(end);
            return Ok(head);
        }
        r.consume(take);
        if head.len() > MAX_HEAD_BYTES {
            return Err(HttpError::TooLarge {
                what: "header block",
                limit: MAX_HEAD_BYTES,
            });
        }
    }
}

/// Whether an I/O error just means the peer went away.
pub fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

async fn read_body<R: AsyncBufRead + Unpin>(r: &mut R, len: usize) -> Result<Vec<u8>, HttpError> {
    // Grow as bytes arrive rather than trusting the announced length.
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    let limit = u64::try_from(len).unwrap_or(u64::MAX);
    (&mut *r)
        .take(limit)
        .read_to_end(&mut body)
        .await
        .map_err(|source| HttpError::Io {
            doing: "reading a message body",
            source,
        })?;
    if body.len() != len {
        return Err(HttpError::malformed(format!(
            "connection closed after {} of {len} body bytes",
            body.len()
        )));
    }
    Ok(body)
}

/// Reads one request off `r`.
pub async fn read_request<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Request, HttpError> {
    let head = parse_request_head(&read_head(r).await?)?;
    let body = read_body(r, head.content_length).await?;
    Ok(Request { head, body })
}

/// Reads one response off `r`.
pub async fn read_response<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Response, HttpError> {
    let head = parse_response_head(&read_head(r).await?)?;
    let body = read_body(r, head.content_length).await?;
    Ok(Response { head, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::io::{BufReader, Cursor};

    fn read_req(bytes: &[u8]) -> Result<Request, HttpError> {
        smol::block_on(read_request(&mut BufReader::new(Cursor::new(
            bytes.to_vec(),
        ))))
    }

    #[test]
    fn request_round_trip() {
        let bytes = encode_request("node_info", "127.0.0.1:1811", br#"{"a":1}"#);
        let req = read_req(&bytes).unwrap();
        assert_eq!(req.head.method, "POST");
        assert_eq!(req.head.procedure, "node_info");
        assert_eq!(req.head.version.as_deref(), Some("1"));
        assert_eq!(req.head.connection, Connection::KeepAlive);
        assert_eq!(req.body, br#"{"a":1}"#);
    }

    #[test]
    fn two_requests_on_one_stream_in_small_chunks() {
        let mut bytes = encode_request("a", "h", b"{}");
        bytes.extend(encode_request("b", "h", b"[1]"));
        // A reader that hands out 1 byte at a time exercises the split
        // terminator path.
        let mut r = BufReader::with_capacity(1, Cursor::new(bytes));
        smol::block_on(async {
            assert_eq!(read_request(&mut r).await.unwrap().head.procedure, "a");
            let b = read_request(&mut r).await.unwrap();
            assert_eq!(
                (b.head.procedure.as_str(), b.body.as_slice()),
                ("b", &b"[1]"[..])
            );
            assert!(matches!(read_request(&mut r).await, Err(HttpError::Closed)));
        });
    }

    #[test]
    fn response_round_trip() {
        let body = reply_body(Ok(&serde_json::json!({"x": 1})));
        let bytes = encode_response(200, &body, Connection::Close);
        let resp = smol::block_on(read_response(&mut BufReader::new(Cursor::new(bytes)))).unwrap();
        assert_eq!(resp.head.code, 200);
        assert_eq!(resp.head.connection, Connection::Close);
        assert_eq!(
            parse_reply_body(&resp.body).unwrap(),
            Ok(serde_json::json!({"x": 1}))
        );
        assert_eq!(
            parse_reply_body(&reply_body(Err("boom"))).unwrap(),
            Err("boom".to_string())
        );
        assert!(parse_reply_body(b"{}").is_err());
        assert!(parse_reply_body(b"[1, 2]").is_err());
        assert!(parse_reply_body(b"nope").is_err());
    }

    #[test]
    fn request_heads_are_checked() {
        let bad: &[&[u8]] = &[
            b"POST node_info HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"POST /a/b HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"POST /a HTTP/2\r\nContent-Length: 0\r\n\r\n",
            b"POST /a HTTP/1.1\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /a HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST  /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"post /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"\xff\xfe /a HTTP/1.1\r\n\r\n",
        ];
        for b in bad {
            assert!(
                parse_request_head(b).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(b)
            );
        }
        let h = parse_request_head(
            b"POST /x HTTP/1.0\r\ncontent-length: 3\r\nganeti-rpc-version: 7\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.connection, Connection::Close);
        assert_eq!(h.version.as_deref(), Some("7"));
        let h = parse_request_head(
            b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.connection, Connection::Close);
        let e = parse_request_head(
            format!(
                "POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                MAX_BODY_BYTES + 1
            )
            .as_bytes(),
        )
        .unwrap_err();
        assert!(
            matches!(e, HttpError::TooLarge { what: "body", .. }),
            "{e:?}"
        );
    }

    #[test]
    fn huge_head_is_refused_without_reading_it_all() {
        let mut bytes = b"POST /a HTTP/1.1\r\n".to_vec();
        while bytes.len() < 10 * MAX_HEAD_BYTES {
            bytes.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        let e = read_req(&bytes).unwrap_err();
        assert!(
            matches!(
                e,
                HttpError::TooLarge {
                    what: "header block",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn truncated_messages_are_errors() {
        let full = encode_request("a", "h", b"{\"k\": 1}");
        assert!(matches!(read_req(&[]), Err(HttpError::Closed)));
        for cut in 1..full.len() {
            assert!(read_req(&full[..cut]).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn response_heads_are_checked() {
        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_response_head(b"HTTP/1.1 99 X\r\nContent-Length: 0\r\n\r\n").is_err());
        assert!(parse_response_head(b"HTTP/1.1 abc\r\nContent-Length: 0\r\n\r\n").is_err());
        assert!(parse_response_head(b"SPDY 200 OK\r\nContent-Length: 0\r\n\r\n").is_err());
        let h =
            parse_response_head(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!((h.code, h.content_length), (400, 5));
        assert_eq!(h.connection, Connection::KeepAlive);
    }

    /// Thousands of mutated requests and responses: errors are fine,
    /// panics are not.
    #[test]
    fn mutated_messages_never_panic() {
        let seeds = [
            encode_request("node_info", "127.0.0.1:1811", br#"{"checksum_paths":[]}"#),
            encode_response(
                200,
                &reply_body(Ok(&serde_json::json!([1, 2]))),
                Connection::KeepAlive,
            ),
        ];
        let tokens: &[&[u8]] = &[
            b"\r\n",
            b"\r\n\r\n",
            b":",
            b" ",
            b"\0",
            b"\xff",
            b"Content-Length: 99999999999999999999",
            b"Connection: close",
            b"/",
            b"HTTP/1.1",
            b"Transfer-Encoding: chunked",
        ];
        let mut state = 0x2545f4914f6cdd1du64;
        let mut rnd = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % (n.max(1) as u64)).expect("fits")
        };
        for i in 0..6000 {
            let mut m = seeds[i % 2].clone();
            for _ in 0..=rnd(4) {
                if m.is_empty() {
                    break;
                }
                match rnd(4) {
                    0 => {
                        let p = rnd(m.len());
                        m[p] = u8::try_from(rnd(256)).expect("fits");
                    }
                    1 => {
                        let p = rnd(m.len() + 1);
                        m.splice(p..p, tokens[rnd(tokens.len())].iter().copied());
                    }
                    2 => {
                        let p = rnd(m.len());
                        let q = (p + rnd(16)).min(m.len());
                        m.drain(p..q);
                    }
                    _ => m.truncate(rnd(m.len() + 1)),
                }
            }
            let _ = parse_request_head(&m);
            let _ = parse_response_head(&m);
            let _ = parse_reply_body(&m);
            let _ = head_end(&m);
            smol::block_on(async {
                let mut r = BufReader::with_capacity(1 + rnd(64), Cursor::new(m.clone()));
                let _ = read_request(&mut r).await;
                let mut r = BufReader::new(Cursor::new(m));
                let _ = read_response(&mut r).await;
            });
        }
    }
}
