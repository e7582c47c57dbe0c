//! The client's address: the TCP peer, or, when the peer is a trusted reverse proxy
//! (`TRUSTED_PROXIES`), the nearest address in `X-Forwarded-For` that is not one. Rate limits
//! key on it, so behind a proxy users do not share one bucket, and a client cannot pick its
//! own address by sending the header directly.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{request::Parts, HeaderMap},
};
use ipnet::IpNet;

pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer?;
    if !is_trusted(&peer) {
        return Some(peer);
    }
    // Right to left: each trusted proxy appended the address it received from.
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
}

/// The client address of a request (see `resolve`).
pub struct ClientIp(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    std::sync::Arc<super::config::Config>: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let config = std::sync::Arc::<super::config::Config>::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(resolve(peer, &parts.headers, &config.trusted_proxies)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9, 10.0.0.7".parse().unwrap(),
        );
        // Behind the proxy: the nearest untrusted hop (the client cannot forge the rest).
        assert_eq!(
            resolve(Some(proxy), &headers, &trusted),
            "203.0.113.9".parse().ok()
        );
        // Straight from the internet: the header is ignored.
        let direct: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(resolve(Some(direct), &headers, &trusted), Some(direct));
        // No proxies configured: the peer.
        assert_eq!(resolve(Some(proxy), &headers, &[]), Some(proxy));
    }
}
