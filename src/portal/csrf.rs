//! Form posts of the helpdesk: the session's CSRF token (compared in constant time) and a same-origin
//! request (`Sec-Fetch-Site: same-origin`, or an `Origin` / `Referer` of this service's origin). A post
//! that proves neither is refused.

use actix_web::HttpRequest;
use subtle::ConstantTimeEq;
use url::Url;

use super::PortalError;
use crate::config::BaseUrl;

/// The hidden form field carrying the token.
pub const FIELD: &str = "csrf_token";

fn origin_of(raw: &str) -> Option<url::Origin> {
    Url::parse(raw).ok().map(|u| u.origin()).filter(url::Origin::is_tuple)
}

/// Does the request come from a page of this service?
pub fn same_origin(req: &HttpRequest, base: &BaseUrl) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(site) = header("Sec-Fetch-Site") {
        // Browsers that send Fetch Metadata tell us directly; anything but same-origin is refused.
        return site.eq_ignore_ascii_case("same-origin");
    }
    let Some(ours) = origin_of(base.as_str()) else { return false };
    if let Some(origin) = header("Origin") {
        return origin_of(origin).is_some_and(|o| o == ours);
    }
    if let Some(referer) = header("Referer") {
        return origin_of(referer).is_some_and(|o| o == ours);
    }
    false
}

/// Is `given` the session's token?
pub fn token_matches(expected: &str, given: Option<&str>) -> bool {
    match given {
        Some(g) if !expected.is_empty() => bool::from(expected.as_bytes().ct_eq(g.as_bytes())),
        _ => false,
    }
}

/// Both checks, for a parsed form.
pub fn check(req: &HttpRequest, base: &BaseUrl, expected: &str, form: &[(String, String)]) -> Result<(), PortalError> {
    if !same_origin(req, base) {
        return Err(PortalError::Forbidden(
            "This form was sent from another site, so it was not accepted. Go back to the helpdesk and try again.",
        ));
    }
    let given = form.iter().find(|(k, _)| k == FIELD).map(|(_, v)| v.as_str());
    if !token_matches(expected, given) {
        return Err(PortalError::Forbidden(
            "This form has expired (or was not sent by the helpdesk). Go back, reload the page and try again.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn base() -> BaseUrl {
        BaseUrl::parse("https://sso.example.com").unwrap()
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        let r = TestRequest::post().insert_header(("Sec-Fetch-Site", "same-origin")).to_http_request();
        assert!(same_origin(&r, &base()));
        let r = TestRequest::post()
            .insert_header(("Sec-Fetch-Site", "cross-site"))
            .insert_header(("Origin", "https://sso.example.com"))
            .to_http_request();
        assert!(!same_origin(&r, &base()));
        let r = TestRequest::post().insert_header(("Sec-Fetch-Site", "same-site")).to_http_request();
        assert!(!same_origin(&r, &base()));
    }

    #[test]
    fn origin_then_referer() {
        let ok = TestRequest::post().insert_header(("Origin", "https://sso.example.com")).to_http_request();
        assert!(same_origin(&ok, &base()));
        let other_port =
            TestRequest::post().insert_header(("Origin", "https://sso.example.com:8443")).to_http_request();
        assert!(!same_origin(&other_port, &base()));
        let evil = TestRequest::post().insert_header(("Origin", "https://sso.example.com.evil.test")).to_http_request();
        assert!(!same_origin(&evil, &base()));
        let null = TestRequest::post().insert_header(("Origin", "null")).to_http_request();
        assert!(!same_origin(&null, &base()));
        let referer =
            TestRequest::post().insert_header(("Referer", "https://sso.example.com/t/x/portal/1")).to_http_request();
        assert!(same_origin(&referer, &base()));
        let http = TestRequest::post().insert_header(("Referer", "http://sso.example.com/t/x")).to_http_request();
        assert!(!same_origin(&http, &base()));
        assert!(!same_origin(&TestRequest::post().to_http_request(), &base()));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", Some("abc")));
        assert!(!token_matches("abc", Some("abd")));
        assert!(!token_matches("abc", Some("ab")));
        assert!(!token_matches("abc", None));
        assert!(!token_matches("", Some("")));
    }
}
