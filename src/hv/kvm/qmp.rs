//! QMP client: QEMU's JSON monitor protocol over the instance's unix socket.

/// A failed QMP exchange.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// Connecting, reading or writing the socket failed.
    #[error("QMP socket {path}: {what}")]
    Io {
        /// The socket.
        path: std::path::PathBuf,
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
