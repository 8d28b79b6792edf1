//! Patterns such as `https://*.atlassian.net` or `http://127.0.0.1:*` that a Jira site's URL must match.

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPattern {
    scheme: String,
    /// Lower-case host; a leading `*.` matches one or more labels.
    host: String,
    /// `None` = the scheme's default port; `Some(None)` = any port.
    port: Option<Option<u16>>,
}

impl UrlPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || format!("`{raw}` is not a URL pattern like https://*.atlassian.net or http://127.0.0.1:*");
        let (scheme, rest) = raw.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(bad());
        }
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.is_empty() {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, "*")) => (h, Some(None)),
            Some((h, p)) => (h, Some(Some(p.parse::<u16>().map_err(|_| bad())?))),
            None => (rest, None),
        };
        let host = host.to_ascii_lowercase();
        let bare = host.strip_prefix("*.").unwrap_or(&host);
        if bare.is_empty() || bare.contains('*') {
            return Err(bad());
        }
        Ok(UrlPattern { scheme, host, port })
    }

    pub fn matches(&self, url: &Url) -> bool {
        if url.scheme() != self.scheme {
            return false;
        }
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else { return false };
        let host_ok = match self.host.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => host == self.host,
        };
        let port_ok = match self.port {
            Some(None) => true,
            Some(Some(p)) => url.port_or_known_default() == Some(p),
            None => url.port().is_none(),
        };
        host_ok && port_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, u: &str) -> bool {
        UrlPattern::parse(p).unwrap().matches(&Url::parse(u).unwrap())
    }

    #[test]
    fn wildcard_subdomains() {
        assert!(m("https://*.atlassian.net", "https://acme.atlassian.net"));
        assert!(m("https://*.atlassian.net", "https://ACME.atlassian.net/wiki"));
        assert!(!m("https://*.atlassian.net", "https://atlassian.net"));
        assert!(!m("https://*.atlassian.net", "https://acme.atlassian.net.evil.com"));
        assert!(!m("https://*.atlassian.net", "https://evilatlassian.net"));
        assert!(!m("https://*.atlassian.net", "http://acme.atlassian.net"));
        assert!(!m("https://*.atlassian.net", "https://acme.atlassian.net:8443"));
    }

    #[test]
    fn ports() {
        assert!(m("http://127.0.0.1:*", "http://127.0.0.1:4321"));
        assert!(!m("http://127.0.0.1:*", "http://127.0.0.2:4321"));
        assert!(m("http://localhost:8080", "http://localhost:8080"));
        assert!(!m("http://localhost:8080", "http://localhost:8081"));
    }

    #[test]
    fn refuses_nonsense() {
        for p in ["atlassian.net", "ftp://x", "https://", "https://a/b", "https://a.*.b", "https://x:99999"] {
            assert!(UrlPattern::parse(p).is_err(), "{p}");
        }
    }
}
