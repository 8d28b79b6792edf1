//! The query string hash (`qsh`) of Atlassian Connect JWTs, by the Java reference rules
//! (`HttpRequestCanonicalizer`): sort parameters by their *percent-encoded* names, which is where the
//! official Node library differs.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// RFC 3986 unreserved characters stay; everything else is `%XX` (upper-case hex).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

/// `METHOD&canonical-path&canonical-query`.
///
/// `path` is the request path, `query` the raw query string (without `?`), and `context_path` the path
/// prefix to strip (the app's base URL path for incoming calls, the site's context path for calls to
/// Jira).
pub fn canonical_request(method: &str, path: &str, query: &str, context_path: &str) -> String {
    format!("{}&{}&{}", method.to_ascii_uppercase(), canonical_path(path, context_path), canonical_query(query))
}

pub fn qsh(method: &str, path: &str, query: &str, context_path: &str) -> String {
    hex::encode(Sha256::digest(canonical_request(method, path, query, context_path).as_bytes()))
}

fn canonical_path(path: &str, context_path: &str) -> String {
    let context = context_path.trim_end_matches('/');
    let mut p = path;
    if !context.is_empty()
        && let Some(rest) = p.strip_prefix(context)
        && (rest.is_empty() || rest.starts_with('/'))
    {
        p = rest;
    }
    let mut p = p.replace('&', "%26");
    if !p.starts_with('/') {
        p.insert(0, '/');
    }
    if p.len() > 1 && p.ends_with('/') {
        p.pop();
    }
    p
}

fn canonical_query(query: &str) -> String {
    // Decode (form rules: `+` is a space), drop `jwt`, group repeated names.
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name == "jwt" {
            continue;
        }
        let (name, value) = (enc(&name), enc(&value));
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    for (_, values) in &mut grouped {
        values.sort();
    }
    grouped.sort();
    grouped.iter().map(|(n, vs)| format!("{n}={}", vs.join(","))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from shared/docs/connect.md §3.3 (Java rules).
    fn check(method: &str, url: &str, canonical: &str, hash: &str) {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        assert_eq!(canonical_request(method, path, query, ""), canonical, "{url}");
        assert_eq!(qsh(method, path, query, ""), hash, "{url}");
    }

    #[test]
    fn documented_vectors() {
        check(
            "GET",
            "/rest/api/2/project?b=2&a=1&jwt=abc",
            "GET&/rest/api/2/project&a=1&b=2",
            "680394e82add66397ba19d6f1928035def40f6086da46489f69882993b0d4691",
        );
        check(
            "GET",
            "/path/to/service?zee_last=param&repeated=parameter%201&first=param&repeated=parameter%202",
            "GET&/path/to/service&first=param&repeated=parameter%201,parameter%202&zee_last=param",
            "e52bb281606c3bd9ca16cfe96fe2df78f5d9ffa126f06befd750dfa10fa1a897",
        );
        check(
            "GET",
            "/rest/servicedeskapi/servicedesk?start=0&limit=50",
            "GET&/rest/servicedeskapi/servicedesk&limit=50&start=0",
            "15e3d18d96874048ed1b26a344e57babefab038ff07d2501551e66c3d878ff07",
        );
        check(
            "GET",
            "/rest/api/3/user/search?query=a%20b%40x.com",
            "GET&/rest/api/3/user/search&query=a%20b%40x.com",
            "b08b0e387f9f299788c6e799349dbf999dbf6f7d193e8d81713f10ac60b92860",
        );
        check(
            "GET",
            "/x?k=%C3%A9t%C3%A9&k2=%2A%7E",
            "GET&/x&k=%C3%A9t%C3%A9&k2=%2A~",
            "62bd8e91682b80a30e8eb98bb36e1d77391226f0d498eab946f1aca5085ddf29",
        );
        check(
            "POST",
            "/installed",
            "POST&/installed&",
            "4a2e1de8ca74e6cafe8862d332fa3ac7a8e51e692bc6d798ea4dfedc14948bf4",
        );
        check("GET", "/", "GET&/&", "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239");
        check(
            "GET",
            "/path/with&amp/?x=1&x=0&y=a+b",
            "GET&/path/with%26amp&x=0,1&y=a%20b",
            "870a9cec33f1b35576d06208031b8166bb9f6d4a6906c63f35572a8318b882d4",
        );
        // Java sorts by the encoded name: `%3A` (0x25) sorts before `.` (0x2E).
        check(
            "GET",
            "/x?a.=1&a%3A=2",
            "GET&/x&a%3A=2&a.=1",
            "f077dd6708fbd25fb125963267e8c7ef471090a1c5f97227194af727a7dd040b",
        );
    }

    #[test]
    fn java_unit_test_shapes() {
        assert_eq!(canonical_request("get", "/some/path", "foo=bah%20bah", ""), "GET&/some/path&foo=bah%20bah");
        assert_eq!(canonical_request("GET", "/some/path", "foo=bah%2Bbah", ""), "GET&/some/path&foo=bah%2Bbah");
        assert_eq!(canonical_request("GET", "/some/path&a=b", "x=y", ""), "GET&/some/path%26a=b&x=y");
        assert_eq!(canonical_request("POST", "/simple", "foo=humbug&foo=bah", ""), "POST&/simple&foo=bah,humbug");
    }

    #[test]
    fn upper_case_sorts_before_lower_case() {
        assert_eq!(canonical_request("GET", "/p", "v=a&v=A&v=b&v=B", ""), "GET&/p&v=A,B,a,b");
    }

    #[test]
    fn context_path_is_stripped_only_at_a_segment_boundary() {
        assert_eq!(canonical_request("GET", "/sso/admin/page", "", "/sso"), "GET&/admin/page&");
        assert_eq!(canonical_request("GET", "/sso", "", "/sso/"), "GET&/&");
        assert_eq!(canonical_request("GET", "/ssofoo/x", "", "/sso"), "GET&/ssofoo/x&");
        assert_eq!(canonical_request("GET", "/wiki/rest/api/content", "", "/wiki"), "GET&/rest/api/content&");
    }

    #[test]
    fn empty_values_and_bare_names() {
        assert_eq!(canonical_request("GET", "/p", "a=&b", ""), "GET&/p&a=&b=");
    }
}
