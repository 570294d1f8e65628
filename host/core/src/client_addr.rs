//! Who the client is: the peer address of the connection, or, when that peer is one of the
//! configured trusted reverse proxies, the address it reports in `X-Forwarded-For`. Per-address
//! limits (login starts, connections) key on `ClientAddr::bucket`, which groups an IPv6 client's
//! /64 (one subscriber usually holds a whole /64).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// The TCP peer of a connection, put into every request's extensions by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// `10.0.0.1` or `10.0.0.0/8` (IPv4 or IPv6). An IPv4-mapped IPv6 range
/// (`::ffff:10.0.0.0/104`) becomes the IPv4 range, as peers are compared in IPv4.
pub fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    let net = text
        .parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))?;
    Some(match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    })
}

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Entries that do not parse are left out (configuration validation reports them).
    pub fn new(entries: &[String]) -> TrustedProxies {
        TrustedProxies(entries.iter().filter_map(|e| parse_network(e)).collect())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: `peer` itself unless it is trusted; then the rightmost
    /// address of `X-Forwarded-For` that is not a trusted proxy (addresses further left were
    /// written by the client and prove nothing). A header that does not parse counts as absent.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for entry in header.rsplit(',') {
            let Some(ip) = parse_forwarded_entry(entry) else {
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The key per-address limits count under: the IPv4 address, or the IPv6 /64.
pub fn bucket(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::new(&["10.0.0.0/8".into(), "192.168.1.1".into()]);
        // Untrusted peer: its header is ignored.
        assert_eq!(
            proxies.client(ip("203.0.113.9"), Some("1.1.1.1")),
            ip("203.0.113.9")
        );
        // Trusted peer: the rightmost untrusted entry, not the client-written leftmost one.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), Some("6.6.6.6, 198.51.100.7, 192.168.1.1")),
            ip("198.51.100.7")
        );
        assert_eq!(
            proxies.client(ip("::ffff:10.1.2.3"), Some("[2001:db8::1]:443")),
            ip("2001:db8::1")
        );
        // What the client wrote cannot hide what the proxy appended.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), Some("\u{fffd}\u{fffd}, 198.51.100.8")),
            ip("198.51.100.8")
        );
        // Garbage stops the walk at the last address that parsed.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), Some("nonsense, 10.9.9.9")),
            ip("10.9.9.9")
        );
        assert_eq!(proxies.client(ip("10.1.2.3"), None), ip("10.1.2.3"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(bucket(ip("::ffff:127.0.0.2")), ip("127.0.0.2"));
        assert!(parse_network("not an ip").is_none());
        assert!(parse_network("fd00::/8").is_some());
        let mapped = TrustedProxies::new(&["::ffff:10.0.0.0/104".into()]);
        assert!(mapped.contains(ip("10.9.8.7")));
        assert!(mapped.contains(ip("::ffff:10.9.8.7")));
        assert!(!mapped.contains(ip("11.0.0.1")));
    }
}
