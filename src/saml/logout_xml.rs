//! Single-logout messages, written and read by us (shared/docs/saml-sp.md §2, §8): samael 0.0.22's
//! `LogoutRequest` puts SessionIndex before NameID when writing, reads SessionIndex as an attribute and
//! never reads NameID's `Format`, and has no signature handling for logout messages.
//!
//! * Building: [`LogoutRequestXml`] and [`LogoutResponseXml`] in schema order (Issuer, [Signature],
//!   NameID, SessionIndex / Status), with `saml:Issuer` first so [`super::xml_sign::sign_root`] can
//!   place the enveloped signature; [`soap_envelope`] for the SOAP binding.
//! * Receiving: [`precheck`] is the strict structural pass run on untrusted XML *before* libxmlsec1
//!   sees it (no DOCTYPE, depth limit, UTF-8 only, the message element in the protocol namespace,
//!   unique IDs, exactly one `ds:Signature` directly under the message with a Reference bound to its
//!   ID and only enveloped-signature + exclusive c14n, an algorithm allow-list, no external URIs).
//!   [`verify_signed`] runs samael's "verify, then keep only what was signed"; [`parse_request`] and
//!   [`parse_response`] then read **only that output** (or the XML of a Redirect-binding message whose
//!   query signature verified).

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use roxmltree::Node;
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec};

use super::authn_request::xml_escape;
use super::error::LoginFailure;
use super::metadata::{parse_xs_datetime, xml_nesting_exceeds};

pub const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";

pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
pub const STATUS_REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
pub const STATUS_PARTIAL_LOGOUT: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";
pub const REASON_USER: &str = "urn:oasis:names:tc:SAML:2.0:logout:user";

// The signature profile is the ACS pre-check's: one list of allowed algorithms and transforms.
use super::precheck::{ALG_ENVELOPED, ALG_EXC_C14N, DIGEST_METHODS, NS_DS, NS_EXC_C14N, NS_XML, SIGNATURE_METHODS};
pub use super::precheck::{ALG_RSA_SHA1, ALG_SHA1};

/// Deepest nesting accepted before any tree parser runs (roxmltree recurses without a limit).
pub const MAX_DEPTH: usize = 64;
/// Longest attacker-supplied string quoted in a message.
const MAX_QUOTED: usize = 120;

// ---------------------------------------------------------------------------------------------
// Outbound

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A LogoutRequest we send (SP-initiated single logout).
pub struct LogoutRequestXml<'a> {
    pub id: &'a str,
    pub issue_instant: DateTime<Utc>,
    pub not_on_or_after: DateTime<Utc>,
    pub destination: &'a str,
    pub issuer: &'a str,
    pub name_id: &'a str,
    pub name_id_format: Option<&'a str>,
    pub session_index: Option<&'a str>,
}

impl LogoutRequestXml<'_> {
    /// Schema order (saml-core §3.7.1): Issuer, [Signature], NameID, SessionIndex*.
    pub fn to_xml(&self) -> String {
        let format = match self.name_id_format {
            Some(f) => format!(r#" Format="{}""#, xml_escape(f)),
            None => String::new(),
        };
        let session_index = match self.session_index {
            Some(s) => format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", xml_escape(s)),
            None => String::new(),
        };
        format!(
            r#"<samlp:LogoutRequest xmlns:samlp="{NS_SAMLP}" xmlns:saml="{NS_SAML}" ID="{}" Version="2.0" IssueInstant="{}" Destination="{}" NotOnOrAfter="{}" Reason="{REASON_USER}"><saml:Issuer>{}</saml:Issuer><saml:NameID{format}>{}</saml:NameID>{session_index}</samlp:LogoutRequest>"#,
            xml_escape(self.id),
            instant(self.issue_instant),
            xml_escape(self.destination),
            instant(self.not_on_or_after),
            xml_escape(self.issuer),
            xml_escape(self.name_id),
        )
    }
}

/// A LogoutResponse we send (answer to an IdP-initiated LogoutRequest).
pub struct LogoutResponseXml<'a> {
    pub id: &'a str,
    pub in_response_to: Option<&'a str>,
    pub issue_instant: DateTime<Utc>,
    pub destination: Option<&'a str>,
    pub issuer: &'a str,
    pub status: &'a str,
    pub sub_status: Option<&'a str>,
    pub status_message: Option<&'a str>,
}

impl LogoutResponseXml<'_> {
    /// Schema order (saml-core §3.2.2): Issuer, [Signature], Status.
    pub fn to_xml(&self) -> String {
        let in_response_to = match self.in_response_to {
            Some(v) => format!(r#" InResponseTo="{}""#, xml_escape(v)),
            None => String::new(),
        };
        let destination = match self.destination {
            Some(v) => format!(r#" Destination="{}""#, xml_escape(v)),
            None => String::new(),
        };
        let code = match self.sub_status {
            Some(sub) => format!(
                r#"<samlp:StatusCode Value="{}"><samlp:StatusCode Value="{}"/></samlp:StatusCode>"#,
                xml_escape(self.status),
                xml_escape(sub)
            ),
            None => format!(r#"<samlp:StatusCode Value="{}"/>"#, xml_escape(self.status)),
        };
        let message = match self.status_message {
            Some(m) => format!("<samlp:StatusMessage>{}</samlp:StatusMessage>", xml_escape(m)),
            None => String::new(),
        };
        format!(
            r#"<samlp:LogoutResponse xmlns:samlp="{NS_SAMLP}" xmlns:saml="{NS_SAML}" ID="{}"{in_response_to} Version="2.0" IssueInstant="{}"{destination}><saml:Issuer>{}</saml:Issuer><samlp:Status>{code}{message}</samlp:Status></samlp:LogoutResponse>"#,
            xml_escape(self.id),
            instant(self.issue_instant),
            xml_escape(self.issuer),
        )
    }
}

/// SOAP 1.1 or 1.2 envelope (saml-bindings §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    V11,
    V12,
}

impl SoapVersion {
    pub fn namespace(self) -> &'static str {
        match self {
            SoapVersion::V11 => NS_SOAP11,
            SoapVersion::V12 => NS_SOAP12,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            SoapVersion::V11 => "text/xml; charset=utf-8",
            SoapVersion::V12 => "application/soap+xml; charset=utf-8",
        }
    }
}

/// Drops a leading `<?xml …?>` declaration (libxml2 adds one to what it serialises).
pub fn strip_xml_declaration(xml: &str) -> &str {
    let trimmed = xml.trim_start();
    match trimmed.strip_prefix("<?xml").and_then(|rest| rest.find("?>").map(|end| &rest[end + 2..])) {
        Some(rest) => rest.trim_start(),
        None => trimmed,
    }
}

/// Wraps a SAML message (with or without an XML declaration) in a SOAP envelope.
pub fn soap_envelope(version: SoapVersion, message: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{}"><soap:Body>{}</soap:Body></soap:Envelope>"#,
        version.namespace(),
        strip_xml_declaration(message)
    )
}

// ---------------------------------------------------------------------------------------------
// Inbound: strict pre-check

/// Which logout message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutKind {
    Request,
    Response,
}

impl LogoutKind {
    pub fn element(self) -> &'static str {
        match self {
            LogoutKind::Request => "LogoutRequest",
            LogoutKind::Response => "LogoutResponse",
        }
    }
}

/// Where the XML came from, which decides what the pre-check demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// HTTP-Redirect: the XML signature is replaced by the query signature; the XML is only ever read
    /// by roxmltree (never handed to libxmlsec1), so a stray `ds:Signature` in it is ignored.
    Redirect,
    /// HTTP-POST form value: a bare message, or (WSO2 IS with its SOAP SLO option) a SOAP envelope.
    Post,
    /// A SOAP request body: the envelope is required.
    Soap,
}

/// What the pre-check found. **Unverified**: use it only to pick the IdP, for messages and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prechecked {
    pub kind: LogoutKind,
    pub id: String,
    pub issuer: Option<String>,
    pub in_response_to: Option<String>,
    pub destination: Option<String>,
    pub soap: Option<SoapVersion>,
    /// `(SignatureMethod, DigestMethod)` of the XML signature (POST and SOAP).
    pub algorithms: Option<(String, String)>,
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_QUOTED).collect();
    if s.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    format!("{out:?}")
}

fn bad(code: &'static str, message: impl Into<String>) -> LoginFailure {
    LoginFailure::malformed(code, message).with("check", "pre-check")
}

fn refuse(code: &'static str, message: impl Into<String>) -> LoginFailure {
    LoginFailure::refused(code, message).with("check", "pre-check")
}

fn contains_ascii_ci(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Only UTF-8 (or no declaration): libxml2 would honour another declared encoding while roxmltree
/// reads UTF-8, and the two must see the same document.
fn check_declared_encoding(xml: &str) -> Result<(), LoginFailure> {
    let Some(rest) = xml.trim_start_matches('\u{feff}').strip_prefix("<?xml") else { return Ok(()) };
    let Some(end) = rest.find("?>") else { return Err(bad("malformed_xml", "the XML declaration is not closed")) };
    let decl = &rest[..end];
    let Some(at) = decl.find("encoding") else { return Ok(()) };
    let value = decl[at + "encoding".len()..].trim_start().strip_prefix('=').map(str::trim_start).unwrap_or_default();
    let value = value.trim_start_matches(['"', '\'']);
    let value: String = value.chars().take_while(|c| *c != '"' && *c != '\'').collect();
    if value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8") {
        Ok(())
    } else {
        Err(bad("encoding", format!("the message declares encoding {}; only UTF-8 is accepted", clip(&value))))
    }
}

/// Parses untrusted XML strictly: no DTD, bounded depth, UTF-8 only.
pub fn parse_strict(xml: &str) -> Result<roxmltree::Document<'_>, LoginFailure> {
    if xml.trim().is_empty() {
        return Err(bad("empty", "the message is empty"));
    }
    // roxmltree notices a DOCTYPE only in the prolog; anywhere else it has no business either.
    if contains_ascii_ci(xml, "<!DOCTYPE") || contains_ascii_ci(xml, "<!ENTITY") {
        return Err(bad(
            "doctype",
            "the message contains a DOCTYPE (DTD) declaration; DTDs are refused (entity expansion, external fetches)",
        ));
    }
    if xml_nesting_exceeds(xml, MAX_DEPTH) {
        return Err(bad("too_deep", format!("the message nests more than {MAX_DEPTH} elements deep")));
    }
    check_declared_encoding(xml)?;
    let options = roxmltree::ParsingOptions { allow_dtd: false, ..roxmltree::ParsingOptions::default() };
    roxmltree::Document::parse_with_options(xml, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => bad("doctype", "the message contains a DOCTYPE (DTD) declaration"),
        other => bad("malformed_xml", format!("the message is not well-formed XML: {other}")),
    })
}

fn is_element(node: Node, ns: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == local
}

fn is_ds(node: Node, local: &str) -> bool {
    is_element(node, NS_DS, local)
}

fn describe(node: Node) -> String {
    match node.tag_name().namespace() {
        Some(ns) => format!("{{{ns}}}{}", node.tag_name().name()),
        None => node.tag_name().name().to_string(),
    }
}

fn element_children<'a, 'input>(node: Node<'a, 'input>) -> Vec<Node<'a, 'input>> {
    node.children().filter(Node::is_element).collect()
}

/// Text of an element that may hold only text (no child elements, comments or PIs), trimmed.
fn simple_text(node: Node, what: &str) -> Result<String, LoginFailure> {
    let mut out = String::new();
    for child in node.children() {
        if child.is_text() {
            out.push_str(child.text().unwrap_or_default());
        } else {
            return Err(bad("malformed_xml", format!("{what} must contain only text")));
        }
    }
    Ok(out.trim().to_string())
}

/// Finds the logout message element: the root, or the single child of a SOAP Body.
fn message_element<'a, 'input>(
    doc: &'a roxmltree::Document<'input>,
    envelope: Envelope,
) -> Result<(Node<'a, 'input>, Option<SoapVersion>), LoginFailure> {
    let root = doc.root_element();
    let soap = if is_element(root, NS_SOAP11, "Envelope") {
        Some(SoapVersion::V11)
    } else if is_element(root, NS_SOAP12, "Envelope") {
        Some(SoapVersion::V12)
    } else {
        None
    };
    let Some(version) = soap else {
        if envelope == Envelope::Soap {
            return Err(bad("not_soap", format!("expected a SOAP Envelope, found {}", describe(root))));
        }
        return Ok((root, None));
    };
    if envelope == Envelope::Redirect {
        return Err(bad("unexpected_soap", "a SOAP envelope cannot travel in the HTTP-Redirect binding"));
    }
    let ns = version.namespace();
    let kids = element_children(root);
    let body = match kids.as_slice() {
        [b] if is_element(*b, ns, "Body") => *b,
        [h, b] if is_element(*h, ns, "Header") && is_element(*b, ns, "Body") => *b,
        _ => return Err(bad("soap_structure", "the SOAP Envelope must hold an optional Header and one Body")),
    };
    if root.children().chain(body.children()).any(|n| n.is_text() && !n.text().unwrap_or_default().trim().is_empty()) {
        return Err(bad("soap_structure", "the SOAP Envelope holds stray text"));
    }
    match element_children(body).as_slice() {
        [message] => Ok((*message, Some(version))),
        other => {
            Err(bad("soap_structure", format!("the SOAP Body must hold exactly one element, found {}", other.len())))
        }
    }
}

/// The strict structural pass. See the module docs.
pub fn precheck(xml: &str, envelope: Envelope) -> Result<Prechecked, LoginFailure> {
    let doc = parse_strict(xml)?;
    let (message, soap) = message_element(&doc, envelope)?;
    let kind = if is_element(message, NS_SAMLP, "LogoutRequest") {
        LogoutKind::Request
    } else if is_element(message, NS_SAMLP, "LogoutResponse") {
        LogoutKind::Response
    } else {
        return Err(bad(
            "not_a_logout_message",
            format!("expected LogoutRequest or LogoutResponse in {NS_SAMLP}, found {}", clip(&describe(message))),
        ));
    };
    let id = message
        .attribute("ID")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| bad("missing_id", format!("the {} has no ID", kind.element())))?;

    let mut seen = HashSet::new();
    let mut signatures = Vec::new();
    for node in doc.root().descendants().filter(Node::is_element) {
        for attr in node.attributes() {
            let is_id = attr.name() == "ID" || (attr.name() == "id" && attr.namespace() == Some(NS_XML));
            if is_id && !seen.insert(attr.value()) {
                return Err(refuse(
                    "duplicate_id",
                    format!("the ID {} is used by more than one element (signature wrapping?)", clip(attr.value())),
                ));
            }
        }
        if is_ds(node, "Signature") {
            signatures.push(node);
        }
    }

    let algorithms = match envelope {
        Envelope::Redirect => None,
        Envelope::Post | Envelope::Soap => {
            let sig = match signatures.as_slice() {
                [] => {
                    return Err(refuse(
                        "unsigned",
                        format!(
                            "the {} is not signed; the identity provider must sign logout messages",
                            kind.element()
                        ),
                    ));
                }
                [one] => *one,
                more => {
                    return Err(refuse(
                        "signature_count",
                        format!("the message holds {} ds:Signature elements; exactly one is accepted", more.len()),
                    ));
                }
            };
            if sig.parent_element() != Some(message) {
                return Err(refuse(
                    "signature_placement",
                    format!("the ds:Signature must be a direct child of the {}", kind.element()),
                ));
            }
            Some(check_signature(sig, id)?)
        }
    };

    let issuer = message
        .children()
        .find(|n| is_element(*n, NS_SAML, "Issuer"))
        .map(|n| n.descendants().filter(Node::is_text).filter_map(|t| t.text()).collect::<String>().trim().to_string());
    Ok(Prechecked {
        kind,
        id: id.to_string(),
        issuer,
        in_response_to: message.attribute("InResponseTo").map(str::to_string),
        destination: message.attribute("Destination").map(str::to_string),
        soap,
        algorithms,
    })
}

/// The signature profile (OpenSAML's `SAMLSignatureProfileValidator`, as in precheck.rs): SignedInfo,
/// SignatureValue, optional KeyInfo; one Reference to `#ID`; enveloped-signature (+ exclusive c14n);
/// allowed algorithms; nothing that points outside the document. SHA-1 passes here and is refused
/// per IdP by [`refuse_sha1`] once the IdP is known.
fn check_signature(sig: Node, id: &str) -> Result<(String, String), LoginFailure> {
    let structure = |detail: &str| refuse("signature_structure", format!("the ds:Signature is malformed: {detail}"));
    for node in sig.descendants().filter(Node::is_element) {
        if is_ds(node, "Object") || is_ds(node, "RetrievalMethod") || is_ds(node, "Manifest") {
            return Err(refuse(
                "signature_structure",
                format!("ds:{} is refused in a signature", node.tag_name().name()),
            ));
        }
        for attr in node.attributes() {
            if attr.name() == "URI" && !attr.value().starts_with('#') {
                return Err(refuse(
                    "external_uri",
                    format!(
                        "the signature refers to {}; only same-document references are accepted",
                        clip(attr.value())
                    ),
                ));
            }
        }
    }
    let kids = element_children(sig);
    let signed_info = match kids.as_slice() {
        [si, sv] if is_ds(*si, "SignedInfo") && is_ds(*sv, "SignatureValue") => *si,
        [si, sv, ki] if is_ds(*si, "SignedInfo") && is_ds(*sv, "SignatureValue") && is_ds(*ki, "KeyInfo") => *si,
        _ => return Err(structure("expected SignedInfo, SignatureValue and an optional KeyInfo")),
    };
    let si_kids = element_children(signed_info);
    let (c14n, method, reference) = match si_kids.as_slice() {
        [c, m, r] if is_ds(*c, "CanonicalizationMethod") && is_ds(*m, "SignatureMethod") && is_ds(*r, "Reference") => {
            (*c, *m, *r)
        }
        _ => {
            return Err(structure(
                "SignedInfo must hold CanonicalizationMethod, SignatureMethod and exactly one Reference",
            ));
        }
    };
    if c14n.attribute("Algorithm") != Some(ALG_EXC_C14N) {
        return Err(refuse(
            "canonicalization_not_allowed",
            format!(
                "CanonicalizationMethod {} is refused; only {ALG_EXC_C14N}",
                clip(c14n.attribute("Algorithm").unwrap_or_default())
            ),
        ));
    }
    only_inclusive_namespaces(c14n)?;
    let expected = format!("#{id}");
    if reference.attribute("URI") != Some(expected.as_str()) {
        return Err(refuse(
            "reference_uri",
            format!(
                "the signature's Reference URI must be {}, found {}",
                clip(&expected),
                clip(reference.attribute("URI").unwrap_or("(missing)"))
            ),
        ));
    }
    let ref_kids = element_children(reference);
    let (transforms, digest) = match ref_kids.as_slice() {
        [t, d, v] if is_ds(*t, "Transforms") && is_ds(*d, "DigestMethod") && is_ds(*v, "DigestValue") => (*t, *d),
        _ => return Err(structure("Reference must hold Transforms, DigestMethod and DigestValue")),
    };
    let mut seen = Vec::new();
    for t in element_children(transforms) {
        if !is_ds(t, "Transform") {
            return Err(structure("unexpected element in Transforms"));
        }
        let alg = t.attribute("Algorithm").unwrap_or_default();
        match alg {
            ALG_ENVELOPED if element_children(t).is_empty() => {}
            ALG_EXC_C14N => only_inclusive_namespaces(t)?,
            _ => {
                return Err(refuse("transform_not_allowed", format!("the transform {} is refused", clip(alg))));
            }
        }
        if seen.contains(&alg) {
            return Err(refuse("transform_list", "a transform appears twice"));
        }
        seen.push(alg);
    }
    if !seen.contains(&ALG_ENVELOPED) {
        return Err(refuse("transform_list", "the enveloped-signature transform is required"));
    }
    let sig_alg = method.attribute("Algorithm").unwrap_or_default();
    let digest_alg = digest.attribute("Algorithm").unwrap_or_default();
    if !SIGNATURE_METHODS.contains(&sig_alg) && sig_alg != ALG_RSA_SHA1 {
        return Err(refuse("algorithm_not_allowed", format!("SignatureMethod {} is refused", clip(sig_alg))));
    }
    if !DIGEST_METHODS.contains(&digest_alg) && digest_alg != ALG_SHA1 {
        return Err(refuse("algorithm_not_allowed", format!("DigestMethod {} is refused", clip(digest_alg))));
    }
    if !element_children(method).is_empty() || !element_children(digest).is_empty() {
        return Err(structure("SignatureMethod and DigestMethod must be empty"));
    }
    Ok((sig_alg.to_string(), digest_alg.to_string()))
}

fn only_inclusive_namespaces(node: Node) -> Result<(), LoginFailure> {
    match element_children(node).as_slice() {
        [] => Ok(()),
        [k] if is_element(*k, NS_EXC_C14N, "InclusiveNamespaces") && element_children(*k).is_empty() => Ok(()),
        _ => Err(refuse("signature_structure", "only an InclusiveNamespaces element may configure exclusive c14n")),
    }
}

/// The per-IdP SHA-1 policy on an XML signature that passed [`precheck`].
pub fn refuse_sha1(p: &Prechecked, allow_sha1: bool) -> Result<(), LoginFailure> {
    match &p.algorithms {
        Some((sig, digest)) if !allow_sha1 && (sig == ALG_RSA_SHA1 || digest == ALG_SHA1) => {
            Err(LoginFailure::refused(
                "sha1_not_allowed",
                "the identity provider signed the logout message with SHA-1; configure RSA-SHA256 at the IdP, or allow \
             SHA-1 for this identity provider",
            )
            .with("signature_method", sig.clone())
            .with("digest_method", digest.clone()))
        }
        _ => Ok(()),
    }
}

/// libxmlsec1 through samael: verifies the one signature against the IdP's certificates and returns
/// only the signed content (the message element, signature removed). Blocking: run it off the async
/// threads. Only call it on XML that passed [`precheck`].
pub fn verify_signed(xml: &str, certificates: &[Vec<u8>], allow_sha1: bool) -> Result<String, LoginFailure> {
    if certificates.is_empty() {
        // Never fail open (an IdP without certificates is never saved).
        return Err(LoginFailure::refused("no_certificate", "this identity provider has no signing certificate"));
    }
    let certs: Vec<CertificateDer> = certificates.iter().map(|c| CertificateDer::from(c.clone())).collect();
    // samael's list has no SHA-1; when SHA-1 is allowed the pre-check's allow-list is the one enforced.
    let strong = [
        AllowedSignatureAlgorithm::RsaSha256,
        AllowedSignatureAlgorithm::RsaSha384,
        AllowedSignatureAlgorithm::RsaSha512,
        AllowedSignatureAlgorithm::EcdsaSha256,
    ];
    let allowed = (!allow_sha1).then_some(&strong[..]);
    XmlSec::reduce_xml_to_signed_with_allowed_algorithms(xml, &certs, ReduceMode::ValidateAndMarkNoAncestors, allowed)
        .map_err(|_| {
            LoginFailure::refused(
                "signature_invalid",
                "the signature does not verify with any of this identity provider's signing certificates (or the \
                 signed content was altered); if the IdP changed its certificate, refresh its metadata",
            )
            .with("check", "signature")
        })
}

// ---------------------------------------------------------------------------------------------
// Inbound: reading trusted content

/// A LogoutRequest, read from verified content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequestData {
    pub id: String,
    pub issuer: Option<String>,
    pub destination: Option<String>,
    pub issue_instant: Option<DateTime<Utc>>,
    pub not_on_or_after: Option<DateTime<Utc>>,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_indexes: Vec<String>,
    pub reason: Option<String>,
}

/// A LogoutResponse, read from verified content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponseData {
    pub id: String,
    pub issuer: Option<String>,
    pub destination: Option<String>,
    pub in_response_to: Option<String>,
    pub status: String,
    pub sub_status: Option<String>,
    pub status_message: Option<String>,
}

impl LogoutResponseData {
    pub fn is_success(&self) -> bool {
        self.status == STATUS_SUCCESS
    }
}

/// The root of verified content: the expected message with the expected ID.
fn verified_root<'a, 'input>(
    doc: &'a roxmltree::Document<'input>,
    kind: LogoutKind,
    expected_id: &str,
) -> Result<Node<'a, 'input>, LoginFailure> {
    let root = doc.root_element();
    if !is_element(root, NS_SAMLP, kind.element()) || root.attribute("ID") != Some(expected_id) {
        return Err(LoginFailure::refused(
            "signed_content_mismatch",
            format!("the signed content is not the {} that was received", kind.element()),
        ));
    }
    if root.attribute("Version") != Some("2.0") {
        return Err(LoginFailure::malformed("version", format!("the {} is not SAML 2.0", kind.element())));
    }
    Ok(root)
}

fn optional_time(node: Node, attr: &str) -> Result<Option<DateTime<Utc>>, LoginFailure> {
    match node.attribute(attr) {
        None => Ok(None),
        Some(v) => parse_xs_datetime(v)
            .map(Some)
            .ok_or_else(|| LoginFailure::malformed("bad_time", format!("{attr} is not a date-time: {}", clip(v)))),
    }
}

fn issuer_of(root: Node) -> Result<Option<String>, LoginFailure> {
    match root.children().find(|n| is_element(*n, NS_SAML, "Issuer")) {
        Some(n) => Ok(Some(simple_text(n, "Issuer")?)),
        None => Ok(None),
    }
}

/// Reads a LogoutRequest from verified XML (`expected_id`: the ID the pre-check saw).
pub fn parse_request(verified_xml: &str, expected_id: &str) -> Result<LogoutRequestData, LoginFailure> {
    let doc = parse_strict(verified_xml)?;
    let root = verified_root(&doc, LogoutKind::Request, expected_id)?;
    let mut name_id = None;
    let mut session_indexes = Vec::new();
    for child in element_children(root) {
        if is_element(child, NS_SAML, "NameID") {
            if name_id.is_some() {
                return Err(LoginFailure::malformed("name_id", "the LogoutRequest has more than one NameID"));
            }
            name_id = Some((simple_text(child, "NameID")?, child.attribute("Format").map(str::to_string)));
        } else if is_element(child, NS_SAML, "EncryptedID") || is_element(child, NS_SAML, "BaseID") {
            return Err(LoginFailure::refused(
                "name_id_unsupported",
                format!(
                    "the LogoutRequest identifies the user with {}; only a plain NameID is supported",
                    child.tag_name().name()
                ),
            ));
        } else if is_element(child, NS_SAMLP, "SessionIndex") {
            let index = simple_text(child, "SessionIndex")?;
            if !index.is_empty() {
                session_indexes.push(index);
            }
        }
    }
    let (name_id, name_id_format) = name_id
        .filter(|(v, _)| !v.is_empty())
        .ok_or_else(|| LoginFailure::malformed("name_id_missing", "the LogoutRequest has no NameID"))?;
    Ok(LogoutRequestData {
        id: expected_id.to_string(),
        issuer: issuer_of(root)?,
        destination: root.attribute("Destination").map(str::to_string),
        issue_instant: optional_time(root, "IssueInstant")?,
        not_on_or_after: optional_time(root, "NotOnOrAfter")?,
        name_id,
        name_id_format,
        session_indexes,
        reason: root.attribute("Reason").map(str::to_string),
    })
}

/// Reads a LogoutResponse from verified XML.
pub fn parse_response(verified_xml: &str, expected_id: &str) -> Result<LogoutResponseData, LoginFailure> {
    let doc = parse_strict(verified_xml)?;
    let root = verified_root(&doc, LogoutKind::Response, expected_id)?;
    let status = root
        .children()
        .find(|n| is_element(*n, NS_SAMLP, "Status"))
        .ok_or_else(|| LoginFailure::malformed("status_missing", "the LogoutResponse has no Status"))?;
    let code = status
        .children()
        .find(|n| is_element(*n, NS_SAMLP, "StatusCode"))
        .and_then(|c| c.attribute("Value").map(|v| (c, v.trim().to_string())))
        .ok_or_else(|| LoginFailure::malformed("status_missing", "the LogoutResponse has no StatusCode"))?;
    let sub_status = code
        .0
        .children()
        .find(|n| is_element(*n, NS_SAMLP, "StatusCode"))
        .and_then(|c| c.attribute("Value"))
        .map(|v| v.trim().to_string());
    let status_message = match status.children().find(|n| is_element(*n, NS_SAMLP, "StatusMessage")) {
        Some(m) => Some(simple_text(m, "StatusMessage")?),
        None => None,
    };
    Ok(LogoutResponseData {
        id: expected_id.to_string(),
        issuer: issuer_of(root)?,
        destination: root.attribute("Destination").map(str::to_string),
        in_response_to: root.attribute("InResponseTo").map(str::to_string),
        status: code.1,
        sub_status,
        status_message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::sp_keys::{KeyState, SpKey, generate};

    fn key() -> (SpKey, Vec<u8>) {
        let g = generate("idp.example.com", Utc::now()).unwrap();
        let der = openssl::x509::X509::from_pem(g.certificate_pem.as_bytes()).unwrap().to_der().unwrap();
        let k = SpKey::open(
            "k".into(),
            KeyState::Current,
            &g.private_key_pem,
            g.certificate_pem,
            g.fingerprint_sha256,
            g.not_after,
        )
        .unwrap();
        (k, der)
    }

    fn request(id: &str) -> String {
        LogoutRequestXml {
            id,
            issue_instant: Utc::now(),
            not_on_or_after: Utc::now() + chrono::Duration::minutes(5),
            destination: "https://sp.example.com/t/x/saml/slo",
            issuer: "https://idp.example.com",
            name_id: "alice@example.com",
            name_id_format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"),
            session_index: Some("_s1"),
        }
        .to_xml()
    }

    #[test]
    fn request_is_in_schema_order_and_parses_back() {
        let xml = request("_r1");
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let names: Vec<_> = element_children(doc.root_element()).iter().map(|n| n.tag_name().name()).collect();
        assert_eq!(names, ["Issuer", "NameID", "SessionIndex"]);
        let data = parse_request(&xml, "_r1").unwrap();
        assert_eq!(data.name_id, "alice@example.com");
        assert_eq!(data.name_id_format.as_deref(), Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"));
        assert_eq!(data.session_indexes, ["_s1"]);
        assert_eq!(data.issuer.as_deref(), Some("https://idp.example.com"));
        assert!(parse_request(&xml, "_other").is_err());
    }

    #[test]
    fn signed_request_verifies_and_reduces_to_the_message_also_inside_soap() {
        let (k, der) = key();
        let signed = crate::saml::xml_sign::sign_root(&request("_r2"), "_r2", &k).unwrap();
        for (xml, envelope) in
            [(signed.clone(), Envelope::Post), (soap_envelope(SoapVersion::V11, &signed), Envelope::Soap)]
        {
            let p = precheck(&xml, envelope).unwrap();
            assert_eq!(p.kind, LogoutKind::Request);
            assert_eq!(p.id, "_r2");
            let verified = verify_signed(&xml, std::slice::from_ref(&der), false).unwrap();
            let data = parse_request(&verified, "_r2").unwrap();
            assert_eq!(data.session_indexes, ["_s1"]);
            // Tampering after signing is caught by libxmlsec1.
            let tampered = xml.replace("alice@example.com", "bob@example.com");
            assert!(verify_signed(&tampered, std::slice::from_ref(&der), false).is_err());
        }
        let (_, other) = key();
        assert_eq!(verify_signed(&signed, &[other], false).unwrap_err().code, "signature_invalid");
    }

    #[test]
    fn precheck_refuses_hostile_shapes() {
        let (k, _) = key();
        let signed = crate::saml::xml_sign::sign_root(&request("_r3"), "_r3", &k).unwrap();
        let code = |xml: &str, env| precheck(xml, env).unwrap_err().code;
        assert_eq!(code(&request("_r3"), Envelope::Post), "unsigned");
        assert_eq!(code(&format!("<!DOCTYPE x [<!ENTITY a 'b'>]>{}", request("_r3")), Envelope::Redirect), "doctype");
        assert_eq!(
            code(&signed.replace("URI=\"#_r3\"", "URI=\"http://127.0.0.1:9/\""), Envelope::Post),
            "external_uri"
        );
        assert_eq!(code(&signed.replace("URI=\"#_r3\"", "URI=\"#other\""), Envelope::Post), "reference_uri");
        assert_eq!(code(&request("_r3"), Envelope::Soap), "not_soap");
        let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
        assert_eq!(code(&deep, Envelope::Redirect), "too_deep");
        assert_eq!(
            code(
                "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"x\"/>",
                Envelope::Redirect
            ),
            "not_a_logout_message"
        );
        let latin1 = format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}", request("_r3"));
        assert_eq!(code(&latin1, Envelope::Redirect), "encoding");
        // A second (wrapped) signature.
        let sig_start = signed.find("<ds:Signature").unwrap();
        let sig_end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        let twice = signed.replacen(
            "</samlp:LogoutRequest>",
            &format!("{}</samlp:LogoutRequest>", &signed[sig_start..sig_end]),
            1,
        );
        assert_eq!(code(&twice, Envelope::Post), "signature_count");
        // Duplicate IDs.
        let dup = signed.replacen("<saml:NameID", "<saml:NameID ID=\"_r3\"", 1);
        assert_eq!(code(&dup, Envelope::Post), "duplicate_id");
        // Redirect: no signature needed in the XML.
        assert_eq!(
            precheck(&request("_r3"), Envelope::Redirect).unwrap().issuer.as_deref(),
            Some("https://idp.example.com")
        );
    }

    #[test]
    fn response_parses_status_and_sub_status() {
        let xml = LogoutResponseXml {
            id: "_p1",
            in_response_to: Some("_r1"),
            issue_instant: Utc::now(),
            destination: Some("https://idp.example.com/slo"),
            issuer: "https://sp.example.com",
            status: STATUS_REQUESTER,
            sub_status: Some(STATUS_REQUEST_DENIED),
            status_message: Some("no <way>"),
        }
        .to_xml();
        let r = parse_response(&xml, "_p1").unwrap();
        assert_eq!(r.status, STATUS_REQUESTER);
        assert_eq!(r.sub_status.as_deref(), Some(STATUS_REQUEST_DENIED));
        assert_eq!(r.status_message.as_deref(), Some("no <way>"));
        assert_eq!(r.in_response_to.as_deref(), Some("_r1"));
        assert!(!r.is_success());
    }

    #[test]
    fn soap_envelope_strips_the_declaration() {
        let env = soap_envelope(SoapVersion::V11, "<?xml version=\"1.0\"?>\n<a/>");
        assert!(env.ends_with("<soap:Body><a/></soap:Body></soap:Envelope>"), "{env}");
        assert_eq!(strip_xml_declaration("<a/>"), "<a/>");
    }
}
