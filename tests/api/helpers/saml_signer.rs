#![allow(dead_code)]
//! Test helper: real XML-DSig signatures for SAML fixtures (future `tests/api/saml_signer.rs`).
//!
//! * [`make_test_key`]: RSA-2048 key + self-signed X.509 certificate, made with openssl at
//!   test time (nothing secret is checked in).
//! * [`build_response`]: a WSO2-IS-shaped `saml2p:Response` (compact, `saml2p`/`saml2`
//!   prefixes, OpenSAML-style namespace declarations, millisecond timestamps).
//! * [`sign_element`]: inserts an enveloped `ds:Signature` template at the schema position
//!   (right after the element's `Issuer`) and signs it **in-process with libxmlsec1** through
//!   samael's `XmlSec::sign_xml` (`samael::crypto::CryptoProvider`).
//! * [`idp_metadata_xml`]: IdP metadata carrying the test certificates as
//!   `KeyDescriptor use="signing"`, for `ServiceProvider::idp_metadata`.
//!
//! All functions panic on misuse: this is test code.
//!
//! Signing order: sign inner elements first. To sign both, sign the Assertion, then the
//! Response (the Response digest then covers the Assertion's signature, as real IdPs do).
//!
//! How `sign_element` copes with samael's signer: `XmlSec::sign_xml` signs the *first*
//! `ds:Signature` in document order (`find_signode` → `xmlSecFindNode` from the root, samael
//! `src/crypto/xmlsec/wrapper/xmldsig.rs`). Our template is the first Signature inside the
//! target element; any Signature elements *before* it in document order (a signed sibling
//! Assertion, or a Response signature when signing an Assertion afterwards) lie outside the
//! target element, so they are swapped for placeholder comments during signing and restored
//! byte for byte afterwards. The result is always checked: the template we inserted must come
//! back with a non-empty `SignatureValue`.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};
use samael::crypto::CryptoProvider;

pub const NS_SAML2P: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_SAML2: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
pub const WSO2_CLAIM_EMAIL: &str = "http://wso2.org/claims/emailaddress";
pub const WSO2_CLAIM_GIVENNAME: &str = "http://wso2.org/claims/givenname";
pub const WSO2_CLAIM_LASTNAME: &str = "http://wso2.org/claims/lastname";

const ALG_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ALG_ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// A throw-away RSA-2048 key pair with a self-signed certificate.
#[derive(Clone, Debug)]
pub struct TestKey {
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_pem: String,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
}

impl TestKey {
    pub fn private_key(&self) -> PKey<Private> {
        PKey::private_key_from_pem(self.private_pem.as_bytes()).expect("TestKey private_pem")
    }

    pub fn public_key(&self) -> PKey<Public> {
        X509::from_der(&self.cert_der).and_then(|c| c.public_key()).expect("TestKey cert_der")
    }

    /// Certificate as one base64 line (what goes into `ds:X509Certificate`).
    pub fn cert_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.cert_der)
    }
}

/// Generates an RSA-2048 key and a self-signed SHA-256 certificate `CN=<cn>, O=jsm-sso tests`
/// valid from yesterday for ten years.
pub fn make_test_key(cn: &str) -> TestKey {
    let key = PKey::from_rsa(Rsa::generate(2048).expect("RSA keygen")).expect("PKey");
    let mut name = X509NameBuilder::new().expect("name builder");
    name.append_entry_by_text("O", "jsm-sso tests").expect("O");
    name.append_entry_by_text("CN", cn).expect("CN");
    let name = name.build();

    let mut serial = BigNum::new().expect("bn");
    serial.rand(127, MsbOption::MAYBE_ZERO, false).expect("rand");
    let serial = serial.to_asn1_integer().expect("serial");

    let now = Utc::now().timestamp();
    let mut builder = X509::builder().expect("x509 builder");
    builder.set_version(2).expect("v3");
    builder.set_serial_number(&serial).expect("serial");
    builder.set_subject_name(&name).expect("subject");
    builder.set_issuer_name(&name).expect("issuer");
    builder.set_pubkey(&key).expect("pubkey");
    builder.set_not_before(&Asn1Time::from_unix(now - 86_400).expect("nb")).expect("not_before");
    builder.set_not_after(&Asn1Time::days_from_now(3650).expect("na")).expect("not_after");
    builder.sign(&key, MessageDigest::sha256()).expect("sign cert");
    let cert = builder.build();

    TestKey {
        private_pem: String::from_utf8(key.private_key_to_pem_pkcs8().expect("pkcs8")).expect("utf8"),
        cert_pem: String::from_utf8(cert.to_pem().expect("pem")).expect("utf8"),
        cert_der: cert.to_der().expect("der"),
    }
}

/// XML-DSig algorithm pair used for `SignatureMethod` and `DigestMethod`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigAlg {
    /// rsa-sha256 + sha256.
    RsaSha256,
    /// rsa-sha1 + sha1 (WSO2 IS 5.x default).
    RsaSha1,
}

impl SigAlg {
    pub fn signature_uri(self) -> &'static str {
        match self {
            SigAlg::RsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            SigAlg::RsaSha1 => "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        }
    }

    pub fn digest_uri(self) -> &'static str {
        match self {
            SigAlg::RsaSha256 => "http://www.w3.org/2001/04/xmlenc#sha256",
            SigAlg::RsaSha1 => "http://www.w3.org/2000/09/xmldsig#sha1",
        }
    }
}

/// Extra knobs for [`sign_element_with`].
#[derive(Clone, Debug)]
pub struct SignOptions {
    pub alg: SigAlg,
    /// `PrefixList` of an `ec:InclusiveNamespaces` child of the exc-c14n Reference transform,
    /// as OpenSAML (WSO2) emits for assertions using `xsi:type="xs:string"`: e.g. `Some("xs")`.
    pub inclusive_namespaces: Option<String>,
}

/// Signs the element whose `ID` attribute is `element_id` with an enveloped signature placed
/// right after its `Issuer` child (or as its first child if it has no leading `Issuer`).
pub fn sign_element(xml: &str, element_id: &str, key: &TestKey, alg: SigAlg) -> String {
    sign_element_with(xml, element_id, key, &SignOptions { alg, inclusive_namespaces: None })
}

/// [`sign_element`] with [`SignOptions`].
pub fn sign_element_with(xml: &str, element_id: &str, key: &TestKey, opts: &SignOptions) -> String {
    let target = find_element_by_id(xml, element_id);
    let insert_at = signature_position(xml, &target);

    let template = signature_template(element_id, key, opts);
    let mut doc = String::with_capacity(xml.len() + template.len());
    doc.push_str(&xml[..insert_at]);
    doc.push_str(&template);
    doc.push_str(&xml[insert_at..]);

    // Hide Signature elements that precede ours in document order (see module docs).
    let (masked, saved) = mask_signatures_before(&doc, insert_at);

    let private_der = key.private_key().private_key_to_der().expect("private key DER");
    let signed = <samael::crypto::XmlSec as CryptoProvider>::sign_xml(masked.as_str(), &private_der)
        .unwrap_or_else(|e| panic!("libxmlsec1 signing of #{element_id} failed: {e:?}"));

    let mut out = signed;
    for (i, original) in saved.iter().enumerate() {
        let placeholder = mask_placeholder(i);
        assert_eq!(out.matches(&placeholder).count(), 1, "placeholder {placeholder} lost during signing");
        out = out.replacen(&placeholder, original, 1);
    }

    // The signature we inserted must now be the one right after the Issuer, and filled in.
    let target = find_element_by_id(&out, element_id);
    let sig_start = signature_position(&out, &target);
    let sig_end = out[sig_start..]
        .find("</ds:Signature>")
        .map(|i| sig_start + i)
        .unwrap_or_else(|| panic!("no ds:Signature after the Issuer of #{element_id}"));
    let sig = &out[sig_start..sig_end];
    assert!(
        sig.starts_with("<ds:Signature") && sig.contains(&format!("URI=\"#{element_id}\"")),
        "unexpected signature placement for #{element_id}"
    );
    let value = between(sig, "<ds:SignatureValue>", "</ds:SignatureValue>");
    let digest = between(sig, "<ds:DigestValue>", "</ds:DigestValue>");
    assert!(
        !value.trim().is_empty() && !digest.trim().is_empty(),
        "libxmlsec1 did not fill in the signature of #{element_id}"
    );
    out
}

/// Parameters of [`build_response`]. Time is a parameter: pass `Utc::now()`-based values for
/// tests that go through samael (it rejects `IssueInstant` older than `max_issue_delay`).
#[derive(Clone, Debug)]
pub struct ResponseParams {
    pub issuer: String,
    /// Response `Destination` (the ACS URL).
    pub destination: String,
    /// `None` for IdP-initiated SSO (no `InResponseTo` anywhere).
    pub in_response_to: Option<String>,
    pub audience: String,
    /// `SubjectConfirmationData/@Recipient` (the ACS URL).
    pub recipient: String,
    pub name_id: String,
    pub name_id_format: String,
    pub issue_instant: DateTime<Utc>,
    /// `Conditions/@NotBefore`.
    pub not_before: DateTime<Utc>,
    /// `Conditions/@NotOnOrAfter` and `SubjectConfirmationData/@NotOnOrAfter`.
    pub not_on_or_after: DateTime<Utc>,
    pub session_index: String,
    /// `(Name, values)`: one `AttributeValue` per value, `xsi:type="xs:string"`.
    pub attributes: Vec<(String, Vec<String>)>,
    pub response_id: String,
    pub assertion_id: String,
    /// Top-level `StatusCode/@Value`. The Assertion is always included, whatever the status,
    /// so status-check tests can use a signed non-success response.
    pub status_code: String,
}

impl ResponseParams {
    /// A WSO2-IS-like login of `admin` to `https://sso.example.com/t/acme/...`, issued at
    /// `now`, valid for 5 minutes, answering request `_req-…`.
    pub fn sample(now: DateTime<Utc>) -> Self {
        ResponseParams {
            issuer: "localhost".into(),
            destination: "https://sso.example.com/t/acme/saml/acs".into(),
            in_response_to: Some("_req-7d1c5e0b2f8a4c6e9b3d1f0a2c4e6b8d".into()),
            audience: "https://sso.example.com/t/acme/saml/metadata".into(),
            recipient: "https://sso.example.com/t/acme/saml/acs".into(),
            name_id: "admin".into(),
            name_id_format: NAMEID_EMAIL.into(),
            issue_instant: now,
            not_before: now,
            not_on_or_after: now + chrono::Duration::minutes(5),
            session_index: "cd3bcb6f-2b7d-4b9c-8c1e-5f0a6e7d8c9b".into(),
            attributes: vec![
                (WSO2_CLAIM_EMAIL.into(), vec!["admin@wso2.com".into()]),
                (WSO2_CLAIM_GIVENNAME.into(), vec!["Ada".into()]),
                (WSO2_CLAIM_LASTNAME.into(), vec!["Admin".into()]),
            ],
            response_id: "_b7c3a2f0e1d94c8a9f6e5d4c3b2a1908".into(),
            assertion_id: "_e1f2a3b4c5d64e7f8091a2b3c4d5e6f7".into(),
            status_code: STATUS_SUCCESS.into(),
        }
    }
}

/// Builds an unsigned, compact (no insignificant whitespace) WSO2-shaped Response.
pub fn build_response(p: &ResponseParams) -> String {
    let ts = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let irt_attr = p.in_response_to.as_deref().map(|id| format!(" InResponseTo=\"{}\"", esc(id))).unwrap_or_default();

    let mut x = String::with_capacity(4096);
    x.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    x.push_str(&format!(
        r#"<saml2p:Response Destination="{dest}" ID="{rid}"{irt} IssueInstant="{ii}" Version="2.0" xmlns:saml2p="{NS_SAML2P}">"#,
        dest = esc(&p.destination),
        rid = esc(&p.response_id),
        irt = irt_attr,
        ii = ts(&p.issue_instant),
    ));
    x.push_str(&format!(
        r#"<saml2:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity" xmlns:saml2="{NS_SAML2}">{}</saml2:Issuer>"#,
        esc(&p.issuer)
    ));
    x.push_str(&format!(r#"<saml2p:Status><saml2p:StatusCode Value="{}"/></saml2p:Status>"#, esc(&p.status_code)));
    x.push_str(&format!(
        r#"<saml2:Assertion ID="{aid}" IssueInstant="{ii}" Version="2.0" xmlns:saml2="{NS_SAML2}" xmlns:xs="http://www.w3.org/2001/XMLSchema">"#,
        aid = esc(&p.assertion_id),
        ii = ts(&p.issue_instant),
    ));
    x.push_str(&format!(
        r#"<saml2:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">{}</saml2:Issuer>"#,
        esc(&p.issuer)
    ));
    x.push_str(&format!(
        r#"<saml2:Subject><saml2:NameID Format="{fmt}">{nid}</saml2:NameID><saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml2:SubjectConfirmationData{irt} NotOnOrAfter="{noa}" Recipient="{rcpt}"/></saml2:SubjectConfirmation></saml2:Subject>"#,
        fmt = esc(&p.name_id_format),
        nid = esc(&p.name_id),
        irt = irt_attr,
        noa = ts(&p.not_on_or_after),
        rcpt = esc(&p.recipient),
    ));
    x.push_str(&format!(
        r#"<saml2:Conditions NotBefore="{nb}" NotOnOrAfter="{noa}"><saml2:AudienceRestriction><saml2:Audience>{aud}</saml2:Audience></saml2:AudienceRestriction></saml2:Conditions>"#,
        nb = ts(&p.not_before),
        noa = ts(&p.not_on_or_after),
        aud = esc(&p.audience),
    ));
    x.push_str(&format!(
        r#"<saml2:AuthnStatement AuthnInstant="{ai}" SessionIndex="{si}"><saml2:AuthnContext><saml2:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>"#,
        ai = ts(&p.issue_instant),
        si = esc(&p.session_index),
    ));
    if !p.attributes.is_empty() {
        x.push_str("<saml2:AttributeStatement>");
        for (name, values) in &p.attributes {
            x.push_str(&format!(
                r#"<saml2:Attribute Name="{}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">"#,
                esc(name)
            ));
            for v in values {
                x.push_str(&format!(
                    r#"<saml2:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">{}</saml2:AttributeValue>"#,
                    esc(v)
                ));
            }
            x.push_str("</saml2:Attribute>");
        }
        x.push_str("</saml2:AttributeStatement>");
    }
    x.push_str("</saml2:Assertion></saml2p:Response>");
    x
}

/// Minimal IdP metadata: one `KeyDescriptor use="signing"` per key, HTTP-Redirect and
/// HTTP-POST SSO at `sso_url`, HTTP-Redirect SLO at `sso_url`.
pub fn idp_metadata_xml(entity_id: &str, sso_url: &str, signing_keys: &[&TestKey]) -> String {
    let mut x = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{}"><md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="{NS_SAML2P}">"#,
        esc(entity_id)
    );
    for key in signing_keys {
        x.push_str(&format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{NS_DS}"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            key.cert_base64()
        ));
    }
    let loc = esc(sso_url);
    x.push_str(&format!(
        r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{loc}"/><md:NameIDFormat>{NAMEID_EMAIL}</md:NameIDFormat><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{loc}"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{loc}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    ));
    x
}

// ---------------------------------------------------------------------------------------
// string-level XML helpers (inputs are our own fixtures or libxml2 output)

/// Location of an element's start tag.
struct StartTag {
    /// Byte offset of `<`.
    start: usize,
    /// Byte offset just past `>`.
    end: usize,
}

fn signature_template(element_id: &str, key: &TestKey, opts: &SignOptions) -> String {
    let inclusive = opts
        .inclusive_namespaces
        .as_deref()
        .map(|list| format!(r#"<ec:InclusiveNamespaces xmlns:ec="{ALG_EXC_C14N}" PrefixList="{}"/>"#, esc(list)))
        .unwrap_or_default();
    // KeyInfo is pre-filled: samael's sign_xml loads only the private key, so libxmlsec1 has
    // no certificate to write and leaves this X509Data as is.
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="{ds}"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="{c14n}"/>"#,
            r#"<ds:SignatureMethod Algorithm="{sig}"/>"#,
            r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="{env}"/>"#,
            r#"<ds:Transform Algorithm="{c14n}">{incl}</ds:Transform>"#,
            r#"</ds:Transforms><ds:DigestMethod Algorithm="{dig}"/>"#,
            r#"<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue></ds:SignatureValue>"#,
            r#"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate>"#,
            r#"</ds:X509Data></ds:KeyInfo></ds:Signature>"#
        ),
        ds = NS_DS,
        c14n = ALG_EXC_C14N,
        sig = opts.alg.signature_uri(),
        id = esc(element_id),
        env = ALG_ENVELOPED,
        incl = inclusive,
        dig = opts.alg.digest_uri(),
        cert = key.cert_base64(),
    )
}

/// Finds the unique start tag carrying `ID="<id>"` (or single quotes).
fn find_element_by_id(xml: &str, id: &str) -> StartTag {
    let mut found: Vec<StartTag> = Vec::new();
    for quote in ['"', '\''] {
        let needle = format!("ID={quote}{id}{quote}");
        let mut from = 0;
        while let Some(rel) = xml[from..].find(&needle) {
            let at = from + rel;
            from = at + needle.len();
            // Attribute name must be exactly `ID` (not `AssertionID`, `xml:ID`…).
            if !xml[..at].ends_with(|c: char| c.is_ascii_whitespace()) {
                continue;
            }
            let lt = xml[..at].rfind('<').expect("attribute outside a tag");
            if xml[lt..at].contains('>') {
                continue; // text content, not an attribute
            }
            found.push(StartTag { start: lt, end: tag_end(xml, lt) });
        }
    }
    match found.len() {
        1 => found.pop().expect("one"),
        0 => panic!("no element with ID=\"{id}\""),
        n => panic!("{n} elements with ID=\"{id}\" (duplicate IDs cannot be signed unambiguously)"),
    }
}

/// Offset just past the `>` closing the tag that starts at `lt`, honouring quotes.
fn tag_end(xml: &str, lt: usize) -> usize {
    let mut quote: Option<u8> = None;
    for (i, b) in xml.as_bytes()[lt..].iter().enumerate() {
        match (quote, *b) {
            (None, b'"' | b'\'') => quote = Some(*b),
            (Some(q), c) if c == q => quote = None,
            (None, b'>') => return lt + i + 1,
            _ => {}
        }
    }
    panic!("unterminated tag at byte {lt}");
}

fn tag_qname(xml: &str, lt: usize) -> &str {
    let rest = &xml[lt + 1..];
    let len = rest.find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>').unwrap_or(rest.len());
    &rest[..len]
}

fn local_name(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, l)| l)
}

/// Where the enveloped signature goes: after a leading `Issuer` child, else first child.
fn signature_position(xml: &str, target: &StartTag) -> usize {
    assert!(!xml[..target.end].ends_with("/>"), "cannot sign an empty element <{}/>", tag_qname(xml, target.start));
    let after = target.end;
    let rest = &xml[after..];
    let first = after + (rest.len() - rest.trim_start().len());
    if xml[first..].starts_with('<') && !xml[first..].starts_with("</") && local_name(tag_qname(xml, first)) == "Issuer"
    {
        let qname = tag_qname(xml, first);
        let issuer_end = tag_end(xml, first);
        if xml[..issuer_end].ends_with("/>") {
            return issuer_end;
        }
        let close = format!("</{qname}>");
        let rel = xml[issuer_end..].find(&close).unwrap_or_else(|| panic!("unterminated {qname}"));
        return issuer_end + rel + close.len();
    }
    after
}

fn mask_placeholder(i: usize) -> String {
    format!("<!--samlsign-masked-signature-{i}-->")
}

/// Replaces every complete `Signature` element ending at or before `limit` with a comment.
fn mask_signatures_before(doc: &str, limit: usize) -> (String, Vec<String>) {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut from = 0;
    while let Some(rel) = doc[from..limit].find('<') {
        let lt = from + rel;
        from = lt + 1;
        let qname = tag_qname(doc, lt);
        if local_name(qname) != "Signature" || qname.starts_with('/') {
            continue;
        }
        let close = format!("</{qname}>");
        let Some(rel_end) = doc[lt..].find(&close) else {
            continue;
        };
        let end = lt + rel_end + close.len();
        if end <= limit {
            spans.push((lt, end));
            from = end;
        }
    }
    let mut out = String::with_capacity(doc.len());
    let mut saved = Vec::new();
    let mut pos = 0;
    for (i, (s, e)) in spans.into_iter().enumerate() {
        out.push_str(&doc[pos..s]);
        out.push_str(&mask_placeholder(i));
        saved.push(doc[s..e].to_string());
        pos = e;
    }
    out.push_str(&doc[pos..]);
    (out, saved)
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let a = s.find(open).map(|i| i + open.len()).unwrap_or(0);
    let b = s[a..].find(close).map(|i| a + i).unwrap_or(a);
    &s[a..b]
}

/// XML escaping for text and double-quoted attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use samael::crypto::AllowedSignatureAlgorithm;
    use samael::metadata::EntityDescriptor;
    use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
    use std::sync::OnceLock;

    fn idp_key() -> &'static TestKey {
        static K: OnceLock<TestKey> = OnceLock::new();
        K.get_or_init(|| make_test_key("wso2-test-idp"))
    }
    fn other_key() -> &'static TestKey {
        static K: OnceLock<TestKey> = OnceLock::new();
        K.get_or_init(|| make_test_key("attacker"))
    }

    fn params() -> ResponseParams {
        ResponseParams::sample(Utc::now())
    }

    fn sp_with(keys: &[&TestKey], algs: Option<Vec<AllowedSignatureAlgorithm>>) -> ServiceProvider {
        let p = params();
        let md: EntityDescriptor =
            idp_metadata_xml(&p.issuer, "https://is.example.com/samlsso", keys).parse().expect("metadata parses");
        let mut b = ServiceProviderBuilder::default();
        b.entity_id(p.audience.clone()).acs_url(p.destination.clone()).idp_metadata(md);
        if let Some(algs) = algs {
            b.allowed_signature_algorithms(algs);
        }
        b.build().expect("sp")
    }
    fn sp() -> ServiceProvider {
        sp_with(&[idp_key()], Some(vec![AllowedSignatureAlgorithm::RsaSha256]))
    }
    fn req_ids(p: &ResponseParams) -> Vec<&str> {
        p.in_response_to.iter().map(String::as_str).collect()
    }

    fn assertion_signed(p: &ResponseParams, alg: SigAlg) -> String {
        sign_element(&build_response(p), &p.assertion_id, idp_key(), alg)
    }
    fn response_signed(p: &ResponseParams, alg: SigAlg) -> String {
        sign_element(&build_response(p), &p.response_id, idp_key(), alg)
    }
    fn both_signed(p: &ResponseParams, alg: SigAlg) -> String {
        let xml = sign_element(&build_response(p), &p.assertion_id, idp_key(), alg);
        sign_element(&xml, &p.response_id, idp_key(), alg)
    }

    fn accept(sp: &ServiceProvider, xml: &str, p: &ResponseParams) -> samael::schema::Assertion {
        sp.parse_xml_response(xml, Some(&req_ids(p)))
            .unwrap_or_else(|e| panic!("samael rejected a genuine response: {e:?}\n{xml}"))
    }
    fn reject(sp: &ServiceProvider, xml: &str, p: &ResponseParams) -> String {
        match sp.parse_xml_response(xml, Some(&req_ids(p))) {
            Ok(a) => panic!(
                "samael accepted a bad response; NameID {:?}\n{xml}",
                a.subject.and_then(|s| s.name_id).map(|n| n.value)
            ),
            Err(e) => format!("{e:?}"),
        }
    }
    fn name_id(a: &samael::schema::Assertion) -> String {
        a.subject.as_ref().and_then(|s| s.name_id.as_ref()).map(|n| n.value.clone()).expect("NameID")
    }
    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    #[test]
    fn test_key_is_rsa2048_self_signed_with_cn() {
        let k = make_test_key("idp.example.test");
        let cert = X509::from_pem(k.cert_pem.as_bytes()).unwrap();
        assert_eq!(cert.to_der().unwrap(), k.cert_der);
        let cn = cert
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .unwrap()
            .data()
            .as_slice()
            .to_vec();
        let cn = String::from_utf8(cn).unwrap();
        assert_eq!(cn, "idp.example.test");
        let pk = k.private_key();
        assert_eq!(pk.bits(), 2048);
        assert!(cert.public_key().unwrap().public_eq(&pk));
        assert!(cert.verify(&cert.public_key().unwrap()).unwrap());
        assert!(k.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(k.public_key().public_eq(&pk));
        assert_ne!(make_test_key("x").cert_der, make_test_key("x").cert_der);
    }

    #[test]
    fn build_response_is_wso2_shaped_and_parses_in_samael() {
        let p = params();
        let xml = build_response(&p);
        assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><saml2p:Response "#));
        assert!(!xml.contains('\n'));
        let r: samael::schema::Response = xml.parse().expect("samael parses unsigned response");
        assert_eq!(r.id, p.response_id);
        assert_eq!(r.destination.as_deref(), Some(p.destination.as_str()));
        assert_eq!(r.in_response_to, p.in_response_to);
        let a = r.assertion.expect("assertion");
        assert_eq!(a.id, p.assertion_id);
        assert_eq!(name_id(&a), "admin");
        let attrs = a.attribute_statements.expect("attributes");
        let names: Vec<_> = attrs[0].attributes.iter().map(|a| a.name.clone().unwrap_or_default()).collect();
        assert_eq!(names, [WSO2_CLAIM_EMAIL, WSO2_CLAIM_GIVENNAME, WSO2_CLAIM_LASTNAME]);

        // Escaping, multi-valued attributes, IdP-initiated (no InResponseTo), no attributes.
        let mut q = params();
        q.name_id = "a&b<c>\"d'".into();
        q.attributes = vec![("groups".into(), vec!["x".into(), "y & z".into()])];
        q.in_response_to = None;
        let xml = build_response(&q);
        assert!(!xml.contains("InResponseTo"));
        assert!(xml.contains("a&amp;b&lt;c&gt;&quot;d&apos;"));
        let r: samael::schema::Response = xml.parse().unwrap();
        let a = r.assertion.unwrap();
        assert_eq!(name_id(&a), "a&b<c>\"d'");
        assert_eq!(a.attribute_statements.unwrap()[0].attributes[0].values.len(), 2);
        q.attributes.clear();
        assert!(!build_response(&q).contains("AttributeStatement"));
    }

    #[test]
    fn signature_is_placed_after_issuer_and_filled_in() {
        let p = params();
        let xml = both_signed(&p, SigAlg::RsaSha256);
        assert_eq!(count(&xml, "<ds:Signature "), 2);
        // Response: Issuer, Signature, Status. Assertion: Issuer, Signature, Subject.
        assert!(xml.contains("</saml2:Issuer><ds:Signature "));
        let resp_sig = xml.find("<ds:Signature ").unwrap();
        assert!(resp_sig < xml.find("<saml2p:Status>").unwrap());
        assert!(xml[resp_sig..].contains("</ds:Signature><saml2p:Status>"));
        let assertion_at = xml.find("<saml2:Assertion ").unwrap();
        let a_sig = assertion_at + xml[assertion_at..].find("<ds:Signature ").unwrap();
        assert!(xml[a_sig..].contains("</ds:Signature><saml2:Subject>"));
        assert!(xml.contains(&format!(r##"URI="#{}""##, p.response_id)));
        assert!(xml.contains(&format!(r##"URI="#{}""##, p.assertion_id)));
        assert!(!xml.contains("<ds:SignatureValue></ds:SignatureValue>"));
        assert!(!xml.contains("<ds:SignatureValue/>"));
        assert!(!xml.contains("<ds:DigestValue/>"));
        // KeyInfo carries our certificate exactly once per signature.
        assert_eq!(count(&xml, &idp_key().cert_base64()), 2);
        assert_eq!(count(&xml, "<ds:X509Certificate>"), 2);
        assert!(!xml.contains("samlsign-masked"));
    }

    #[test]
    fn samael_accepts_assertion_signed() {
        let p = params();
        let a = accept(&sp(), &assertion_signed(&p, SigAlg::RsaSha256), &p);
        assert_eq!(name_id(&a), "admin");
        assert_eq!(a.id, p.assertion_id);
    }

    #[test]
    fn samael_accepts_response_signed() {
        let p = params();
        let a = accept(&sp(), &response_signed(&p, SigAlg::RsaSha256), &p);
        assert_eq!(name_id(&a), "admin");
    }

    #[test]
    fn samael_accepts_both_signed() {
        let p = params();
        let a = accept(&sp(), &both_signed(&p, SigAlg::RsaSha256), &p);
        assert_eq!(name_id(&a), "admin");
        let attrs = a.attribute_statements.expect("attributes survive reduction");
        assert_eq!(attrs[0].attributes[0].values[0].value.as_deref(), Some("admin@wso2.com"));
    }

    #[test]
    fn samael_accepts_idp_initiated_when_allowed() {
        let mut p = params();
        p.in_response_to = None;
        let xml = both_signed(&p, SigAlg::RsaSha256);
        let mut sp = sp();
        reject(&sp, &xml, &p);
        sp.allow_idp_initiated = true;
        let a = sp.parse_xml_response(&xml, None).expect("idp-initiated accepted");
        assert_eq!(name_id(&a), "admin");
    }

    #[test]
    fn samael_accepts_inclusive_namespaces_prefix_list() {
        let p = params();
        let opts = SignOptions { alg: SigAlg::RsaSha256, inclusive_namespaces: Some("xs".into()) };
        let xml = sign_element_with(&build_response(&p), &p.assertion_id, idp_key(), &opts);
        assert!(xml.contains(
            r#"<ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="xs"/>"#
        ));
        let xml = sign_element_with(&xml, &p.response_id, idp_key(), &opts);
        assert_eq!(name_id(&accept(&sp(), &xml, &p)), "admin");
    }

    #[test]
    fn sha1_accepted_only_without_allowlist() {
        let p = params();
        for xml in [
            assertion_signed(&p, SigAlg::RsaSha1),
            response_signed(&p, SigAlg::RsaSha1),
            both_signed(&p, SigAlg::RsaSha1),
        ] {
            assert!(xml.contains("xmldsig#rsa-sha1") && xml.contains("xmldsig#sha1"));
            let lax = sp_with(&[idp_key()], None);
            assert_eq!(name_id(&accept(&lax, &xml, &p)), "admin");
            reject(&sp(), &xml, &p);
            // samael has no RsaSha1 variant in AllowedSignatureAlgorithm: even the widest
            // allowlist refuses SHA-1, so "allow SHA-1" means `None` (allow everything).
            use AllowedSignatureAlgorithm as A;
            let widest = sp_with(
                &[idp_key()],
                Some(vec![
                    A::RsaSha256,
                    A::RsaSha224,
                    A::RsaSha384,
                    A::RsaSha512,
                    A::EcdsaSha256,
                    A::EcdsaSha224,
                    A::EcdsaSha384,
                    A::EcdsaSha512,
                    A::DsaSha256,
                ]),
            );
            reject(&widest, &xml, &p);
        }
    }

    #[test]
    fn samael_rejects_tampering_after_signing() {
        let p = params();
        let sp = sp();
        for (label, xml) in [
            ("assertion", assertion_signed(&p, SigAlg::RsaSha256)),
            ("response", response_signed(&p, SigAlg::RsaSha256)),
            ("both", both_signed(&p, SigAlg::RsaSha256)),
        ] {
            accept(&sp, &xml, &p);
            let nameid = xml.replacen(">admin</saml2:NameID>", ">root</saml2:NameID>", 1);
            assert_ne!(nameid, xml, "{label}");
            reject(&sp, &nameid, &p);
            let attr = xml.replacen(">admin@wso2.com<", ">root@wso2.com<", 1);
            assert_ne!(attr, xml, "{label}");
            reject(&sp, &attr, &p);
            let comment = xml.replacen(">admin</saml2:NameID>", ">admin<!---->.evil</saml2:NameID>", 1);
            reject(&sp, &comment, &p);
        }
        // Response-only signature: an attribute of the Response itself.
        let xml = response_signed(&p, SigAlg::RsaSha256);
        let dest =
            xml.replacen(&format!("Destination=\"{}\"", p.destination), "Destination=\"https://evil.example/acs\"", 1);
        assert_ne!(dest, xml);
        reject(&sp, &dest, &p);
    }

    #[test]
    fn samael_rejects_wrong_key_and_unsigned() {
        let p = params();
        let xml = both_signed(&p, SigAlg::RsaSha256);
        reject(&sp_with(&[other_key()], None), &xml, &p);
        // Either key of a rollover pair is fine.
        accept(&sp_with(&[other_key(), idp_key()], None), &xml, &p);
        reject(&sp(), &build_response(&p), &p);
        // Signed by the attacker's own key, carrying the attacker's cert in KeyInfo.
        let evil = sign_element(&build_response(&p), &p.assertion_id, other_key(), SigAlg::RsaSha256);
        reject(&sp(), &evil, &p);
    }

    /// XSW fixture: an unsigned evil assertion placed before the signed one. samael's
    /// reduction keeps only signed content, so the genuine subject comes out (doc §3).
    #[test]
    fn xsw_evil_assertion_before_signed_one_yields_genuine_subject() {
        let p = params();
        let xml = assertion_signed(&p, SigAlg::RsaSha256);
        let mut evil_p = p.clone();
        evil_p.assertion_id = "_evil00000000000000000000000000000".into();
        evil_p.name_id = "root".into();
        let evil_unsigned = build_response(&evil_p);
        let ea = evil_unsigned.find("<saml2:Assertion ").unwrap();
        let ee = evil_unsigned.find("</saml2:Assertion>").unwrap() + "</saml2:Assertion>".len();
        let evil_assertion = &evil_unsigned[ea..ee];
        let at = xml.find("<saml2:Assertion ").unwrap();
        let attacked = format!("{}{}{}", &xml[..at], evil_assertion, &xml[at..]);
        let a = accept(&sp(), &attacked, &p);
        assert_eq!(name_id(&a), "admin");
    }

    /// Two separately signed sibling assertions (a fixture that needs signature masking):
    /// both signatures are genuine (xmlsec1 checks each), samael refuses the document.
    #[test]
    fn two_signed_assertions_can_be_built_and_samael_rejects_them() {
        let p = params();
        let first = assertion_signed(&p, SigAlg::RsaSha256);
        let mut q = p.clone();
        q.assertion_id = "_second0000000000000000000000000000".into();
        q.name_id = "root".into();
        let second_doc = build_response(&q);
        let sa = second_doc.find("<saml2:Assertion ").unwrap();
        let se = second_doc.find("</saml2:Assertion>").unwrap() + "</saml2:Assertion>".len();
        let end = first.find("</saml2p:Response>").unwrap();
        let combined = format!("{}{}{}", &first[..end], &second_doc[sa..se], &first[end..]);
        // Signing the second assertion requires hiding the first one's signature.
        let xml = sign_element(&combined, &q.assertion_id, idp_key(), SigAlg::RsaSha256);
        assert_eq!(count(&xml, "<ds:Signature "), 2);
        // The first signature came back unchanged.
        let first_sig = &first[first.find("<ds:Signature ").unwrap()..];
        let first_sig = &first_sig[..first_sig.find("</ds:Signature>").unwrap()];
        assert!(xml.contains(first_sig));
        if let Some((ok, err)) = xmlsec1_verify(&xml, idp_key()) {
            assert!(ok, "xmlsec1 rejected the first assertion's signature: {err}");
            // Drop the first signature so xmlsec1 checks the second one.
            let s = xml.find("<ds:Signature ").unwrap();
            let e = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
            let (ok, err) = xmlsec1_verify(&format!("{}{}", &xml[..s], &xml[e..]), idp_key()).unwrap();
            assert!(ok, "xmlsec1 rejected the second assertion's signature: {err}");
        }
        reject(&sp(), &xml, &p);
    }

    /// Signing the Assertion *after* the Response works mechanically (the Response signature
    /// is masked meanwhile) but invalidates the Response signature, so samael rejects it.
    #[test]
    fn wrong_signing_order_breaks_the_response_signature() {
        let p = params();
        let xml = response_signed(&p, SigAlg::RsaSha256);
        let xml = sign_element(&xml, &p.assertion_id, idp_key(), SigAlg::RsaSha256);
        assert_eq!(count(&xml, "<ds:Signature "), 2);
        if let Some((ok, _)) = xmlsec1_verify(&xml, idp_key()) {
            assert!(!ok, "response signature should no longer verify");
        }
        reject(&sp(), &xml, &p);
    }

    // ---- independent cross-check with the xmlsec1 command line (skipped if absent) ----

    /// Runs `xmlsec1 --verify` on the first ds:Signature. Returns `None` if xmlsec1 is not
    /// installed (`apt-get install xmlsec1`).
    fn xmlsec1_verify(xml: &str, key: &TestKey) -> Option<(bool, String)> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir =
            std::env::temp_dir().join(format!("samlsign-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        std::fs::create_dir_all(&dir).unwrap();
        let doc = dir.join("doc.xml");
        let cert = dir.join("cert.pem");
        std::fs::write(&doc, xml).unwrap();
        std::fs::write(&cert, &key.cert_pem).unwrap();
        let out = std::process::Command::new("xmlsec1")
            .arg("--verify")
            .arg("--pubkey-cert-pem")
            .arg(&cert)
            .arg("--id-attr:ID")
            .arg("urn:oasis:names:tc:SAML:2.0:protocol:Response")
            .arg("--id-attr:ID")
            .arg("urn:oasis:names:tc:SAML:2.0:assertion:Assertion")
            .arg("--enabled-reference-uris")
            .arg("same-doc")
            .arg(&doc)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        match out {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("xmlsec1 not installed: skipping CLI cross-check");
                None
            }
            Err(e) => panic!("xmlsec1: {e}"),
            Ok(o) => Some((o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())),
        }
    }

    #[test]
    fn xmlsec1_cli_verifies_our_signatures() {
        let p = params();
        // xmlsec1 --verify checks the first Signature in document order.
        for xml in [
            assertion_signed(&p, SigAlg::RsaSha256),
            response_signed(&p, SigAlg::RsaSha256),
            both_signed(&p, SigAlg::RsaSha256),
            both_signed(&p, SigAlg::RsaSha1),
        ] {
            let Some((ok, err)) = xmlsec1_verify(&xml, idp_key()) else {
                return;
            };
            assert!(ok, "xmlsec1 rejected our signature: {err}");
            let (ok, _) = xmlsec1_verify(&xml, other_key()).unwrap();
            assert!(!ok, "xmlsec1 accepted the wrong key");
            let tampered = xml.replacen(">admin@wso2.com<", ">root@wso2.com<", 1);
            let (ok, _) = xmlsec1_verify(&tampered, idp_key()).unwrap();
            // Only fails when the first signature covers the assertion (always true here).
            assert!(!ok, "xmlsec1 accepted a tampered document");
        }
        // Both-signed: the assertion's own signature also verifies on its own (strip the
        // Response signature so the Assertion's is the first one xmlsec1 finds).
        let xml = both_signed(&p, SigAlg::RsaSha256);
        let s = xml.find("<ds:Signature ").unwrap();
        let e = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        let only_assertion_sig = format!("{}{}", &xml[..s], &xml[e..]);
        let (ok, err) = xmlsec1_verify(&only_assertion_sig, idp_key()).unwrap();
        assert!(ok, "assertion signature inside both-signed doc: {err}");
    }

    #[test]
    #[should_panic(expected = "no element with ID")]
    fn unknown_id_panics() {
        sign_element(&build_response(&params()), "_nope", idp_key(), SigAlg::RsaSha256);
    }

    #[test]
    #[should_panic(expected = "2 elements with ID")]
    fn duplicate_id_panics() {
        let p = params();
        let xml = build_response(&p).replace(&p.response_id, &p.assertion_id);
        sign_element(&xml, &p.assertion_id, idp_key(), SigAlg::RsaSha256);
    }

    #[test]
    fn element_without_issuer_gets_signature_as_first_child() {
        let xml = r#"<root><item ID="_x1"><a>1</a></item></root>"#;
        let out = sign_element(xml, "_x1", idp_key(), SigAlg::RsaSha256);
        assert!(out.contains(r#"<item ID="_x1"><ds:Signature "#));
        if let Some((ok, err)) = xmlsec1_verify_plain(&out) {
            assert!(ok, "{err}");
        }
    }

    fn xmlsec1_verify_plain(xml: &str) -> Option<(bool, String)> {
        let dir = std::env::temp_dir().join(format!("samlsign-plain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let doc = dir.join("doc.xml");
        let cert = dir.join("cert.pem");
        std::fs::write(&doc, xml).unwrap();
        std::fs::write(&cert, &idp_key().cert_pem).unwrap();
        let out = std::process::Command::new("xmlsec1")
            .args(["--verify", "--id-attr:ID", "item", "--pubkey-cert-pem"])
            .arg(&cert)
            .arg(&doc)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        match out {
            Err(_) => None,
            Ok(o) => Some((o.status.success(), String::from_utf8_lossy(&o.stderr).into())),
        }
    }
}
