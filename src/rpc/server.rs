//! The noded side of RPC: accept, TLS, HTTP, dispatch. (Contract stub.)

use super::Service;
use std::sync::Arc;

/// Where the server gets its TLS configuration for each new connection, so
/// a node can switch from join mode to the cluster certificate in place.
pub type TlsSource = Arc<dyn Fn() -> Arc<rustls::ServerConfig> + Send + Sync>;

/// Serves `service` on `listener` until the returned future is dropped.
/// Connections without an acceptable client certificate are refused and
/// logged; malformed requests get an error reply.
pub async fn serve(
    listener: smol::net::TcpListener,
    tls: TlsSource,
    service: Arc<dyn Service>,
) -> std::io::Result<()> {
    let _ = (listener, tls, service);
    Err(std::io::Error::other("rpc::server not built yet"))
}
