//! Enveloped XML signatures on messages we send over HTTP-POST or SOAP (AuthnRequest, LogoutRequest,
//! LogoutResponse): RSA-SHA256, exclusive c14n, placed right after the root's `Issuer` as the schema
//! requires. libxmlsec1 (through samael) computes the digest and signature.

use samael::crypto::{CryptoProvider, XmlSec};

use super::sp_keys::SpKey;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the message has no Issuer element to place the signature after")]
    NoIssuer,
    #[error("cannot export the SP key: {0}")]
    Key(#[from] openssl::error::ErrorStack),
    #[error("libxmlsec1 could not sign the message: {0}")]
    Sign(String),
}

fn template(id: &str, cert_b64: &str) -> String {
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##
    )
}

/// Signs the root element of `xml` (whose `ID` is `id`). The document must contain no other
/// signature and its root's first child must be `saml:Issuer`.
pub fn sign_root(xml: &str, id: &str, key: &SpKey) -> Result<String, SignError> {
    let close = "</saml:Issuer>";
    let at = xml.find(close).ok_or(SignError::NoIssuer)? + close.len();
    let mut with_template = String::with_capacity(xml.len() + 1500);
    with_template.push_str(&xml[..at]);
    with_template.push_str(&template(id, &key.certificate_base64()));
    with_template.push_str(&xml[at..]);
    let der = key.private_key.private_key_to_der()?;
    XmlSec::sign_xml(with_template.as_bytes(), &der).map_err(|e| SignError::Sign(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::authn_request::AuthnRequest;
    use crate::saml::sp_keys::{KeyState, generate};
    use chrono::Utc;

    #[test]
    fn signed_authn_request_verifies_with_the_sp_certificate() {
        let g = generate("sp.example.com", Utc::now()).unwrap();
        let key = SpKey::open(
            "k".into(),
            KeyState::Current,
            &g.private_key_pem,
            g.certificate_pem.clone(),
            g.fingerprint_sha256,
            g.not_after,
        )
        .unwrap();
        let xml = AuthnRequest {
            id: "_abc",
            issue_instant: Utc::now(),
            destination: "https://idp.example.com/sso",
            acs_url: "https://sp.example.com/acs",
            issuer: "https://sp.example.com/md",
            force_authn: false,
            name_id_format: None,
        }
        .to_xml();
        let signed = sign_root(&xml, "_abc", &key).unwrap();
        assert!(signed.contains("<ds:SignatureValue>") && !signed.contains("<ds:SignatureValue></ds:SignatureValue>"));
        // The Signature is the second child of the root, after Issuer.
        let doc = roxmltree::Document::parse(&signed).unwrap();
        let children: Vec<_> =
            doc.root_element().children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
        assert_eq!(&children[..2], &["Issuer", "Signature"]);
        // And it verifies (libxmlsec1) with the certificate, but not after tampering.
        let cert = openssl::x509::X509::from_pem(g.certificate_pem.as_bytes()).unwrap().to_der().unwrap();
        let cert = samael::crypto::CertificateDer::from(cert);
        assert!(XmlSec::verify_signed_xml(signed.as_bytes(), &cert, Some("ID")).is_ok());
        let tampered = signed.replace("https://sp.example.com/acs", "https://evil.example.com/acs");
        assert!(XmlSec::verify_signed_xml(tampered.as_bytes(), &cert, Some("ID")).is_err());
    }
}
