//! The AuthnRequest we send (our own XML; samael's ID has only 32 random bits).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::crypto::random;

/// `_` + 40 hex digits: 160 random bits (SAML core §1.3.4 asks for at least 128).
pub fn new_request_id() -> String {
    format!("_{}", hex::encode(random::bytes::<20>()))
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

pub struct AuthnRequest<'a> {
    pub id: &'a str,
    pub issue_instant: DateTime<Utc>,
    pub destination: &'a str,
    pub acs_url: &'a str,
    pub issuer: &'a str,
    pub force_authn: bool,
    pub name_id_format: Option<&'a str>,
}

impl AuthnRequest<'_> {
    pub fn to_xml(&self) -> String {
        let force = if self.force_authn { r#" ForceAuthn="true""# } else { "" };
        let policy = match self.name_id_format {
            Some(f) => format!(r#"<samlp:NameIDPolicy Format="{}" AllowCreate="true"/>"#, xml_escape(f)),
            None => r#"<samlp:NameIDPolicy AllowCreate="true"/>"#.to_string(),
        };
        format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{}" Version="2.0" IssueInstant="{}" Destination="{}" AssertionConsumerServiceURL="{}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"{force}><saml:Issuer>{}</saml:Issuer>{policy}</samlp:AuthnRequest>"#,
            xml_escape(self.id),
            self.issue_instant.to_rfc3339_opts(SecondsFormat::Secs, true),
            xml_escape(self.destination),
            xml_escape(self.acs_url),
            xml_escape(self.issuer),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_160_random_bits_and_start_with_a_letter_or_underscore() {
        let a = new_request_id();
        assert_eq!(a.len(), 41);
        assert!(a.starts_with('_'));
        assert_ne!(a, new_request_id());
    }

    #[test]
    fn xml_is_well_formed_and_escaped() {
        let xml = AuthnRequest {
            id: "_1",
            issue_instant: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            destination: "https://idp.example.com/sso?a=1&b=2",
            acs_url: "https://sp.example.com/t/x/saml/acs",
            issuer: "https://sp.example.com/t/x/saml/metadata",
            force_authn: true,
            name_id_format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"),
        }
        .to_xml();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("Destination"), Some("https://idp.example.com/sso?a=1&b=2"));
        assert_eq!(root.attribute("ForceAuthn"), Some("true"));
        assert_eq!(root.attribute("IssueInstant"), Some("2023-11-14T22:13:20Z"));
    }
}
