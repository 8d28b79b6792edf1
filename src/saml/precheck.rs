//! Strict structural pre-validation of a SAML `Response`, run on the decoded bytes
//! *before* libxmlsec1 (through samael) sees them.
//!
//! Why it exists (see `shared/docs/saml-sp.md` §3, §7 and §8): libxmlsec1 dereferences
//! `Reference URI`s (http:, file:) and runs transforms *before* it checks any signature
//! value, libxml2 is used in RECOVER mode with DTDs allowed, and samael does not
//! restrict the signature profile. This module parses the document once with
//! roxmltree (strict, no DTD) and enforces the profile used by mature SPs
//! (OpenSAML's `SAMLSignatureProfileValidator`, python3-saml): one assertion, directly
//! under the Response; every `ds:Signature` directly under the Response or that
//! Assertion; one Reference per signature, bound to its parent's `ID`; only
//! enveloped-signature + exclusive c14n; an algorithm allow-list.
//!
//! Nothing here is cryptographic: passing the pre-check means "safe to hand to the
//! verifier", never "authentic". Values in [`Prechecked`] are unverified.

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use roxmltree::Node;

const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub(crate) const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(crate) const NS_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub(crate) const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

pub(crate) const ALG_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub(crate) const ALG_ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

pub(crate) const SIGNATURE_METHODS: [&str; 4] = [
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
];
pub(crate) const DIGEST_METHODS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
pub const ALG_RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const ALG_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// Longest attacker-supplied string quoted in an error message.
const MAX_QUOTED: usize = 120;

/// Per-IdP knobs of the pre-check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrecheckPolicy {
    /// Accept RSA-SHA1 / SHA-1 (needed for default WSO2 IS 5.x installs). The same
    /// choice must be reflected in samael's `allowed_signature_algorithms`.
    pub allow_sha1: bool,
}

/// Which SAML element a `ds:Signature` signs (its parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignedElement {
    Response,
    Assertion,
}

impl fmt::Display for SignedElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignedElement::Response => "Response",
            SignedElement::Assertion => "Assertion",
        })
    }
}

/// Algorithms of one signature that passed the pre-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInfo {
    pub element: SignedElement,
    pub signature_method: String,
    pub digest_method: String,
}

/// Result of a successful pre-check.
///
/// Every value here is read from an **unverified** message: use it only for error
/// messages, logging and picking the IdP configuration, never for authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prechecked {
    pub response_id: String,
    pub in_response_to: Option<String>,
    pub destination: Option<String>,
    /// Response-level `saml:Issuer` text, trimmed.
    pub issuer: Option<String>,
    pub assertion_id: String,
    pub response_signed: bool,
    pub assertion_signed: bool,
    /// One entry per `ds:Signature`, in document order.
    pub signature_algorithms: Vec<SignatureInfo>,
}

/// Why a response was refused. Messages are meant for an IdP administrator; strings
/// taken from the message are quoted (escaped) and truncated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrecheckError {
    #[error("the SAMLResponse is empty")]
    Empty,
    #[error("the SAMLResponse form value is not valid base64: {0}")]
    BadBase64(String),
    #[error("the decoded SAMLResponse is not UTF-8 text")]
    NotUtf8,
    #[error(
        "the SAML response contains a DOCTYPE (DTD) declaration; DTDs are refused because \
         they enable entity expansion and external fetches, and no IdP needs them"
    )]
    Doctype,
    #[error("the SAML response declares encoding {found:?}; only UTF-8 is accepted")]
    Encoding { found: String },
    #[error("the SAML response is not well-formed XML: {0}")]
    MalformedXml(String),
    #[error(
        "the root element must be Response in namespace urn:oasis:names:tc:SAML:2.0:protocol, \
         found {found}"
    )]
    NotAResponse { found: String },
    #[error("the {element} has no ID attribute (or it is empty)")]
    MissingId { element: SignedElement },
    #[error(
        "the response contains an EncryptedAssertion: assertion encryption is not supported. \
         Turn off assertion encryption for this service provider at the IdP (TLS already \
         protects the response in transit)"
    )]
    EncryptedAssertion,
    #[error(
        "expected exactly one saml:Assertion in the whole response, found {found} \
         (assertions nested in Extensions, Advice or ds:Object count too)"
    )]
    AssertionCount { found: usize },
    #[error("the saml:Assertion must be a direct child of the Response, found it at {path}")]
    AssertionPlacement { path: String },
    #[error(
        "the ID value {id:?} is used by more than one element; IDs must be unique \
         (a duplicate ID is a signature-wrapping attempt or a broken IdP)"
    )]
    DuplicateId { id: String },
    #[error(
        "the response is not signed: no ds:Signature on the Response or the Assertion. \
         Enable response or assertion signing at the IdP"
    )]
    Unsigned,
    #[error(
        "a ds:Signature was found at {path}; signatures are only accepted as direct \
         children of the Response or of the Assertion"
    )]
    SignaturePlacement { path: String },
    #[error("the {element} has {found} ds:Signature children; at most one is accepted")]
    MultipleSignatures { element: SignedElement, found: usize },
    #[error("the ds:Signature on the {element} contains a ds:Object element, which is refused")]
    ObjectInSignature { element: SignedElement },
    #[error(
        "the ds:Signature on the {element} contains a RetrievalMethod, which is refused \
         (the verification key comes from the IdP configuration)"
    )]
    RetrievalMethod { element: SignedElement },
    #[error(
        "the ds:Signature on the {element} contains {node} with URI {uri:?}; only \
         same-document references (starting with '#') are accepted"
    )]
    ExternalUri { element: SignedElement, node: String, uri: String },
    #[error("the ds:Signature on the {element} is malformed: {detail}")]
    SignatureStructure { element: SignedElement, detail: String },
    #[error("the ds:Signature on the {element} has {found} ds:Reference elements; expected exactly 1")]
    ReferenceCount { element: SignedElement, found: usize },
    #[error(
        "the ds:Signature on the {element} has Reference URI {found}; expected {expected:?} \
         (a reference to the signed element's own ID)"
    )]
    ReferenceUri {
        element: SignedElement,
        expected: String,
        /// Already quoted, or `(missing)`.
        found: String,
    },
    #[error(
        "the ds:Signature on the {element} uses CanonicalizationMethod {found:?}; only \
         exclusive c14n without comments ({ALG_EXC_C14N}) is accepted"
    )]
    CanonicalizationNotAllowed { element: SignedElement, found: String },
    #[error(
        "the ds:Signature on the {element} uses transform {algorithm:?}; only \
         enveloped-signature and exclusive c14n are accepted"
    )]
    TransformNotAllowed { element: SignedElement, algorithm: String },
    #[error("the ds:Signature on the {element} has an unacceptable transform list: {detail}")]
    TransformList { element: SignedElement, detail: String },
    #[error(
        "the ds:Signature on the {element} uses {kind} {found:?}, which is not allowed; \
         accepted: {accepted}"
    )]
    AlgorithmNotAllowed { element: SignedElement, kind: &'static str, found: String, accepted: String },
    #[error(
        "the ds:Signature on the {element} uses the HMAC algorithm {found:?}; HMAC \
         (shared-secret) signatures are never accepted, configure the IdP to sign with \
         RSA-SHA256"
    )]
    HmacNotAllowed { element: SignedElement, found: String },
    #[error(
        "the IdP signed the {element} with SHA-1 (SignatureMethod {signature_method:?}, \
         DigestMethod {digest_method:?}), which is refused for this IdP. Fix: set the IdP's \
         signing algorithm to RSA-SHA256 and digest algorithm to SHA-256, or, if the IdP \
         cannot be changed, enable \"Allow SHA-1\" for this IdP"
    )]
    Sha1NotAllowed { element: SignedElement, signature_method: String, digest_method: String },
}

impl PrecheckError {
    /// Stable snake_case identifier for logs, metrics and tests.
    pub fn code(&self) -> &'static str {
        match self {
            PrecheckError::Empty => "empty",
            PrecheckError::BadBase64(_) => "bad_base64",
            PrecheckError::NotUtf8 => "not_utf8",
            PrecheckError::Doctype => "doctype",
            PrecheckError::Encoding { .. } => "encoding",
            PrecheckError::MalformedXml(_) => "malformed_xml",
            PrecheckError::NotAResponse { .. } => "not_a_response",
            PrecheckError::MissingId { .. } => "missing_id",
            PrecheckError::EncryptedAssertion => "encrypted_assertion",
            PrecheckError::AssertionCount { .. } => "assertion_count",
            PrecheckError::AssertionPlacement { .. } => "assertion_placement",
            PrecheckError::DuplicateId { .. } => "duplicate_id",
            PrecheckError::Unsigned => "unsigned",
            PrecheckError::SignaturePlacement { .. } => "signature_placement",
            PrecheckError::MultipleSignatures { .. } => "signature_count",
            PrecheckError::ObjectInSignature { .. } => "object_in_signature",
            PrecheckError::RetrievalMethod { .. } => "retrieval_method",
            PrecheckError::ExternalUri { .. } => "external_uri",
            PrecheckError::SignatureStructure { .. } => "signature_structure",
            PrecheckError::ReferenceCount { .. } => "reference_count",
            PrecheckError::ReferenceUri { .. } => "reference_uri",
            PrecheckError::CanonicalizationNotAllowed { .. } => "canonicalization_not_allowed",
            PrecheckError::TransformNotAllowed { .. } => "transform_not_allowed",
            PrecheckError::TransformList { .. } => "transform_list",
            PrecheckError::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            PrecheckError::HmacNotAllowed { .. } => "hmac_not_allowed",
            PrecheckError::Sha1NotAllowed { .. } => "sha1_not_allowed",
        }
    }
}

/// Decodes the `SAMLResponse` form value (HTTP-POST binding). ASCII whitespace,
/// including the CR LF of line-wrapped base64, is removed first.
pub fn decode_saml_response_base64(form_value: &str) -> Result<Vec<u8>, PrecheckError> {
    let compact: Vec<u8> = form_value.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(PrecheckError::Empty);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| PrecheckError::BadBase64(e.to_string()))?;
    if bytes.is_empty() {
        return Err(PrecheckError::Empty);
    }
    Ok(bytes)
}

/// [`precheck_response`] on decoded bytes, refusing anything that is not UTF-8.
pub fn precheck_response_bytes(xml: &[u8], policy: &PrecheckPolicy) -> Result<Prechecked, PrecheckError> {
    let text = std::str::from_utf8(xml).map_err(|_| PrecheckError::NotUtf8)?;
    precheck_response(text, policy)
}

/// Checks the structure of a decoded SAML Response. See the module docs.
pub fn precheck_response(xml: &str, policy: &PrecheckPolicy) -> Result<Prechecked, PrecheckError> {
    if xml.trim().is_empty() {
        return Err(PrecheckError::Empty);
    }
    // roxmltree only notices a DOCTYPE in the prolog; one anywhere else (or hidden in a
    // comment/CDATA) has no business in a SAML response either.
    if contains_ascii_ci(xml, "<!DOCTYPE") {
        return Err(PrecheckError::Doctype);
    }
    check_declared_encoding(xml)?;

    let doc = parse(xml)?;

    let root = doc.root_element();
    if !is_element(root, NS_SAMLP, "Response") {
        return Err(PrecheckError::NotAResponse { found: describe_element(root) });
    }
    let response_id = non_empty_id(root).ok_or(PrecheckError::MissingId { element: SignedElement::Response })?;

    let mut assertions = Vec::new();
    let mut encrypted_assertion = false;
    let mut signatures = Vec::new();
    let mut seen_ids = HashSet::new();
    let mut duplicate_id = None;
    for node in root.descendants().filter(Node::is_element) {
        for attr in node.attributes() {
            // `ID` in any namespace (a superset of what samael registers as XML IDs)
            // and `xml:id` (an ID for libxml2 natively) share one ID space.
            let is_id = attr.name() == "ID" || (attr.name() == "id" && attr.namespace() == Some(NS_XML));
            if is_id && !seen_ids.insert(attr.value()) && duplicate_id.is_none() {
                duplicate_id = Some(attr.value());
            }
        }
        if is_element(node, NS_SAML, "Assertion") {
            assertions.push(node);
        } else if is_element(node, NS_SAML, "EncryptedAssertion") {
            encrypted_assertion = true;
        } else if is_element(node, NS_DS, "Signature") {
            signatures.push(node);
        }
    }

    if encrypted_assertion {
        return Err(PrecheckError::EncryptedAssertion);
    }
    let assertion = match assertions.as_slice() {
        [single] => *single,
        other => return Err(PrecheckError::AssertionCount { found: other.len() }),
    };
    if assertion.parent_element() != Some(root) {
        return Err(PrecheckError::AssertionPlacement { path: element_path(assertion) });
    }
    let assertion_id = non_empty_id(assertion).ok_or(PrecheckError::MissingId { element: SignedElement::Assertion })?;
    if let Some(id) = duplicate_id {
        return Err(PrecheckError::DuplicateId { id: clip(id) });
    }

    if signatures.is_empty() {
        return Err(PrecheckError::Unsigned);
    }
    let mut placed = Vec::with_capacity(signatures.len());
    for &sig in &signatures {
        let parent = sig.parent_element();
        let element = if parent == Some(root) {
            SignedElement::Response
        } else if parent == Some(assertion) {
            SignedElement::Assertion
        } else {
            return Err(PrecheckError::SignaturePlacement { path: element_path(sig) });
        };
        placed.push((sig, element));
    }
    for element in [SignedElement::Response, SignedElement::Assertion] {
        let found = placed.iter().filter(|(_, e)| *e == element).count();
        if found > 1 {
            return Err(PrecheckError::MultipleSignatures { element, found });
        }
    }

    let mut signature_algorithms = Vec::with_capacity(placed.len());
    for &(sig, element) in &placed {
        let parent_id = match element {
            SignedElement::Response => response_id,
            SignedElement::Assertion => assertion_id,
        };
        signature_algorithms.push(check_signature(sig, element, parent_id, policy)?);
    }

    let issuer = root.children().find(|n| is_element(*n, NS_SAML, "Issuer")).map(|n| text_content(n).trim().to_owned());

    Ok(Prechecked {
        response_id: response_id.to_owned(),
        in_response_to: root.attribute("InResponseTo").map(str::to_owned),
        destination: root.attribute("Destination").map(str::to_owned),
        issuer,
        assertion_id: assertion_id.to_owned(),
        response_signed: placed.iter().any(|(_, e)| *e == SignedElement::Response),
        assertion_signed: placed.iter().any(|(_, e)| *e == SignedElement::Assertion),
        signature_algorithms,
    })
}

fn parse(xml: &str) -> Result<roxmltree::Document<'_>, PrecheckError> {
    let options = roxmltree::ParsingOptions { allow_dtd: false, ..roxmltree::ParsingOptions::default() };
    roxmltree::Document::parse_with_options(xml, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => PrecheckError::Doctype,
        other => PrecheckError::MalformedXml(other.to_string()),
    })
}

/// Enforces the signature profile on one already-placed `ds:Signature`.
fn check_signature(
    sig: Node,
    element: SignedElement,
    parent_id: &str,
    policy: &PrecheckPolicy,
) -> Result<SignatureInfo, PrecheckError> {
    let structure = |detail: String| PrecheckError::SignatureStructure { element, detail };

    for node in sig.descendants().filter(Node::is_element) {
        if is_element(node, NS_DS, "Object") {
            return Err(PrecheckError::ObjectInSignature { element });
        }
        if is_element(node, NS_DS, "RetrievalMethod") {
            return Err(PrecheckError::RetrievalMethod { element });
        }
    }

    // Signature ::= SignedInfo SignatureValue KeyInfo?   (Object was refused above)
    // KeyInfo content is allowed but never read: the verification key comes from the
    // IdP configuration, never from the message.
    let kids = ds_children(sig, element)?;
    let signed_info = match kids.as_slice() {
        [si, sv] | [si, sv, _] if is_ds(*si, "SignedInfo") && is_ds(*sv, "SignatureValue") => {
            if let Some(ki) = kids.get(2).filter(|k| !is_ds(**k, "KeyInfo")) {
                return Err(structure(format!("unexpected {} after SignatureValue", describe_element(*ki))));
            }
            *si
        }
        _ => {
            return Err(structure(
                "expected SignedInfo, SignatureValue and an optional KeyInfo, in that order".to_owned(),
            ));
        }
    };

    // SignedInfo ::= CanonicalizationMethod SignatureMethod Reference+
    let si_kids = ds_children(signed_info, element)?;
    let (c14n, sig_method, references) = match si_kids.as_slice() {
        [c, s, refs @ ..] if is_ds(*c, "CanonicalizationMethod") && is_ds(*s, "SignatureMethod") => (*c, *s, refs),
        _ => {
            return Err(structure("SignedInfo must start with CanonicalizationMethod and SignatureMethod".to_owned()));
        }
    };
    if let Some(other) = references.iter().find(|r| !is_ds(**r, "Reference")) {
        return Err(structure(format!("unexpected {} in SignedInfo", describe_element(*other))));
    }
    let reference = match references {
        [r] => *r,
        _ => {
            return Err(PrecheckError::ReferenceCount { element, found: references.len() });
        }
    };

    let c14n_alg = c14n.attribute("Algorithm").unwrap_or_default();
    if c14n_alg != ALG_EXC_C14N {
        return Err(PrecheckError::CanonicalizationNotAllowed { element, found: clip(c14n_alg) });
    }
    only_inclusive_namespaces(c14n, element)?;

    let expected_uri = format!("#{parent_id}");
    match reference.attribute("URI") {
        Some(uri) if uri == expected_uri => {}
        found => {
            return Err(PrecheckError::ReferenceUri {
                element,
                expected: clip(&expected_uri),
                found: found.map_or_else(|| "(missing)".to_owned(), quote_clip),
            });
        }
    }

    // Reference ::= Transforms? DigestMethod DigestValue
    let ref_kids = ds_children(reference, element)?;
    let (transforms, digest_method) = match ref_kids.as_slice() {
        [t, dm, dv] if is_ds(*t, "Transforms") && is_ds(*dm, "DigestMethod") && is_ds(*dv, "DigestValue") => {
            (Some(*t), *dm)
        }
        [dm, dv] if is_ds(*dm, "DigestMethod") && is_ds(*dv, "DigestValue") => (None, *dm),
        _ => {
            return Err(structure(
                "Reference must contain Transforms, DigestMethod and DigestValue, in that order".to_owned(),
            ));
        }
    };
    check_transforms(transforms, element)?;

    let signature_method = sig_method.attribute("Algorithm").unwrap_or_default();
    let digest = digest_method.attribute("Algorithm").unwrap_or_default();
    check_algorithms(element, signature_method, digest, policy)?;
    for node in [sig_method, digest_method] {
        if let Some(child) = node.children().find(Node::is_element) {
            return Err(structure(format!("unexpected {} inside {}", describe_element(child), node.tag_name().name())));
        }
    }

    // The Reference URI was checked above; nothing else in the signature may point
    // outside the document either (e.g. a dsig11 KeyInfoReference).
    for node in sig.descendants().filter(Node::is_element) {
        for attr in node.attributes() {
            if attr.name() == "URI" && !attr.value().starts_with('#') {
                return Err(PrecheckError::ExternalUri {
                    element,
                    node: node.tag_name().name().to_owned(),
                    uri: clip(attr.value()),
                });
            }
        }
    }

    Ok(SignatureInfo { element, signature_method: signature_method.to_owned(), digest_method: digest.to_owned() })
}

/// Transforms: enveloped-signature required, exclusive c14n optional, nothing else,
/// no repeats (hence at most two).
fn check_transforms(transforms: Option<Node>, element: SignedElement) -> Result<(), PrecheckError> {
    let list = match transforms {
        Some(t) => ds_children(t, element)?,
        None => Vec::new(),
    };
    let mut seen = Vec::with_capacity(2);
    for transform in &list {
        if !is_ds(*transform, "Transform") {
            return Err(PrecheckError::SignatureStructure {
                element,
                detail: format!("unexpected {} in Transforms", describe_element(*transform)),
            });
        }
        let algorithm = transform.attribute("Algorithm").unwrap_or_default();
        match algorithm {
            ALG_ENVELOPED => {
                if let Some(child) = transform.children().find(Node::is_element) {
                    return Err(PrecheckError::SignatureStructure {
                        element,
                        detail: format!(
                            "unexpected {} inside the enveloped-signature transform",
                            describe_element(child)
                        ),
                    });
                }
            }
            ALG_EXC_C14N => only_inclusive_namespaces(*transform, element)?,
            other => {
                return Err(PrecheckError::TransformNotAllowed { element, algorithm: clip(other) });
            }
        }
        if seen.contains(&algorithm) {
            return Err(PrecheckError::TransformList {
                element,
                detail: format!("transform {algorithm} appears twice"),
            });
        }
        seen.push(algorithm);
    }
    if !seen.contains(&ALG_ENVELOPED) {
        return Err(PrecheckError::TransformList {
            element,
            detail: format!("the enveloped-signature transform ({ALG_ENVELOPED}) is required"),
        });
    }
    Ok(())
}

fn check_algorithms(
    element: SignedElement,
    signature_method: &str,
    digest_method: &str,
    policy: &PrecheckPolicy,
) -> Result<(), PrecheckError> {
    if signature_method.to_ascii_lowercase().contains("hmac") {
        return Err(PrecheckError::HmacNotAllowed { element, found: clip(signature_method) });
    }
    let accepted = |strong: &[&str], sha1: &str| {
        let mut list = strong.join(", ");
        if policy.allow_sha1 {
            list.push_str(", ");
            list.push_str(sha1);
        }
        list
    };
    // SHA-1 passes this first test so that it gets its own, actionable error below.
    if !SIGNATURE_METHODS.contains(&signature_method) && signature_method != ALG_RSA_SHA1 {
        return Err(PrecheckError::AlgorithmNotAllowed {
            element,
            kind: "SignatureMethod",
            found: clip(signature_method),
            accepted: accepted(&SIGNATURE_METHODS, ALG_RSA_SHA1),
        });
    }
    if !DIGEST_METHODS.contains(&digest_method) && digest_method != ALG_SHA1 {
        return Err(PrecheckError::AlgorithmNotAllowed {
            element,
            kind: "DigestMethod",
            found: clip(digest_method),
            accepted: accepted(&DIGEST_METHODS, ALG_SHA1),
        });
    }
    if !policy.allow_sha1 && (signature_method == ALG_RSA_SHA1 || digest_method == ALG_SHA1) {
        return Err(PrecheckError::Sha1NotAllowed {
            element,
            signature_method: signature_method.to_owned(),
            digest_method: digest_method.to_owned(),
        });
    }
    Ok(())
}

/// Exclusive c14n may carry one `ec:InclusiveNamespaces PrefixList="…"`, nothing else.
fn only_inclusive_namespaces(node: Node, element: SignedElement) -> Result<(), PrecheckError> {
    let mut kids = node.children().filter(Node::is_element);
    match (kids.next(), kids.next()) {
        (None, _) => Ok(()),
        (Some(k), None) if is_element(k, NS_EXC_C14N, "InclusiveNamespaces") => Ok(()),
        _ => Err(PrecheckError::SignatureStructure {
            element,
            detail: format!("{} may only contain one ec:InclusiveNamespaces element", node.tag_name().name()),
        }),
    }
}

/// Element children of a node inside a signature; all must be in the xmldsig namespace.
fn ds_children<'a, 'input>(
    node: Node<'a, 'input>,
    element: SignedElement,
) -> Result<Vec<Node<'a, 'input>>, PrecheckError> {
    let kids: Vec<_> = node.children().filter(Node::is_element).collect();
    if let Some(foreign) = kids.iter().find(|k| k.tag_name().namespace() != Some(NS_DS)) {
        return Err(PrecheckError::SignatureStructure {
            element,
            detail: format!("unexpected {} inside {}", describe_element(*foreign), node.tag_name().name()),
        });
    }
    Ok(kids)
}

fn is_element(node: Node, ns: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local && node.tag_name().namespace() == Some(ns)
}

fn is_ds(node: Node, local: &str) -> bool {
    is_element(node, NS_DS, local)
}

fn non_empty_id<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.attribute("ID").filter(|id| !id.is_empty())
}

fn text_content(node: Node) -> String {
    node.descendants().filter(Node::is_text).filter_map(|n| n.text()).collect()
}

/// `Local` or `Local in namespace <uri>`, for messages.
fn describe_element(node: Node) -> String {
    let name = clip(node.tag_name().name());
    match node.tag_name().namespace() {
        Some(ns) => format!("{name} in namespace {:?}", clip(ns)),
        None => format!("{name} (no namespace)"),
    }
}

/// `Response/Extensions/Assertion`-style location, local names only.
fn element_path(node: Node) -> String {
    let mut names: Vec<&str> = node.ancestors().filter(Node::is_element).map(|n| n.tag_name().name()).collect();
    names.reverse();
    clip(&names.join("/"))
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// Debug-quoted (so control characters cannot forge log lines) and truncated.
fn quote_clip(s: &str) -> String {
    format!("{:?}", clip(s))
}

fn contains_ascii_ci(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// libxml2 honours the encoding in the XML declaration while roxmltree reads UTF-8
/// only; any other declared encoding would let the two parsers see different documents.
fn check_declared_encoding(xml: &str) -> Result<(), PrecheckError> {
    let text = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let Some(rest) = text.strip_prefix("<?xml") else {
        return Ok(());
    };
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return Ok(());
    }
    let decl = &rest[..rest.find("?>").unwrap_or(rest.len())];
    let Some(pos) = decl.find("encoding") else {
        return Ok(());
    };
    let value = decl[pos + "encoding".len()..].trim_start().trim_start_matches('=').trim_start();
    let found = match value.chars().next() {
        Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default(),
        _ => value,
    };
    if found.eq_ignore_ascii_case("UTF-8") { Ok(()) } else { Err(PrecheckError::Encoding { found: clip(found) }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const RESP_ID: &str = "_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6";
    const ASSERT_ID: &str = "_d71a3a8e9fcc45c9e9d248ef7049393fc8f04e5f75";
    const REQ_ID: &str = "_4fee3b046395c4e751011e97f8900b5273d56685";
    const ACS: &str = "https://sp.example.com/saml/acs";
    const IDP: &str = "https://idp.example.com/samlsso";

    const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

    fn strict() -> PrecheckPolicy {
        PrecheckPolicy { allow_sha1: false }
    }

    fn lenient() -> PrecheckPolicy {
        PrecheckPolicy { allow_sha1: true }
    }

    /// A `ds:Signature` block, structurally like those from WSO2 IS / Shibboleth.
    #[derive(Clone)]
    struct Sig {
        uri: Option<String>,
        c14n: String,
        c14n_inner: String,
        sig_alg: String,
        digest_alg: String,
        transforms: Vec<String>,
        extra_refs: usize,
        key_info_inner: String,
        trailer: String,
        /// `true`: `<Signature xmlns="…xmldsig#">` with unprefixed children.
        default_ns: bool,
    }

    fn transform(alg: &str) -> String {
        format!(r#"<ds:Transform Algorithm="{alg}"/>"#)
    }

    impl Sig {
        fn to(id: &str) -> Self {
            Sig {
                uri: Some(format!("#{id}")),
                c14n: ALG_EXC_C14N.to_owned(),
                c14n_inner: String::new(),
                sig_alg: RSA_SHA256.to_owned(),
                digest_alg: SHA256.to_owned(),
                transforms: vec![transform(ALG_ENVELOPED), transform(ALG_EXC_C14N)],
                extra_refs: 0,
                key_info_inner: "<ds:X509Data><ds:X509Certificate>MIIC+zCCAeOgAwIBAgIJAO\
                    FAKEFAKEFAKE==</ds:X509Certificate></ds:X509Data>"
                    .to_owned(),
                trailer: String::new(),
                default_ns: false,
            }
        }

        fn xml(&self) -> String {
            let uri = self.uri.as_ref().map(|u| format!(r#" URI="{u}""#)).unwrap_or_default();
            let reference = format!(
                "<ds:Reference{uri}>\n<ds:Transforms>{}</ds:Transforms>\n\
                 <ds:DigestMethod Algorithm=\"{}\"/>\n\
                 <ds:DigestValue>q0V2lzOhm8Nv3iKQmlS1LS2ZcWXTKc9QAoyM0yTn9h4=</ds:DigestValue>\n\
                 </ds:Reference>",
                self.transforms.concat(),
                self.digest_alg
            );
            let xml = format!(
                "<ds:Signature xmlns:ds=\"{NS_DS}\">\n<ds:SignedInfo>\n\
                 <ds:CanonicalizationMethod Algorithm=\"{}\">{}</ds:CanonicalizationMethod>\n\
                 <ds:SignatureMethod Algorithm=\"{}\"/>\n{}\n</ds:SignedInfo>\n\
                 <ds:SignatureValue>Zm9vYmFyZm9vYmFyZm9vYmFy\nZm9vYmFyZm9vYmFy</ds:SignatureValue>\n\
                 <ds:KeyInfo>{}</ds:KeyInfo>{}\n</ds:Signature>",
                self.c14n,
                self.c14n_inner,
                self.sig_alg,
                reference.repeat(1 + self.extra_refs),
                self.key_info_inner,
                self.trailer,
            );
            if self.default_ns { xml.replace("ds:", "").replace("xmlns:ds=", "xmlns=") } else { xml }
        }
    }

    /// A realistic Response. Mutation hooks are raw XML fragments spliced in place.
    #[derive(Clone)]
    struct Resp {
        response_sig: Option<Sig>,
        assertion_sig: Option<Sig>,
        extensions: String,
        before_assertion: String,
        after_assertion: String,
        subject_extra: String,
        advice: String,
        assertion: bool,
    }

    impl Resp {
        fn new() -> Self {
            Resp {
                response_sig: None,
                assertion_sig: None,
                extensions: String::new(),
                before_assertion: String::new(),
                after_assertion: String::new(),
                subject_extra: String::new(),
                advice: String::new(),
                assertion: true,
            }
        }

        fn response_signed() -> Self {
            Resp { response_sig: Some(Sig::to(RESP_ID)), ..Resp::new() }
        }

        fn assertion_signed() -> Self {
            Resp { assertion_sig: Some(Sig::to(ASSERT_ID)), ..Resp::new() }
        }

        fn both_signed() -> Self {
            Resp { response_sig: Some(Sig::to(RESP_ID)), assertion_sig: Some(Sig::to(ASSERT_ID)), ..Resp::new() }
        }

        fn xml(&self) -> String {
            let sig = |s: &Option<Sig>| s.as_ref().map(Sig::xml).unwrap_or_default();
            let extensions = if self.extensions.is_empty() {
                String::new()
            } else {
                format!("<samlp:Extensions>{}</samlp:Extensions>\n", self.extensions)
            };
            let advice = if self.advice.is_empty() {
                String::new()
            } else {
                format!("<saml:Advice>{}</saml:Advice>\n", self.advice)
            };
            let assertion = if self.assertion {
                assertion_xml(ASSERT_ID, &sig(&self.assertion_sig), &self.subject_extra, &advice)
            } else {
                String::new()
            };
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<samlp:Response xmlns:samlp="{NS_SAMLP}" xmlns:saml="{NS_SAML}" ID="{RESP_ID}" Version="2.0" IssueInstant="2026-11-03T10:15:30.123Z" Destination="{ACS}" InResponseTo="{REQ_ID}">
  <saml:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">{IDP}</saml:Issuer>
  {}
  {extensions}<samlp:Status>
    <samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>
  </samlp:Status>
  {}{assertion}{}
</samlp:Response>
"#,
                sig(&self.response_sig),
                self.before_assertion,
                self.after_assertion,
            )
        }
    }

    fn assertion_xml(id: &str, signature: &str, subject_extra: &str, advice: &str) -> String {
        format!(
            r#"<saml:Assertion ID="{id}" Version="2.0" IssueInstant="2026-11-03T10:15:30.123Z">
    <saml:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">{IDP}</saml:Issuer>
    {signature}
    <saml:Subject>
      <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">alice@example.com</saml:NameID>
      <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml:SubjectConfirmationData InResponseTo="{REQ_ID}" NotOnOrAfter="2026-11-03T10:20:30.123Z" Recipient="{ACS}"/>
      </saml:SubjectConfirmation>{subject_extra}
    </saml:Subject>
    <saml:Conditions NotBefore="2026-11-03T10:15:30.123Z" NotOnOrAfter="2026-11-03T10:20:30.123Z">
      <saml:AudienceRestriction>
        <saml:Audience>https://sp.example.com/saml/metadata</saml:Audience>
      </saml:AudienceRestriction>
    </saml:Conditions>
    {advice}<saml:AuthnStatement AuthnInstant="2026-11-03T10:15:30.123Z" SessionIndex="5f1c0e8e-6a0b-4bd2-9d3c-0c1e1c0f2a11">
      <saml:AuthnContext>
        <saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>
      </saml:AuthnContext>
    </saml:AuthnStatement>
    <saml:AttributeStatement>
      <saml:Attribute Name="http://wso2.org/claims/emailaddress" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">
        <saml:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" xsi:type="xs:string">alice@example.com</saml:AttributeValue>
      </saml:Attribute>
    </saml:AttributeStatement>
  </saml:Assertion>"#
        )
    }

    /// What an IdP that does not pretty-print sends (WSO2 IS does this).
    fn compact(xml: &str) -> String {
        let mut out = String::with_capacity(xml.len());
        let mut rest = xml.trim();
        while let Some(gt) = rest.find('>') {
            out.push_str(&rest[..=gt]);
            rest = &rest[gt + 1..];
            let trimmed = rest.trim_start();
            if trimmed.starts_with('<') {
                rest = trimmed;
            }
        }
        out.push_str(rest);
        out
    }

    fn ok(xml: &str) -> Prechecked {
        match precheck_response(xml, &strict()) {
            Ok(p) => p,
            Err(e) => panic!("expected acceptance, got {}: {e}\n{xml}", e.code()),
        }
    }

    fn err(xml: &str) -> PrecheckError {
        err_with(xml, &strict())
    }

    fn err_with(xml: &str, policy: &PrecheckPolicy) -> PrecheckError {
        match precheck_response(xml, policy) {
            Ok(p) => panic!("expected refusal, got {p:?}\n{xml}"),
            Err(e) => e,
        }
    }

    fn assert_code(xml: &str, code: &str) -> PrecheckError {
        let e = err(xml);
        assert_eq!(e.code(), code, "wrong refusal: {e}");
        e
    }

    // ---------- genuine responses ----------

    #[test]
    fn accepts_response_signed() {
        let p = ok(&Resp::response_signed().xml());
        assert_eq!(p.response_id, RESP_ID);
        assert_eq!(p.assertion_id, ASSERT_ID);
        assert!(p.response_signed);
        assert!(!p.assertion_signed);
        assert_eq!(
            p.signature_algorithms,
            vec![SignatureInfo {
                element: SignedElement::Response,
                signature_method: RSA_SHA256.to_owned(),
                digest_method: SHA256.to_owned(),
            }]
        );
    }

    #[test]
    fn accepts_assertion_signed() {
        let p = ok(&Resp::assertion_signed().xml());
        assert!(!p.response_signed);
        assert!(p.assertion_signed);
        assert_eq!(p.signature_algorithms.len(), 1);
        assert_eq!(p.signature_algorithms[0].element, SignedElement::Assertion);
    }

    #[test]
    fn accepts_both_signed_and_reports_diagnostics() {
        let p = ok(&Resp::both_signed().xml());
        assert!(p.response_signed && p.assertion_signed);
        let elements: Vec<_> = p.signature_algorithms.iter().map(|s| s.element).collect();
        assert_eq!(elements, [SignedElement::Response, SignedElement::Assertion]);
        assert_eq!(p.issuer.as_deref(), Some(IDP));
        assert_eq!(p.in_response_to.as_deref(), Some(REQ_ID));
        assert_eq!(p.destination.as_deref(), Some(ACS));
    }

    #[test]
    fn accepts_compact_single_line() {
        let xml = compact(&Resp::both_signed().xml());
        assert!(!xml.contains(">\n<"), "compact() did not compact");
        let p = ok(&xml);
        assert!(p.response_signed && p.assertion_signed);
    }

    #[test]
    fn accepts_pretty_printed_and_trims_issuer() {
        let xml = Resp::both_signed().xml().replacen(
            &format!(">{IDP}</saml:Issuer>"),
            &format!(">\n      {IDP}\n  </saml:Issuer>"),
            1,
        );
        assert!(xml.contains(&format!("\n      {IDP}\n")));
        assert_eq!(ok(&xml).issuer.as_deref(), Some(IDP));
    }

    #[test]
    fn accepts_missing_optional_diagnostics() {
        let xml = Resp::assertion_signed()
            .xml()
            .replace(&format!(r#" InResponseTo="{REQ_ID}">"#), ">")
            .replace(&format!(r#" Destination="{ACS}""#), "")
            .replacen(
                &format!(
                    r#"<saml:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">{IDP}</saml:Issuer>
  "#
                ),
                "",
                1,
            );
        let p = ok(&xml);
        assert_eq!(p.in_response_to, None);
        assert_eq!(p.destination, None);
        assert_eq!(p.issuer, None);
    }

    #[test]
    fn accepts_inclusive_namespaces_prefix_list() {
        let inclusive = format!(r#"<ec:InclusiveNamespaces xmlns:ec="{NS_EXC_C14N}" PrefixList="xs xsi"/>"#);
        let mut sig = Sig::to(ASSERT_ID);
        sig.transforms = vec![
            transform(ALG_ENVELOPED),
            format!(r#"<ds:Transform Algorithm="{ALG_EXC_C14N}">{inclusive}</ds:Transform>"#),
        ];
        sig.c14n_inner = inclusive;
        let resp = Resp { assertion_sig: Some(sig), ..Resp::new() };
        ok(&resp.xml());
    }

    #[test]
    fn accepts_enveloped_only_and_reversed_transform_order() {
        let mut sig = Sig::to(RESP_ID);
        sig.transforms = vec![transform(ALG_ENVELOPED)];
        ok(&Resp { response_sig: Some(sig.clone()), ..Resp::new() }.xml());
        sig.transforms = vec![transform(ALG_EXC_C14N), transform(ALG_ENVELOPED)];
        ok(&Resp { response_sig: Some(sig), ..Resp::new() }.xml());
    }

    #[test]
    fn accepts_saml2_prefixes() {
        let xml = Resp::both_signed()
            .xml()
            .replace("samlp:", "saml2p:")
            .replace("xmlns:samlp=", "xmlns:saml2p=")
            .replace("saml:", "saml2:")
            .replace("xmlns:saml=", "xmlns:saml2=")
            .replace("ds:", "dsig:")
            .replace("xmlns:ds=", "xmlns:dsig=");
        assert!(xml.contains("<saml2p:Response") && xml.contains("<saml2:Assertion"));
        assert!(xml.contains("<dsig:Signature") && !xml.contains("samlp:"));
        let p = ok(&xml);
        assert!(p.response_signed && p.assertion_signed);
        assert_eq!(p.issuer.as_deref(), Some(IDP));
    }

    #[test]
    fn accepts_default_namespaces_without_prefixes() {
        let mut rsig = Sig::to(RESP_ID);
        rsig.default_ns = true;
        let mut asig = Sig::to(ASSERT_ID);
        asig.default_ns = true;
        let xml = Resp { response_sig: Some(rsig), assertion_sig: Some(asig), ..Resp::new() }
            .xml()
            .replace("samlp:", "")
            .replace("xmlns:samlp=", "xmlns=")
            .replace("<saml:Assertion ", &format!(r#"<Assertion xmlns="{NS_SAML}" "#))
            .replace("</saml:Assertion>", "</Assertion>");
        assert!(xml.contains("<Response xmlns=") && xml.contains("<Signature xmlns="));
        assert!(xml.contains("<Assertion xmlns="));
        let p = ok(&xml);
        assert!(p.response_signed && p.assertion_signed);
    }

    #[test]
    fn accepts_each_allowed_algorithm() {
        for sig_alg in SIGNATURE_METHODS {
            for digest_alg in DIGEST_METHODS {
                let mut sig = Sig::to(ASSERT_ID);
                sig.sig_alg = sig_alg.to_owned();
                sig.digest_alg = digest_alg.to_owned();
                let p = ok(&Resp { assertion_sig: Some(sig), ..Resp::new() }.xml());
                assert_eq!(p.signature_algorithms[0].signature_method, sig_alg);
                assert_eq!(p.signature_algorithms[0].digest_method, digest_alg);
            }
        }
    }

    #[test]
    fn accepts_without_xml_declaration_and_with_bom() {
        let xml = Resp::response_signed().xml();
        let body = xml.split_once("?>\n").unwrap().1;
        ok(body);
        ok(&format!("\u{feff}{xml}"));
        ok(&xml.replace(r#"encoding="UTF-8""#, r#"encoding='utf-8'"#));
    }

    #[test]
    fn accepts_sha1_when_allowed() {
        let mut sig = Sig::to(RESP_ID);
        sig.sig_alg = ALG_RSA_SHA1.to_owned();
        sig.digest_alg = ALG_SHA1.to_owned();
        let xml = Resp { response_sig: Some(sig), ..Resp::new() }.xml();
        let p = precheck_response(&xml, &lenient()).expect("SHA-1 allowed by policy");
        assert_eq!(p.signature_algorithms[0].signature_method, ALG_RSA_SHA1);
        assert_eq!(p.signature_algorithms[0].digest_method, ALG_SHA1);
    }

    #[test]
    fn accepts_bytes_entry_point() {
        let xml = Resp::both_signed().xml();
        let p = precheck_response_bytes(xml.as_bytes(), &strict()).unwrap();
        assert_eq!(p.assertion_id, ASSERT_ID);
    }

    // ---------- DTD / XML-level refusals ----------

    #[test]
    fn refuses_doctype_internal_entity() {
        let xml = Resp::response_signed().xml().replacen(
            "<samlp:Response",
            "<!DOCTYPE samlp:Response [<!ENTITY who \"admin@example.com\">]>\n<samlp:Response",
            1,
        );
        let xml = xml.replacen("alice@example.com", "&who;", 1);
        assert_code(&xml, "doctype");
    }

    #[test]
    fn refuses_doctype_external_dtd() {
        let xml = Resp::response_signed().xml().replacen(
            "<samlp:Response",
            "<!DOCTYPE samlp:Response SYSTEM \"http://127.0.0.1:9/evil.dtd\">\n<samlp:Response",
            1,
        );
        assert_code(&xml, "doctype");
    }

    #[test]
    fn refuses_billion_laughs() {
        let mut dtd = String::from("<!DOCTYPE lolz [<!ENTITY lol \"lol\">");
        for i in 1..=9 {
            let prev = if i == 1 { "lol".to_owned() } else { format!("lol{}", i - 1) };
            dtd.push_str(&format!("<!ENTITY lol{i} \"{}\">", format!("&{prev};").repeat(10)));
        }
        dtd.push_str("]>\n");
        let xml = Resp::response_signed()
            .xml()
            .replacen("<samlp:Response", &format!("{dtd}<samlp:Response"), 1)
            .replacen("alice@example.com", "&lol9;", 1);
        assert_code(&xml, "doctype");
    }

    #[test]
    fn refuses_doctype_text_outside_prolog() {
        // Not where roxmltree looks for a DTD; caught by the textual check.
        let xml = Resp::response_signed().xml().replacen("<samlp:Status>", "<!-- <!doctype x> --><samlp:Status>", 1);
        assert_code(&xml, "doctype");
    }

    #[test]
    fn maps_parser_dtd_error_to_doctype() {
        // The textual pre-check normally fires first; this proves the parser mapping.
        assert_eq!(parse("<!DOCTYPE a><a/>").unwrap_err(), PrecheckError::Doctype);
        assert_eq!(parse("<a>").unwrap_err().code(), "malformed_xml");
    }

    #[test]
    fn refuses_non_utf8_declared_encoding() {
        for enc in ["ISO-8859-1", "UTF-16", "IBM037"] {
            let xml = Resp::response_signed().xml().replacen(r#"encoding="UTF-8""#, &format!(r#"encoding="{enc}""#), 1);
            match err(&xml) {
                PrecheckError::Encoding { found } => assert_eq!(found, enc),
                e => panic!("expected Encoding, got {e:?}"),
            }
        }
    }

    #[test]
    fn refuses_non_utf8_bytes() {
        let mut bytes = Resp::response_signed().xml().into_bytes();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(precheck_response_bytes(&bytes, &strict()).unwrap_err(), PrecheckError::NotUtf8);
    }

    #[test]
    fn refuses_not_xml() {
        for input in [
            "hello world",
            "{\"SAMLResponse\":1}",
            "<html><body>Login failed<br></body></html>",
            &Resp::response_signed().xml()[..400],
        ] {
            assert_code(input, "malformed_xml");
        }
    }

    #[test]
    fn refuses_empty_input() {
        assert_eq!(precheck_response("", &strict()).unwrap_err(), PrecheckError::Empty);
        assert_eq!(precheck_response(" \r\n\t", &strict()).unwrap_err(), PrecheckError::Empty);
    }

    // ---------- root / assertion refusals ----------

    #[test]
    fn refuses_bare_assertion_root() {
        let assertion = assertion_xml(ASSERT_ID, &Sig::to(ASSERT_ID).xml(), "", "").replacen(
            "<saml:Assertion ",
            &format!(r#"<saml:Assertion xmlns:saml="{NS_SAML}" "#),
            1,
        );
        match err(&assertion) {
            PrecheckError::NotAResponse { found } => {
                assert!(found.starts_with("Assertion in namespace"))
            }
            e => panic!("expected NotAResponse, got {e:?}"),
        }
    }

    #[test]
    fn refuses_logout_response_root() {
        let xml = format!(
            r#"<samlp:LogoutResponse xmlns:samlp="{NS_SAMLP}" ID="_x" Version="2.0"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#
        );
        let e = assert_code(&xml, "not_a_response");
        assert!(e.to_string().contains("LogoutResponse"));
    }

    #[test]
    fn refuses_response_in_wrong_namespace() {
        let xml = Resp::response_signed().xml().replacen(NS_SAMLP, "urn:oasis:names:tc:SAML:1.0:protocol", 1);
        assert_code(&xml, "not_a_response");
    }

    #[test]
    fn refuses_missing_ids() {
        let xml = Resp::assertion_signed().xml().replacen(&format!(r#" ID="{RESP_ID}""#), "", 1);
        assert_eq!(err(&xml), PrecheckError::MissingId { element: SignedElement::Response });
        let xml = Resp::response_signed().xml().replacen(&format!(r#" ID="{ASSERT_ID}""#), r#" ID="""#, 1);
        assert_eq!(err(&xml), PrecheckError::MissingId { element: SignedElement::Assertion });
    }

    #[test]
    fn refuses_zero_assertions() {
        let resp = Resp { assertion: false, ..Resp::response_signed() };
        assert_eq!(err(&resp.xml()), PrecheckError::AssertionCount { found: 0 });
    }

    #[test]
    fn refuses_two_sibling_assertions() {
        let evil = assertion_xml("_evil", "", "", "").replace("alice@", "admin@");
        for resp in [
            Resp { before_assertion: evil.clone(), ..Resp::assertion_signed() },
            Resp { after_assertion: evil.clone(), ..Resp::assertion_signed() },
        ] {
            assert_eq!(err(&resp.xml()), PrecheckError::AssertionCount { found: 2 });
        }
    }

    #[test]
    fn refuses_xsw_signed_assertion_moved_to_extensions() {
        let genuine = assertion_xml(ASSERT_ID, &Sig::to(ASSERT_ID).xml(), "", "");
        let evil = assertion_xml("_evil", "", "", "").replace("alice@", "admin@");
        let resp = Resp { extensions: genuine, assertion: false, after_assertion: evil, ..Resp::new() };
        assert_eq!(err(&resp.xml()), PrecheckError::AssertionCount { found: 2 });
    }

    #[test]
    fn refuses_only_assertion_inside_extensions() {
        let resp = Resp {
            extensions: assertion_xml(ASSERT_ID, &Sig::to(ASSERT_ID).xml(), "", ""),
            assertion: false,
            ..Resp::new()
        };
        match err(&resp.xml()) {
            PrecheckError::AssertionPlacement { path } => {
                assert_eq!(path, "Response/Extensions/Assertion");
            }
            e => panic!("expected AssertionPlacement, got {e:?}"),
        }
    }

    #[test]
    fn refuses_xsw_assertion_in_advice() {
        let resp =
            Resp { advice: assertion_xml("_wrapped", &Sig::to("_wrapped").xml(), "", ""), ..Resp::assertion_signed() };
        assert_eq!(err(&resp.xml()), PrecheckError::AssertionCount { found: 2 });
    }

    #[test]
    fn refuses_xsw_assertion_in_signature_object() {
        let mut sig = Sig::to(ASSERT_ID);
        sig.trailer = format!("<ds:Object>{}</ds:Object>", assertion_xml("_hidden", &Sig::to("_hidden").xml(), "", ""));
        let resp = Resp { assertion_sig: Some(sig), ..Resp::new() };
        assert_eq!(err(&resp.xml()), PrecheckError::AssertionCount { found: 2 });
    }

    #[test]
    fn refuses_xsw_response_wrapping_response() {
        let inner = Resp::response_signed().xml();
        let inner = inner.split_once("?>\n").unwrap().1;
        let resp = Resp { extensions: inner.to_owned(), ..Resp::new() };
        let xml = resp.xml().replacen(&format!(r#"ID="{RESP_ID}""#), r#"ID="_outer""#, 1);
        assert_eq!(err(&xml), PrecheckError::AssertionCount { found: 2 });
    }

    #[test]
    fn refuses_encrypted_assertion() {
        let resp = Resp {
            assertion: false,
            after_assertion: "<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" Type=\"http://www.w3.org/2001/04/xmlenc#Element\"><xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes256-cbc\"/><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>".to_owned(),
            ..Resp::response_signed()
        };
        let e = err(&resp.xml());
        assert_eq!(e, PrecheckError::EncryptedAssertion);
        assert!(e.to_string().contains("Turn off assertion encryption"));
        assert!(e.to_string().contains("TLS"));
    }

    #[test]
    fn refuses_duplicate_ids() {
        // Evil element reusing the signed assertion's ID.
        let resp = Resp {
            extensions: r#"<foo:Bar xmlns:foo="urn:x" ID="_d71a3a8e9fcc45c9e9d248ef7049393fc8f04e5f75"/>"#.to_owned(),
            ..Resp::assertion_signed()
        };
        assert_eq!(err(&resp.xml()), PrecheckError::DuplicateId { id: ASSERT_ID.to_owned() });
        // Response and Assertion sharing one ID.
        let xml = Resp::both_signed().xml().replace(ASSERT_ID, RESP_ID);
        assert_code(&xml, "duplicate_id");
        // xml:id is an ID for libxml2 as well.
        let resp = Resp {
            subject_extra: format!(r#"<saml:SubjectConfirmation xml:id="{RESP_ID}" Method="urn:x"/>"#),
            ..Resp::response_signed()
        };
        assert_code(&resp.xml(), "duplicate_id");
    }

    // ---------- signature placement ----------

    #[test]
    fn refuses_unsigned() {
        let e = assert_code(&Resp::new().xml(), "unsigned");
        assert_eq!(e, PrecheckError::Unsigned);
    }

    #[test]
    fn refuses_signature_in_extensions() {
        for base in [Resp::new(), Resp::assertion_signed()] {
            let resp = Resp { extensions: Sig::to(RESP_ID).xml(), ..base };
            match err(&resp.xml()) {
                PrecheckError::SignaturePlacement { path } => {
                    assert_eq!(path, "Response/Extensions/Signature");
                }
                e => panic!("expected SignaturePlacement, got {e:?}"),
            }
        }
    }

    #[test]
    fn refuses_signature_nested_deeper() {
        let resp = Resp { subject_extra: Sig::to(ASSERT_ID).xml(), ..Resp::response_signed() };
        match err(&resp.xml()) {
            PrecheckError::SignaturePlacement { path } => {
                assert_eq!(path, "Response/Assertion/Subject/Signature");
            }
            e => panic!("expected SignaturePlacement, got {e:?}"),
        }
    }

    #[test]
    fn refuses_two_signatures_on_one_parent() {
        let resp = Resp { before_assertion: Sig::to(RESP_ID).xml(), ..Resp::response_signed() };
        assert_eq!(err(&resp.xml()), PrecheckError::MultipleSignatures { element: SignedElement::Response, found: 2 });
        let xml = Resp::assertion_signed().xml().replacen(
            "<saml:Subject>",
            &format!("{}<saml:Subject>", Sig::to(ASSERT_ID).xml()),
            1,
        );
        assert_eq!(err(&xml), PrecheckError::MultipleSignatures { element: SignedElement::Assertion, found: 2 });
    }

    // ---------- signature content ----------

    fn with_assertion_sig(edit: impl FnOnce(&mut Sig)) -> String {
        let mut sig = Sig::to(ASSERT_ID);
        edit(&mut sig);
        Resp { assertion_sig: Some(sig), ..Resp::new() }.xml()
    }

    fn with_response_sig(edit: impl FnOnce(&mut Sig)) -> String {
        let mut sig = Sig::to(RESP_ID);
        edit(&mut sig);
        Resp { response_sig: Some(sig), ..Resp::new() }.xml()
    }

    #[test]
    fn refuses_external_reference_uris() {
        for uri in ["http://127.0.0.1:9/x", "file:///etc/hostname", "evil.xml"] {
            let xml = with_response_sig(|s| s.uri = Some(uri.to_owned()));
            match err(&xml) {
                PrecheckError::ReferenceUri { element, expected, found } => {
                    assert_eq!(element, SignedElement::Response);
                    assert_eq!(expected, format!("#{RESP_ID}"));
                    assert_eq!(found, format!("{uri:?}"));
                }
                e => panic!("expected ReferenceUri for {uri}, got {e:?}"),
            }
        }
    }

    #[test]
    fn refuses_empty_and_missing_reference_uri() {
        let e = err(&with_assertion_sig(|s| s.uri = Some(String::new())));
        assert!(matches!(&e, PrecheckError::ReferenceUri { found, .. } if found == "\"\""));
        let e = err(&with_assertion_sig(|s| s.uri = None));
        assert!(matches!(&e, PrecheckError::ReferenceUri { found, .. } if found == "(missing)"));
    }

    #[test]
    fn refuses_reference_to_other_element() {
        // Response signature pointing at the assertion, and an xpointer form.
        let xml = with_response_sig(|s| s.uri = Some(format!("#{ASSERT_ID}")));
        assert_code(&xml, "reference_uri");
        let xml = with_response_sig(|s| s.uri = Some(format!("#xpointer(id('{RESP_ID}'))")));
        assert_code(&xml, "reference_uri");
        let xml = with_assertion_sig(|s| s.uri = Some("#xpointer(/)".to_owned()));
        assert_code(&xml, "reference_uri");
    }

    #[test]
    fn refuses_two_references() {
        let xml = with_response_sig(|s| s.extra_refs = 1);
        assert_eq!(err(&xml), PrecheckError::ReferenceCount { element: SignedElement::Response, found: 2 });
    }

    #[test]
    fn refuses_xpath_transform() {
        let xpath = "http://www.w3.org/TR/1999/REC-xpath-19991116";
        let xml = with_assertion_sig(|s| {
            s.transforms = vec![
                transform(ALG_ENVELOPED),
                format!(
                    r#"<ds:Transform Algorithm="{xpath}"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>"#
                ),
            ]
        });
        match err(&xml) {
            PrecheckError::TransformNotAllowed { algorithm, .. } => assert_eq!(algorithm, xpath),
            e => panic!("expected TransformNotAllowed, got {e:?}"),
        }
    }

    #[test]
    fn refuses_xslt_transform() {
        let xslt = "http://www.w3.org/TR/1999/REC-xslt-19991116";
        let xml = with_response_sig(|s| {
            s.transforms = vec![
                format!(
                    r#"<ds:Transform Algorithm="{xslt}"><xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"><xsl:template match="/"><xsl:copy-of select="document('http://127.0.0.1:9/x')"/></xsl:template></xsl:stylesheet></ds:Transform>"#
                ),
                transform(ALG_ENVELOPED),
            ]
        });
        assert_code(&xml, "transform_not_allowed");
    }

    #[test]
    fn refuses_bad_transform_lists() {
        let xml = with_assertion_sig(|s| s.transforms = vec![transform(ALG_EXC_C14N)]);
        assert_code(&xml, "transform_list");
        let xml = with_assertion_sig(|s| s.transforms.clear());
        assert_code(&xml, "transform_list");
        let xml = with_assertion_sig(|s| s.transforms.push(transform(ALG_ENVELOPED)));
        assert_code(&xml, "transform_list");
        // No <Transforms> element at all.
        let xml = with_assertion_sig(|_| {}).replace(
            &format!("<ds:Transforms>{}{}</ds:Transforms>\n", transform(ALG_ENVELOPED), transform(ALG_EXC_C14N)),
            "",
        );
        assert!(!xml.contains("Transforms"));
        assert_code(&xml, "transform_list");
    }

    #[test]
    fn refuses_comment_preserving_or_inclusive_c14n() {
        for alg in [
            "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
            "http://www.w3.org/2006/12/xml-c14n11",
        ] {
            let xml = with_assertion_sig(|s| s.c14n = alg.to_owned());
            match err(&xml) {
                PrecheckError::CanonicalizationNotAllowed { found, .. } => assert_eq!(found, alg),
                e => panic!("expected CanonicalizationNotAllowed, got {e:?}"),
            }
        }
        let with_comments = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
        let xml = with_assertion_sig(|s| s.transforms[1] = transform(with_comments));
        assert_code(&xml, "transform_not_allowed");
    }

    #[test]
    fn refuses_sha1_by_default_with_actionable_message() {
        let xml = with_response_sig(|s| {
            s.sig_alg = ALG_RSA_SHA1.to_owned();
            s.digest_alg = ALG_SHA1.to_owned();
        });
        let e = err(&xml);
        assert_eq!(
            e,
            PrecheckError::Sha1NotAllowed {
                element: SignedElement::Response,
                signature_method: ALG_RSA_SHA1.to_owned(),
                digest_method: ALG_SHA1.to_owned(),
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("signed the Response with SHA-1"), "{msg}");
        assert!(msg.contains("RSA-SHA256") && msg.contains("\"Allow SHA-1\""), "{msg}");
    }

    #[test]
    fn refuses_sha1_in_either_position() {
        let xml = with_assertion_sig(|s| s.digest_alg = ALG_SHA1.to_owned());
        assert_code(&xml, "sha1_not_allowed");
        let xml = with_assertion_sig(|s| s.sig_alg = ALG_RSA_SHA1.to_owned());
        assert_code(&xml, "sha1_not_allowed");
        // Mixed: allowed under the lenient policy.
        precheck_response(&xml, &lenient()).unwrap();
    }

    #[test]
    fn refuses_hmac_even_when_sha1_allowed() {
        for alg in ["http://www.w3.org/2000/09/xmldsig#hmac-sha1", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"]
        {
            let xml = with_response_sig(|s| s.sig_alg = alg.to_owned());
            for policy in [strict(), lenient()] {
                match err_with(&xml, &policy) {
                    PrecheckError::HmacNotAllowed { found, .. } => assert_eq!(found, alg),
                    e => panic!("expected HmacNotAllowed, got {e:?}"),
                }
            }
        }
    }

    #[test]
    fn refuses_other_algorithms() {
        let xml = with_assertion_sig(|s| s.sig_alg = "http://www.w3.org/2001/04/xmldsig-more#rsa-md5".to_owned());
        assert!(matches!(
            err_with(&xml, &lenient()),
            PrecheckError::AlgorithmNotAllowed { kind: "SignatureMethod", .. }
        ));
        let xml = with_assertion_sig(|s| s.digest_alg = "http://www.w3.org/2001/04/xmldsig-more#md5".to_owned());
        assert!(matches!(err(&xml), PrecheckError::AlgorithmNotAllowed { kind: "DigestMethod", .. }));
        // The Algorithm comparison is exact: no case folding, no trimming.
        let xml = with_assertion_sig(|s| s.sig_alg = format!(" {RSA_SHA256}"));
        assert_code(&xml, "algorithm_not_allowed");
    }

    #[test]
    fn refuses_object_in_signature() {
        let xml = with_response_sig(|s| s.trailer = "<ds:Object Id=\"o\"><x/></ds:Object>".to_owned());
        assert_eq!(err(&xml), PrecheckError::ObjectInSignature { element: SignedElement::Response });
    }

    #[test]
    fn refuses_retrieval_method() {
        let xml = with_assertion_sig(|s| {
            s.key_info_inner =
                r##"<ds:RetrievalMethod URI="#cert" Type="http://www.w3.org/2000/09/xmldsig#X509Data"/>"##.to_owned()
        });
        assert_code(&xml, "retrieval_method");
    }

    #[test]
    fn refuses_external_uri_elsewhere_in_signature() {
        let xml = with_assertion_sig(|s| {
            s.key_info_inner = r#"<dsig11:KeyInfoReference xmlns:dsig11="http://www.w3.org/2009/xmldsig11#" URI="http://127.0.0.1:9/key"/>"#.to_owned()
        });
        match err(&xml) {
            PrecheckError::ExternalUri { node, uri, .. } => {
                assert_eq!(node, "KeyInfoReference");
                assert_eq!(uri, "http://127.0.0.1:9/key");
            }
            e => panic!("expected ExternalUri, got {e:?}"),
        }
    }

    #[test]
    fn refuses_malformed_signature_structure() {
        let xml = with_response_sig(|_| {})
            .replace("<ds:SignatureValue>Zm9vYmFyZm9vYmFyZm9vYmFy\nZm9vYmFyZm9vYmFy</ds:SignatureValue>", "");
        assert!(!xml.contains("SignatureValue"));
        assert_code(&xml, "signature_structure");
        let xml = with_response_sig(|s| s.trailer = "<evil:Thing xmlns:evil=\"urn:e\"/>".to_owned());
        assert_code(&xml, "signature_structure");
        let xml = with_response_sig(|s| s.c14n_inner = "<ds:XPath>1</ds:XPath>".to_owned());
        assert_code(&xml, "signature_structure");
        // A third child that is not KeyInfo.
        let xml = with_response_sig(|_| {})
            .replace("<ds:KeyInfo>", "<ds:Manifest>")
            .replace("</ds:KeyInfo>", "</ds:Manifest>");
        assert!(xml.contains("<ds:Manifest>"));
        assert_code(&xml, "signature_structure");
    }

    // ---------- base64 ----------

    #[test]
    fn decodes_line_wrapped_base64() {
        let xml = Resp::both_signed().xml();
        let encoded = STANDARD.encode(&xml);
        let wrapped: String =
            encoded.as_bytes().chunks(76).map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap())).collect();
        let noisy = format!("  \t{}\n ", wrapped.replace("AAAA", "AA AA"));
        assert!(noisy.contains("\r\n"));
        let decoded = decode_saml_response_base64(&noisy).unwrap();
        assert_eq!(decoded, xml.as_bytes());
        ok(std::str::from_utf8(&decoded).unwrap());
    }

    #[test]
    fn refuses_bad_base64() {
        for input in ["not base64!", "PHNhbWxwOlJlc3BvbnNlLz4", "PD94bWw=x", "%3Cxml%3E"] {
            assert_eq!(decode_saml_response_base64(input).unwrap_err().code(), "bad_base64", "{input}");
        }
    }

    #[test]
    fn refuses_empty_base64() {
        for input in ["", "   ", "\r\n\t"] {
            assert_eq!(decode_saml_response_base64(input).unwrap_err(), PrecheckError::Empty);
        }
    }

    // ---------- error metadata ----------

    #[test]
    fn codes_are_unique_snake_case_and_messages_quote_safely() {
        let e = SignedElement::Response;
        let all = [
            PrecheckError::Empty,
            PrecheckError::BadBase64(String::new()),
            PrecheckError::NotUtf8,
            PrecheckError::Doctype,
            PrecheckError::Encoding { found: String::new() },
            PrecheckError::MalformedXml(String::new()),
            PrecheckError::NotAResponse { found: String::new() },
            PrecheckError::MissingId { element: e },
            PrecheckError::EncryptedAssertion,
            PrecheckError::AssertionCount { found: 0 },
            PrecheckError::AssertionPlacement { path: String::new() },
            PrecheckError::DuplicateId { id: String::new() },
            PrecheckError::Unsigned,
            PrecheckError::SignaturePlacement { path: String::new() },
            PrecheckError::MultipleSignatures { element: e, found: 2 },
            PrecheckError::ObjectInSignature { element: e },
            PrecheckError::RetrievalMethod { element: e },
            PrecheckError::ExternalUri { element: e, node: String::new(), uri: String::new() },
            PrecheckError::SignatureStructure { element: e, detail: String::new() },
            PrecheckError::ReferenceCount { element: e, found: 2 },
            PrecheckError::ReferenceUri { element: e, expected: String::new(), found: String::new() },
            PrecheckError::CanonicalizationNotAllowed { element: e, found: String::new() },
            PrecheckError::TransformNotAllowed { element: e, algorithm: String::new() },
            PrecheckError::TransformList { element: e, detail: String::new() },
            PrecheckError::AlgorithmNotAllowed {
                element: e,
                kind: "DigestMethod",
                found: String::new(),
                accepted: String::new(),
            },
            PrecheckError::HmacNotAllowed { element: e, found: String::new() },
            PrecheckError::Sha1NotAllowed { element: e, signature_method: String::new(), digest_method: String::new() },
        ];
        let mut codes = HashSet::new();
        for err in &all {
            let code = err.code();
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{code}");
            assert!(codes.insert(code), "duplicate code {code}");
            assert!(err.to_string().len() > 20, "{code}: message too thin");
        }

        // Attacker strings are escaped and truncated in messages.
        let long_uri = format!("http://x/\n{}", "a".repeat(500));
        let e = err(&with_response_sig(|s| s.uri = Some(long_uri.replace('\n', "&#10;"))));
        let msg = e.to_string();
        assert!(!msg.contains('\n') && msg.contains("\\n"), "{msg}");
        assert!(msg.len() < 400, "{msg}");
    }
}
