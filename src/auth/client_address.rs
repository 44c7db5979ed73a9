//! The address a request came from, as far as limits are concerned.

use std::net::{IpAddr, Ipv6Addr};

/// The client's address, as the HTTP layer works it out (`TRUSTED_PROXIES` decides
/// whether `X-Forwarded-For` counts): what the login throttle and the socket caps count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The unit a limit counts: an IPv4 address, or the /64 network of an IPv6 one (a
    /// single host is routinely given a whole /64, so counting its addresses one by one
    /// would count nothing). IPv4-mapped IPv6 addresses count as their IPv4 address.
    pub fn group(self) -> IpAddr {
        match self.0 {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let [a, b, c, d, ..] = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }
    }
}
