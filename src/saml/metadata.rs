//! SAML 2.0 IdP metadata import (and admin-pasted signing certificates).
//!
//! This is the configuration-time guard described in `shared/docs/saml-sp.md` §0 item 1, §7 and
//! §8: an IdP is only ever saved with an entityID, a usable SSO endpoint and **at least one**
//! signing certificate that decodes, because samael silently skips signature verification when
//! the metadata it is given has no signing key.
//!
//! # What is accepted
//!
//! * The root element must be `EntityDescriptor` or `EntitiesDescriptor` in the namespace
//!   `urn:oasis:names:tc:SAML:2.0:metadata`. Aggregates may nest `EntitiesDescriptor` up to
//!   [`MAX_AGGREGATE_NESTING`] levels.
//! * Only entities with an `IDPSSODescriptor` whose `protocolSupportEnumeration` lists
//!   `urn:oasis:names:tc:SAML:2.0:protocol` are identity providers. If an entity has several
//!   such descriptors, the first one is used.
//! * Entity choice: a single `EntityDescriptor` is used directly (if the caller names an
//!   entityID, it must match). In an aggregate, the caller's entityID picks the entity; without
//!   one, a sole IdP is chosen automatically and several IdPs give
//!   [`MetadataError::EntitySelectionRequired`] with the list of IdP entityIDs.
//! * Signing certificates: every `ds:X509Certificate` under
//!   `IDPSSODescriptor/KeyDescriptor/ds:KeyInfo/ds:X509Data` whose KeyDescriptor has
//!   `use="signing"` or no `use`. Keys of other roles (SPSSODescriptor, RoleDescriptor,
//!   AttributeAuthorityDescriptor) and of the document's own `ds:Signature` are never looked at.
//!   If any counted certificate does not decode, the whole import is refused: never fewer keys
//!   than the IdP published, never zero keys. Identical certificates listed twice are kept once.
//! * SSO endpoint: the first HTTP-Redirect `SingleSignOnService`, else the first HTTP-POST one.
//!   SAML 1, SOAP/ECP, Artifact and POST-SimpleSign are ignored. SLO: Redirect preferred, else
//!   POST; the first SOAP SLO endpoint is kept separately for back-channel logout.
//! * Locations and entityIDs are `xs:anyURI`, whose schema whitespace facet is "collapse", so
//!   surrounding whitespace is removed; otherwise they are kept exactly as written (query strings
//!   included). Append the SAMLRequest with [`Endpoint::query_separator`].
//!
//! # Validity
//!
//! `validUntil` and `cacheDuration` are read from every enclosing `EntitiesDescriptor`, the
//! chosen `EntityDescriptor` and its `IDPSSODescriptor`. `valid_until` is the **earliest**
//! `validUntil` and `cache_duration` the **shortest** `cacheDuration` (the most conservative
//! reading). Unparseable values produce a warning and are ignored. `xs:dateTime` values without
//! a time zone are taken as UTC.
//!
//! # Certificate subjects
//!
//! Subjects and issuers are rendered RFC 4514-style: RDNs in **reverse** DER order (most
//! specific first, e.g. `CN=localhost, O=WSO2, L=Mountain View, ST=CA, C=US`), joined with
//! `", "`, attribute names as OpenSSL short names (`CN`, `O`, `OU`, `C`, `ST`, `L`, `DC`,
//! `emailAddress`, ...) or the dotted OID, special characters escaped with `\`. Values that are
//! not text are shown as `#` + hex of the raw value bytes. Multi-valued RDNs are shown as
//! separate RDNs. An empty subject is the empty string.
//!
//! # Warnings
//!
//! Import warnings never block saving; their stable codes are in [`warning_codes`]. Error
//! messages and warnings quote entityIDs and URLs from the uploaded document: escape them when
//! rendering HTML.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::x509::{X509, X509NameRef};
use roxmltree::Node;
use sha2::{Digest, Sha256};

/// Largest metadata document accepted (1 MiB). Callers should enforce it too, before reading
/// the whole body.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;
/// Largest pasted certificate accepted (64 KiB).
pub const MAX_CERTIFICATE_INPUT_BYTES: usize = 64 * 1024;
/// Certificates and metadata that expire within this many days produce a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
/// How deeply `EntitiesDescriptor` elements may nest.
pub const MAX_AGGREGATE_NESTING: usize = 8;
/// SHA-256 fingerprint of WSO2 Identity Server's default `wso2carbon` certificate, whose
/// private key ships with every WSO2 download.
pub const WSO2_DEFAULT_CERT_SHA256: &str =
    "1D:72:9F:B8:C4:68:EA:D8:20:A2:A0:BE:4A:DB:8F:BA:BE:D9:AB:1B:A1:26:C9:D2:14:66:C5:70:6E:8E:4D:30";

const NS_MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const SAML2_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const BINDING_SOAP: &str = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP";
/// Deepest element nesting accepted. roxmltree's tokenizer recurses once per nesting level
/// with no limit of its own, so a few tens of thousands of nested elements overflow the stack
/// and abort the process; real metadata nests about 10 levels.
pub const MAX_XML_DEPTH: usize = 64;
/// roxmltree node limit: generous for 1 MiB, but bounds memory on hostile input.
const XML_NODES_LIMIT: u32 = 1 << 20;
/// Entity IDs listed in an error message (the error's `candidates` field has all of them).
const MAX_LISTED_CANDIDATES: usize = 10;
/// Longest quoted value (entityID, URL, ...) in a message.
const MAX_QUOTED_CHARS: usize = 200;

/// Stable codes of [`ImportWarning`]s.
pub mod warning_codes {
    /// A signing certificate's notAfter is in the past.
    pub const CERTIFICATE_EXPIRED: &str = "certificate_expired";
    /// A signing certificate expires within [`super::EXPIRY_WARNING_DAYS`] days.
    pub const CERTIFICATE_EXPIRING_SOON: &str = "certificate_expiring_soon";
    /// A signing certificate's notBefore is in the future.
    pub const CERTIFICATE_NOT_YET_VALID: &str = "certificate_not_yet_valid";
    /// An RSA key shorter than 2048 bits.
    pub const WEAK_RSA_KEY: &str = "weak_rsa_key";
    /// Information only: the certificate itself is signed with SHA-1.
    pub const SHA1_SIGNED_CERTIFICATE: &str = "sha1_signed_certificate";
    /// Information only: the certificate itself is signed with MD5.
    pub const MD5_SIGNED_CERTIFICATE: &str = "md5_signed_certificate";
    /// The publicly known WSO2 `wso2carbon` default certificate (matched by fingerprint).
    pub const WSO2_DEFAULT_CERTIFICATE: &str = "wso2_default_certificate";
    /// Another certificate with WSO2's default subject (`O=WSO2`, `CN=localhost`): most likely
    /// a default key store of a different WSO2 release.
    pub const WSO2_DEFAULT_CERTIFICATE_SUSPECTED: &str = "wso2_default_certificate_suspected";
    /// The chosen SSO endpoint is plain `http://`.
    pub const SSO_URL_NOT_HTTPS: &str = "sso_url_not_https";
    /// A chosen SLO endpoint is plain `http://`.
    pub const SLO_URL_NOT_HTTPS: &str = "slo_url_not_https";
    /// A SingleLogoutService Location is unusable and was ignored.
    pub const SLO_LOCATION_INVALID: &str = "slo_location_invalid";
    /// The effective `validUntil` is in the past.
    pub const METADATA_EXPIRED: &str = "metadata_expired";
    /// The effective `validUntil` is within [`super::EXPIRY_WARNING_DAYS`] days.
    pub const METADATA_EXPIRING_SOON: &str = "metadata_expiring_soon";
    /// A `validUntil` attribute is not an `xs:dateTime`; it was ignored.
    pub const INVALID_VALID_UNTIL: &str = "invalid_valid_until";
    /// A `cacheDuration` attribute is not an `xs:duration`; it was ignored.
    pub const INVALID_CACHE_DURATION: &str = "invalid_cache_duration";
    /// The entityID contains `{`/`}`: a template such as Entra ID's `{tenantid}`.
    pub const ENTITY_ID_TEMPLATE: &str = "entity_id_template";
    /// A KeyDescriptor has a `use` other than `signing`/`encryption`; it was ignored.
    pub const UNKNOWN_KEY_USE: &str = "unknown_key_use";
}

use warning_codes as wc;

/// The result of a successful import: everything the SP needs to trust this IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedIdp {
    /// The IdP's entityID (compared with the `Issuer` of every response).
    pub entity_id: String,
    /// Chosen SSO endpoint: HTTP-Redirect if present, else HTTP-POST.
    pub sso: Endpoint,
    /// Chosen front-channel SLO endpoint: HTTP-Redirect preferred, else HTTP-POST.
    pub slo: Option<Endpoint>,
    /// SOAP (back-channel) SLO endpoint, if the IdP publishes one.
    pub slo_soap: Option<String>,
    /// Every signing certificate of the IdP (at least one), in document order.
    pub certificates: Vec<SigningCertificate>,
    /// `NameIDFormat`s the IdP advertises, in document order, without duplicates.
    pub name_id_formats: Vec<String>,
    /// `WantAuthnRequestsSigned` on the IDPSSODescriptor (default false).
    pub want_authn_requests_signed: bool,
    /// Earliest `validUntil` found on the chosen entity's descriptors and enclosing aggregates.
    pub valid_until: Option<DateTime<Utc>>,
    /// Shortest valid `cacheDuration` found on the same elements.
    pub cache_duration: Option<Duration>,
    /// Problems worth showing to the admin; none of them blocks saving.
    pub warnings: Vec<ImportWarning>,
}

impl ImportedIdp {
    /// Whether a warning with this code was produced.
    pub fn has_warning(&self, code: &str) -> bool {
        self.warnings.iter().any(|w| w.code == code)
    }

    /// Whether the metadata's `validUntil` has passed. An automatic metadata refresh should
    /// reject such a document (README rule 6); a manual upload may save it with the warning.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.valid_until.is_some_and(|v| v < now)
    }
}

/// A SAML endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub binding: Binding,
    /// The `Location` exactly as written (surrounding whitespace removed), query preserved.
    pub location: String,
}

impl Endpoint {
    /// What to put between [`Endpoint::location`] and `SAMLRequest=…`: `"&"` if the location
    /// already has a query string, `""` if it already ends with `?` or `&`, else `"?"`.
    pub fn query_separator(&self) -> &'static str {
        if self.location.ends_with('?') || self.location.ends_with('&') {
            ""
        } else if self.location.contains('?') {
            "&"
        } else {
            "?"
        }
    }
}

/// Supported front-channel bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binding {
    HttpRedirect,
    HttpPost,
}

impl Binding {
    /// The SAML binding URI.
    pub fn uri(self) -> &'static str {
        match self {
            Binding::HttpRedirect => BINDING_REDIRECT,
            Binding::HttpPost => BINDING_POST,
        }
    }

    fn short_name(self) -> &'static str {
        match self {
            Binding::HttpRedirect => "HTTP-Redirect",
            Binding::HttpPost => "HTTP-POST",
        }
    }
}

/// A decoded IdP signing certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningCertificate {
    /// The DER bytes exactly as published.
    pub der: Vec<u8>,
    /// SHA-256 of [`SigningCertificate::der`], upper-case hex with colons.
    pub fingerprint_sha256: String,
    /// Subject, RFC 4514-style (see the module docs); may be empty.
    pub subject: String,
    /// Issuer, same format.
    pub issuer: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Key size in bits as OpenSSL reports it (RSA modulus size, EC curve size).
    pub key_bits: u32,
    /// `RSA`, `RSA-PSS`, `EC`, `DSA`, `Ed25519`, `Ed448`, or `other(<id>)`.
    pub key_type: String,
    /// The algorithm the certificate itself is signed with, e.g. `sha256WithRSAEncryption`.
    pub signature_algorithm: String,
}

/// A non-blocking import finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportWarning {
    /// Stable snake_case code, see [`warning_codes`].
    pub code: &'static str,
    /// Human-readable explanation for the admin.
    pub message: String,
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// Why metadata or a pasted certificate was refused. [`MetadataError::code`] is stable;
/// [`MetadataError::field`] names the form field the admin must correct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error(
        "The metadata is {size} bytes; the limit is {limit} bytes (1 MiB). Metadata for one IdP is normally a few KB: if this is a federation aggregate, download the metadata of your IdP alone (most federations publish per-entity metadata)."
    )]
    MetadataTooLarge { size: usize, limit: usize },

    #[error(
        "The metadata is empty. Upload or paste the IdP's SAML 2.0 metadata XML (it starts with <EntityDescriptor or <md:EntityDescriptor)."
    )]
    EmptyMetadata,

    #[error("This is not XML: SAML metadata is an XML document that starts with '<'. {hint}")]
    NotXml { hint: &'static str },

    #[error(
        "This is an HTML page, not SAML metadata: the URL or file is probably a login or documentation page. In the IdP's admin console, use the 'SAML metadata' or 'Federation metadata' download (an XML file starting with <EntityDescriptor)."
    )]
    LooksLikeHtml,

    #[error(
        "The metadata contains a DOCTYPE declaration (<!DOCTYPE ...>). DOCTYPEs are refused because they enable entity-expansion and external-entity (XXE) attacks, and genuine SAML metadata never needs one. Remove the DOCTYPE, or download the metadata again directly from the IdP."
    )]
    DoctypeNotAllowed,

    #[error(
        "The metadata nests XML elements more than {limit} levels deep; real SAML metadata nests about 10. The document is refused as malformed or hostile; download the metadata again from the IdP."
    )]
    XmlTooDeep { limit: usize },

    #[error(
        "The metadata is not well-formed XML (line {line}, column {column}: {reason}). The file may be truncated or edited by hand; download it again from the IdP."
    )]
    MalformedXml { line: u32, column: u32, reason: String },

    #[error(
        "The root element is {found}, but SAML 2.0 metadata must start with EntityDescriptor or EntitiesDescriptor in the namespace urn:oasis:names:tc:SAML:2.0:metadata. Check that this is the IdP's SAML 2.0 metadata, not a SAML message, WS-Federation-only or SAML 1.x document."
    )]
    UnexpectedRootElement { found: String },

    #[error(
        "The metadata is an aggregate (EntitiesDescriptor) that contains no EntityDescriptor, so there is no identity provider to import. Use the metadata of your IdP."
    )]
    EmptyAggregate,

    #[error(
        "EntitiesDescriptor elements are nested more than {limit} levels deep; this is not usable federation metadata. Use the metadata of your IdP alone."
    )]
    AggregateTooDeep { limit: usize },

    #[error(
        "EntityDescriptor #{position} in the document has no entityID (or an empty one). Every SAML entity needs an entityID: it is compared with the Issuer of every response. Download complete metadata from the IdP."
    )]
    MissingEntityId { position: usize },

    #[error(
        "The entityID {} appears {count} times in this metadata, so it is ambiguous which entry to trust. Use metadata that describes the IdP once.", quote(.entity_id)
    )]
    DuplicateEntityId { entity_id: String, count: usize },

    #[error(
        "None of the {entity_count} entities in this aggregate is a SAML 2.0 identity provider (none has an IDPSSODescriptor for SAML 2.0). This is probably service-provider metadata; use your IdP's metadata."
    )]
    NoIdpInAggregate { entity_count: usize },

    #[error(
        "This metadata contains {} identity providers; choose the one to use by its entityID: {}.", .candidates.len(), list(.candidates)
    )]
    EntitySelectionRequired { candidates: Vec<String> },

    #[error("{}", entity_not_found_message(.requested, .candidates))]
    EntityNotFound { requested: String, candidates: Vec<String> },

    #[error(
        "The entity {} is not a SAML 2.0 identity provider: it has no IDPSSODescriptor supporting SAML 2.0 (it is probably a service provider). Choose one of the identity providers in this metadata: {}.", quote(.requested), list(.candidates)
    )]
    NotAnIdp { requested: String, candidates: Vec<String> },

    #[error("{}", no_idp_descriptor_message(.entity_id, *.saml1_only))]
    NoIdpDescriptor { entity_id: String, saml1_only: bool },

    #[error(
        "The IdP {} has no SingleSignOnService with the SAML 2.0 HTTP-Redirect or HTTP-POST binding (bindings found: {}). SAML 1, SOAP/ECP, Artifact and POST-SimpleSign are not supported. Enable HTTP-Redirect or HTTP-POST for SAML 2.0 single sign-on on the IdP and download its metadata again.", quote(.entity_id), found_list(.found_bindings)
    )]
    NoSupportedSsoBinding { entity_id: String, found_bindings: Vec<String> },

    #[error(
        "The IdP's {binding} SingleSignOnService Location {} cannot be used: {reason}. It must be an absolute https:// URL. Correct the metadata or ask the IdP administrator.", quote(.location)
    )]
    InvalidSsoLocation { entity_id: String, binding: &'static str, location: String, reason: &'static str },

    #[error("{}", no_signing_certificate_message(.entity_id, *.encryption_keys, *.keys_without_certificate))]
    NoSigningCertificate { entity_id: String, encryption_keys: usize, keys_without_certificate: usize },

    #[error(
        "Signing certificate #{index} of {total} of the IdP {} (a KeyDescriptor with use=\"signing\" or no use, in its IDPSSODescriptor) cannot be decoded: {reason}. Every signing certificate must be a base64-encoded X.509 certificate; the import is refused rather than saved with fewer keys. Download the metadata again from the IdP (placeholder text such as '...' means the certificate was removed from the file).", quote(.entity_id)
    )]
    InvalidSigningCertificate { entity_id: String, index: usize, total: usize, reason: String },

    #[error(
        "The pasted certificate is {size} bytes; the limit is {limit} bytes. Paste only the IdP's signing certificate (a PEM block or its base64 text)."
    )]
    CertificateTooLarge { size: usize, limit: usize },

    #[error(
        "No certificate was given. Paste the IdP's signing certificate: a PEM block starting with -----BEGIN CERTIFICATE-----, or the base64 text from the metadata's <X509Certificate> element."
    )]
    CertificateEmpty,

    #[error(
        "This is a private key, not a certificate. Never paste the IdP's private key: it must stay on the IdP. Paste its public certificate (-----BEGIN CERTIFICATE-----) instead, and if this was a real key, tell the IdP administrator that it has been exposed."
    )]
    PrivateKeyPasted,

    #[error(
        "The PEM block is '{label}', but a certificate (-----BEGIN CERTIFICATE-----) is required. Export the IdP's signing certificate as PEM or Base64-encoded X.509 (.pem, .crt, .cer)."
    )]
    UnsupportedPemBlock { label: String },

    #[error(
        "The input contains {count} certificates; paste exactly one, the IdP's signing certificate (not its CA chain). To trust several keys during a rollover, add each certificate separately."
    )]
    MultipleCertificates { count: usize },

    #[error(
        "The PEM text is malformed: {reason}. Paste the whole block, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----."
    )]
    CertificatePemMalformed { reason: String },

    #[error(
        "The certificate could not be read: {reason}. Paste a PEM certificate (-----BEGIN CERTIFICATE----- ...) or the base64 text of a DER-encoded X.509 certificate."
    )]
    InvalidCertificate { reason: String },
}

impl MetadataError {
    /// Stable snake_case code for API clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            MetadataError::MetadataTooLarge { .. } => "metadata_too_large",
            MetadataError::EmptyMetadata => "metadata_empty",
            MetadataError::NotXml { .. } => "not_xml",
            MetadataError::LooksLikeHtml => "html_not_metadata",
            MetadataError::DoctypeNotAllowed => "doctype_not_allowed",
            MetadataError::XmlTooDeep { .. } => "xml_too_deep",
            MetadataError::MalformedXml { .. } => "malformed_xml",
            MetadataError::UnexpectedRootElement { .. } => "unexpected_root_element",
            MetadataError::EmptyAggregate => "empty_aggregate",
            MetadataError::AggregateTooDeep { .. } => "aggregate_too_deep",
            MetadataError::MissingEntityId { .. } => "missing_entity_id",
            MetadataError::DuplicateEntityId { .. } => "duplicate_entity_id",
            MetadataError::NoIdpInAggregate { .. } => "no_idp_in_aggregate",
            MetadataError::EntitySelectionRequired { .. } => "entity_selection_required",
            MetadataError::EntityNotFound { .. } => "entity_not_found",
            MetadataError::NotAnIdp { .. } => "not_an_idp",
            MetadataError::NoIdpDescriptor { .. } => "no_idp_descriptor",
            MetadataError::NoSupportedSsoBinding { .. } => "no_supported_sso_binding",
            MetadataError::InvalidSsoLocation { .. } => "invalid_sso_location",
            MetadataError::NoSigningCertificate { .. } => "no_signing_certificate",
            MetadataError::InvalidSigningCertificate { .. } => "invalid_signing_certificate",
            MetadataError::CertificateTooLarge { .. } => "certificate_too_large",
            MetadataError::CertificateEmpty => "certificate_empty",
            MetadataError::PrivateKeyPasted => "private_key_pasted",
            MetadataError::UnsupportedPemBlock { .. } => "unsupported_pem_block",
            MetadataError::MultipleCertificates { .. } => "multiple_certificates",
            MetadataError::CertificatePemMalformed { .. } => "certificate_pem_malformed",
            MetadataError::InvalidCertificate { .. } => "certificate_invalid",
        }
    }

    /// The input field the admin has to correct: `metadata_xml`, `entity_id` or
    /// `certificate_pem`.
    pub fn field(&self) -> Option<&'static str> {
        Some(match self {
            MetadataError::EntitySelectionRequired { .. }
            | MetadataError::EntityNotFound { .. }
            | MetadataError::NotAnIdp { .. } => "entity_id",
            MetadataError::CertificateTooLarge { .. }
            | MetadataError::CertificateEmpty
            | MetadataError::PrivateKeyPasted
            | MetadataError::UnsupportedPemBlock { .. }
            | MetadataError::MultipleCertificates { .. }
            | MetadataError::CertificatePemMalformed { .. }
            | MetadataError::InvalidCertificate { .. } => "certificate_pem",
            _ => "metadata_xml",
        })
    }

    /// IdP entityIDs the admin can choose from, for the errors that carry them.
    pub fn candidates(&self) -> Option<&[String]> {
        match self {
            MetadataError::EntitySelectionRequired { candidates }
            | MetadataError::EntityNotFound { candidates, .. }
            | MetadataError::NotAnIdp { candidates, .. } => Some(candidates),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Message helpers

fn quote(s: &str) -> String {
    if s.chars().count() > MAX_QUOTED_CHARS {
        let cut: String = s.chars().take(MAX_QUOTED_CHARS).collect();
        format!("\"{cut}…\"")
    } else {
        format!("\"{s}\"")
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    let mut out: Vec<String> = items.iter().take(MAX_LISTED_CANDIDATES).map(|s| quote(s)).collect();
    if items.len() > MAX_LISTED_CANDIDATES {
        out.push(format!("and {} more", items.len() - MAX_LISTED_CANDIDATES));
    }
    out.join(", ")
}

fn found_list(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { list(items) }
}

fn entity_not_found_message(requested: &str, candidates: &[String]) -> String {
    let choices = if candidates.is_empty() {
        "It contains no SAML 2.0 identity provider.".to_owned()
    } else {
        format!("The identity providers it contains are: {}.", list(candidates))
    };
    format!(
        "No entity with the entityID {} is in this metadata. {choices} entityIDs are compared exactly (including case and trailing slashes).",
        quote(requested)
    )
}

fn no_idp_descriptor_message(entity_id: &str, saml1_only: bool) -> String {
    if saml1_only {
        format!(
            "The entity {} has an IDPSSODescriptor, but its protocolSupportEnumeration does not include urn:oasis:names:tc:SAML:2.0:protocol: it supports only SAML 1.x or another protocol. Enable SAML 2.0 on the IdP and download its metadata again.",
            quote(entity_id)
        )
    } else {
        format!(
            "The entity {} has no IDPSSODescriptor, so it is not an identity provider: this looks like service-provider metadata. Upload the metadata of your IdP instead; keys of a service provider are never used to verify logins.",
            quote(entity_id)
        )
    }
}

fn no_signing_certificate_message(entity_id: &str, encryption_keys: usize, keys_without_certificate: usize) -> String {
    let mut extra = String::new();
    if encryption_keys > 0 {
        extra.push_str(&format!(
            " It has {encryption_keys} KeyDescriptor(s) with use=\"encryption\", which cannot be used to verify signatures."
        ));
    }
    if keys_without_certificate > 0 {
        extra.push_str(&format!(
            " {keys_without_certificate} signing KeyDescriptor(s) carry no X509Certificate (a bare key or key name), which is not supported."
        ));
    }
    format!(
        "The IdP {} publishes no signing certificate: its IDPSSODescriptor has no KeyDescriptor with use=\"signing\" (or without use) containing an X509Certificate.{extra} Without one, responses could not be verified, so the import is refused. Download metadata that includes the IdP's signing certificate, or ask the IdP administrator for it.",
        quote(entity_id)
    )
}

// ---------------------------------------------------------------------------------------------
// Metadata import

/// Parses IdP metadata and applies the import rules (see the module docs).
///
/// `entity_id` selects the entity in an aggregate (and must match a single EntityDescriptor if
/// given); it is trimmed, and an empty or whitespace-only value counts as `None`. Matching is
/// exact otherwise. `now` is used for the expiry warnings only.
pub fn parse_idp_metadata(
    xml: &str,
    entity_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ImportedIdp, MetadataError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::MetadataTooLarge { size: xml.len(), limit: MAX_METADATA_BYTES });
    }
    let text = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    precheck_text(text)?;

    let options = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: XML_NODES_LIMIT };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => MetadataError::DoctypeNotAllowed,
        other => {
            let pos = other.pos();
            MetadataError::MalformedXml { line: pos.row, column: pos.col, reason: other.to_string() }
        }
    })?;

    let root = doc.root_element();
    let requested = entity_id.map(str::trim).filter(|s| !s.is_empty());

    let entities = if is_md(root, "EntityDescriptor") {
        vec![EntityRef { node: root, aggregates: Vec::new() }]
    } else if is_md(root, "EntitiesDescriptor") {
        let mut out = Vec::new();
        collect_entities(root, &mut Vec::new(), &mut out)?;
        if out.is_empty() {
            return Err(MetadataError::EmptyAggregate);
        }
        out
    } else {
        if root.tag_name().name().eq_ignore_ascii_case("html") {
            return Err(MetadataError::LooksLikeHtml);
        }
        return Err(MetadataError::UnexpectedRootElement { found: describe_element(root) });
    };
    let is_aggregate = is_md(root, "EntitiesDescriptor");

    // Every entity must have an entityID, aggregate or not.
    let mut ids = Vec::with_capacity(entities.len());
    for (i, e) in entities.iter().enumerate() {
        let id = collapse_uri(e.node.attribute("entityID").unwrap_or(""));
        if id.is_empty() {
            return Err(MetadataError::MissingEntityId { position: i + 1 });
        }
        ids.push(id);
    }

    let idp_descriptors: Vec<Option<Node>> = entities.iter().map(|e| saml2_idp_descriptor(e.node)).collect();
    let mut candidates: Vec<String> = Vec::new();
    for (id, desc) in ids.iter().zip(&idp_descriptors) {
        if desc.is_some() && !candidates.iter().any(|c| c == id) {
            candidates.push(id.clone());
        }
    }

    let chosen_id: String = match requested {
        Some(req) => {
            if !ids.iter().any(|id| id == req) {
                return Err(MetadataError::EntityNotFound { requested: req.to_owned(), candidates });
            }
            req.to_owned()
        }
        None => {
            if !is_aggregate {
                ids[0].clone()
            } else {
                match candidates.len() {
                    0 => {
                        return Err(MetadataError::NoIdpInAggregate { entity_count: entities.len() });
                    }
                    1 => candidates[0].clone(),
                    _ => return Err(MetadataError::EntitySelectionRequired { candidates }),
                }
            }
        }
    };

    let matches: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] == chosen_id).collect();
    if matches.len() > 1 {
        return Err(MetadataError::DuplicateEntityId { entity_id: chosen_id, count: matches.len() });
    }
    let index = matches[0];
    let entity = &entities[index];
    let Some(idp) = idp_descriptors[index] else {
        // In an aggregate only an explicit choice can land here (an automatic choice is
        // always an IdP); a single EntityDescriptor is refused for what it lacks.
        if is_aggregate {
            return Err(MetadataError::NotAnIdp { requested: chosen_id, candidates });
        }
        return Err(MetadataError::NoIdpDescriptor {
            entity_id: chosen_id,
            saml1_only: md_children(entity.node, "IDPSSODescriptor").next().is_some(),
        });
    };

    build_idp(chosen_id, entity, idp, now)
}

struct EntityRef<'a, 'input> {
    node: Node<'a, 'input>,
    /// Enclosing EntitiesDescriptor elements, outermost first.
    aggregates: Vec<Node<'a, 'input>>,
}

fn collect_entities<'a, 'input>(
    aggregate: Node<'a, 'input>,
    path: &mut Vec<Node<'a, 'input>>,
    out: &mut Vec<EntityRef<'a, 'input>>,
) -> Result<(), MetadataError> {
    if path.len() >= MAX_AGGREGATE_NESTING {
        return Err(MetadataError::AggregateTooDeep { limit: MAX_AGGREGATE_NESTING });
    }
    path.push(aggregate);
    for child in aggregate.children().filter(Node::is_element) {
        if is_md(child, "EntityDescriptor") {
            out.push(EntityRef { node: child, aggregates: path.clone() });
        } else if is_md(child, "EntitiesDescriptor") {
            collect_entities(child, path, out)?;
        }
    }
    path.pop();
    Ok(())
}

fn build_idp(
    entity_id: String,
    entity: &EntityRef<'_, '_>,
    idp: Node<'_, '_>,
    now: DateTime<Utc>,
) -> Result<ImportedIdp, MetadataError> {
    let mut warnings = Vec::new();

    if entity_id.contains('{') || entity_id.contains('}') {
        warnings.push(ImportWarning {
            code: wc::ENTITY_ID_TEMPLATE,
            message: format!(
                "The entityID {} is a template (it contains '{{…}}'), as in Entra ID's tenant-independent 'common' metadata. Real responses carry your tenant's own Issuer, so logins would fail: use your tenant-specific federation metadata URL (with your tenant ID) instead.",
                quote(&entity_id)
            ),
        });
    }

    // Validity: enclosing aggregates, the entity, and the IDPSSODescriptor.
    let mut scopes: Vec<(String, Node)> = entity
        .aggregates
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let label = if i == 0 {
                "the root EntitiesDescriptor".to_owned()
            } else {
                format!("a nested EntitiesDescriptor (level {})", i + 1)
            };
            (label, *n)
        })
        .collect();
    scopes.push(("the EntityDescriptor".to_owned(), entity.node));
    scopes.push(("the IDPSSODescriptor".to_owned(), idp));
    let (valid_until, cache_duration) = read_validity(&scopes, now, &mut warnings);

    // SSO endpoint.
    let sso_services: Vec<Node> = md_children(idp, "SingleSignOnService").collect();
    let pick = |binding: Binding| {
        sso_services.iter().find(|n| n.attribute("Binding").map(collapse_uri).as_deref() == Some(binding.uri()))
    };
    let (binding, sso_node) = match pick(Binding::HttpRedirect) {
        Some(n) => (Binding::HttpRedirect, n),
        None => match pick(Binding::HttpPost) {
            Some(n) => (Binding::HttpPost, n),
            None => {
                let mut found_bindings: Vec<String> = Vec::new();
                for n in &sso_services {
                    let b = collapse_uri(n.attribute("Binding").unwrap_or("(no Binding)"));
                    if !found_bindings.contains(&b) {
                        found_bindings.push(b);
                    }
                }
                return Err(MetadataError::NoSupportedSsoBinding { entity_id, found_bindings });
            }
        },
    };
    let location = collapse_uri(sso_node.attribute("Location").unwrap_or(""));
    match check_http_url(&location) {
        Ok(true) => {}
        Ok(false) => warnings.push(ImportWarning {
            code: wc::SSO_URL_NOT_HTTPS,
            message: format!(
                "The single sign-on URL {} uses plain http: login requests and the user's IdP session travel unencrypted. Use the IdP's https URL; plain http is only acceptable for local testing.",
                quote(&location)
            ),
        }),
        Err(reason) => {
            return Err(MetadataError::InvalidSsoLocation {
                entity_id,
                binding: binding.short_name(),
                location,
                reason,
            });
        }
    }
    let sso = Endpoint { binding, location };

    // SLO endpoints: invalid ones are ignored with a warning.
    let mut slo_redirect = None;
    let mut slo_post = None;
    let mut slo_soap = None;
    for n in md_children(idp, "SingleLogoutService") {
        let b = collapse_uri(n.attribute("Binding").unwrap_or(""));
        let slot = match b.as_str() {
            BINDING_REDIRECT => &mut slo_redirect,
            BINDING_POST => &mut slo_post,
            BINDING_SOAP => &mut slo_soap,
            _ => continue,
        };
        if slot.is_some() {
            continue;
        }
        let loc = collapse_uri(n.attribute("Location").unwrap_or(""));
        match check_http_url(&loc) {
            Ok(https) => {
                if !https {
                    warnings.push(ImportWarning {
                        code: wc::SLO_URL_NOT_HTTPS,
                        message: format!(
                            "The single logout URL {} uses plain http; use the IdP's https URL.",
                            quote(&loc)
                        ),
                    });
                }
                *slot = Some(loc);
            }
            Err(reason) => warnings.push(ImportWarning {
                code: wc::SLO_LOCATION_INVALID,
                message: format!("A SingleLogoutService Location {} was ignored: {reason}.", quote(&loc)),
            }),
        }
    }
    let slo = match (slo_redirect, slo_post) {
        (Some(location), _) => Some(Endpoint { binding: Binding::HttpRedirect, location }),
        (None, Some(location)) => Some(Endpoint { binding: Binding::HttpPost, location }),
        (None, None) => None,
    };

    // Signing certificates.
    let mut cert_texts: Vec<String> = Vec::new();
    let mut encryption_keys = 0;
    let mut keys_without_certificate = 0;
    for kd in md_children(idp, "KeyDescriptor") {
        match kd.attribute("use").map(str::trim) {
            None | Some("signing") => {}
            Some("encryption") => {
                encryption_keys += 1;
                continue;
            }
            Some(other) => {
                warnings.push(ImportWarning {
                    code: wc::UNKNOWN_KEY_USE,
                    message: format!(
                        "A KeyDescriptor with use={} was ignored: only \"signing\", \"encryption\" or no use are defined.",
                        quote(other)
                    ),
                });
                continue;
            }
        }
        let before = cert_texts.len();
        for key_info in ds_children(kd, "KeyInfo") {
            for x509_data in ds_children(key_info, "X509Data") {
                for cert in ds_children(x509_data, "X509Certificate") {
                    let text: String = cert.descendants().filter(Node::is_text).filter_map(|t| t.text()).collect();
                    cert_texts.push(text);
                }
            }
        }
        if cert_texts.len() == before {
            keys_without_certificate += 1;
        }
    }
    if cert_texts.is_empty() {
        return Err(MetadataError::NoSigningCertificate { entity_id, encryption_keys, keys_without_certificate });
    }
    let total = cert_texts.len();
    let mut certificates: Vec<SigningCertificate> = Vec::with_capacity(total);
    for (i, text) in cert_texts.iter().enumerate() {
        let cert = decode_base64(text).and_then(decode_der).map_err(|reason| {
            MetadataError::InvalidSigningCertificate { entity_id: entity_id.clone(), index: i + 1, total, reason }
        })?;
        if !certificates.iter().any(|c| c.fingerprint_sha256 == cert.fingerprint_sha256) {
            certificates.push(cert);
        }
    }
    let count = certificates.len();
    for (i, cert) in certificates.iter().enumerate() {
        let label = if count == 1 {
            "The signing certificate".to_owned()
        } else {
            format!("Signing certificate #{} of {count}", i + 1)
        };
        push_certificate_warnings(cert, now, &label, &mut warnings);
    }

    let mut name_id_formats: Vec<String> = Vec::new();
    for n in md_children(idp, "NameIDFormat") {
        let f: String = n.text().unwrap_or("").trim().to_owned();
        if !f.is_empty() && !name_id_formats.contains(&f) {
            name_id_formats.push(f);
        }
    }
    let want_authn_requests_signed =
        matches!(idp.attribute("WantAuthnRequestsSigned").map(str::trim), Some("true") | Some("1"));

    Ok(ImportedIdp {
        entity_id,
        sso,
        slo,
        slo_soap,
        certificates,
        name_id_formats,
        want_authn_requests_signed,
        valid_until,
        cache_duration,
        warnings,
    })
}

fn read_validity(
    scopes: &[(String, Node)],
    now: DateTime<Utc>,
    warnings: &mut Vec<ImportWarning>,
) -> (Option<DateTime<Utc>>, Option<Duration>) {
    let mut valid_until: Option<(DateTime<Utc>, &str)> = None;
    let mut cache_duration: Option<Duration> = None;
    for (label, node) in scopes {
        if let Some(raw) = node.attribute("validUntil") {
            match parse_xs_datetime(raw) {
                Some(t) => {
                    if valid_until.is_none_or(|(v, _)| t < v) {
                        valid_until = Some((t, label));
                    }
                }
                None => warnings.push(ImportWarning {
                    code: wc::INVALID_VALID_UNTIL,
                    message: format!(
                        "validUntil={} on {label} is not a valid xs:dateTime and was ignored.",
                        quote(raw)
                    ),
                }),
            }
        }
        if let Some(raw) = node.attribute("cacheDuration") {
            match parse_xs_duration(raw) {
                Some(d) => {
                    if cache_duration.is_none_or(|c| d < c) {
                        cache_duration = Some(d);
                    }
                }
                None => warnings.push(ImportWarning {
                    code: wc::INVALID_CACHE_DURATION,
                    message: format!(
                        "cacheDuration={} on {label} is not a valid xs:duration (PnYnMnDTnHnMnS) and was ignored; the default refresh interval applies.",
                        quote(raw)
                    ),
                }),
            }
        }
    }
    if let Some((t, label)) = valid_until {
        if t < now {
            warnings.push(ImportWarning {
                code: wc::METADATA_EXPIRED,
                message: format!(
                    "The metadata expired: validUntil on {label} is {}, which is in the past. Its publisher says this copy must no longer be used; download current metadata from the IdP. An automatic metadata refresh would reject this document.",
                    format_time(t)
                ),
            });
        } else if t - now <= chrono::Duration::days(EXPIRY_WARNING_DAYS) {
            warnings.push(ImportWarning {
                code: wc::METADATA_EXPIRING_SOON,
                message: format!(
                    "The metadata expires soon: validUntil on {label} is {}. Refresh it from the IdP before then (or configure the metadata URL for automatic refresh).",
                    format_time(t)
                ),
            });
        }
    }
    (valid_until.map(|(t, _)| t), cache_duration)
}

/// Cheap checks on the raw text, before the XML parser: gives precise errors for the usual
/// wrong uploads, and refuses any DOCTYPE (roxmltree accepts an empty `<!DOCTYPE x>`).
fn precheck_text(text: &str) -> Result<(), MetadataError> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(MetadataError::EmptyMetadata);
    }
    let head: String = trimmed.chars().take(64).collect::<String>().to_ascii_lowercase();
    if !trimmed.starts_with('<') {
        let hint = if head.starts_with("http://") || head.starts_with("https://") {
            "It looks like a URL: open it, save the XML it returns, and upload that file (or use the metadata URL option)."
        } else if head.starts_with("-----begin") {
            "It looks like a certificate or key in PEM form: upload the IdP's complete metadata XML, or enter the certificate in the certificate field."
        } else if head.starts_with('{') || head.starts_with('[') {
            "It looks like JSON (for example an OpenID Connect discovery document); this service needs the IdP's SAML 2.0 metadata."
        } else {
            "Check that you uploaded the IdP's SAML 2.0 metadata file."
        };
        return Err(MetadataError::NotXml { hint });
    }
    let prologue = &text.as_bytes()[..text.len().min(2048)];
    if head.starts_with("<html") || contains_ignore_ascii_case(prologue, b"<!doctype html") {
        return Err(MetadataError::LooksLikeHtml);
    }
    if contains_ignore_ascii_case(text.as_bytes(), b"<!doctype") {
        return Err(MetadataError::DoctypeNotAllowed);
    }
    if xml_nesting_exceeds(text, MAX_XML_DEPTH) {
        return Err(MetadataError::XmlTooDeep { limit: MAX_XML_DEPTH });
    }
    Ok(())
}

/// Whether elements nest deeper than `limit`, measured with a flat scan that follows the
/// same token boundaries as roxmltree (comments, CDATA, PIs, quoted attribute values), so it
/// never undercounts what roxmltree would recurse into before it reports an error.
///
/// Run this before **any** `roxmltree::Document::parse` of untrusted input (for example the
/// SAMLResponse pre-validator): roxmltree 0.20 recurses once per nested element without a
/// limit, and a stack overflow aborts the whole process rather than returning an error.
pub fn xml_nesting_exceeds(xml: &str, limit: usize) -> bool {
    let b = xml.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    while let Some(p) = b[i..].iter().position(|&c| c == b'<') {
        i += p;
        let rest = &b[i..];
        let next = if rest.starts_with(b"<!--") {
            skip_past(b, i + 4, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_past(b, i + 9, b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_past(b, i + 2, b"?>")
        } else if rest.starts_with(b"<!") {
            skip_past(b, i + 2, b">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            skip_past(b, i + 2, b">")
        } else {
            // A start tag: its end is the first '>' outside a quoted attribute value.
            let mut quote = None;
            let mut end = None;
            for (j, &c) in b.iter().enumerate().skip(i + 1) {
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'>' => {
                        end = Some(j);
                        break;
                    }
                    None => {}
                }
            }
            let self_closing = end.is_some_and(|e| b[e - 1] == b'/');
            if !self_closing {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            end.map(|e| e + 1)
        };
        match next {
            Some(n) => i = n,
            None => break,
        }
    }
    false
}

/// Index just past the first `pat` at or after `from`.
fn skip_past(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(pat.len()).position(|w| w == pat).map(|p| from + p + pat.len())
}

fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

fn describe_element(node: Node<'_, '_>) -> String {
    let name = node.tag_name();
    match name.namespace() {
        Some(ns) => format!("'{}' in namespace '{}'", name.name(), ns),
        None => format!("'{}' (in no namespace)", name.name()),
    }
}

fn is_md(node: Node<'_, '_>, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local && node.tag_name().namespace() == Some(NS_MD)
}

fn md_children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    local: &'static str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |c| is_md(*c, local))
}

fn ds_children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    local: &'static str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == local && c.tag_name().namespace() == Some(NS_DS))
}

/// The first IDPSSODescriptor that supports SAML 2.0.
fn saml2_idp_descriptor<'a, 'input>(entity: Node<'a, 'input>) -> Option<Node<'a, 'input>> {
    md_children(entity, "IDPSSODescriptor").find(|d| {
        d.attribute("protocolSupportEnumeration")
            .is_some_and(|p| p.split_ascii_whitespace().any(|u| u == SAML2_PROTOCOL))
    })
}

/// `xs:anyURI` whitespace handling ("collapse"): trim, and fold inner runs to one space.
fn collapse_uri(s: &str) -> String {
    s.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// Ok(true) for https, Ok(false) for plain http, Err(reason) when unusable.
pub(crate) fn check_http_url(loc: &str) -> Result<bool, &'static str> {
    if loc.is_empty() {
        return Err("it is empty");
    }
    if loc.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters");
    }
    let Some((scheme, rest)) = loc.split_once("://") else {
        return Err("it is not an absolute URL (no scheme://)");
    };
    let https = scheme.eq_ignore_ascii_case("https");
    if !https && !scheme.eq_ignore_ascii_case("http") {
        return Err("only http:// and https:// URLs can be used");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err("it has no host name");
    }
    if authority.contains('@') {
        return Err("it contains user credentials (user@host)");
    }
    if loc.contains('#') {
        return Err("it contains a #fragment, which would swallow the SAMLRequest parameter");
    }
    Ok(https)
}

// ---------------------------------------------------------------------------------------------
// xs:dateTime and xs:duration

/// Parses an `xs:dateTime`. Values without a time zone are taken as UTC.
pub fn parse_xs_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
}

/// Parses an `xs:duration` of the form `PnYnMnDTnHnMnS` (only seconds may have a fraction).
/// Negative durations, a bare `P`, and a `T` without a time part (`P2DT`) are rejected. For
/// this purpose a year is 365 days and a month 30 days.
pub fn parse_xs_duration(s: &str) -> Option<Duration> {
    let rest = s.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((_, "")) => return None,
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return None;
    }
    const DAY: u64 = 86_400;
    let mut nanos: u128 = 0;
    let mut parts = 0;
    parts += parse_duration_part(date, &[('Y', 365 * DAY), ('M', 30 * DAY), ('D', DAY)], false, &mut nanos)?;
    if let Some(time) = time {
        let n = parse_duration_part(time, &[('H', 3600), ('M', 60), ('S', 1)], true, &mut nanos)?;
        if n == 0 {
            return None;
        }
        parts += n;
    }
    if parts == 0 {
        return None;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    let sub = u32::try_from(nanos % 1_000_000_000).ok()?;
    Some(Duration::new(secs, sub))
}

/// Parses `nXnYnZ` with the designators in `units` (in order, each at most once), adding to
/// `total` in nanoseconds. Returns the number of components.
fn parse_duration_part(s: &str, units: &[(char, u64)], fraction_on_last: bool, total: &mut u128) -> Option<usize> {
    let mut rest = s;
    let mut next_unit = 0;
    let mut count = 0;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(end);
        let designator = tail.chars().next()?;
        let pos = units[next_unit..].iter().position(|(d, _)| *d == designator)? + next_unit;
        let is_last = pos == units.len() - 1;
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => {
                if !(fraction_on_last && is_last) || f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (i, f)
            }
            None => (number, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let int: u128 = if int_part.is_empty() { 0 } else { int_part.parse().ok()? };
        let unit_nanos = u128::from(units[pos].1) * 1_000_000_000;
        let mut add = int.checked_mul(unit_nanos)?;
        if !frac_part.is_empty() {
            let digits = &frac_part[..frac_part.len().min(9)];
            let scale = 10u128.pow(9 - u32::try_from(digits.len()).ok()?);
            add = add.checked_add(digits.parse::<u128>().ok()? * scale)?;
        }
        *total = total.checked_add(add)?;
        if *total > u128::from(u64::MAX) * 1_000_000_000 {
            return None;
        }
        next_unit = pos + 1;
        count += 1;
        rest = &tail[designator.len_utf8()..];
    }
    Some(count)
}

// ---------------------------------------------------------------------------------------------
// Certificates

/// Parses an admin-pasted signing certificate: one PEM `CERTIFICATE` block (text around it is
/// ignored) or bare base64 DER. Whitespace anywhere in the base64 is tolerated.
pub fn parse_certificate(
    input: &str,
    now: DateTime<Utc>,
) -> Result<(SigningCertificate, Vec<ImportWarning>), MetadataError> {
    if input.len() > MAX_CERTIFICATE_INPUT_BYTES {
        return Err(MetadataError::CertificateTooLarge { size: input.len(), limit: MAX_CERTIFICATE_INPUT_BYTES });
    }
    let text = input.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(MetadataError::CertificateEmpty);
    }
    let body = if text.contains("-----BEGIN") {
        pem_certificate_body(text)?
    } else {
        if text.starts_with('<') {
            return Err(MetadataError::InvalidCertificate {
                reason: "this is XML; paste only the base64 text inside <X509Certificate>, or import the whole document as metadata".to_owned(),
            });
        }
        text.to_owned()
    };
    let cert =
        decode_base64(&body).and_then(decode_der).map_err(|reason| MetadataError::InvalidCertificate { reason })?;
    let warnings = certificate_warnings(&cert, now);
    Ok((cert, warnings))
}

fn pem_certificate_body(text: &str) -> Result<String, MetadataError> {
    let mut bodies: Vec<String> = Vec::new();
    let mut other_label: Option<String> = None;
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            return Err(MetadataError::CertificatePemMalformed {
                reason: "the -----BEGIN line is not terminated with -----".to_owned(),
            });
        };
        let label = after[..label_end].trim().to_owned();
        let content = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = content.find(&end_marker) else {
            if label.contains("PRIVATE KEY") {
                return Err(MetadataError::PrivateKeyPasted);
            }
            return Err(MetadataError::CertificatePemMalformed { reason: format!("no matching {end_marker} line") });
        };
        if label.contains("PRIVATE KEY") {
            return Err(MetadataError::PrivateKeyPasted);
        }
        if label == "CERTIFICATE" || label == "X509 CERTIFICATE" {
            bodies.push(content[..end].to_owned());
        } else if other_label.is_none() {
            other_label = Some(label);
        }
        rest = &content[end + end_marker.len()..];
    }
    match bodies.len() {
        0 => match other_label {
            Some(label) => Err(MetadataError::UnsupportedPemBlock { label }),
            None => Err(MetadataError::CertificatePemMalformed {
                reason: "no complete -----BEGIN CERTIFICATE----- block was found".to_owned(),
            }),
        },
        1 => {
            let body = bodies.remove(0);
            if body.contains(':') {
                return Err(MetadataError::CertificatePemMalformed {
                    reason: "the block contains header lines (Name: value), which certificates do not have".to_owned(),
                });
            }
            Ok(body)
        }
        count => Err(MetadataError::MultipleCertificates { count }),
    }
}

/// Warnings about one certificate: publicly known key, expiry (expired, within
/// [`EXPIRY_WARNING_DAYS`] days, not yet valid), RSA key under 2048 bits, SHA-1/MD5 signature
/// (information only).
pub fn certificate_warnings(cert: &SigningCertificate, now: DateTime<Utc>) -> Vec<ImportWarning> {
    let mut out = Vec::new();
    push_certificate_warnings(cert, now, "The certificate", &mut out);
    out
}

fn push_certificate_warnings(cert: &SigningCertificate, now: DateTime<Utc>, label: &str, out: &mut Vec<ImportWarning>) {
    let who = format!("{label} ({})", describe_certificate(cert));
    if cert.fingerprint_sha256 == WSO2_DEFAULT_CERT_SHA256 {
        out.push(ImportWarning {
            code: wc::WSO2_DEFAULT_CERTIFICATE,
            message: format!(
                "{who} is WSO2 Identity Server's default 'wso2carbon' certificate. Its private key ships publicly with every WSO2 download, so anyone can forge logins for this IdP. Replace the IdP's key store with your own key before production, then import the new metadata."
            ),
        });
    } else if looks_like_wso2_default_subject(&cert.subject) {
        out.push(ImportWarning {
            code: wc::WSO2_DEFAULT_CERTIFICATE_SUSPECTED,
            message: format!(
                "{who} has WSO2's default subject (O=WSO2, CN=localhost): it is most likely the default key store of a WSO2 release, whose private key is public. Replace the IdP's key store with your own key before production."
            ),
        });
    }
    if cert.not_after < now {
        out.push(ImportWarning {
            code: wc::CERTIFICATE_EXPIRED,
            message: format!(
                "{who} expired on {}. SAML trusts the key, not the certificate's dates, so logins still work, but the IdP has probably rotated or will rotate its key: get current metadata from the IdP administrator.",
                format_time(cert.not_after)
            ),
        });
    } else if cert.not_after - now <= chrono::Duration::days(EXPIRY_WARNING_DAYS) {
        out.push(ImportWarning {
            code: wc::CERTIFICATE_EXPIRING_SOON,
            message: format!(
                "{who} expires on {} (in {} days). If the IdP rotates its key then, logins will fail until the new certificate is added: import the IdP's next certificate before that date.",
                format_time(cert.not_after),
                (cert.not_after - now).num_days()
            ),
        });
    }
    if cert.not_before > now {
        out.push(ImportWarning {
            code: wc::CERTIFICATE_NOT_YET_VALID,
            message: format!(
                "{who} only becomes valid on {}: check the IdP's clock and that this is the certificate in use.",
                format_time(cert.not_before)
            ),
        });
    }
    if (cert.key_type == "RSA" || cert.key_type == "RSA-PSS") && cert.key_bits < 2048 {
        out.push(ImportWarning {
            code: wc::WEAK_RSA_KEY,
            message: format!(
                "{who} has a {}-bit RSA key; at least 2048 bits are required for adequate security. Ask the IdP administrator to generate a 2048-bit (or larger) signing key.",
                cert.key_bits
            ),
        });
    }
    let lower = cert.signature_algorithm.to_ascii_lowercase();
    if lower.contains("sha1") {
        out.push(ImportWarning {
            code: wc::SHA1_SIGNED_CERTIFICATE,
            message: format!(
                "Info: {who} is itself signed with SHA-1 ({}). This does not weaken SAML, which trusts the key directly, but it points to an old setup.",
                cert.signature_algorithm
            ),
        });
    } else if lower.contains("md5") {
        out.push(ImportWarning {
            code: wc::MD5_SIGNED_CERTIFICATE,
            message: format!(
                "Info: {who} is itself signed with MD5 ({}). This does not weaken SAML, which trusts the key directly, but it points to a very old setup.",
                cert.signature_algorithm
            ),
        });
    }
}

fn looks_like_wso2_default_subject(subject: &str) -> bool {
    let rdns: Vec<&str> = subject.split(", ").collect();
    rdns.contains(&"O=WSO2") && rdns.contains(&"CN=localhost")
}

fn describe_certificate(cert: &SigningCertificate) -> String {
    let subject = if cert.subject.is_empty() { "empty subject" } else { &cert.subject };
    format!("{subject}, SHA-256 {}", cert.fingerprint_sha256)
}

fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// SHA-256 fingerprint, upper-case hex bytes separated by colons.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    let hex = hex::encode_upper(Sha256::digest(der));
    let mut out = String::with_capacity(hex.len() / 2 * 3);
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(pair[0]));
        out.push(char::from(pair[1]));
    }
    out
}

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err("it is empty".to_owned());
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(compact.as_bytes()).map_err(|e| {
        let start: String = compact.chars().take(16).collect();
        let more = if compact.chars().count() > 16 { "…" } else { "" };
        format!("the text {} is not valid base64 ({e})", quote(&format!("{start}{more}")))
    })
}

/// Decodes one DER X.509 certificate. Trailing bytes after the certificate are refused.
fn decode_der(der: Vec<u8>) -> Result<SigningCertificate, String> {
    let expected =
        der_sequence_len(&der).ok_or_else(|| "the decoded bytes are not a DER-encoded X.509 certificate".to_owned())?;
    if expected != der.len() {
        return Err(format!(
            "the decoded data has {} bytes but the certificate inside is {expected} bytes long (truncated or extra data)",
            der.len()
        ));
    }
    let x509 =
        X509::from_der(&der).map_err(|e| format!("the decoded bytes are not a valid X.509 certificate ({e})"))?;
    let key = x509.public_key().map_err(|e| format!("the certificate's public key cannot be read ({e})"))?;
    let key_type = match key.id() {
        Id::RSA => "RSA".to_owned(),
        Id::RSA_PSS => "RSA-PSS".to_owned(),
        Id::EC => "EC".to_owned(),
        Id::DSA => "DSA".to_owned(),
        Id::ED25519 => "Ed25519".to_owned(),
        Id::ED448 => "Ed448".to_owned(),
        other => format!("other({})", other.as_raw()),
    };
    let sig_obj = x509.signature_algorithm().object();
    let signature_algorithm = if sig_obj.nid() == Nid::UNDEF {
        sig_obj.to_string()
    } else {
        sig_obj.nid().long_name().map(str::to_owned).unwrap_or_else(|_| sig_obj.to_string())
    };
    Ok(SigningCertificate {
        fingerprint_sha256: fingerprint_sha256(&der),
        subject: format_name(x509.subject_name()),
        issuer: format_name(x509.issuer_name()),
        not_before: asn1_to_utc(x509.not_before())?,
        not_after: asn1_to_utc(x509.not_after())?,
        key_bits: key.bits(),
        key_type,
        signature_algorithm,
        der,
    })
}

/// Total length (header + content) of the outer DER SEQUENCE, if `der` starts with one.
fn der_sequence_len(der: &[u8]) -> Option<usize> {
    if der.first() != Some(&0x30) {
        return None;
    }
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | usize::from(*der.get(2 + i)?);
    }
    Some(2 + n + len)
}

fn asn1_to_utc(t: &Asn1TimeRef) -> Result<DateTime<Utc>, String> {
    let epoch = Asn1Time::from_unix(0).map_err(|e| e.to_string())?;
    let diff = epoch.diff(t).map_err(|e| format!("its validity dates cannot be read ({e})"))?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    DateTime::from_timestamp(secs, 0).ok_or_else(|| "its validity dates are out of range".to_owned())
}

/// RFC 4514-style rendering, see the module docs.
fn format_name(name: &X509NameRef) -> String {
    let mut rdns: Vec<String> = name
        .entries()
        .map(|entry| {
            let object = entry.object();
            let key = if object.nid() == Nid::UNDEF {
                object.to_string()
            } else {
                object.nid().short_name().map(str::to_owned).unwrap_or_else(|_| object.to_string())
            };
            let value = match entry.data().to_string() {
                Ok(s) => escape_rdn_value(&s),
                Err(_) => format!("#{}", hex::encode(entry.data().as_slice())),
            };
            format!("{key}={value}")
        })
        .collect();
    rdns.reverse();
    rdns.join(", ")
}

fn escape_rdn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::path::{Path, PathBuf};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap()
    }

    fn fixture_dir() -> PathBuf {
        if let Ok(dir) = std::env::var("JSM_SSO_FIXTURES") {
            return PathBuf::from(dir);
        }
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        for rel in ["../shared/fixtures/idp-metadata", "../../shared/fixtures/idp-metadata"] {
            let dir = manifest.join(rel);
            if dir.is_dir() {
                return dir;
            }
        }
        panic!(
            "IdP metadata fixtures not found: set JSM_SSO_FIXTURES or place shared/fixtures/idp-metadata next to the crate"
        );
    }

    fn fixture(name: &str) -> String {
        let path = fixture_dir().join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
    }

    fn import(name: &str, entity: Option<&str>) -> ImportedIdp {
        parse_idp_metadata(&fixture(name), entity, now())
            .unwrap_or_else(|e| panic!("{name}: expected import, got {} ({e})", e.code()))
    }

    fn refuse(name: &str, entity: Option<&str>) -> MetadataError {
        match parse_idp_metadata(&fixture(name), entity, now()) {
            Ok(idp) => panic!("{name}: expected refusal, imported {}", idp.entity_id),
            Err(e) => e,
        }
    }

    fn codes(idp: &ImportedIdp) -> Vec<&'static str> {
        let mut c: Vec<&'static str> = idp.warnings.iter().map(|w| w.code).collect();
        c.sort_unstable();
        c
    }

    fn sorted(mut v: Vec<&'static str>) -> Vec<&'static str> {
        v.sort_unstable();
        v
    }

    struct Expected {
        file: &'static str,
        entity: Option<&'static str>,
        entity_id: &'static str,
        certs: usize,
        sso: (Binding, &'static str),
        slo: Option<(Binding, &'static str)>,
        warnings: &'static [&'static str],
    }

    const REDIRECT: Binding = Binding::HttpRedirect;
    const POST: Binding = Binding::HttpPost;

    const IMPORTS: &[Expected] = &[
        Expected {
            file: "wso2-is-resident-idp-localhost.xml",
            entity: None,
            entity_id: "localhost",
            certs: 1,
            sso: (REDIRECT, "https://localhost:9443/samlsso"),
            slo: Some((REDIRECT, "https://localhost:9443/samlsso")),
            warnings: &["metadata_expired", "wso2_default_certificate", "weak_rsa_key", "sha1_signed_certificate"],
        },
        Expected {
            file: "adfs2-federationmetadata.xml",
            entity: None,
            entity_id: "http://fs.msidlab7.com/adfs/services/trust",
            certs: 1,
            sso: (REDIRECT, "https://fs.msidlab7.com/adfs/ls/"),
            slo: Some((REDIRECT, "https://fs.msidlab7.com/adfs/ls/")),
            warnings: &["certificate_expired"],
        },
        Expected {
            file: "adfs2016-federationmetadata.xml",
            entity: None,
            entity_id: "http://fs.msidlab11.com/adfs/services/trust",
            certs: 1,
            sso: (REDIRECT, "https://fs.msidlab11.com/adfs/ls/"),
            slo: Some((REDIRECT, "https://fs.msidlab11.com/adfs/ls/")),
            warnings: &["certificate_expired"],
        },
        Expected {
            file: "entra-id-common-federationmetadata.xml",
            entity: None,
            entity_id: "https://sts.windows.net/{tenantid}/",
            certs: 3,
            sso: (REDIRECT, "https://login.microsoftonline.com/common/saml2"),
            slo: Some((REDIRECT, "https://login.microsoftonline.com/common/saml2")),
            warnings: &["entity_id_template", "certificate_expired", "certificate_expired", "certificate_expired"],
        },
        Expected {
            file: "okta-idp-metadata.xml",
            entity: None,
            entity_id: "http://www.okta.com/exk9u78i8aMSxvkV70h7",
            certs: 1,
            sso: (
                REDIRECT,
                "https://dev-599847.oktapreview.com/app/expresssaml2dev599847_esaml2sp_1/exk9u78i8aMSxvkV70h7/sso/saml",
            ),
            slo: None,
            warnings: &[],
        },
        Expected {
            file: "keycloak-realm-two-signing-certs.xml",
            entity: None,
            entity_id: "http://localhost:8080/auth/realms/master",
            certs: 2,
            sso: (POST, "http://localhost:8080/auth/realms/master/protocol/saml"),
            slo: Some((POST, "http://localhost:8080/auth/realms/master/protocol/saml")),
            warnings: &[
                "sso_url_not_https",
                "slo_url_not_https",
                "certificate_expired",
                "certificate_expired",
                "weak_rsa_key",
            ],
        },
        Expected {
            file: "google-workspace-two-signing-certs-query-sso.xml",
            entity: None,
            entity_id: "https://accounts.google.com/o/saml2?idpid=C023zw3x8",
            certs: 2,
            sso: (REDIRECT, "https://accounts.google.com/o/saml2/idp?idpid=C023zw3x8"),
            slo: None,
            warnings: &["metadata_expiring_soon", "certificate_expiring_soon"],
        },
        Expected {
            file: "auth0-idp-metadata.xml",
            entity: None,
            entity_id: "urn:mvanholsteijn.eu.auth0.com",
            certs: 1,
            sso: (REDIRECT, "https://mvanholsteijn.eu.auth0.com/samlp/SLeL10SEptRHmDPNXtKLXyHwZSGlrMZU"),
            slo: Some((REDIRECT, "https://mvanholsteijn.eu.auth0.com/samlp/SLeL10SEptRHmDPNXtKLXyHwZSGlrMZU/logout")),
            warnings: &["sha1_signed_certificate"],
        },
        Expected {
            file: "shibboleth-idp-scope-no-use.xml",
            entity: None,
            entity_id: "https://idp.msidlab13.com/idp/shibboleth",
            certs: 1,
            sso: (REDIRECT, "https://idp.msidlab13.com/idp/profile/SAML2/Redirect/SSO"),
            slo: None,
            warnings: &["certificate_expired"],
        },
        Expected {
            file: "testshib-aggregate-idp-and-sp.xml",
            entity: None,
            entity_id: "https://idp.testshib.org/idp/shibboleth",
            certs: 1,
            sso: (REDIRECT, "https://idp.testshib.org/idp/profile/SAML2/Redirect/SSO"),
            slo: None,
            warnings: &[],
        },
        Expected {
            file: "simplesamlphp-aggregate-three-idps.xml",
            entity: Some("https://idp2.example.com/simplesaml/saml2/idp/metadata.php"),
            entity_id: "https://idp2.example.com/simplesaml/saml2/idp/metadata.php",
            certs: 1,
            sso: (REDIRECT, "https://idp2.example.com/simplesaml/saml2/idp/SSOService.php"),
            slo: Some((REDIRECT, "https://idp2.example.com/simplesaml/saml2/idp/SingleLogoutService.php")),
            warnings: &["certificate_expired", "weak_rsa_key", "sha1_signed_certificate"],
        },
        Expected {
            file: "rctsaai-signed-aggregate-two-idps-one-sp.xml",
            entity: Some("https://idp.fccn.pt/idp/shibboleth"),
            entity_id: "https://idp.fccn.pt/idp/shibboleth",
            certs: 1,
            sso: (REDIRECT, "https://idp.fccn.pt/idp/profile/SAML2/Redirect/SSO"),
            slo: None,
            // idp.fccn.pt's certificate is sha1WithRSAEncryption (checked with openssl x509).
            warnings: &["metadata_expired", "sha1_signed_certificate"],
        },
        Expected {
            file: "renater-signed-aggregate-validuntil-cacheduration.xml",
            entity: Some("https://idpr4.imtbs-tsp.eu/idp/shibboleth"),
            entity_id: "https://idpr4.imtbs-tsp.eu/idp/shibboleth",
            certs: 1,
            sso: (REDIRECT, "https://idpr4.imtbs-tsp.eu/idp/profile/SAML2/Redirect/SSO"),
            slo: None,
            warnings: &["metadata_expired"],
        },
        Expected {
            file: "onelogin-style-two-signing-one-encryption.xml",
            entity: None,
            entity_id: "https://idp.examle.com/saml/metadata",
            certs: 2,
            sso: (REDIRECT, "https://idp.examle.com/saml/sso"),
            slo: Some((REDIRECT, "https://idp.examle.com/saml/slo")),
            warnings: &["certificate_expired", "certificate_expired", "weak_rsa_key", "sha1_signed_certificate"],
        },
        Expected {
            file: "validuntil-cacheduration-expired.xml",
            entity: None,
            entity_id: "https://hello.example.com/access/saml/idp.xml",
            certs: 1,
            sso: (REDIRECT, "https://hello.example.com/access/saml/login"),
            slo: Some((REDIRECT, "https://hello.example.com/access/saml/logout")),
            warnings: &["metadata_expired", "invalid_cache_duration", "certificate_expired", "sha1_signed_certificate"],
        },
    ];

    const REFUSALS: &[(&str, Option<&str>, &str)] = &[
        ("sp-only-no-idpssodescriptor.xml", None, "no_idp_descriptor"),
        ("empty-entitiesdescriptor.xml", None, "empty_aggregate"),
        ("adfs-like-placeholder-certs.xml", None, "invalid_signing_certificate"),
        ("simplesamlphp-aggregate-three-idps.xml", None, "entity_selection_required"),
        ("rctsaai-signed-aggregate-two-idps-one-sp.xml", None, "entity_selection_required"),
        ("renater-signed-aggregate-validuntil-cacheduration.xml", None, "entity_selection_required"),
    ];

    #[test]
    fn every_fixture_imports_as_the_readme_says() {
        for e in IMPORTS {
            let idp = import(e.file, e.entity);
            assert_eq!(idp.entity_id, e.entity_id, "{}: entityID", e.file);
            assert_eq!(idp.certificates.len(), e.certs, "{}: signing certs", e.file);
            assert_eq!(idp.sso.binding, e.sso.0, "{}: SSO binding", e.file);
            assert_eq!(idp.sso.location, e.sso.1, "{}: SSO location", e.file);
            let slo = idp.slo.as_ref().map(|s| (s.binding, s.location.as_str()));
            assert_eq!(slo, e.slo, "{}: SLO", e.file);
            assert_eq!(codes(&idp), sorted(e.warnings.to_vec()), "{}: warnings {:#?}", e.file, idp.warnings);
        }
    }

    #[test]
    fn every_refusal_fixture_is_refused_with_its_code() {
        for (file, entity, code) in REFUSALS {
            let err = refuse(file, *entity);
            assert_eq!(err.code(), *code, "{file}: {err}");
            let field = if *code == "entity_selection_required" { "entity_id" } else { "metadata_xml" };
            assert_eq!(err.field(), Some(field), "{file}");
        }
    }

    #[test]
    fn all_eighteen_fixtures_have_an_expectation() {
        let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".xml"))
            .collect();
        on_disk.sort();
        let mut covered: Vec<String> =
            IMPORTS.iter().map(|e| e.file).chain(REFUSALS.iter().map(|r| r.0)).map(str::to_owned).collect();
        covered.sort();
        covered.dedup();
        assert_eq!(on_disk.len(), 18);
        assert_eq!(covered, on_disk);
    }

    #[test]
    fn wso2_default_certificate_is_flagged() {
        let idp = import("wso2-is-resident-idp-localhost.xml", None);
        let cert = &idp.certificates[0];
        assert_eq!(cert.fingerprint_sha256, WSO2_DEFAULT_CERT_SHA256);
        assert_eq!(cert.subject, "CN=localhost, O=WSO2, L=Mountain View, ST=CA, C=US");
        assert_eq!(cert.key_type, "RSA");
        assert_eq!(cert.key_bits, 1024);
        assert_eq!(cert.signature_algorithm, "sha1WithRSAEncryption");
        assert_eq!(cert.not_after, Utc.with_ymd_and_hms(2035, 2, 13, 7, 2, 26).unwrap());
        let w = idp.warnings.iter().find(|w| w.code == "wso2_default_certificate").expect("wso2 warning");
        assert!(w.message.contains("private key ships publicly"), "{}", w.message);
        assert!(w.message.contains("forge logins"), "{}", w.message);
        assert!(w.message.contains("before production"), "{}", w.message);
        assert_eq!(idp.valid_until, parse_xs_datetime("2026-05-16T21:51:14.927Z"));
        assert!(idp.is_expired(now()));
        assert_eq!(idp.name_id_formats, ["urn:oasis:names:tc:SAML:2.0:nameid-format:transient"]);
        assert_eq!(idp.slo_soap, None);
    }

    #[test]
    fn the_same_wso2_certificate_pasted_alone_is_flagged() {
        let xml = fixture("wso2-is-resident-idp-localhost.xml");
        let start = xml.find("<ds:X509Certificate>").unwrap() + "<ds:X509Certificate>".len();
        let end = xml.find("</ds:X509Certificate>").unwrap();
        let b64 = &xml[start..end];
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", b64.trim());
        let (cert, warnings) = parse_certificate(&pem, now()).unwrap();
        assert_eq!(cert.fingerprint_sha256, WSO2_DEFAULT_CERT_SHA256);
        let c: Vec<_> = warnings.iter().map(|w| w.code).collect();
        assert_eq!(c, ["wso2_default_certificate", "weak_rsa_key", "sha1_signed_certificate"]);
    }

    #[test]
    fn adfs_ignores_encryption_role_and_sp_keys() {
        let idp = import("adfs2-federationmetadata.xml", None);
        assert_eq!(idp.certificates.len(), 1);
        let expired = idp.warnings.iter().find(|w| w.code == "certificate_expired").unwrap();
        assert!(expired.message.contains("2017"), "{}", expired.message);
        assert!(idp.certificates[0].not_after.format("%Y").to_string() == "2017");
    }

    #[test]
    fn entra_template_entity_id_is_warned_about() {
        let idp = import("entra-id-common-federationmetadata.xml", None);
        let w = idp.warnings.iter().find(|w| w.code == "entity_id_template").unwrap();
        assert!(w.message.contains("tenant-specific"), "{}", w.message);
        let fps: std::collections::HashSet<_> = idp.certificates.iter().map(|c| c.fingerprint_sha256.clone()).collect();
        assert_eq!(fps.len(), 3);
        for c in &idp.certificates {
            let year: i32 = c.not_after.format("%Y").to_string().parse().unwrap();
            assert!((2018..=2019).contains(&year), "{}", c.not_after);
        }
    }

    #[test]
    fn okta_wrapped_base64_decodes() {
        let idp = import("okta-idp-metadata.xml", None);
        assert!(idp.want_authn_requests_signed);
        assert_eq!(idp.certificates[0].key_bits, 2048);
        assert_eq!(idp.certificates[0].not_after, Utc.with_ymd_and_hms(2027, 3, 6, 4, 55, 33).unwrap());
        assert_eq!(idp.name_id_formats.len(), 2);
    }

    #[test]
    fn keycloak_is_post_only_with_one_weak_key() {
        let idp = import("keycloak-realm-two-signing-certs.xml", None);
        let bits: Vec<u32> = idp.certificates.iter().map(|c| c.key_bits).collect();
        assert_eq!(bits, [2048, 1024]);
        assert_eq!(idp.certificates[0].subject, "CN=master");
        assert_eq!(idp.certificates[1].subject, "CN=saml-demo");
        assert_eq!(idp.sso.query_separator(), "?");
    }

    #[test]
    fn google_query_string_is_preserved() {
        let idp = import("google-workspace-two-signing-certs-query-sso.xml", None);
        assert_eq!(idp.sso.query_separator(), "&");
        assert_eq!(idp.valid_until, Some(Utc.with_ymd_and_hms(2026, 12, 16, 17, 18, 2).unwrap()));
        // Cert 1 expires 2026-12-16 (18 days after the pinned clock), cert 2 in 2027.
        let soon: Vec<_> = idp.warnings.iter().filter(|w| w.code == "certificate_expiring_soon").collect();
        assert_eq!(soon.len(), 1);
        assert!(soon[0].message.starts_with("Signing certificate #1 of 2"));
        assert!(soon[0].message.contains("2026-12-16"), "{}", soon[0].message);
    }

    #[test]
    fn auth0_empty_subject_is_allowed() {
        let idp = import("auth0-idp-metadata.xml", None);
        assert_eq!(idp.certificates[0].subject, "");
        assert_eq!(idp.certificates[0].key_bits, 2048);
    }

    #[test]
    fn serial_zero_certificates_parse() {
        let testshib = import("testshib-aggregate-idp-and-sp.xml", None);
        assert_eq!(testshib.certificates.len(), 1);
        let onelogin = import("onelogin-style-two-signing-one-encryption.xml", None);
        assert_eq!(onelogin.certificates.len(), 2);
        assert_eq!(onelogin.certificates[1].key_bits, 1024);
        assert_eq!(onelogin.certificates[1].subject, "CN=example.com, O=example.com, ST=example.com, C=us");
    }

    #[test]
    fn testshib_explicit_choices() {
        let idp = import("testshib-aggregate-idp-and-sp.xml", Some("https://idp.testshib.org/idp/shibboleth"));
        assert_eq!(idp.certificates.len(), 1);
        let err = refuse("testshib-aggregate-idp-and-sp.xml", Some("https://sp.testshib.org/shibboleth-sp"));
        assert_eq!(err.code(), "not_an_idp");
        assert_eq!(err.field(), Some("entity_id"));
        assert_eq!(
            err,
            MetadataError::NotAnIdp {
                requested: "https://sp.testshib.org/shibboleth-sp".into(),
                candidates: vec!["https://idp.testshib.org/idp/shibboleth".into()],
            }
        );
    }

    #[test]
    fn simplesamlphp_requires_selection_and_lists_three() {
        let expected = vec![
            "https://idp1.example.com/simplesaml/saml2/idp/metadata.php".to_owned(),
            "https://idp2.example.com/simplesaml/saml2/idp/metadata.php".to_owned(),
            "https://idp3.example.com/simplesaml/saml2/idp/metadata.php".to_owned(),
        ];
        let err = refuse("simplesamlphp-aggregate-three-idps.xml", None);
        assert_eq!(err, MetadataError::EntitySelectionRequired { candidates: expected.clone() });
        assert_eq!(err.field(), Some("entity_id"));
        assert!(err.to_string().contains("idp3.example.com"), "{err}");
        let err = refuse("simplesamlphp-aggregate-three-idps.xml", Some("https://idp9.example.com/"));
        assert_eq!(
            err,
            MetadataError::EntityNotFound {
                requested: "https://idp9.example.com/".into(),
                candidates: expected.clone(),
            }
        );
        assert_eq!(err.candidates(), Some(&expected[..]));
        let idp = import(
            "simplesamlphp-aggregate-three-idps.xml",
            Some("https://idp2.example.com/simplesaml/saml2/idp/metadata.php"),
        );
        assert_eq!(idp.certificates[0].not_after.format("%Y").to_string(), "2007");
        assert_eq!(idp.certificates[0].key_bits, 1024);
    }

    #[test]
    fn rctsaai_selection_and_sp_refusal() {
        let err = refuse("rctsaai-signed-aggregate-two-idps-one-sp.xml", None);
        assert_eq!(
            err,
            MetadataError::EntitySelectionRequired {
                candidates: vec![
                    "https://si-saai.ualg.pt/idp/shibboleth".into(),
                    "https://idp.fccn.pt/idp/shibboleth".into(),
                ]
            }
        );
        let err = refuse("rctsaai-signed-aggregate-two-idps-one-sp.xml", Some("https://webtut.fccn.pt"));
        assert_eq!(err.code(), "not_an_idp");
        let idp = import("rctsaai-signed-aggregate-two-idps-one-sp.xml", Some("https://idp.fccn.pt/idp/shibboleth"));
        assert_eq!(idp.valid_until, Some(Utc.with_ymd_and_hms(2017, 4, 22, 12, 17, 22).unwrap()));
    }

    #[test]
    fn renater_validity_and_cache_duration() {
        let err = refuse("renater-signed-aggregate-validuntil-cacheduration.xml", None);
        assert_eq!(
            err.candidates().unwrap(),
            [
                "https://idp.telecom-paristech.fr/idp/shibboleth",
                "https://idpmt3.tem-tsp.eu/idp/shibboleth",
                "https://idpr4.imtbs-tsp.eu/idp/shibboleth",
            ]
        );
        let idp = import(
            "renater-signed-aggregate-validuntil-cacheduration.xml",
            Some("https://idpr4.imtbs-tsp.eu/idp/shibboleth"),
        );
        assert_eq!(idp.cache_duration, Some(Duration::from_secs(7200)));
        assert_eq!(idp.valid_until, Some(Utc.with_ymd_and_hms(2022, 2, 4, 12, 30, 19).unwrap()));
        // Another IdP of the same file has a SOAP SLO endpoint, kept separately.
        let mt3 = import(
            "renater-signed-aggregate-validuntil-cacheduration.xml",
            Some("https://idpmt3.tem-tsp.eu/idp/shibboleth"),
        );
        assert_eq!(
            mt3.slo,
            Some(Endpoint {
                binding: REDIRECT,
                location: "https://idpmt3.tem-tsp.eu/idp/profile/SAML2/Redirect/SLO".into()
            })
        );
        assert_eq!(mt3.slo_soap.as_deref(), Some("https://idpmt3.tem-tsp.eu/idp/profile/SAML2/SOAP/SLO"));
        // An SP of the aggregate is refused.
        let err =
            refuse("renater-signed-aggregate-validuntil-cacheduration.xml", Some("https://moodle.r2.enst.fr/moodle"));
        assert_eq!(err.code(), "not_an_idp");
    }

    #[test]
    fn invalid_cache_duration_does_not_crash() {
        let idp = import("validuntil-cacheduration-expired.xml", None);
        assert_eq!(idp.cache_duration, None);
        let w = idp.warnings.iter().find(|w| w.code == "invalid_cache_duration").unwrap();
        assert!(w.message.contains("P2DT"), "{}", w.message);
    }

    #[test]
    fn sp_only_metadata_is_not_an_idp() {
        let err = refuse("sp-only-no-idpssodescriptor.xml", None);
        assert_eq!(
            err,
            MetadataError::NoIdpDescriptor { entity_id: "https://sp.example.com/sp.xml".into(), saml1_only: false }
        );
        assert_eq!(err.field(), Some("metadata_xml"));
    }

    #[test]
    fn placeholder_certificate_is_refused_naming_it() {
        let err = refuse("adfs-like-placeholder-certs.xml", None);
        match &err {
            MetadataError::InvalidSigningCertificate { index, total, .. } => {
                assert_eq!((*index, *total), (1, 1));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("#1 of 1"), "{err}");
        assert!(err.to_string().contains("\"...\""), "{err}");
    }

    #[test]
    fn derived_encryption_only_key_is_refused() {
        let xml = fixture("validuntil-cacheduration-expired.xml");
        assert!(xml.contains("use=\"signing\""));
        let xml = xml.replace("use=\"signing\"", "use=\"encryption\"");
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        assert_eq!(err.code(), "no_signing_certificate");
        assert_eq!(
            err,
            MetadataError::NoSigningCertificate {
                entity_id: "https://hello.example.com/access/saml/idp.xml".into(),
                encryption_keys: 2,
                keys_without_certificate: 0
            }
        );
    }

    #[test]
    fn a_second_undecodable_certificate_is_refused_not_dropped() {
        let xml = fixture("keycloak-realm-two-signing-certs.xml");
        let marker = "MIIBnDCCAQUCBgFYKXKsPTANBgkqhkiG9w0BAQsFADAU";
        assert!(xml.contains(marker));
        let xml = xml.replace(marker, "MIIBnDCCAQUCBgFYKXKsP!!!");
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        match err {
            MetadataError::InvalidSigningCertificate { index, total, .. } => {
                assert_eq!((index, total), (2, 2));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    const CERT_B64: &str = "MIIBnDCCAQUCBgFYKXKsPTANBgkqhkiG9w0BAQsFADAUMRIwEAYDVQQDDAlzYW1sLWRlbW8wHhcNMTYxMTAzMDkwNzEwWhcNMjYxMTAzMDkwODUwWjAUMRIwEAYDVQQDDAlzYW1sLWRlbW8wgZ8wDQYJKoZIhvcNAQEBBQADgY0AMIGJAoGBAKtWsK5O0CtuBpnMvWG+HTG0vmZzujQ2o9WdheQu+BzCILcGMsbDW0YQaglpcO5JpGWWhubnckGGPHfdQ2/7nP9QwbiTK0FbGF41UqcvoaCqU1psxoV88s8IXyQCAqeyLv00yj6foqdJjxh5SZ5z+na+M7Y2OxIBVxYRAxWEnfUvAgMBAAEwDQYJKoZIhvcNAQELBQADgYEAhetvOU8TyqfZF5jpv0IcrviLl/DoFrbjByeHR+pu/vClcAOjL/u7oQELuuTfNsBI4tpexUj5G8q/YbEz0gk7idfLXrAUVcsR73oTngrhRfwUSmPrjjK0kjcRb6HL9V/+wh3R/6mEd59U08ExT8N38rhmn0CI3ehMdebReprP7U8=";

    fn synthetic(idp_inner: &str, outer_extra: &str) -> String {
        format!(
            r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.org/">
  {outer_extra}
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    {idp_inner}
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.org/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
        )
    }

    fn key_descriptor(use_attr: &str) -> String {
        format!(
            "<md:KeyDescriptor {use_attr}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{CERT_B64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        )
    }

    #[test]
    fn synthetic_baseline_imports() {
        let xml = synthetic(&key_descriptor(""), "");
        let idp = parse_idp_metadata(&xml, None, now()).unwrap();
        assert_eq!(idp.certificates.len(), 1);
        assert_eq!(idp.entity_id, "https://idp.example.org/");
    }

    #[test]
    fn keys_outside_the_idp_descriptor_never_count() {
        let signature = format!(
            "<ds:Signature><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{CERT_B64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"
        );
        let sp = format!(
            "<md:SPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{}</md:SPSSODescriptor>",
            key_descriptor("use=\"signing\"")
        );
        let aa = format!(
            "<md:AttributeAuthorityDescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{}</md:AttributeAuthorityDescriptor>",
            key_descriptor("")
        );
        let role = format!(
            "<md:RoleDescriptor xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:fed=\"http://docs.oasis-open.org/wsfed/federation/200706\" xsi:type=\"fed:SecurityTokenServiceType\" protocolSupportEnumeration=\"http://docs.oasis-open.org/wsfed/federation/200706\">{}</md:RoleDescriptor>",
            key_descriptor("use=\"signing\"")
        );
        let xml = synthetic(&key_descriptor("use=\"encryption\""), &format!("{signature}{role}{sp}{aa}"));
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        assert_eq!(err.code(), "no_signing_certificate");
        assert!(err.to_string().contains("use=\"encryption\""), "{err}");
    }

    #[test]
    fn signing_key_without_certificate_is_refused() {
        let kd =
            "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:KeyName>k1</ds:KeyName></ds:KeyInfo></md:KeyDescriptor>";
        let err = parse_idp_metadata(&synthetic(kd, ""), None, now()).unwrap_err();
        assert_eq!(
            err,
            MetadataError::NoSigningCertificate {
                entity_id: "https://idp.example.org/".into(),
                encryption_keys: 0,
                keys_without_certificate: 1
            }
        );
    }

    #[test]
    fn duplicate_certificate_is_kept_once_and_unknown_use_ignored() {
        let inner =
            format!("{}{}{}", key_descriptor("use=\"signing\""), key_descriptor(""), key_descriptor("use=\"sign\""));
        let idp = parse_idp_metadata(&synthetic(&inner, ""), None, now()).unwrap();
        assert_eq!(idp.certificates.len(), 1);
        assert!(idp.has_warning("unknown_key_use"));
    }

    #[test]
    fn no_supported_sso_binding_is_refused() {
        let xml = fixture("auth0-idp-metadata.xml")
            .replace(
                "<SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\"",
                "<SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact\"",
            )
            .replace(
                "<SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\"",
                "<SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST-SimpleSign\"",
            );
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        assert_eq!(
            err,
            MetadataError::NoSupportedSsoBinding {
                entity_id: "urn:mvanholsteijn.eu.auth0.com".into(),
                found_bindings: vec![
                    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact".into(),
                    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST-SimpleSign".into(),
                ]
            }
        );
    }

    #[test]
    fn invalid_sso_location_is_refused() {
        for (loc, ok) in [
            ("ftp://idp.example.org/sso", false),
            ("/relative/sso", false),
            ("https://", false),
            ("https://idp.example.org/sso#frag", false),
            ("https://user@idp.example.org/sso", false),
            ("  https://idp.example.org/sso  ", true),
        ] {
            let xml = synthetic(&key_descriptor(""), "")
                .replace("Location=\"https://idp.example.org/sso\"", &format!("Location=\"{loc}\""));
            let result = parse_idp_metadata(&xml, None, now());
            match (result, ok) {
                (Ok(idp), true) => assert_eq!(idp.sso.location, "https://idp.example.org/sso"),
                (Err(e), false) => assert_eq!(e.code(), "invalid_sso_location", "{loc}"),
                (r, _) => panic!("{loc}: unexpected {r:?}"),
            }
        }
    }

    #[test]
    fn saml1_only_idp_is_refused() {
        let xml = fixture("okta-idp-metadata.xml").replace(
            "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"",
            "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:1.1:protocol\"",
        );
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        assert_eq!(err.code(), "no_idp_descriptor");
        assert!(matches!(err, MetadataError::NoIdpDescriptor { saml1_only: true, .. }));
    }

    #[test]
    fn single_entity_with_other_requested_id_is_refused() {
        let err = refuse("okta-idp-metadata.xml", Some("http://www.okta.com/other"));
        assert_eq!(
            err,
            MetadataError::EntityNotFound {
                requested: "http://www.okta.com/other".into(),
                candidates: vec!["http://www.okta.com/exk9u78i8aMSxvkV70h7".into()],
            }
        );
        let ok = import("okta-idp-metadata.xml", Some(" http://www.okta.com/exk9u78i8aMSxvkV70h7 "));
        assert_eq!(ok.entity_id, "http://www.okta.com/exk9u78i8aMSxvkV70h7");
    }

    #[test]
    fn missing_entity_id_is_refused() {
        let xml =
            fixture("okta-idp-metadata.xml").replace(" entityID=\"http://www.okta.com/exk9u78i8aMSxvkV70h7\"", "");
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        assert_eq!(err, MetadataError::MissingEntityId { position: 1 });
        let xml = fixture("okta-idp-metadata.xml")
            .replace("entityID=\"http://www.okta.com/exk9u78i8aMSxvkV70h7\"", "entityID=\"  \"");
        assert_eq!(parse_idp_metadata(&xml, None, now()).unwrap_err().code(), "missing_entity_id");
    }

    #[test]
    fn nested_aggregates_are_handled() {
        let inner = fixture("okta-idp-metadata.xml");
        let inner = inner.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        let xml = format!(
            r#"<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" validUntil="2027-06-01T00:00:00Z" cacheDuration="PT6H">
  <EntitiesDescriptor validUntil="2027-03-01T00:00:00Z" cacheDuration="P1D">{inner}</EntitiesDescriptor>
</EntitiesDescriptor>"#
        );
        let idp = parse_idp_metadata(&xml, None, now()).unwrap();
        assert_eq!(idp.entity_id, "http://www.okta.com/exk9u78i8aMSxvkV70h7");
        assert_eq!(idp.valid_until, Some(Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap()));
        assert_eq!(idp.cache_duration, Some(Duration::from_secs(6 * 3600)));
        assert!(idp.warnings.is_empty(), "{:?}", idp.warnings);
    }

    #[test]
    fn nested_aggregates_beyond_the_limit_are_refused() {
        let depth = MAX_AGGREGATE_NESTING + 1;
        let mut xml = String::from("<EntitiesDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\">");
        xml.push_str(&"<EntitiesDescriptor>".repeat(depth - 1));
        xml.push_str(&"</EntitiesDescriptor>".repeat(depth));
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        assert_eq!(err.code(), "aggregate_too_deep");
    }

    #[test]
    fn deep_xml_is_refused_before_roxmltree_overflows_the_stack() {
        // roxmltree recurses per level: ~20k levels abort a 2 MiB-stack thread.
        let cases = [
            "<a>".repeat(300_000),
            format!("{}{}", "<a x='>'>".repeat(60_000), "</a>".repeat(60_000)),
            format!(
                "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\">{}",
                "<b><!-- <c/> --><![CDATA[</b>]]><?pi </b>?>".repeat(20_000)
            ),
        ];
        for xml in &cases {
            assert!(xml.len() <= MAX_METADATA_BYTES);
            let err = parse_idp_metadata(xml, None, now()).unwrap_err();
            assert_eq!(err, MetadataError::XmlTooDeep { limit: MAX_XML_DEPTH });
        }
        // Exactly at the limit parses (and is then refused for its content).
        let at_limit = format!("{}{}", "<a>".repeat(MAX_XML_DEPTH), "</a>".repeat(MAX_XML_DEPTH));
        assert_eq!(parse_idp_metadata(&at_limit, None, now()).unwrap_err().code(), "unexpected_root_element");
        let over = format!("{}{}", "<a>".repeat(MAX_XML_DEPTH + 1), "</a>".repeat(MAX_XML_DEPTH + 1));
        assert_eq!(parse_idp_metadata(&over, None, now()).unwrap_err().code(), "xml_too_deep");
        // Self-closing tags, comments, CDATA and quoted '>' do not add depth.
        let flat = format!("<a>{}</a>", "<b x='/>' y=\"<\"/><!-- <c> --><![CDATA[<d>]]>".repeat(1000));
        assert!(!xml_nesting_exceeds(&flat, 2));
    }

    #[test]
    fn deeply_nested_aggregate_hits_the_xml_depth_guard() {
        let depth = 20_000; // about 820 KB, under the 1 MiB limit
        let mut xml = String::new();
        for i in 0..depth {
            if i == 0 {
                xml.push_str("<EntitiesDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\">");
            } else {
                xml.push_str("<EntitiesDescriptor>");
            }
        }
        for _ in 0..depth {
            xml.push_str("</EntitiesDescriptor>");
        }
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        assert_eq!(err.code(), "xml_too_deep");
    }

    #[test]
    fn duplicate_entity_id_in_aggregate_is_refused() {
        let inner = fixture("okta-idp-metadata.xml");
        let inner = inner.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        let xml = format!(
            "<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\">{inner}{inner}</md:EntitiesDescriptor>"
        );
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        assert_eq!(err.code(), "duplicate_entity_id");
    }

    #[test]
    fn aggregate_of_sps_only_is_refused() {
        let sp = fixture("sp-only-no-idpssodescriptor.xml");
        let sp = sp.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        let xml = format!(
            "<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\">{sp}</md:EntitiesDescriptor>"
        );
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        assert_eq!(err, MetadataError::NoIdpInAggregate { entity_count: 1 });
    }

    #[test]
    fn doctype_and_xxe_are_refused() {
        let okta = fixture("okta-idp-metadata.xml");
        let body = okta.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        let cases = [
            format!(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE md:EntityDescriptor [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n{}",
                body.replace("urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified", "&xxe;")
            ),
            format!("<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>{body}"),
            format!("<!DOCTYPE md:EntityDescriptor SYSTEM \"http://127.0.0.1:1/evil.dtd\">{body}"),
            format!("<!DOCTYPE md:EntityDescriptor>{body}"),
        ];
        for xml in &cases {
            let err = parse_idp_metadata(xml, None, now()).unwrap_err();
            assert_eq!(err.code(), "doctype_not_allowed", "{xml:.80}");
            assert!(err.to_string().contains("XXE"));
        }
    }

    #[test]
    fn not_xml_and_malformed_are_refused() {
        let cases: &[(&str, &str)] = &[
            ("", "metadata_empty"),
            ("   \n ", "metadata_empty"),
            ("hello world", "not_xml"),
            ("https://idp.example.org/metadata", "not_xml"),
            ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "not_xml"),
            ("{\"issuer\":\"x\"}", "not_xml"),
            ("<!DOCTYPE html><html><body>Sign in</body></html>", "html_not_metadata"),
            (
                "<?xml version=\"1.0\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"x\"><html/>",
                "html_not_metadata",
            ),
            ("<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"/>", "html_not_metadata"),
            ("<html><body>login</body></html>", "html_not_metadata"),
            ("<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\"", "malformed_xml"),
            ("<a><b></a>", "malformed_xml"),
            ("<EntityDescriptor entityID=\"x\"/>", "unexpected_root_element"),
            ("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"/>", "unexpected_root_element"),
        ];
        for (input, code) in cases {
            let err = parse_idp_metadata(input, None, now()).unwrap_err();
            assert_eq!(err.code(), *code, "{input:?}: {err}");
            assert_eq!(err.field(), Some("metadata_xml"));
        }
        let err = parse_idp_metadata("https://idp.example.org/metadata", None, now()).unwrap_err();
        assert!(err.to_string().contains("looks like a URL"), "{err}");
        let err = parse_idp_metadata("<a><b></a>", None, now()).unwrap_err();
        assert!(matches!(err, MetadataError::MalformedXml { line: 1, .. }), "{err:?}");
    }

    #[test]
    fn oversized_metadata_is_refused() {
        let mut xml = fixture("okta-idp-metadata.xml");
        xml.push_str(&" ".repeat(MAX_METADATA_BYTES));
        let err = parse_idp_metadata(&xml, None, now()).unwrap_err();
        assert_eq!(err.code(), "metadata_too_large");
    }

    #[test]
    fn bom_is_tolerated() {
        let xml = format!("\u{feff}{}", fixture("okta-idp-metadata.xml"));
        assert!(parse_idp_metadata(&xml, None, now()).is_ok());
    }

    #[test]
    fn xs_duration_parser() {
        let ok = [
            ("PT2H", 7200.0),
            ("P1D", 86_400.0),
            ("P1M", 30.0 * 86_400.0),
            ("PT1M", 60.0),
            ("P1Y2M3DT4H5M6.5S", 365.0 * 86_400.0 + 60.0 * 86_400.0 + 3.0 * 86_400.0 + 4.0 * 3600.0 + 5.0 * 60.0 + 6.5),
            ("PT0S", 0.0),
            ("PT.5S", 0.5),
            (" P7D ", 7.0 * 86_400.0),
        ];
        for (s, secs) in ok {
            assert_eq!(parse_xs_duration(s).map(|d| d.as_secs_f64()), Some(secs), "{s}");
        }
        for bad in [
            "",
            "P",
            "PT",
            "P2DT",
            "P1DT",
            "-PT1H",
            "P1H",
            "PT1D",
            "P1.5D",
            "PT1.S",
            "P1D2Y",
            "P1Y1Y",
            "PT1H2H",
            "2D",
            "PTXS",
            "P99999999999999999999999Y",
            "p1d",
            "P1W",
        ] {
            assert_eq!(parse_xs_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn invalid_valid_until_is_warned_and_ignored() {
        let xml = fixture("okta-idp-metadata.xml").replace(
            "entityID=\"http://www.okta.com/exk9u78i8aMSxvkV70h7\"",
            "entityID=\"http://www.okta.com/exk9u78i8aMSxvkV70h7\" validUntil=\"tomorrow\" cacheDuration=\"PT1H\"",
        );
        let idp = parse_idp_metadata(&xml, None, now()).unwrap();
        assert_eq!(idp.valid_until, None);
        assert_eq!(idp.cache_duration, Some(Duration::from_secs(3600)));
        assert_eq!(codes(&idp), ["invalid_valid_until"]);
        assert_eq!(
            parse_xs_datetime("2026-05-16T21:51:14"),
            Some(Utc.with_ymd_and_hms(2026, 5, 16, 21, 51, 14).unwrap())
        );
        assert_eq!(
            parse_xs_datetime("2026-05-16T23:51:14+02:00"),
            Some(Utc.with_ymd_and_hms(2026, 5, 16, 21, 51, 14).unwrap())
        );
    }

    // ---- pasted certificates

    fn wrap64(b64: &str) -> String {
        b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn parse_certificate_accepts_pem_and_bare_base64() {
        let pem = format!(
            "Subject: CN=saml-demo\n-----BEGIN CERTIFICATE-----\r\n{}\r\n-----END CERTIFICATE-----\r\n",
            wrap64(CERT_B64)
        );
        let (from_pem, warnings) = parse_certificate(&pem, now()).unwrap();
        assert_eq!(from_pem.subject, "CN=saml-demo");
        assert_eq!(from_pem.key_bits, 1024);
        let c: Vec<_> = warnings.iter().map(|w| w.code).collect();
        assert_eq!(c, ["certificate_expired", "weak_rsa_key"]);
        assert!(warnings[0].message.contains("2026-11-03"), "{}", warnings[0].message);

        let (bare, _) = parse_certificate(CERT_B64, now()).unwrap();
        assert_eq!(bare, from_pem);

        let spaced: String = CERT_B64
            .as_bytes()
            .chunks(10)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" \t\r\n  ");
        let (spaced, _) = parse_certificate(&format!("\n  {spaced}  \n"), now()).unwrap();
        assert_eq!(spaced, from_pem);

        let unpadded = CERT_B64.trim_end_matches('=');
        assert_eq!(parse_certificate(unpadded, now()).unwrap().0, from_pem);
    }

    #[test]
    fn parse_certificate_refusals() {
        let pem = |label: &str, body: &str| format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
        let two = format!("{}{}", pem("CERTIFICATE", CERT_B64), pem("CERTIFICATE", CERT_B64));
        let truncated = &CERT_B64[..CERT_B64.len() - 40];
        let mut trailing = base64::engine::general_purpose::STANDARD.decode(CERT_B64).unwrap();
        trailing.extend_from_slice(b"\x00\x00");
        let trailing = base64::engine::general_purpose::STANDARD.encode(trailing);
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "certificate_empty"),
            ("  \n".into(), "certificate_empty"),
            ("not a certificate at all!".into(), "certificate_invalid"),
            ("SGVsbG8gd29ybGQ=".into(), "certificate_invalid"),
            (truncated.into(), "certificate_invalid"),
            (trailing, "certificate_invalid"),
            ("<ds:X509Certificate>MIIB</ds:X509Certificate>".into(), "certificate_invalid"),
            (pem("PRIVATE KEY", "MIIEvQIBADANBg"), "private_key_pasted"),
            (pem("RSA PRIVATE KEY", "MIIEpAIBAAKCAQEA"), "private_key_pasted"),
            (format!("{}{}", pem("CERTIFICATE", CERT_B64), pem("ENCRYPTED PRIVATE KEY", "MIIF")), "private_key_pasted"),
            (pem("PUBLIC KEY", "MIIBIjANBgkq"), "unsupported_pem_block"),
            (two, "multiple_certificates"),
            (format!("-----BEGIN CERTIFICATE-----\n{CERT_B64}\n"), "certificate_pem_malformed"),
            (pem("CERTIFICATE", "bm90IGEgY2VydA=="), "certificate_invalid"),
            ("A".repeat(MAX_CERTIFICATE_INPUT_BYTES + 1), "certificate_too_large"),
        ];
        for (input, code) in cases {
            let err = parse_certificate(&input, now()).unwrap_err();
            assert_eq!(err.code(), code, "{input:.60?}: {err}");
            assert_eq!(err.field(), Some("certificate_pem"));
        }
    }

    // ---- generated certificates

    fn self_signed(bits: u32, not_before: DateTime<Utc>, not_after: DateTime<Utc>, cn: &str) -> String {
        use openssl::asn1::Asn1Integer;
        use openssl::bn::BigNum;
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::rsa::Rsa;
        use openssl::x509::{X509Builder, X509NameBuilder};

        let key = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("C", "DE").unwrap();
        name.append_entry_by_text("O", "Example").unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = Asn1Integer::from_bn(&BigNum::from_u32(42).unwrap()).unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(not_before.timestamp()).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::from_unix(not_after.timestamp()).unwrap()).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        String::from_utf8(b.build().to_pem().unwrap()).unwrap()
    }

    fn ymd(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn generated_2048_bit_certificate_has_no_warnings() {
        let pem = self_signed(2048, ymd(2026, 1, 1), ymd(2028, 1, 1), "idp.example.com");
        let (cert, warnings) = parse_certificate(&pem, now()).unwrap();
        assert_eq!(cert.key_bits, 2048);
        assert_eq!(cert.key_type, "RSA");
        assert_eq!(cert.subject, "CN=idp.example.com, O=Example, C=DE");
        assert_eq!(cert.issuer, cert.subject);
        assert_eq!(cert.not_after, ymd(2028, 1, 1));
        assert_eq!(cert.not_before, ymd(2026, 1, 1));
        assert_eq!(cert.signature_algorithm, "sha256WithRSAEncryption");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cert.fingerprint_sha256, fingerprint_sha256(&cert.der));
        assert_eq!(cert.fingerprint_sha256.len(), 32 * 3 - 1);
        assert!(cert.fingerprint_sha256.chars().all(|c| c == ':' || c.is_ascii_digit() || c.is_ascii_uppercase()));
    }

    #[test]
    fn generated_1024_bit_certificate_is_weak() {
        let pem = self_signed(1024, ymd(2026, 1, 1), ymd(2028, 1, 1), "Doe, John");
        let (cert, warnings) = parse_certificate(&pem, now()).unwrap();
        assert_eq!(cert.key_bits, 1024);
        assert_eq!(cert.subject, "CN=Doe\\, John, O=Example, C=DE");
        let c: Vec<_> = warnings.iter().map(|w| w.code).collect();
        assert_eq!(c, ["weak_rsa_key"]);
        assert!(warnings[0].message.contains("1024-bit"));
    }

    #[test]
    fn expiry_windows() {
        let soon = self_signed(1024, ymd(2026, 1, 1), ymd(2026, 12, 10), "soon");
        let (cert, _) = parse_certificate(&soon, now()).unwrap();
        let w = certificate_warnings(&cert, now());
        let c: Vec<_> = w.iter().map(|w| w.code).collect();
        assert_eq!(c, ["certificate_expiring_soon", "weak_rsa_key"]);
        assert!(w[0].message.contains("2026-12-10"), "{}", w[0].message);
        // 31 days later it has expired.
        let later = now() + chrono::Duration::days(31);
        assert_eq!(certificate_warnings(&cert, later)[0].code, "certificate_expired");
        // Well before expiry: nothing about dates.
        let early = ymd(2026, 6, 1);
        assert!(certificate_warnings(&cert, early).iter().all(|w| w.code == "weak_rsa_key"));
        let future = self_signed(1024, ymd(2027, 1, 1), ymd(2028, 1, 1), "future");
        let (cert, w) = parse_certificate(&future, now()).unwrap();
        assert!(w.iter().any(|w| w.code == "certificate_not_yet_valid"));
        assert_eq!(cert.not_before, ymd(2027, 1, 1));
    }

    #[test]
    fn wso2_lookalike_subject_is_suspected() {
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::rsa::Rsa;
        use openssl::x509::{X509Builder, X509NameBuilder};
        let key = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        for (k, v) in [("C", "US"), ("ST", "CA"), ("L", "Mountain View"), ("O", "WSO2"), ("CN", "localhost")] {
            name.append_entry_by_text(k, v).unwrap();
        }
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(ymd(2026, 1, 1).timestamp()).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::from_unix(ymd(2030, 1, 1).timestamp()).unwrap()).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let pem = String::from_utf8(b.build().to_pem().unwrap()).unwrap();
        let (cert, w) = parse_certificate(&pem, now()).unwrap();
        assert_eq!(cert.subject, "CN=localhost, O=WSO2, L=Mountain View, ST=CA, C=US");
        let c: Vec<_> = w.iter().map(|w| w.code).collect();
        assert_eq!(c, ["wso2_default_certificate_suspected", "weak_rsa_key"]);
    }

    #[test]
    fn rdn_escaping() {
        assert_eq!(escape_rdn_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rdn_value("#x"), "\\#x");
        assert_eq!(escape_rdn_value(" x "), "\\ x\\ ");
        assert_eq!(escape_rdn_value("a\"b\\c<d>e;f"), "a\\\"b\\\\c\\<d\\>e\\;f");
        assert_eq!(escape_rdn_value("a\nb"), "a\\0Ab");
        assert_eq!(escape_rdn_value(""), "");
    }

    #[test]
    fn query_separator() {
        let e = |l: &str| Endpoint { binding: REDIRECT, location: l.into() };
        assert_eq!(e("https://a/sso").query_separator(), "?");
        assert_eq!(e("https://a/sso?x=1").query_separator(), "&");
        assert_eq!(e("https://a/sso?").query_separator(), "");
        assert_eq!(e("https://a/sso?x=1&").query_separator(), "");
    }

    #[test]
    fn error_messages_are_specific() {
        let all = [
            MetadataError::EntitySelectionRequired {
                candidates: (0..15).map(|i| format!("https://idp{i}/")).collect(),
            },
            MetadataError::NoSigningCertificate {
                entity_id: "x".into(),
                encryption_keys: 1,
                keys_without_certificate: 0,
            },
        ];
        let msg = all[0].to_string();
        assert!(msg.contains("15 identity providers"), "{msg}");
        assert!(msg.contains("and 5 more"), "{msg}");
        assert!(!msg.contains("idp12"), "{msg}");
        assert!(all[1].to_string().contains("use=\"encryption\""));
    }
}
