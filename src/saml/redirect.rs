//! SAML 2.0 HTTP-Redirect binding (saml-bindings-2.0-os §3.4), written by us.
//!
//! samael 0.0.22's redirect helpers are not used because (see docs/saml-sp.md §2):
//! * `crypto::sign_url` signs the *whole* query, so an IdP SSO URL that already carries a
//!   query (`…/samlsso?tenantDomain=x`, Google's `…?idpid=X`) yields a signature the IdP
//!   cannot verify;
//! * `UrlVerifier` re-encodes the decoded parameters instead of using the received octets
//!   (ADFS-style lowercase `%2f` fails), and indexes `query_params["SigAlg"]` /
//!   `["Signature"]`, which panics when they are absent (remote panic).
//!
//! Encoding: raw DEFLATE (RFC 1951), base64 (standard alphabet, padded), then
//! `application/x-www-form-urlencoded` byte serialisation (uppercase hex, space as `+`,
//! `*-._` and alphanumerics kept). This is the same octet form that samael's `UrlVerifier`,
//! Java's `URLEncoder` (OpenSAML / WSO2 / Shibboleth) and python3-saml produce, so their
//! verifiers accept our signatures.
//!
//! Decoding works on the raw query substrings: the signed octets are the received
//! `name=value` substrings, byte for byte, joined with `&` (§3.4.4.1).

use std::io::Write;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use flate2::write::DeflateEncoder;
use flate2::{Compression, Decompress, FlushDecompress, Status};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::sign::{Signer, Verifier};
use percent_encoding::percent_decode;
use thiserror::Error;

/// `SigAlg` URI for RSA-SHA1 (xmldsig core). Only accepted when explicitly allowed.
pub const SIG_ALG_RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
/// `SigAlg` URI for RSA-SHA256 (RFC 4051). This is what we sign with.
pub const SIG_ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// `SigAlg` URI for RSA-SHA384 (RFC 4051).
pub const SIG_ALG_RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
/// `SigAlg` URI for RSA-SHA512 (RFC 4051).
pub const SIG_ALG_RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";

/// Hard cap on the inflated XML (zip-bomb protection).
pub const MAX_INFLATED_BYTES: usize = 256 * 1024;
/// Hard cap on the raw query string we are willing to look at.
pub const MAX_RAW_QUERY_BYTES: usize = 256 * 1024;
/// saml-bindings-2.0-os §3.4.3: "RelayState data MUST NOT exceed 80 bytes in length".
/// Enforced when *we* send; not enforced on receipt (IdPs echo what they were given).
pub const MAX_RELAY_STATE_BYTES: usize = 80;

const PARAM_REQUEST: &str = "SAMLRequest";
const PARAM_RESPONSE: &str = "SAMLResponse";
const PARAM_RELAY_STATE: &str = "RelayState";
const PARAM_SIG_ALG: &str = "SigAlg";
const PARAM_SIGNATURE: &str = "Signature";
const SAML_PARAMS: [&str; 5] = [PARAM_REQUEST, PARAM_RESPONSE, PARAM_RELAY_STATE, PARAM_SIG_ALG, PARAM_SIGNATURE];

/// Which SAML message the query carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// `SAMLRequest` (AuthnRequest, LogoutRequest).
    Request,
    /// `SAMLResponse` (LogoutResponse; Responses to AuthnRequests never use this binding).
    Response,
}

impl MessageKind {
    /// The query parameter name.
    pub fn param_name(self) -> &'static str {
        match self {
            MessageKind::Request => PARAM_REQUEST,
            MessageKind::Response => PARAM_RESPONSE,
        }
    }
}

/// Redirect-binding signature algorithms we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectSigAlg {
    /// Legacy; refused on receipt unless `allow_sha1`.
    RsaSha1,
    RsaSha256,
    RsaSha384,
    RsaSha512,
}

impl RedirectSigAlg {
    /// The `SigAlg` URI.
    pub fn uri(self) -> &'static str {
        match self {
            RedirectSigAlg::RsaSha1 => SIG_ALG_RSA_SHA1,
            RedirectSigAlg::RsaSha256 => SIG_ALG_RSA_SHA256,
            RedirectSigAlg::RsaSha384 => SIG_ALG_RSA_SHA384,
            RedirectSigAlg::RsaSha512 => SIG_ALG_RSA_SHA512,
        }
    }

    /// Exact (case-sensitive) match of a decoded `SigAlg` value.
    pub fn from_uri(uri: &str) -> Option<Self> {
        [RedirectSigAlg::RsaSha1, RedirectSigAlg::RsaSha256, RedirectSigAlg::RsaSha384, RedirectSigAlg::RsaSha512]
            .into_iter()
            .find(|alg| alg.uri() == uri)
    }

    fn digest(self) -> MessageDigest {
        match self {
            RedirectSigAlg::RsaSha1 => MessageDigest::sha1(),
            RedirectSigAlg::RsaSha256 => MessageDigest::sha256(),
            RedirectSigAlg::RsaSha384 => MessageDigest::sha384(),
            RedirectSigAlg::RsaSha512 => MessageDigest::sha512(),
        }
    }
}

/// A decoded (and, when `signed`, verified) redirect-binding message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectMessage {
    pub kind: MessageKind,
    /// The inflated XML. Still untrusted XML: parse it with a strict parser.
    pub xml: String,
    /// Decoded RelayState (`+` and `%20` are spaces).
    pub relay_state: Option<String>,
    /// Decoded `SigAlg` URI, when the message was signed.
    pub sig_alg: Option<String>,
    /// `true` only if a `Signature` was present *and* verified under one of the given keys.
    pub signed: bool,
}

/// Everything that can go wrong. Messages are safe to log: attacker-controlled text is
/// truncated.
#[derive(Debug, Error)]
pub enum RedirectError {
    // ---- encoding (our side) ----
    #[error(
        "invalid destination URL {0:?}: need an absolute http(s) URL without a fragment, spaces or non-ASCII characters"
    )]
    InvalidDestination(String),
    #[error(
        "destination URL already has a {0} query parameter; it would be sent twice (configure the IdP SSO/SLO URL without SAML parameters)"
    )]
    DestinationHasSamlParam(&'static str),
    #[error(
        "RelayState is {len} bytes; the SAML redirect binding allows at most {MAX_RELAY_STATE_BYTES} (store the state server-side and send a short key)"
    )]
    RelayStateTooLong { len: usize },
    #[error("signing key is not an RSA key; only RSA redirect signatures (rsa-sha256) are produced")]
    UnsupportedSigningKey,
    #[error("DEFLATE compression failed: {0}")]
    Deflate(#[source] std::io::Error),
    #[error("creating the redirect signature failed: {0}")]
    Signing(#[source] openssl::error::ErrorStack),

    // ---- decoding (their side) ----
    #[error("query string is {len} bytes; refusing anything over {MAX_RAW_QUERY_BYTES} bytes")]
    QueryTooLong { len: usize },
    #[error("query parameter {0} appears more than once")]
    DuplicateParameter(&'static str),
    #[error("query has both SAMLRequest and SAMLResponse")]
    AmbiguousMessage,
    #[error("query has neither a SAMLRequest nor a SAMLResponse parameter")]
    MissingMessage,
    #[error(
        "message is unsigned (no Signature and SigAlg parameters) but this IdP must sign redirect-binding messages"
    )]
    SignatureRequired,
    #[error("query has a Signature but no SigAlg parameter")]
    MissingSigAlg,
    #[error("query has a SigAlg but no Signature parameter")]
    MissingSignature,
    #[error(
        "SigAlg {SIG_ALG_RSA_SHA1} (RSA-SHA1) is refused: SHA-1 signatures are disabled for this IdP. Configure the IdP to sign with RSA-SHA256, or, if it cannot be changed, enable \"allow SHA-1\" for this IdP (allow_sha1 = true)"
    )]
    Sha1Refused,
    #[error("unsupported SigAlg {0:?}; supported: rsa-sha256, rsa-sha384, rsa-sha512 (and rsa-sha1 when allowed)")]
    UnsupportedSigAlg(String),
    #[error("message is signed but no IdP verification key is configured")]
    NoVerificationKeys,
    #[error("Signature parameter is not valid base64: {0}")]
    BadSignatureEncoding(#[source] base64::DecodeError),
    #[error("redirect signature does not verify under any configured IdP key")]
    InvalidSignature,
    #[error("RelayState is not valid UTF-8 after percent-decoding")]
    BadRelayState,
    #[error("SAML message parameter is not valid base64: {0}")]
    BadMessageEncoding(#[source] base64::DecodeError),
    #[error("SAML message is empty")]
    EmptyMessage,
    #[error("SAML message is not valid raw DEFLATE data: {0}")]
    Inflate(#[source] flate2::DecompressError),
    #[error("SAML message DEFLATE stream is truncated (no final block)")]
    InflateTruncated,
    #[error("SAML message inflates to more than {MAX_INFLATED_BYTES} bytes; refusing (possible deflate bomb)")]
    InflatedTooLarge,
    #[error("inflated SAML message is not valid UTF-8")]
    NotUtf8,
}

impl RedirectError {
    /// Stable machine-readable code for logs and error pages.
    pub fn code(&self) -> &'static str {
        match self {
            RedirectError::InvalidDestination(_) => "redirect_invalid_destination",
            RedirectError::DestinationHasSamlParam(_) => "redirect_destination_has_saml_param",
            RedirectError::RelayStateTooLong { .. } => "redirect_relay_state_too_long",
            RedirectError::UnsupportedSigningKey => "redirect_unsupported_signing_key",
            RedirectError::Deflate(_) => "redirect_deflate_failed",
            RedirectError::Signing(_) => "redirect_signing_failed",
            RedirectError::QueryTooLong { .. } => "redirect_query_too_long",
            RedirectError::DuplicateParameter(_) => "redirect_duplicate_parameter",
            RedirectError::AmbiguousMessage => "redirect_ambiguous_message",
            RedirectError::MissingMessage => "redirect_missing_message",
            RedirectError::SignatureRequired => "redirect_signature_required",
            RedirectError::MissingSigAlg => "redirect_missing_sigalg",
            RedirectError::MissingSignature => "redirect_missing_signature",
            RedirectError::Sha1Refused => "redirect_sha1_refused",
            RedirectError::UnsupportedSigAlg(_) => "redirect_unsupported_sigalg",
            RedirectError::NoVerificationKeys => "redirect_no_verification_keys",
            RedirectError::BadSignatureEncoding(_) => "redirect_bad_signature_encoding",
            RedirectError::InvalidSignature => "redirect_invalid_signature",
            RedirectError::BadRelayState => "redirect_bad_relay_state",
            RedirectError::BadMessageEncoding(_) => "redirect_bad_base64",
            RedirectError::EmptyMessage => "redirect_empty_message",
            RedirectError::Inflate(_) => "redirect_inflate_failed",
            RedirectError::InflateTruncated => "redirect_inflate_truncated",
            RedirectError::InflatedTooLarge => "redirect_inflated_too_large",
            RedirectError::NotUtf8 => "redirect_not_utf8",
        }
    }
}

/// Builds the redirect URL for `xml`. Signs with RSA-SHA256 when `signing_key` is given.
///
/// If `destination` already has a query it is kept byte for byte and the SAML parameters
/// are appended with `&`; the existing query is *not* part of the signed octets.
pub fn encode_redirect_url(
    destination: &str,
    kind: MessageKind,
    xml: &str,
    relay_state: Option<&str>,
    signing_key: Option<&PKey<Private>>,
) -> Result<String, RedirectError> {
    encode_redirect_url_with_sig_alg(
        destination,
        kind,
        xml,
        relay_state,
        signing_key.map(|key| (key, RedirectSigAlg::RsaSha256)),
    )
}

/// Like [`encode_redirect_url`] with a chosen algorithm. Meant for tests that play an IdP
/// (e.g. a WSO2 5.x sending RSA-SHA1); production code uses [`encode_redirect_url`].
pub fn encode_redirect_url_with_sig_alg(
    destination: &str,
    kind: MessageKind,
    xml: &str,
    relay_state: Option<&str>,
    signing: Option<(&PKey<Private>, RedirectSigAlg)>,
) -> Result<String, RedirectError> {
    check_destination(destination)?;
    if let Some(rs) = relay_state
        && rs.len() > MAX_RELAY_STATE_BYTES
    {
        return Err(RedirectError::RelayStateTooLong { len: rs.len() });
    }

    let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
    deflater.write_all(xml.as_bytes()).map_err(RedirectError::Deflate)?;
    let deflated = deflater.finish().map_err(RedirectError::Deflate)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(deflated);

    // The octets to sign are exactly the query we emit (minus the destination's own query).
    let mut saml_query = format!("{}={}", kind.param_name(), form_encode(&b64));
    if let Some(rs) = relay_state {
        saml_query.push_str("&RelayState=");
        saml_query.push_str(&form_encode(rs));
    }
    if let Some((key, alg)) = signing {
        if key.id() != Id::RSA {
            return Err(RedirectError::UnsupportedSigningKey);
        }
        saml_query.push_str("&SigAlg=");
        saml_query.push_str(&form_encode(alg.uri()));
        let mut signer = Signer::new(alg.digest(), key).map_err(RedirectError::Signing)?;
        signer.update(saml_query.as_bytes()).map_err(RedirectError::Signing)?;
        let sig = signer.sign_to_vec().map_err(RedirectError::Signing)?;
        saml_query.push_str("&Signature=");
        saml_query.push_str(&form_encode(&base64::engine::general_purpose::STANDARD.encode(sig)));
    }

    let separator = match destination.find('?') {
        None => "?",
        Some(_) if destination.ends_with('?') || destination.ends_with('&') => "",
        Some(_) => "&",
    };
    Ok(format!("{destination}{separator}{saml_query}"))
}

fn check_destination(destination: &str) -> Result<(), RedirectError> {
    let bad = || RedirectError::InvalidDestination(truncate(destination, 200));
    if !destination.is_ascii()
        || destination.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        || destination.contains('#')
    {
        return Err(bad());
    }
    let url = url::Url::parse(destination).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad());
    }
    if let Some((_, query)) = destination.split_once('?') {
        for segment in query.split('&') {
            let name = segment.split_once('=').map_or(segment, |(n, _)| n);
            if let Some(param) = SAML_PARAMS.iter().find(|p| **p == name) {
                return Err(RedirectError::DestinationHasSamlParam(param));
            }
        }
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` byte serialisation (uppercase hex).
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Decodes a received redirect-binding query and verifies its signature.
///
/// `raw_query` is the query exactly as received (without `?`; a leading `?` is tolerated).
/// Parameters other than the five SAML ones are ignored and never part of the signed octets.
/// When a `Signature` is present it is always verified (even if `require_signature` is
/// false); the signature must be valid under at least one key of `verify_with` (non-RSA keys
/// are skipped). Verification happens before base64/inflate work on the message.
pub fn decode_redirect_query(
    raw_query: &str,
    verify_with: &[PKey<Public>],
    require_signature: bool,
    allow_sha1: bool,
) -> Result<RedirectMessage, RedirectError> {
    if raw_query.len() > MAX_RAW_QUERY_BYTES {
        return Err(RedirectError::QueryTooLong { len: raw_query.len() });
    }
    let raw_query = raw_query.strip_prefix('?').unwrap_or(raw_query);

    // Raw `name=value` segments (the whole segment is kept for the signed octets).
    let mut request: Option<&str> = None;
    let mut response: Option<&str> = None;
    let mut relay_state: Option<&str> = None;
    let mut sig_alg: Option<&str> = None;
    let mut signature: Option<&str> = None;
    for segment in raw_query.split('&').filter(|s| !s.is_empty()) {
        let name = segment.split_once('=').map_or(segment, |(n, _)| n);
        let slot = match name {
            PARAM_REQUEST => &mut request,
            PARAM_RESPONSE => &mut response,
            PARAM_RELAY_STATE => &mut relay_state,
            PARAM_SIG_ALG => &mut sig_alg,
            PARAM_SIGNATURE => &mut signature,
            _ => continue,
        };
        if slot.is_some() {
            let static_name = SAML_PARAMS.iter().find(|p| **p == name).copied().unwrap_or("?");
            return Err(RedirectError::DuplicateParameter(static_name));
        }
        *slot = Some(segment);
    }

    let (kind, message_segment) = match (request, response) {
        (Some(_), Some(_)) => return Err(RedirectError::AmbiguousMessage),
        (Some(seg), None) => (MessageKind::Request, seg),
        (None, Some(seg)) => (MessageKind::Response, seg),
        (None, None) => return Err(RedirectError::MissingMessage),
    };

    let (signed, sig_alg_uri) = match (sig_alg, signature) {
        (None, None) if require_signature => return Err(RedirectError::SignatureRequired),
        (None, None) => (false, None),
        (None, Some(_)) => return Err(RedirectError::MissingSigAlg),
        (Some(_), None) => return Err(RedirectError::MissingSignature),
        (Some(sig_alg_seg), Some(signature_seg)) => {
            let uri = decode_text(value_of(sig_alg_seg)).unwrap_or_default();
            let alg = match RedirectSigAlg::from_uri(&uri) {
                Some(RedirectSigAlg::RsaSha1) if !allow_sha1 => {
                    return Err(RedirectError::Sha1Refused);
                }
                Some(alg) => alg,
                None => return Err(RedirectError::UnsupportedSigAlg(truncate(&uri, 120))),
            };
            if verify_with.is_empty() {
                return Err(RedirectError::NoVerificationKeys);
            }
            let sig = decode_base64(&decode_base64_param(value_of(signature_seg)))
                .map_err(RedirectError::BadSignatureEncoding)?;

            // §3.4.4.1: SAMLxxx=value[&RelayState=value]&SigAlg=value, as received.
            let mut octets = String::with_capacity(raw_query.len());
            octets.push_str(message_segment);
            if let Some(rs) = relay_state {
                octets.push('&');
                octets.push_str(rs);
            }
            octets.push('&');
            octets.push_str(sig_alg_seg);

            if !verify_with.iter().any(|key| verify_one(key, alg, octets.as_bytes(), &sig)) {
                return Err(RedirectError::InvalidSignature);
            }
            (true, Some(uri))
        }
    };

    let relay_state = match relay_state {
        Some(seg) => Some(decode_text(value_of(seg)).ok_or(RedirectError::BadRelayState)?),
        None => None,
    };

    let compressed =
        decode_base64(&decode_base64_param(value_of(message_segment))).map_err(RedirectError::BadMessageEncoding)?;
    if compressed.is_empty() {
        return Err(RedirectError::EmptyMessage);
    }
    let xml = inflate_limited(&compressed, MAX_INFLATED_BYTES)?;
    if xml.is_empty() {
        return Err(RedirectError::EmptyMessage);
    }

    Ok(RedirectMessage { kind, xml, relay_state, sig_alg: sig_alg_uri, signed })
}

fn verify_one(key: &PKey<Public>, alg: RedirectSigAlg, data: &[u8], sig: &[u8]) -> bool {
    // Never let an RSA SigAlg be checked with an EC/DSA key (algorithm confusion).
    if key.id() != Id::RSA {
        return false;
    }
    let Ok(mut verifier) = Verifier::new(alg.digest(), key) else {
        return false;
    };
    verifier.update(data).is_ok() && verifier.verify(sig).unwrap_or(false)
}

fn value_of(segment: &str) -> &str {
    segment.split_once('=').map_or("", |(_, v)| v)
}

/// Form-decodes a text value (`+` is a space). `None` if not UTF-8.
fn decode_text(raw: &str) -> Option<String> {
    let plus_as_space = raw.replace('+', " ");
    percent_decode(plus_as_space.as_bytes()).decode_utf8().ok().map(|cow| cow.into_owned())
}

/// Percent-decodes a base64 value. A literal `+` is kept as `+`: base64 has no spaces, and
/// some senders forget to encode `+` (a form-encoder would have sent `%2B`).
fn decode_base64_param(raw: &str) -> Vec<u8> {
    percent_decode(raw.as_bytes()).collect()
}

/// Standard-alphabet base64, ASCII whitespace ignored, padding optional.
fn decode_base64(data: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let stripped: Vec<u8> = data.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    ENGINE.decode(stripped)
}

fn inflate_limited(compressed: &[u8], limit: usize) -> Result<String, RedirectError> {
    // flate2's `read::DeflateDecoder` silently returns a prefix for a truncated stream, so
    // drive `Decompress` directly and insist on the final block.
    let mut inflater = Decompress::new(false);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() > limit {
            return Err(RedirectError::InflatedTooLarge);
        }
        let room = limit + 1 - out.len();
        out.reserve_exact(room.min(64 * 1024));
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let consumed = usize::try_from(in_before).unwrap_or(usize::MAX);
        let input = compressed.get(consumed..).unwrap_or_default();
        let status = inflater.decompress_vec(input, &mut out, FlushDecompress::None).map_err(RedirectError::Inflate)?;
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                if inflater.total_in() == in_before && inflater.total_out() == out_before {
                    return Err(RedirectError::InflateTruncated);
                }
            }
        }
    }
    if out.len() > limit {
        return Err(RedirectError::InflatedTooLarge);
    }
    String::from_utf8(out).map_err(|_| RedirectError::NotUtf8)
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::Rsa;
    use std::sync::OnceLock;

    const AUTHN: &str = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1b2c3d4e5f60718293a4b5c6d7e8f90" Version="2.0" IssueInstant="2026-11-28T12:00:00Z" Destination="https://idp.example.com/samlsso" AssertionConsumerServiceURL="https://sp.example.com/saml/acs" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>https://sp.example.com/saml/metadata</saml:Issuer></samlp:AuthnRequest>"#;
    const RELAY: &str = "a+b/c=d&e f~é";

    fn keys() -> &'static (PKey<Private>, PKey<Private>) {
        static KEYS: OnceLock<(PKey<Private>, PKey<Private>)> = OnceLock::new();
        KEYS.get_or_init(|| {
            (
                PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
                PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
            )
        })
    }
    fn public(key: &PKey<Private>) -> PKey<Public> {
        PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap()
    }
    fn query_of(url: &str) -> &str {
        url.split_once('?').unwrap().1
    }
    fn signed_url(relay: Option<&str>) -> String {
        encode_redirect_url("https://idp.example.com/samlsso", MessageKind::Request, AUTHN, relay, Some(&keys().0))
            .unwrap()
    }
    /// Replaces the value of one raw parameter, keeping everything else byte for byte.
    fn replace_param(query: &str, name: &str, new_value: &str) -> String {
        query
            .split('&')
            .map(|seg| {
                if seg.split_once('=').map(|(n, _)| n) == Some(name) {
                    format!("{name}={new_value}")
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    }
    fn remove_param(query: &str, name: &str) -> String {
        query.split('&').filter(|seg| seg.split_once('=').map(|(n, _)| n) != Some(name)).collect::<Vec<_>>().join("&")
    }
    fn raw_param<'a>(query: &'a str, name: &str) -> &'a str {
        query.split('&').find_map(|seg| seg.strip_prefix(&format!("{name}="))).unwrap()
    }
    fn lower_hex(encoded: &str) -> String {
        let mut out = String::new();
        let mut chars = encoded.chars();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '%' {
                out.extend(chars.next().map(|c| c.to_ascii_lowercase()));
                out.extend(chars.next().map(|c| c.to_ascii_lowercase()));
            }
        }
        out
    }
    fn sign_b64(key: &PKey<Private>, md: MessageDigest, data: &str) -> String {
        let mut s = Signer::new(md, key).unwrap();
        s.update(data.as_bytes()).unwrap();
        base64::engine::general_purpose::STANDARD.encode(s.sign_to_vec().unwrap())
    }

    #[test]
    fn round_trip_unsigned() {
        let url =
            encode_redirect_url("https://idp.example.com/samlsso", MessageKind::Request, AUTHN, Some(RELAY), None)
                .unwrap();
        assert!(url.starts_with("https://idp.example.com/samlsso?SAMLRequest="));
        assert!(!url.contains("SigAlg") && !url.contains("Signature"));
        let msg = decode_redirect_query(query_of(&url), &[], false, false).unwrap();
        assert_eq!(msg.kind, MessageKind::Request);
        assert_eq!(msg.xml, AUTHN);
        assert_eq!(msg.relay_state.as_deref(), Some(RELAY));
        assert!(!msg.signed);
        assert_eq!(msg.sig_alg, None);
        // Unsigned but signature required.
        let err = decode_redirect_query(query_of(&url), &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_signature_required");
    }

    #[test]
    fn round_trip_signed_with_and_without_relay_state() {
        for relay in [Some(RELAY), None, Some("")] {
            let url = signed_url(relay);
            let q = query_of(&url);
            let names: Vec<_> = q.split('&').map(|s| s.split('=').next().unwrap()).collect();
            let expected: Vec<&str> = if relay.is_some() {
                vec!["SAMLRequest", "RelayState", "SigAlg", "Signature"]
            } else {
                vec!["SAMLRequest", "SigAlg", "Signature"]
            };
            assert_eq!(names, expected);
            assert_eq!(raw_param(q, "SigAlg"), "http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256");
            let msg = decode_redirect_query(q, &[public(&keys().0)], true, false).unwrap();
            assert!(msg.signed);
            assert_eq!(msg.xml, AUTHN);
            assert_eq!(msg.relay_state.as_deref(), relay);
            assert_eq!(msg.sig_alg.as_deref(), Some(SIG_ALG_RSA_SHA256));
            // Also with a leading '?'.
            decode_redirect_query(&format!("?{q}"), &[public(&keys().0)], true, false).unwrap();
        }
    }

    #[test]
    fn response_kind_round_trip() {
        let xml = r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" Version="2.0" IssueInstant="2026-11-28T12:00:00Z"/>"#;
        let url = encode_redirect_url("https://idp.example.com/slo", MessageKind::Response, xml, None, Some(&keys().0))
            .unwrap();
        assert!(query_of(&url).starts_with("SAMLResponse="));
        let msg = decode_redirect_query(query_of(&url), &[public(&keys().0)], true, false).unwrap();
        assert_eq!((msg.kind, msg.xml.as_str(), msg.signed), (MessageKind::Response, xml, true));
    }

    #[test]
    fn any_of_several_keys_verifies() {
        let url = signed_url(Some(RELAY));
        let msg = decode_redirect_query(query_of(&url), &[public(&keys().1), public(&keys().0)], true, false).unwrap();
        assert!(msg.signed);
    }

    #[test]
    fn destination_with_existing_query_is_kept_and_not_signed() {
        for dest in [
            "https://accounts.example.com/o/saml2/idp?idpid=C01abc",
            "https://is.example.com/samlsso?tenantDomain=x&spQualifier=a%2Fb",
        ] {
            let url = encode_redirect_url(dest, MessageKind::Request, AUTHN, Some(RELAY), Some(&keys().0)).unwrap();
            let (existing, saml) = url.split_at(dest.len());
            assert_eq!(existing, dest, "existing query untouched");
            assert!(saml.starts_with("&SAMLRequest="));
            // Our decoder on the whole received query: unknown params ignored, sig verifies.
            let msg = decode_redirect_query(query_of(&url), &[public(&keys().0)], true, false).unwrap();
            assert!(msg.signed);
            assert_eq!(msg.xml, AUTHN);
            // Independent check: the signature covers exactly SAMLRequest..SigAlg, without
            // the destination's own query.
            let q = &saml[1..];
            let (signed_part, sig) = q.rsplit_once("&Signature=").unwrap();
            let sig = decode_base64(&decode_base64_param(sig)).unwrap();
            let mut v = Verifier::new(MessageDigest::sha256(), &keys().0).unwrap();
            v.update(signed_part.as_bytes()).unwrap();
            assert!(v.verify(&sig).unwrap());
        }
        // Trailing '?' and '&' need no extra separator.
        let url = encode_redirect_url("https://idp.example.com/sso?", MessageKind::Request, AUTHN, None, None).unwrap();
        assert!(url.starts_with("https://idp.example.com/sso?SAMLRequest="));
        let url =
            encode_redirect_url("https://idp.example.com/sso?a=1&", MessageKind::Request, AUTHN, None, None).unwrap();
        assert!(url.starts_with("https://idp.example.com/sso?a=1&SAMLRequest="));
    }

    #[test]
    fn bad_destinations_and_relay_state_rejected() {
        for dest in [
            "/relative/path",
            "ftp://idp.example.com/sso",
            "https://idp.example.com/sso#frag",
            "https://idp.example.com/s so",
            "https://idp.example.com/sso?RelayState=x",
            "https://idp.example.com/sso?a=1&SAMLRequest=x",
        ] {
            let err = encode_redirect_url(dest, MessageKind::Request, AUTHN, None, None).unwrap_err();
            assert!(
                matches!(err.code(), "redirect_invalid_destination" | "redirect_destination_has_saml_param"),
                "{dest}: {err}"
            );
        }
        let long = "x".repeat(81);
        let err = encode_redirect_url("https://idp.example.com/sso", MessageKind::Request, AUTHN, Some(&long), None)
            .unwrap_err();
        assert_eq!(err.code(), "redirect_relay_state_too_long");
    }

    #[test]
    fn non_rsa_signing_key_rejected() {
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        let err = encode_redirect_url("https://idp.example.com/sso", MessageKind::Request, AUTHN, None, Some(&ec))
            .unwrap_err();
        assert_eq!(err.code(), "redirect_unsupported_signing_key");
    }

    /// ADFS / .NET style: lowercase hex in the percent-encoding, signed over those octets.
    #[test]
    fn lowercase_percent_encoding_verifies_as_received() {
        let url =
            encode_redirect_url("https://sp.example.com/saml/slo", MessageKind::Request, AUTHN, Some(RELAY), None)
                .unwrap();
        let q = lower_hex(query_of(&url));
        assert_ne!(q, query_of(&url), "test data must contain %XX escapes");
        let q = format!("{q}&SigAlg={}", lower_hex(&form_encode(SIG_ALG_RSA_SHA256)));
        let sig = sign_b64(&keys().0, MessageDigest::sha256(), &q);
        let received = format!("{q}&Signature={}", lower_hex(&form_encode(&sig)));
        assert!(received.contains("%2f") || received.contains("%2b"));
        let msg = decode_redirect_query(&received, &[public(&keys().0)], true, false).unwrap();
        assert!(msg.signed);
        assert_eq!(msg.xml, AUTHN);
        assert_eq!(msg.relay_state.as_deref(), Some(RELAY));

        // samael 0.0.22's UrlVerifier re-encodes (uppercase) and so rejects this genuine URL.
        let cert = self_signed_cert(&keys().0);
        let verifier = samael::crypto::UrlVerifier::from_x509_cert_pem(&cert).unwrap();
        let full = url::Url::parse(&format!("https://sp.example.com/saml/slo?{received}")).unwrap();
        assert!(!verifier.verify_signed_request_url(&full).unwrap());
    }

    #[test]
    fn changing_the_encoding_after_signing_breaks_the_signature() {
        // Signed octets are the received ones: lowercasing a signed (uppercase) query fails.
        let url = signed_url(Some(RELAY));
        let q = query_of(&url);
        let (before_sig, sig) = q.rsplit_once("&Signature=").unwrap();
        let lowered = format!("{}&Signature={sig}", lower_hex(before_sig));
        let err = decode_redirect_query(&lowered, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");
    }

    #[test]
    fn wrong_key_rejected() {
        let url = signed_url(Some(RELAY));
        let err = decode_redirect_query(query_of(&url), &[public(&keys().1)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");
        // No keys at all while the message is signed: configuration error, not acceptance.
        let err = decode_redirect_query(query_of(&url), &[], false, false).unwrap_err();
        assert_eq!(err.code(), "redirect_no_verification_keys");
        // An EC key is skipped, never used to check an RSA SigAlg.
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        let err = decode_redirect_query(query_of(&url), &[public(&ec)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");
    }

    #[test]
    fn tampered_saml_request_rejected() {
        let url = signed_url(Some(RELAY));
        let q = query_of(&url);
        let other = encode_redirect_url(
            "https://idp.example.com/samlsso",
            MessageKind::Request,
            &AUTHN.replace("sp.example.com/saml/acs", "evil.example/acs"),
            None,
            None,
        )
        .unwrap();
        let tampered = replace_param(q, "SAMLRequest", raw_param(query_of(&other), "SAMLRequest"));
        let err = decode_redirect_query(&tampered, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");
        // Same value, different but equivalent encoding of one char: still rejected.
        let v = raw_param(q, "SAMLRequest");
        assert!(v.contains("%2B") || v.contains("%2F") || v.contains("%3D"));
        let alt = v.replacen("%2B", "+", 1).replacen("%2F", "/", 1).replacen("%3D", "=", 1);
        let tampered = replace_param(q, "SAMLRequest", &alt);
        let err = decode_redirect_query(&tampered, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");
    }

    #[test]
    fn tampered_or_removed_relay_state_rejected() {
        let url = signed_url(Some(RELAY));
        let q = query_of(&url);
        let tampered = replace_param(q, "RelayState", "https%3A%2F%2Fevil.example%2F");
        let err = decode_redirect_query(&tampered, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");
        let removed = remove_param(q, "RelayState");
        let err = decode_redirect_query(&removed, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");
        // Added to a message signed without one.
        let url = signed_url(None);
        let added = format!("{}&RelayState=x", query_of(&url));
        let err = decode_redirect_query(&added, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");
    }

    #[test]
    fn sha1_refused_unless_allowed() {
        // SigAlg swapped to rsa-sha1 on a sha256-signed message.
        let url = signed_url(Some(RELAY));
        let swapped = replace_param(query_of(&url), "SigAlg", &form_encode(SIG_ALG_RSA_SHA1));
        let err = decode_redirect_query(&swapped, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_sha1_refused");
        let text = err.to_string();
        assert!(text.contains("SHA-1") && text.contains("allow_sha1"), "{text}");
        // Allowed, but the swapped SigAlg breaks the signature.
        let err = decode_redirect_query(&swapped, &[public(&keys().0)], true, true).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");

        // A genuine RSA-SHA1 message (WSO2 5.x default): refused, then accepted when allowed.
        let url = encode_redirect_url_with_sig_alg(
            "https://sp.example.com/saml/slo",
            MessageKind::Request,
            AUTHN,
            Some(RELAY),
            Some((&keys().0, RedirectSigAlg::RsaSha1)),
        )
        .unwrap();
        let err = decode_redirect_query(query_of(&url), &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_sha1_refused");
        let msg = decode_redirect_query(query_of(&url), &[public(&keys().0)], true, true).unwrap();
        assert_eq!(msg.sig_alg.as_deref(), Some(SIG_ALG_RSA_SHA1));
        assert!(msg.signed);
    }

    #[test]
    fn sha384_and_sha512_accepted_unknown_refused() {
        for alg in [RedirectSigAlg::RsaSha384, RedirectSigAlg::RsaSha512] {
            let url = encode_redirect_url_with_sig_alg(
                "https://sp.example.com/saml/slo",
                MessageKind::Request,
                AUTHN,
                None,
                Some((&keys().0, alg)),
            )
            .unwrap();
            let msg = decode_redirect_query(query_of(&url), &[public(&keys().0)], true, false).unwrap();
            assert_eq!(msg.sig_alg.as_deref(), Some(alg.uri()));
        }
        let url = signed_url(None);
        for bad in [
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
            "HTTP://WWW.W3.ORG/2001/04/XMLDSIG-MORE#RSA-SHA256",
            "",
        ] {
            let q = replace_param(query_of(&url), "SigAlg", &form_encode(bad));
            let err = decode_redirect_query(&q, &[public(&keys().0)], true, false).unwrap_err();
            assert_eq!(err.code(), "redirect_unsupported_sigalg", "{bad}");
        }
    }

    #[test]
    fn missing_sigalg_or_signature_is_an_error_not_a_panic() {
        let url = signed_url(Some(RELAY));
        let q = query_of(&url);
        for require in [true, false] {
            let err =
                decode_redirect_query(&remove_param(q, "SigAlg"), &[public(&keys().0)], require, false).unwrap_err();
            assert_eq!(err.code(), "redirect_missing_sigalg");
            let err =
                decode_redirect_query(&remove_param(q, "Signature"), &[public(&keys().0)], require, false).unwrap_err();
            assert_eq!(err.code(), "redirect_missing_signature");
        }
        // Both removed: "unsigned", rejected when required, accepted as unsigned otherwise.
        let both = remove_param(&remove_param(q, "Signature"), "SigAlg");
        let err = decode_redirect_query(&both, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_signature_required");
        let msg = decode_redirect_query(&both, &[public(&keys().0)], false, false).unwrap();
        assert!(!msg.signed);
        // Empty Signature value.
        let err =
            decode_redirect_query(&replace_param(q, "Signature", ""), &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");
    }

    #[test]
    fn duplicate_and_ambiguous_params_rejected() {
        let url = signed_url(Some(RELAY));
        let q = query_of(&url);
        let sig = raw_param(q, "Signature");
        let dup = format!("{q}&Signature={sig}");
        let err = decode_redirect_query(&dup, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_duplicate_parameter");
        assert!(err.to_string().contains("Signature"));
        for name in ["SAMLRequest", "RelayState", "SigAlg"] {
            let first = q.split('&').find(|s| s.starts_with(&format!("{name}="))).unwrap();
            let dup = format!("{first}&{q}");
            let err = decode_redirect_query(&dup, &[public(&keys().0)], true, false).unwrap_err();
            assert_eq!(err.code(), "redirect_duplicate_parameter", "{name}");
        }
        let both = format!("{q}&SAMLResponse=abc");
        let err = decode_redirect_query(&both, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_ambiguous_message");
    }

    #[test]
    fn deflate_bomb_rejected() {
        // 64 MiB of '<' deflates to ~64 KiB; inflating stops at the limit.
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
        let chunk = vec![b'<'; 1024 * 1024];
        for _ in 0..64 {
            enc.write_all(&chunk).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 100 * 1024);
        let q = format!("SAMLRequest={}", form_encode(&base64::engine::general_purpose::STANDARD.encode(&bomb)));
        let err = decode_redirect_query(&q, &[], false, false).unwrap_err();
        assert_eq!(err.code(), "redirect_inflated_too_large");

        // Exactly at the limit is fine.
        let xml = "x".repeat(MAX_INFLATED_BYTES);
        let url = encode_redirect_url("https://a.example/s", MessageKind::Request, &xml, None, None).unwrap();
        assert_eq!(decode_redirect_query(query_of(&url), &[], false, false).unwrap().xml.len(), MAX_INFLATED_BYTES);
        // A huge raw query is refused before any work.
        let q = format!("SAMLRequest={}", "A".repeat(MAX_RAW_QUERY_BYTES + 1));
        let err = decode_redirect_query(&q, &[], false, false).unwrap_err();
        assert_eq!(err.code(), "redirect_query_too_long");
    }

    #[test]
    fn base64_whitespace_tolerated_bad_base64_rejected() {
        let url = encode_redirect_url("https://idp.example.com/sso", MessageKind::Request, AUTHN, None, None).unwrap();
        let v = raw_param(query_of(&url), "SAMLRequest");
        // Line-wrapped (%0D%0A every 20 chars) and unpadded base64.
        let mut wrapped = String::new();
        for (i, c) in v.trim_end_matches("%3D").chars().enumerate() {
            if i > 0 && i % 20 == 0 {
                wrapped.push_str("%0D%0A");
            }
            wrapped.push(c);
        }
        let msg = decode_redirect_query(&format!("SAMLRequest={wrapped}"), &[], false, false).unwrap();
        assert_eq!(msg.xml, AUTHN);
        // Unencoded '+' and '/' (sloppy sender) are kept as base64 characters.
        let sloppy = v.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
        let msg = decode_redirect_query(&format!("SAMLRequest={sloppy}"), &[], false, false).unwrap();
        assert_eq!(msg.xml, AUTHN);

        for bad in ["%21%21%21%21", "abc$", "A%00AA"] {
            let err = decode_redirect_query(&format!("SAMLRequest={bad}"), &[], false, false).unwrap_err();
            assert_eq!(err.code(), "redirect_bad_base64", "{bad}");
        }
        let err = decode_redirect_query("SAMLRequest=", &[], false, false).unwrap_err();
        assert_eq!(err.code(), "redirect_empty_message");
        // Signature that is not base64.
        let url = signed_url(None);
        let q = replace_param(query_of(&url), "Signature", "%25%25not-base64");
        let err = decode_redirect_query(&q, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_bad_signature_encoding");
    }

    #[test]
    fn garbage_rejected_without_panic() {
        let b64 = |bytes: &[u8]| form_encode(&base64::engine::general_purpose::STANDARD.encode(bytes));
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "redirect_missing_message"),
            ("&&&".into(), "redirect_missing_message"),
            ("foo=bar&baz".into(), "redirect_missing_message"),
            ("samlrequest=abcd".into(), "redirect_missing_message"),
            ("SAMLRequest".into(), "redirect_empty_message"),
            // BFINAL=1, BTYPE=11 (reserved): invalid.
            (format!("SAMLRequest={}", b64(&[0xff; 16])), "redirect_inflate_failed"),
            (
                format!(
                    "SAMLRequest={}",
                    b64(&{
                        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
                        e.write_all(AUTHN.as_bytes()).unwrap();
                        let full = e.finish().unwrap();
                        full[..full.len() / 2].to_vec()
                    })
                ),
                "redirect_inflate_truncated",
            ),
            (
                format!(
                    "SAMLRequest={}",
                    b64(&{
                        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
                        e.write_all(&[0xff, 0xfe, 0x00, 0x80]).unwrap();
                        e.finish().unwrap()
                    })
                ),
                "redirect_not_utf8",
            ),
            ("SAMLRequest=%ZZ%&RelayState=%".into(), "redirect_bad_base64"),
            ("SAMLRequest=QUJD&RelayState=%FF%FE".into(), "redirect_bad_relay_state"),
            ("SAMLRequest=QUJD&SigAlg=&Signature=".into(), "redirect_unsupported_sigalg"),
        ];
        for (q, code) in cases {
            let err = decode_redirect_query(&q, &[public(&keys().0)], false, false).unwrap_err();
            assert_eq!(err.code(), code, "query {q:?}: {err}");
        }
        // Random bytes never panic.
        let mut seed = 0x2545F4914F6CDD1Du64;
        for _ in 0..300 {
            let len = (seed % 200) as usize;
            let s: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let alphabet = b"SAMLRequestRelaySigAlgSignature=&%+/AZaz09";
                    alphabet[(seed % alphabet.len() as u64) as usize] as char
                })
                .collect();
            let _ = decode_redirect_query(&s, &[public(&keys().0)], false, false);
            let _ = decode_redirect_query(&s, &[], true, true);
        }
    }

    fn self_signed_cert(key: &PKey<Private>) -> String {
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "redirect-test").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap()).unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        String::from_utf8(b.build().to_pem().unwrap()).unwrap()
    }

    /// Cross-checks against samael's own `UrlVerifier` and `sign_url`.
    #[test]
    fn samael_url_verifier_accepts_our_signature_and_we_accept_samaels() {
        let cert = self_signed_cert(&keys().0);
        let verifier = samael::crypto::UrlVerifier::from_x509_cert_pem(&cert).unwrap();
        for relay in [Some(RELAY), None] {
            let url = signed_url(relay);
            let parsed = url::Url::parse(&url).unwrap();
            assert!(verifier.verify_signed_request_url(&parsed).unwrap());
        }
        let url = encode_redirect_url(
            "https://idp.example.com/slo",
            MessageKind::Response,
            AUTHN,
            Some(RELAY),
            Some(&keys().0),
        )
        .unwrap();
        assert!(verifier.verify_signed_response_url(&url::Url::parse(&url).unwrap()).unwrap());

        // samael's sign_url on a query-less URL produces something we verify.
        let unsigned =
            encode_redirect_url("https://sp.example.com/saml/slo", MessageKind::Request, AUTHN, Some(RELAY), None)
                .unwrap();
        let signed = samael::crypto::sign_url(url::Url::parse(&unsigned).unwrap(), &keys().0).unwrap();
        let msg = decode_redirect_query(signed.query().unwrap(), &[public(&keys().0)], true, false).unwrap();
        assert!(msg.signed);
        assert_eq!(msg.relay_state.as_deref(), Some(RELAY));

        // samael's sign_url with an existing query signs that query too: we (per spec) reject.
        let unsigned = encode_redirect_url(
            "https://sp.example.com/saml/slo?tenantDomain=x",
            MessageKind::Request,
            AUTHN,
            None,
            None,
        )
        .unwrap();
        let signed = samael::crypto::sign_url(url::Url::parse(&unsigned).unwrap(), &keys().0).unwrap();
        let err = decode_redirect_query(signed.query().unwrap(), &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_invalid_signature");
    }

    /// samael 0.0.22's UrlVerifier panics on a missing SigAlg; ours returns an error.
    #[test]
    fn samael_url_verifier_panics_on_missing_sigalg_and_mgf1() {
        let cert = self_signed_cert(&keys().0);
        let verifier = samael::crypto::UrlVerifier::from_x509_cert_pem(&cert).unwrap();
        let url =
            encode_redirect_url("https://sp.example.com/saml/slo", MessageKind::Request, AUTHN, None, None).unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        let panicked = std::panic::catch_unwind(|| {
            let _ = verifier.verify_signed_request_url(&parsed);
        })
        .is_err();
        assert!(panicked, "samael fixed the panic: update docs/saml-sp.md §2");

        // A known-but-unimplemented SigAlg (sha256-rsa-MGF1) hits `panic!("sig_alg is bad!")`
        // (url_verification.rs L185); rsa-sha1 is merely "Unimplemented" (an Err).
        let signed = signed_url(None);
        let mgf1 = replace_param(
            query_of(&signed),
            "SigAlg",
            &form_encode("http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"),
        );
        let parsed = url::Url::parse(&format!("https://idp.example.com/samlsso?{mgf1}")).unwrap();
        let panicked = std::panic::catch_unwind(|| {
            let _ = verifier.verify_signed_request_url(&parsed);
        })
        .is_err();
        assert!(panicked, "samael no longer panics on MGF1: update the report");
        let err = decode_redirect_query(&mgf1, &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_unsupported_sigalg");
        let sha1 = replace_param(query_of(&signed), "SigAlg", &form_encode(SIG_ALG_RSA_SHA1));
        let parsed = url::Url::parse(&format!("https://idp.example.com/samlsso?{sha1}")).unwrap();
        assert!(verifier.verify_signed_request_url(&parsed).is_err());
        let err = decode_redirect_query(query_of(&url), &[public(&keys().0)], true, false).unwrap_err();
        assert_eq!(err.code(), "redirect_signature_required");
    }
}
