//! ACS validation cost against a bare libxmlsec1 verification of the same document, measured in
//! the same run. See BENCHMARKS.md. Run: `cargo bench --bench acs` (1 s warm-up and 5 s of
//! measurement per benchmark unless given on the command line).
//!
//! Fixture: a WSO2-shaped Response (`ResponseParams::sample`, our SP's URLs), Response AND
//! Assertion both signed with RSA-SHA256 by a throw-away RSA-2048 key (real libxmlsec1
//! signatures). It is issued when the bench starts; the IdP's clock skew is 600 s, so samael's
//! issue-delay limit (90 s + skew) keeps it valid for 11 minutes, and NotOnOrAfter is 20 minutes
//! out. Every iteration `expect`s success, so an expired fixture stops the run instead of timing
//! the error path.

use std::hint::black_box;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use jsm_sso::config::BaseUrl;
use jsm_sso::saml::idp::{Binding, Endpoint, Idp, IdpCertificate, IdpId, IdpSettings, IdpSource};
use jsm_sso::saml::metadata::parse_certificate;
use jsm_sso::saml::precheck::{PrecheckPolicy, precheck_response};
use jsm_sso::saml::sp::SpEndpoints;
use jsm_sso::saml::validate;
use jsm_sso::tenants::{PublicTenantId, TenantId};
use openssl::x509::X509;
use samael::crypto::{CertificateDer, CryptoProvider, XmlSec};

#[path = "../tests/api/helpers/saml_signer.rs"]
mod saml_signer;

use saml_signer::{ResponseParams, SigAlg, TestKey, build_response, make_test_key, sign_element};

/// The WSO2 default IdP entity ID.
const IDP_ENTITY: &str = "localhost";

struct Fixture {
    sp: SpEndpoints,
    idp: Idp,
    /// The signed response XML, and the same base64-encoded (the ACS form value).
    xml: String,
    form_value: String,
    request_id: String,
    /// The certificate as samael's bare verifier takes it (decoded once).
    cert_der: CertificateDer,
    /// The same document without the Response's signature: libxmlsec1 then finds the Assertion's.
    xml_assertion_signature_first: String,
}

fn sp() -> SpEndpoints {
    let base = BaseUrl::parse("https://sso.example.com").expect("base URL");
    let tenant = PublicTenantId::parse("AAAAAAAAAAAAAAAA").expect("public tenant id");
    SpEndpoints::new(&base, &tenant)
}

fn idp(key: &TestKey) -> Idp {
    let now = Utc::now();
    let certificate = IdpCertificate::from(&parse_certificate(&key.cert_pem, now).expect("test certificate").0);
    Idp {
        id: IdpId::generate(),
        tenant_id: TenantId::from_stored("bench-tenant".into()),
        name: "WSO2 IS".into(),
        enabled: true,
        entity_id: IDP_ENTITY.into(),
        sso: Endpoint { binding: Binding::HttpRedirect, location: "https://localhost:9443/samlsso".into() },
        slo: None,
        source: IdpSource::Manual,
        metadata_url: None,
        settings: IdpSettings { clock_skew_secs: 600, ..IdpSettings::default() },
        warnings: vec![],
        certificates: vec![certificate],
        metadata_valid_until: None,
        next_refresh_at: None,
        last_refresh_at: None,
        last_refresh_status: None,
        last_refresh_error: None,
        last_login_at: None,
        created_at: now,
        updated_at: now,
    }
}

fn params(sp: &SpEndpoints) -> ResponseParams {
    let now = Utc::now();
    let mut p = ResponseParams::sample(now);
    p.issuer = IDP_ENTITY.into();
    p.destination = sp.acs_url.clone();
    p.recipient = sp.acs_url.clone();
    p.audience = sp.entity_id.clone();
    p.not_on_or_after = now + chrono::Duration::minutes(20);
    p
}

/// Assertion first, then the Response (its digest covers the Assertion's signature), as WSO2 does.
fn sign_both(p: &ResponseParams, assertion_key: &TestKey, response_key: &TestKey) -> String {
    let xml = sign_element(&build_response(p), &p.assertion_id, assertion_key, SigAlg::RsaSha256);
    sign_element(&xml, &p.response_id, response_key, SigAlg::RsaSha256)
}

fn without_first_signature(xml: &str) -> String {
    let start = xml.find("<ds:Signature ").expect("a signature");
    let end = xml[start..].find("</ds:Signature>").expect("signature end") + start + "</ds:Signature>".len();
    format!("{}{}", &xml[..start], &xml[end..])
}

fn bare_verify(xml: &str, cert: &CertificateDer) -> bool {
    <XmlSec as CryptoProvider>::verify_signed_xml(xml.as_bytes(), cert, Some("ID")).is_ok()
}

fn fixture() -> Fixture {
    let key = make_test_key("localhost");
    let sp = sp();
    let idp = idp(&key);
    let p = params(&sp);
    let xml = sign_both(&p, &key, &key);
    let cert_der = CertificateDer::from(key.cert_der.clone());
    let xml_assertion_signature_first = without_first_signature(&xml);

    // What the bare verification covers: `verify_signed_xml` checks only the FIRST ds:Signature in
    // document order (xmlSecFindNode from the root), here the Response's. An Assertion signed by
    // another key under a genuine Response signature passes it; samael (every signature) does not.
    assert!(bare_verify(&xml, &cert_der), "bare libxmlsec1 rejected the genuine response");
    assert!(bare_verify(&xml_assertion_signature_first, &cert_der), "the Assertion's own signature does not verify");
    eprintln!("acs bench: checking a response whose Assertion is signed by another key (libxmlsec1 logs 2 refusals)");
    let mixed = sign_both(&p, &make_test_key("attacker"), &key);
    let bare_accepts_mixed = bare_verify(&mixed, &cert_der);
    let bare_checks_assertion = !bare_verify(&without_first_signature(&mixed), &cert_der);
    assert!(bare_checks_assertion, "the attacker-signed Assertion verified under the IdP certificate");
    eprintln!(
        "acs bench: response {} bytes ({} base64); bare libxmlsec1 verifies {} per call",
        xml.len(),
        STANDARD.encode(&xml).len(),
        if bare_accepts_mixed { "only the first ds:Signature (the Response's)" } else { "every ds:Signature" },
    );

    let fixture = Fixture {
        form_value: STANDARD.encode(&xml),
        request_id: p.in_response_to.clone().expect("sample answers a request"),
        sp,
        idp,
        xml,
        cert_der,
        xml_assertion_signature_first,
    };
    // The pipeline must accept the genuine response, and refuse the mixed one.
    let verifiers = validate::verifiers(&fixture.sp, &fixture.idp).expect("verifiers");
    run_pipeline(&fixture, &verifiers);
    let decoded = validate::decode(&STANDARD.encode(&mixed), false).expect("mixed response decodes");
    let refused =
        validate::verify(&decoded, &verifiers, &fixture.sp, &fixture.idp, Some(&fixture.request_id), Utc::now());
    assert!(refused.is_err(), "the pipeline accepted an Assertion signed by another key");
    fixture
}

fn run_pipeline(f: &Fixture, verifiers: &validate::Verifiers) -> validate::ValidatedLogin {
    let decoded = validate::decode(&f.form_value, f.idp.settings.allow_sha1).expect("decode + pre-check");
    validate::verify(&decoded, verifiers, &f.sp, &f.idp, Some(&f.request_id), Utc::now())
        .unwrap_or_else(|e| panic!("validation failed (fixture expired?): {e:?}"))
}

fn acs(c: &mut Criterion) {
    let f = fixture();
    let policy = PrecheckPolicy { allow_sha1: f.idp.settings.allow_sha1 };
    let cached = validate::verifiers(&f.sp, &f.idp).expect("verifiers");

    let mut group = c.benchmark_group("acs");
    group.bench_function("bare_libxmlsec1", |b| {
        b.iter(|| assert!(bare_verify(black_box(&f.xml), &f.cert_der)));
    });
    // Supplementary: both signatures with the bare verifier (two parses, two key loads).
    group.bench_function("bare_libxmlsec1_both_signatures", |b| {
        b.iter(|| {
            assert!(bare_verify(black_box(&f.xml), &f.cert_der));
            assert!(bare_verify(black_box(&f.xml_assertion_signature_first), &f.cert_der));
        });
    });
    group.bench_function("precheck_only", |b| {
        b.iter(|| precheck_response(black_box(&f.xml), &policy).expect("pre-check"));
    });
    // Supplementary, to split the pipeline: step 1 alone (base64, UTF-8, depth, pre-check), the
    // verifier construction that caching saves, and the X.509 DER -> public key decoding that
    // libxmlsec1 repeats for every signature of every call (samael hands it certificates, not keys;
    // measured here with the openssl crate: d2i_X509 + X509_get_pubkey, what xmlsec's CertDer
    // loader does before adopting the key).
    group.bench_function("decode_only", |b| {
        b.iter(|| validate::decode(black_box(&f.form_value), false).expect("decode"));
    });
    group.bench_function("verifiers_only", |b| {
        b.iter(|| validate::verifiers(black_box(&f.sp), &f.idp).expect("verifiers"));
    });
    group.bench_function("x509_der_to_public_key", |b| {
        b.iter(|| X509::from_der(black_box(f.cert_der.der_data())).and_then(|c| c.public_key()).expect("key"));
    });
    group.bench_function("full_pipeline", |b| {
        b.iter(|| run_pipeline(black_box(&f), &cached));
    });
    group.bench_function("full_pipeline_uncached", |b| {
        b.iter(|| {
            let verifiers = validate::verifiers(&f.sp, &f.idp).expect("verifiers");
            run_pipeline(black_box(&f), &verifiers)
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = acs
}
criterion_main!(benches);
