//! Who is on the other end: the client's IP address, as the login throttle and the
//! WebSocket caps count it.
//!
//! By default that is the TCP peer, and `X-Forwarded-For` is ignored: anyone can send the
//! header, so believing it would let an attacker pick a fresh address for every guess. With
//! `TRUSTED_PROXIES` (the load balancers' addresses or networks), a request arriving from
//! one of them is attributed to the address the proxies recorded: the right-most entry of
//! `X-Forwarded-For` that is not itself a trusted proxy. Entries further left were written
//! by the client and prove nothing.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::auth::ClientAddress;

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`); empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        TrustedProxies(networks)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client behind `peer`, per the rules in the module documentation.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Every X-Forwarded-For header, in order, is one list (RFC 7230 section 3.2.2).
        let hops: Vec<&str> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(address) if self.trusts(address) => client = address,
                Some(address) => return address,
                // A garbled entry: whoever wrote it is not to be believed past this point.
                None => return client,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`1.2.3.4:5678`,
/// `[::1]:5678`), as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

/// `TRUSTED_PROXIES` entries: a network (`10.0.0.0/8`) or one address (`10.1.2.3`).
pub fn parse_trusted_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is neither an IP address nor a network like 10.0.0.0/8"))
}

/// Middleware: works out the [`ClientAddress`] of each request once.
pub async fn resolve(State(trusted): State<TrustedProxies>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
    // Without connection info (a router served without it) every request is one client:
    // limits then err on the side of refusing.
    let peer = peer.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let client = trusted.client_of(peer, request.headers());
    request.extensions_mut().insert(ClientAddress(client));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn trusting(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|n| parse_trusted_proxy(n).unwrap()).collect())
    }

    #[test]
    fn by_default_the_header_is_ignored() {
        let headers = forwarded(&["203.0.113.7"]);
        assert_eq!(TrustedProxies::default().client_of(ip("198.51.100.1"), &headers), ip("198.51.100.1"));
    }

    #[test]
    fn a_request_from_an_untrusted_peer_is_the_peer_whatever_it_claims() {
        let headers = forwarded(&["203.0.113.7"]);
        assert_eq!(trusting(&["10.0.0.0/8"]).client_of(ip("198.51.100.1"), &headers), ip("198.51.100.1"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let proxies = trusting(&["10.0.0.0/8", "192.0.2.1"]);
        // The client forged the first entry; our two proxies appended the rest.
        let headers = forwarded(&["6.6.6.6, 203.0.113.7", "192.0.2.1"]);
        assert_eq!(proxies.client_of(ip("10.1.1.1"), &headers), ip("203.0.113.7"));
    }

    #[test]
    fn hops_with_ports_are_understood_and_garbage_stops_the_walk() {
        let proxies = trusting(&["10.0.0.0/8"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &forwarded(&["203.0.113.7:4711"])), ip("203.0.113.7"));
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &forwarded(&["[2001:db8::1]:80"])), ip("2001:db8::1"));
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &forwarded(&["6.6.6.6, nonsense, 10.0.0.2"])), ip("10.0.0.2"));
    }

    #[test]
    fn with_no_header_or_only_proxies_the_nearest_proxy_is_the_client() {
        let proxies = trusting(&["10.0.0.0/8"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &forwarded(&["10.9.9.9"])), ip("10.9.9.9"));
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(ClientAddress(ip("2001:db8:1:2:aaaa::1")).group(), ip("2001:db8:1:2::"));
        assert_eq!(ClientAddress(ip("::ffff:198.51.100.1")).group(), ip("198.51.100.1"));
        assert_eq!(ClientAddress(ip("198.51.100.1")).group(), ip("198.51.100.1"));
    }

    #[test]
    fn trusted_proxies_parse_networks_and_single_addresses() {
        assert_eq!(parse_trusted_proxy("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_trusted_proxy(" 10.1.2.3 ").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(parse_trusted_proxy("::1").unwrap().to_string(), "::1/128");
        assert!(parse_trusted_proxy("proxy.local").is_err());
    }
}
