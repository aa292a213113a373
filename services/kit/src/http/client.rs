//! The client's address as a service should believe it: the TCP peer, or — only when the peer
//! is a trusted proxy (the local router, the ingress controller) — the nearest address in
//! `X-Forwarded-For` that is not itself a trusted proxy. A client cannot forge its way past
//! a limit keyed by address by sending the header itself.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

/// The client address of a request (see the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Pure: who the client is, given the TCP peer, the `X-Forwarded-For` header and the proxies
/// trusted to set it.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(chain) = forwarded_for else {
        return peer;
    };
    // Right to left: the rightmost entry was added by the proxy nearest to us.
    let hops: Vec<IpAddr> = chain
        .split(',')
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|h| !trusted.contains(h))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// Middleware: computes [`ClientAddr`] once per request from the connection's peer (set by
/// the kit's server) and the header.
pub async fn resolve(
    trusted: std::sync::Arc<Vec<IpAddr>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ip = client_ip(peer, forwarded.as_deref(), &trusted);
    req.extensions_mut().insert(ClientAddr(ip));
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or(ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let trusted = [ip("127.0.0.1"), ip("10.0.0.5")];
        // Straight from a client: its own address, whatever it claims.
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // Through the router: the address it saw.
        assert_eq!(
            client_ip(ip("127.0.0.1"), Some("198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        // A forged entry on the left does not win over what the trusted proxies appended.
        assert_eq!(
            client_ip(
                ip("127.0.0.1"),
                Some("1.2.3.4, 198.51.100.7, 10.0.0.5"),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // A trusted proxy without the header, or with garbage: the proxy itself.
        assert_eq!(client_ip(ip("127.0.0.1"), None, &trusted), ip("127.0.0.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), Some("nonsense"), &trusted),
            ip("127.0.0.1")
        );
    }
}
