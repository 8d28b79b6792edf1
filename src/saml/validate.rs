//! The ACS pipeline (shared/docs/saml-sp.md §8): strict pre-check, then samael's "verify, then use only
//! what was signed", then our own checks on the signed assertion. Pure and blocking (run it off the
//! async threads); the replay cache and the pending request are the caller's (they need the database).

use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::EntityDescriptor;
use samael::schema::Assertion;
use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
use serde_json::json;

use super::error::{LoginFailure, from_samael};
use super::idp::{DEFAULT_EMAIL_ATTRIBUTES, Idp, IdpCertificate};
use super::metadata::xml_nesting_exceeds;
use super::precheck::{PrecheckPolicy, Prechecked, SignedElement, decode_saml_response_base64, precheck_response};
use super::sp::SpEndpoints;

/// Deepest nesting a response may have before any tree parser sees it (real ones nest ~8 levels).
const MAX_DEPTH: usize = 64;

const EMAIL_NAME_ID: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// One samael verifier per trusted certificate, so we can tell which certificate signed.
pub struct Verifiers(Vec<(String, ServiceProvider)>);

/// Decoded, pre-checked, and not yet verified: only good for choosing the IdP and pending request.
pub struct Decoded {
    pub xml: String,
    pub prechecked: Prechecked,
}

/// A response that passed every check.
#[derive(Debug, Clone)]
pub struct ValidatedLogin {
    pub assertion_id: String,
    pub issuer: String,
    pub in_response_to: Option<String>,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_index: Option<String>,
    pub session_not_on_or_after: Option<DateTime<Utc>>,
    pub attributes: Vec<(String, Vec<String>)>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// Until when the assertion ID must stay in the replay cache.
    pub replay_window_end: DateTime<Utc>,
    /// Assertion IssueInstant minus our clock, in seconds.
    pub clock_difference_secs: i64,
    pub certificate_fingerprint: String,
    pub signatures: Vec<(String, String, String)>,
}

impl ValidatedLogin {
    pub fn details(&self) -> serde_json::Value {
        json!({
            "issuer": self.issuer,
            "name_id_format": self.name_id_format,
            "session_index": self.session_index,
            "clock_difference_secs": self.clock_difference_secs,
            "certificate_fingerprint_sha256": self.certificate_fingerprint,
            "signatures": self.signatures.iter().map(|(e, s, d)| json!({"element": e, "signature_method": s, "digest_method": d})).collect::<Vec<_>>(),
        })
    }
}

/// Step 1: base64, size of the tree, strict structural pre-check. Nothing here is trusted yet.
pub fn decode(form_value: &str, allow_sha1: bool) -> Result<Decoded, LoginFailure> {
    let bytes = decode_saml_response_base64(form_value)?;
    let xml =
        String::from_utf8(bytes).map_err(|_| LoginFailure::malformed("not_utf8", "the response is not UTF-8 text"))?;
    if xml_nesting_exceeds(&xml, MAX_DEPTH) {
        return Err(LoginFailure::malformed(
            "too_deep",
            format!("the response nests more than {MAX_DEPTH} elements deep"),
        ));
    }
    let prechecked = precheck_response(&xml, &PrecheckPolicy { allow_sha1 })?;
    Ok(Decoded { xml, prechecked })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Minimal IdP metadata for samael: the entity ID and exactly one signing certificate.
fn metadata_for(idp: &Idp, cert: &IdpCertificate) -> String {
    let mut xml = String::new();
    let _ = write!(
        xml,
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="{}" Location="{}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
        escape(&idp.entity_id),
        STANDARD.encode(&cert.der),
        idp.sso.binding.uri(),
        escape(&idp.sso.location),
    );
    xml
}

/// Builds the verifiers of an IdP (cache the result per IdP version: certificates are decoded here).
pub fn verifiers(sp: &SpEndpoints, idp: &Idp) -> Result<Verifiers, LoginFailure> {
    let skew = i64::from(idp.settings.clock_skew_secs);
    // samael's list has no SHA-1; when SHA-1 is allowed the pre-check's allow-list is the one enforced.
    let algorithms = (!idp.settings.allow_sha1).then(|| {
        vec![
            AllowedSignatureAlgorithm::RsaSha256,
            AllowedSignatureAlgorithm::RsaSha384,
            AllowedSignatureAlgorithm::RsaSha512,
            AllowedSignatureAlgorithm::EcdsaSha256,
        ]
    });
    let mut out = Vec::new();
    for cert in &idp.certificates {
        let metadata: EntityDescriptor = metadata_for(idp, cert).parse().map_err(|_| {
            LoginFailure::refused("configuration", "the IdP's stored configuration could not be loaded")
        })?;
        let provider = ServiceProviderBuilder::default()
            .entity_id(sp.entity_id.clone())
            .acs_url(sp.acs_url.clone())
            .slo_url(sp.slo_url.clone())
            .idp_metadata(metadata)
            .allow_idp_initiated(idp.settings.allow_idp_initiated)
            .max_clock_skew(Duration::seconds(skew))
            .max_issue_delay(Duration::seconds(90 + skew))
            .allowed_signature_algorithms(algorithms.clone())
            .build()
            .map_err(|_| {
                LoginFailure::refused("configuration", "the IdP's stored configuration could not be loaded")
            })?;
        out.push((cert.fingerprint_sha256.clone(), provider));
    }
    if out.is_empty() {
        // Never reached (an IdP without certificates is never saved), and never fail open if it were.
        return Err(LoginFailure::refused("no_certificate", "this identity provider has no signing certificate"));
    }
    Ok(Verifiers(out))
}

/// Steps 2 and 3: signature and conditions (samael), then our own checks. `request_id` is the
/// pending AuthnRequest this response answers (`None` for an unsolicited response).
pub fn verify(
    decoded: &Decoded,
    verifiers: &Verifiers,
    sp: &SpEndpoints,
    idp: &Idp,
    request_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ValidatedLogin, LoginFailure> {
    let ids: Vec<&str> = request_id.into_iter().collect();
    let mut last_failure = None;
    let mut verified = None;
    for (fingerprint, provider) in &verifiers.0 {
        match provider.parse_xml_response(&decoded.xml, request_id.map(|_| ids.as_slice())) {
            Ok(assertion) => {
                verified = Some((fingerprint.clone(), assertion));
                break;
            }
            Err(e) => {
                let failure = from_samael(&e);
                if failure.code != "signature_invalid" {
                    // The signature verified under this certificate; a condition failed. Say what was
                    // expected and what the document carries, for the admin.
                    return Err(with_diagnostics(failure, &decoded.xml, sp, idp)
                        .with("certificate_fingerprint_sha256", fingerprint.clone()));
                }
                last_failure = Some(failure);
            }
        }
    }
    let (fingerprint, assertion) = verified.ok_or_else(|| {
        last_failure.unwrap_or_else(|| LoginFailure::refused("signature_invalid", "no signature verified")).with(
            "trusted_certificates",
            idp.certificates.iter().map(|c| c.fingerprint_sha256.clone()).collect::<Vec<_>>(),
        )
    })?;
    let fail = |f: LoginFailure| f.with("certificate_fingerprint_sha256", fingerprint.clone());

    if let Some(destination) = &decoded.prechecked.destination
        && destination != &sp.acs_url
    {
        return Err(fail(
            LoginFailure::refused("destination_mismatch", "the response's Destination is not this site's ACS URL")
                .expected(sp.acs_url.clone(), destination.clone()),
        ));
    }
    check_audience(&assertion, sp).map_err(&fail)?;
    check_bearer(&assertion, sp).map_err(&fail)?;
    if request_id.is_none() && !idp.settings.allow_idp_initiated {
        return Err(fail(LoginFailure::refused(
            "unsolicited_not_allowed",
            "the response answers no sign-in started here, and IdP-initiated sign-in is off for this IdP",
        )));
    }

    let subject_name_id = assertion.subject.as_ref().and_then(|s| s.name_id.as_ref());
    let name_id = subject_name_id.map(|n| n.value.trim().to_string()).filter(|v| !v.is_empty()).ok_or_else(|| {
        fail(LoginFailure::refused("name_id_missing", "the assertion has no NameID (an EncryptedID is not supported)"))
    })?;
    let name_id_format = subject_name_id.and_then(|n| n.format.clone());
    let attributes = collect_attributes(&assertion);
    let email = find_email(idp, &attributes, &name_id, name_id_format.as_deref());
    let display_name = find_display_name(idp, &attributes);
    let authn = assertion.authn_statements.as_ref().and_then(|s| s.first());
    let replay_window_end =
        [assertion.conditions.as_ref().and_then(|c| c.not_on_or_after), bearer_not_on_or_after(&assertion)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now + Duration::hours(1))
            + Duration::seconds(i64::from(idp.settings.clock_skew_secs));

    Ok(ValidatedLogin {
        assertion_id: assertion.id.clone(),
        issuer: assertion.issuer.value.clone().unwrap_or_default(),
        in_response_to: request_id.map(str::to_string),
        name_id,
        name_id_format,
        session_index: authn.and_then(|a| a.session_index.clone()),
        session_not_on_or_after: authn.and_then(|a| a.session_not_on_or_after),
        attributes,
        email,
        display_name,
        replay_window_end,
        clock_difference_secs: (assertion.issue_instant - now).num_seconds(),
        certificate_fingerprint: fingerprint,
        signatures: decoded
            .prechecked
            .signature_algorithms
            .iter()
            .map(|s| {
                let element = match s.element {
                    SignedElement::Response => "Response",
                    SignedElement::Assertion => "Assertion",
                };
                (element.to_string(), s.signature_method.clone(), s.digest_method.clone())
            })
            .collect(),
    })
}

/// Adds expected and received values to a refusal. The received values are read from the refused
/// document for the admin's eyes only; nothing is decided on them.
fn with_diagnostics(failure: LoginFailure, xml: &str, sp: &SpEndpoints, idp: &Idp) -> LoginFailure {
    let Ok(doc) = roxmltree::Document::parse(xml) else { return failure };
    let texts = |name: &str| -> Vec<String> {
        doc.descendants().filter(|n| n.tag_name().name() == name).filter_map(|n| n.text()).map(str::to_string).collect()
    };
    let attrs = |element: &str, attr: &str| -> Vec<String> {
        doc.descendants()
            .filter(|n| n.tag_name().name() == element)
            .filter_map(|n| n.attribute(attr))
            .map(str::to_string)
            .collect()
    };
    match failure.code {
        "audience_mismatch" => failure.expected(sp.entity_id.clone(), texts("Audience")),
        "recipient_mismatch" => failure.expected(sp.acs_url.clone(), attrs("SubjectConfirmationData", "Recipient")),
        "destination_mismatch" => failure.expected(sp.acs_url.clone(), attrs("Response", "Destination")),
        "issuer_mismatch" => failure.expected(idp.entity_id.clone(), texts("Issuer")),
        "expired" | "not_yet_valid" => failure
            .with("now", Utc::now().to_rfc3339())
            .with("not_before", attrs("Conditions", "NotBefore"))
            .with("not_on_or_after", attrs("Conditions", "NotOnOrAfter"))
            .with("issue_instant", attrs("Assertion", "IssueInstant"))
            .with("clock_skew_secs", idp.settings.clock_skew_secs),
        "status_not_success" => failure.with("status", attrs("StatusCode", "Value")),
        _ => failure,
    }
}

/// The audience must be present and name us (samael accepts a missing AudienceRestriction).
fn check_audience(a: &Assertion, sp: &SpEndpoints) -> Result<(), LoginFailure> {
    let restrictions = a.conditions.as_ref().and_then(|c| c.audience_restrictions.as_ref()).filter(|r| !r.is_empty());
    let Some(restrictions) = restrictions else {
        return Err(LoginFailure::refused(
            "audience_missing",
            "the assertion has no AudienceRestriction; enable audience restriction at the IdP with this site's entity ID",
        )
        .expected(sp.entity_id.clone(), serde_json::Value::Null));
    };
    // Every AudienceRestriction must include us (SAML core §2.5.1.4).
    for r in restrictions {
        if !r.audience.iter().any(|aud| aud.trim() == sp.entity_id) {
            return Err(LoginFailure::refused(
                "audience_mismatch",
                "the assertion is meant for another service provider",
            )
            .expected(sp.entity_id.clone(), r.audience.clone()));
        }
    }
    Ok(())
}

/// A bearer confirmation whose Recipient is our ACS must exist (samael checks it too; this makes the
/// rule explicit and independent of its version).
fn check_bearer(a: &Assertion, sp: &SpEndpoints) -> Result<(), LoginFailure> {
    let confirmations = a.subject.as_ref().and_then(|s| s.subject_confirmations.as_ref());
    let recipients: Vec<Option<String>> = confirmations
        .into_iter()
        .flatten()
        .filter(|c| c.method.as_deref() == Some(BEARER))
        .map(|c| c.subject_confirmation_data.as_ref().and_then(|d| d.recipient.clone()))
        .collect();
    if recipients.iter().any(|r| r.as_deref() == Some(sp.acs_url.as_str())) {
        return Ok(());
    }
    Err(LoginFailure::refused(
        "recipient_mismatch",
        "no bearer SubjectConfirmation names this site's ACS URL as Recipient",
    )
    .expected(sp.acs_url.clone(), recipients))
}

fn bearer_not_on_or_after(a: &Assertion) -> Option<DateTime<Utc>> {
    a.subject
        .as_ref()?
        .subject_confirmations
        .as_ref()?
        .iter()
        .filter_map(|c| c.subject_confirmation_data.as_ref()?.not_on_or_after)
        .max()
}

fn collect_attributes(a: &Assertion) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for statement in a.attribute_statements.iter().flatten() {
        for attr in &statement.attributes {
            let Some(name) = attr.name.clone().or_else(|| attr.friendly_name.clone()) else { continue };
            let values: Vec<String> = attr.values.iter().filter_map(|v| v.value.clone()).collect();
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => existing.extend(values),
                None => out.push((name, values)),
            }
        }
    }
    out
}

fn first_value<'a>(attributes: &'a [(String, Vec<String>)], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.iter().map(|s| s.trim()).find(|s| !s.is_empty()))
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty() && domain.contains('.') && !s.chars().any(char::is_whitespace)
}

/// The configured email attribute, else the first present default, else an emailAddress NameID.
fn find_email(idp: &Idp, attributes: &[(String, Vec<String>)], name_id: &str, format: Option<&str>) -> Option<String> {
    let candidate = match &idp.settings.email_attribute {
        Some(name) => first_value(attributes, name),
        None => DEFAULT_EMAIL_ATTRIBUTES
            .iter()
            .find_map(|n| first_value(attributes, n))
            .or_else(|| (format == Some(EMAIL_NAME_ID)).then_some(name_id)),
    };
    candidate.filter(|e| looks_like_email(e)).map(|e| e.to_ascii_lowercase())
}

fn find_display_name(idp: &Idp, attributes: &[(String, Vec<String>)]) -> Option<String> {
    let s = &idp.settings;
    if let Some(name) = s.display_name_attribute.as_deref().and_then(|n| first_value(attributes, n)) {
        return Some(name.to_string());
    }
    let given = s.given_name_attribute.as_deref().and_then(|n| first_value(attributes, n)).or_else(|| {
        [
            "http://wso2.org/claims/givenname",
            "givenName",
            "given_name",
            "firstName",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
            "urn:oid:2.5.4.42",
        ]
        .iter()
        .find_map(|n| first_value(attributes, n))
    });
    let family = s.family_name_attribute.as_deref().and_then(|n| first_value(attributes, n)).or_else(|| {
        [
            "http://wso2.org/claims/lastname",
            "sn",
            "surname",
            "family_name",
            "lastName",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
            "urn:oid:2.5.4.4",
        ]
        .iter()
        .find_map(|n| first_value(attributes, n))
    });
    match (given, family) {
        (Some(g), Some(f)) => Some(format!("{g} {f}")),
        (Some(g), None) => Some(g.to_string()),
        (None, Some(f)) => Some(f.to_string()),
        (None, None) => ["displayName", "http://schemas.microsoft.com/identity/claims/displayname", "cn", "name"]
            .iter()
            .find_map(|n| first_value(attributes, n))
            .map(str::to_string),
    }
}
