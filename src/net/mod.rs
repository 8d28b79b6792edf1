//! Outgoing HTTP. Calls to addresses that tenants choose (Jira sites, IdP metadata URLs) go through a
//! client that refuses loopback, private and link-local targets, at DNS resolution time and for
//! literal IPs, unless `JSM_SSO_ALLOW_PRIVATE_URLS` is set (tests).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("`{0}` is not an http(s) URL")]
    Scheme(String),
    #[error("{0} is a private, loopback or link-local address; outgoing calls to it are refused")]
    Private(String),
}

/// Is this an address on the public internet?
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || ip.to_ipv4().is_some_and(|v4| !is_public_v4(v4)))
}

/// Checks a URL's scheme and, when its host is a literal IP, the address (DNS names are checked by the
/// resolver of [`guarded_client`]).
pub fn check_target(url: &Url, allow_private: bool) -> Result<(), TargetError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme(url.to_string()));
    }
    if allow_private {
        return Ok(());
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => {
            return Err(TargetError::Private(d.to_string()));
        }
        _ => None,
    };
    match ip {
        Some(ip) if !is_public(ip) => Err(TargetError::Private(ip.to_string())),
        _ => Ok(()),
    }
}

/// Resolves names and drops every non-public address; fails when none is left.
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(TargetError::Private(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// A client for tenant-chosen URLs: no redirects, the given timeout, and (unless `allow_private`) only
/// public addresses.
pub fn guarded_client(allow_private: bool, timeout: Duration) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("jsm-sso/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
    }
    builder.build().expect("a TLS backend is compiled in")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["104.192.141.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_targets_are_checked() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(check_target(&u("http://127.0.0.1:8080/x"), false).is_err());
        assert!(check_target(&u("http://[::1]/x"), false).is_err());
        assert!(check_target(&u("http://localhost/x"), false).is_err());
        assert!(check_target(&u("http://169.254.169.254/latest"), false).is_err());
        assert!(check_target(&u("file:///etc/passwd"), true).is_err());
        assert!(check_target(&u("https://acme.atlassian.net"), false).is_ok());
        assert!(check_target(&u("http://127.0.0.1:8080/x"), true).is_ok());
    }

    #[tokio::test]
    async fn resolver_refuses_names_that_point_inside() {
        let client = guarded_client(false, Duration::from_secs(2));
        let err = client.get("http://localhost:9/").send().await.unwrap_err();
        assert!(format!("{err:?}").contains("Private(\"localhost\")"), "{err:?}");
    }
}
