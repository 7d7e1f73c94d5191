//! Where the platform may send requests on a tenant's say-so (customer webhook URLs, an
//! agent's `baseUrl`): the one URL policy the gateway and the runtime both apply.
//!
//! * Only `http`/`https`, with a host.
//! * Never loopback, private (RFC 1918, IPv6 unique-local), link-local (169.254.0.0/16 — cloud
//!   metadata — and fe80::/10), carrier-grade NAT, unspecified, multicast, broadcast,
//!   documentation or benchmarking addresses, nor IPv4 hidden in IPv6 (mapped, NAT64).
//! * Never names that only mean something inside a cluster or host: single-label names
//!   (`kubernetes`, `redis` — completed by the resolver's search domains), `localhost`,
//!   `*.local`, `*.internal`, `*.svc`, `*.cluster.local`.
//! * Checked twice: when the URL is saved ([`check_url`]) and when connecting, on the
//!   addresses the name resolves to then ([`PublicResolver`], with the `outbound-client`
//!   feature), so a name that later resolves to a private address (DNS rebinding) is refused
//!   too. Clients built by [`guarded_client`] follow no redirects and use no proxy.
//!
//! `SWITCHBOARD_OUTBOUND_ALLOW_PRIVATE=true` turns the address checks off (development with
//! local stand-ins, a standalone install calling a local model server); the scheme check stays.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// Not an absolute `http://` or `https://` URL with a host.
    #[error("expected an http(s) URL with a host")]
    NotHttp,
    /// The host is an address (or resolves only to addresses) the platform never calls.
    #[error("{0} is a loopback, private, link-local or otherwise internal address")]
    PrivateAddress(String),
    /// The host name only means something inside a cluster or host.
    #[error("{0} is an internal host name")]
    InternalName(String),
}

/// Whether the platform may connect to `ip` on a tenant's say-so.
pub fn ip_is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_is_public(v4),
        IpAddr::V6(v6) => v6_is_public(v6),
    }
}

fn v4_is_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        // 100.64.0.0/10 carrier-grade NAT (also many clusters' pod ranges)
        || (a == 100 && (64..=127).contains(&b))
        // 192.0.0.0/24 IETF protocol assignments
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15 benchmarking
        || (a == 198 && (18..=19).contains(&b)))
}

fn v6_is_public(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_is_public(v4);
    }
    let segments = ip.segments();
    // 64:ff9b::/96 NAT64 carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return v4_is_public(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local
        || (segments[0] & 0xfe00) == 0xfc00
        // fe80::/10 link-local, fec0::/10 site-local (deprecated)
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        // ::/96 IPv4-compatible (deprecated), 2001:db8::/32 documentation
        || segments[..6] == [0, 0, 0, 0, 0, 0]
        || (segments[0] == 0x2001 && segments[1] == 0x0db8))
}

/// Checks a URL's scheme and host (a name or an IP literal, IPv6 with or without brackets).
/// With `allow_private`, only the scheme and the presence of a host are checked.
pub fn check_target(scheme: &str, host: &str, allow_private: bool) -> Result<(), OutboundError> {
    if !matches!(scheme, "http" | "https") || host.is_empty() {
        return Err(OutboundError::NotHttp);
    }
    if allow_private {
        return Ok(());
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return if ip_is_public(ip) {
            Ok(())
        } else {
            Err(OutboundError::PrivateAddress(bare.to_owned()))
        };
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    let internal = !name.contains('.')
        || [
            "localhost",
            "local",
            "internal",
            "svc",
            "cluster.local",
            "home.arpa",
        ]
        .iter()
        .any(|suffix| name == *suffix || name.ends_with(&format!(".{suffix}")));
    if internal {
        return Err(OutboundError::InternalName(name));
    }
    Ok(())
}

/// Checks a whole URL (`scheme://[user@]host[:port]/…`) with [`check_target`]. The URL is
/// split here without a URL library; callers that already parsed it use `check_target`.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), OutboundError> {
    let (scheme, rest) = url.split_once("://").ok_or(OutboundError::NotHttp)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_once(']').map_or(host_port, |(h, _)| h)
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    check_target(&scheme.to_ascii_lowercase(), host, allow_private)
}

#[cfg(feature = "outbound-client")]
mod client {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use super::{OutboundError, ip_is_public};

    /// A resolver that hands reqwest only public addresses: a name resolving to nothing else
    /// is refused at connect time, whatever it resolved to when the URL was saved.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct PublicResolver;

    impl reqwest::dns::Resolve for PublicResolver {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            Box::pin(async move {
                let host = name.as_str().to_owned();
                let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
                let public: Vec<SocketAddr> =
                    resolved.filter(|addr| ip_is_public(addr.ip())).collect();
                if public.is_empty() {
                    let error: Box<dyn std::error::Error + Send + Sync> =
                        Box::new(OutboundError::PrivateAddress(host));
                    return Err(error);
                }
                let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
                Ok(addrs)
            })
        }
    }

    /// A client builder for requests to tenant-chosen URLs: no redirects, no proxy from the
    /// environment (a proxy would resolve names itself), and — unless `allow_private` — only
    /// public addresses at connect time. Callers still [`super::check_url`] each URL, since
    /// an IP literal is never resolved.
    pub fn guarded_client(allow_private: bool) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if allow_private {
            builder
        } else {
            builder.dns_resolver(Arc::new(PublicResolver))
        }
    }
}

#[cfg(feature = "outbound-client")]
pub use client::{PublicResolver, guarded_client};

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15 item 2: internal targets are refused, public ones pass.
    #[test]
    fn internal_targets_are_refused() {
        for url in [
            "http://127.0.0.1/hook",
            "http://localhost:8080/",
            "https://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/",
            "http://172.16.3.4/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]:8080/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://kubernetes/",
            "http://redis:6379/",
            "http://switchboard-gateway.switchboard.svc/",
            "http://api.default.svc.cluster.local/",
            "http://metadata.google.internal/",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
        }
        for url in ["ftp://example.com/", "example.com/hook", "http:///nohost"] {
            assert_eq!(check_url(url, true), Err(OutboundError::NotHttp), "{url}");
        }
        for url in [
            "https://hooks.example.com/switchboard",
            "http://93.184.216.34:8080/x",
            "https://[2606:4700::1111]/",
            "https://user:pw@api.openai.com/v1",
        ] {
            assert_eq!(check_url(url, false), Ok(()), "{url}");
        }
        assert_eq!(check_url("http://127.0.0.1:9/", true), Ok(()));
    }
}
