#!/usr/bin/env python3
"""A small, real SAML 2.0 identity provider for the end-to-end tests (see README.md beside this file).

Messages are built and signed by pysaml2 (Debian's python3-pysaml2, which signs through the xmlsec1 CLI);
only the HTTP glue, the HTTP-Redirect binding (signing and verifying over the raw query bytes) and the
SOAP back-channel are written here.

    python3 tests/idp/idp.py --port 0 --sp-metadata sp.xml --workdir DIR \
        [--sign-alg rsa-sha256|rsa-sha1] [--sign-response yes|no] [--sign-assertion yes|no]

Binds 127.0.0.1, writes DIR/idp.key, DIR/idp.crt and DIR/idp-metadata.xml, prints `READY <port>` on
stdout and serves until killed. Nothing else is ever written to stdout; logs go to stderr.
"""

import os
import sys

DEBIAN_PYTHON = "/usr/bin/python3"

# Debian's python3-pysaml2 lives in /usr/lib/python3/dist-packages, which only Debian's interpreter sees.
# Under another `python3` (pyenv, a venv) re-run this script with Debian's.
try:
    import saml2  # noqa: F401
except ImportError:
    if os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON) and os.path.exists(DEBIAN_PYTHON):
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
    sys.stderr.write("idp.py: pysaml2 is missing: apt-get install python3-pysaml2 xmlsec1\n")
    sys.exit(3)

import argparse
import base64
import calendar
import collections.abc
import datetime
import html
import importlib.util
import json
import logging
import secrets
import shutil
import threading
import time
import traceback
import types
import urllib.error
import urllib.parse
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from defusedxml import ElementTree as SafeET


def _defer_schema_compilation():
    """pysaml2 compiles three XML schemas when `saml2.xml.schema` is imported (about 1 s of CPU), but uses
    them only to check XML-signed incoming messages (POST-binding AuthnRequests here). Compile them on
    first use instead, so the IdP is ready sooner. Behaviour is unchanged."""
    spec = importlib.util.find_spec("saml2.xml.schema")
    if spec is None or "saml2.xml.schema" in sys.modules:
        return
    lock = threading.Lock()
    loaded = {}

    def real():
        with lock:
            if "module" not in loaded:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                loaded["module"] = module
            return loaded["module"]

    class LazySchemas(collections.abc.Mapping):
        def __getitem__(self, key):
            return real().node_to_schema[key]

        def __iter__(self):
            return iter(real().node_to_schema)

        def __len__(self):
            return len(real().node_to_schema)

    from xmlschema.exceptions import XMLSchemaException

    shim = types.ModuleType("saml2.xml.schema")
    shim.node_to_schema = LazySchemas()
    shim.XMLSchemaError = XMLSchemaException

    def module_getattr(name):
        if name.startswith("__"):  # the import system probes __path__ etc.: not a reason to compile
            raise AttributeError(name)
        return getattr(real(), name)

    shim.__getattr__ = module_getattr
    sys.modules["saml2.xml.schema"] = shim


_defer_schema_compilation()

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP  # noqa: E402
from saml2.assertion import Policy  # noqa: E402
from saml2.attribute_converter import AttributeConverterNOOP  # noqa: E402
from saml2.config import IdPConfig  # noqa: E402
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_UNSPECIFIED, NameID  # noqa: E402
from saml2.server import Server  # noqa: E402
from saml2.time_util import str_to_time  # noqa: E402
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256  # noqa: E402

NS = {
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
}
PASSWORD_PROTECTED_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
MAX_SKEW_SECONDS = 300

SIGN_ALGS = {"rsa-sha256": (SIG_RSA_SHA256, DIGEST_SHA256), "rsa-sha1": (SIG_RSA_SHA1, DIGEST_SHA1)}
DIGEST_ALGS = {"sha256": DIGEST_SHA256, "sha1": DIGEST_SHA1}
NAMEID_FORMATS = {"unspecified": NAMEID_FORMAT_UNSPECIFIED, "emailAddress": NAMEID_FORMAT_EMAILADDRESS}
# Redirect-binding SigAlg URIs accepted from the SP: (key type, hash).
REDIRECT_SIG_ALGS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": ("rsa", hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", hashes.SHA512),
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": ("rsa", hashes.SHA1),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ec", hashes.SHA256),
}

CLAIM_EMAIL = "http://wso2.org/claims/emailaddress"
CLAIM_GIVENNAME = "http://wso2.org/claims/givenname"
CLAIM_LASTNAME = "http://wso2.org/claims/lastname"

log = logging.getLogger("idp")


class BadRequest(Exception):
    """Answered with HTTP 400 and recorded in the log as `<event>` with `reason`."""

    def __init__(self, event, reason, **extra):
        super().__init__(reason)
        self.event = event
        self.reason = reason
        self.extra = extra


# ---------------------------------------------------------------------------------------------- users


def default_users():
    return {
        "alice": {
            "password": "alice-pw",
            "claims": {CLAIM_EMAIL: "alice@example.com", CLAIM_GIVENNAME: "Alice", CLAIM_LASTNAME: "Liddell"},
        },
        "bob": {"password": "bob-pw", "claims": {CLAIM_EMAIL: "bob@example.com"}},
    }


def parse_user(spec):
    """`name:password[:email[:givenname[:lastname]]]` (empty fields are left out of the attributes)."""
    parts = spec.split(":")
    if len(parts) < 2 or not parts[0]:
        raise argparse.ArgumentTypeError("--user wants name:password[:email[:givenname[:lastname]]]")
    claims = {}
    for claim, value in zip((CLAIM_EMAIL, CLAIM_GIVENNAME, CLAIM_LASTNAME), parts[2:5]):
        if value:
            claims[claim] = value
    return parts[0], {"password": parts[1], "claims": claims}


# ----------------------------------------------------------------------------------- keys and metadata


def make_key_and_cert(workdir, common_name, key_file=None):
    if key_file:
        with open(key_file, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SystemExit("idp.py: --key-file must hold an RSA private key")
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_path = os.path.join(workdir, "idp.key")
    cert_path = os.path.join(workdir, "idp.crt")
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            )
        )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, key_path, cert_path


def idp_metadata_xml(entity_id, base, cert, name_id_format):
    cert_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    e = lambda s: html.escape(s, quote=True)  # noqa: E731
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{e(entity_id)}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo>
        <ds:X509Data>
          <ds:X509Certificate>{cert_b64}</ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:SingleLogoutService Binding="{BINDING_HTTP_REDIRECT}" Location="{e(base)}/slo"/>
    <md:NameIDFormat>{name_id_format}</md:NameIDFormat>
    <md:SingleSignOnService Binding="{BINDING_HTTP_REDIRECT}" Location="{e(base)}/sso"/>
    <md:SingleSignOnService Binding="{BINDING_HTTP_POST}" Location="{e(base)}/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""


class SpInfo:
    """What the IdP needs from the SP metadata, read with a plain (defused) XML parser."""

    def __init__(self, xml_bytes):
        root = SafeET.fromstring(xml_bytes)
        if root.tag == "{%s}EntityDescriptor" % NS["md"]:
            entities = [root]
        else:
            entities = root.findall(".//md:EntityDescriptor", NS)
        entities = [ent for ent in entities if ent.find("md:SPSSODescriptor", NS) is not None]
        if len(entities) != 1:
            raise SystemExit("idp.py: the SP metadata must hold exactly one EntityDescriptor with an SPSSODescriptor")
        ent = entities[0]
        sp = ent.find("md:SPSSODescriptor", NS)
        self.entity_id = ent.get("entityID")
        self.authn_requests_signed = sp.get("AuthnRequestsSigned", "false").strip() in ("true", "1")
        self.certs = []
        for kd in sp.findall("md:KeyDescriptor", NS):
            if kd.get("use") not in (None, "signing"):
                continue
            for c in kd.findall(".//ds:X509Certificate", NS):
                der = base64.b64decode("".join((c.text or "").split()))
                self.certs.append(x509.load_der_x509_certificate(der))
        self.slo = {}
        for s in sp.findall("md:SingleLogoutService", NS):
            self.slo.setdefault(s.get("Binding"), s.get("Location"))


# ------------------------------------------------------------------------------- HTTP-Redirect binding


def deflate_b64(xml):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(c.compress(xml.encode()) + c.flush()).decode()


def inflate_b64(value):
    try:
        raw = base64.b64decode(value, validate=False)
        return zlib.decompress(raw, -15)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"not DEFLATE+base64: {exc}") from exc


def raw_query_pairs(query):
    """[(decoded name, raw value)], keeping the values exactly as received (needed to verify signatures)."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((urllib.parse.unquote_plus(name), value))
    return pairs


def single_params(pairs, where):
    seen = {}
    for name, value in pairs:
        if name in seen:
            raise BadRequest(where, f"duplicate query parameter {name}")
        seen[name] = value
    return seen


def verify_redirect_signature(raw, message_param, certs):
    """SAML bindings §3.4.4.1: the signature covers `SAMLRequest=..&RelayState=..&SigAlg=..` exactly as the
    octets appear in the URL. Returns (ok, reason, sigalg)."""
    if "Signature" not in raw or "SigAlg" not in raw:
        return False, "no redirect signature (Signature/SigAlg missing)", None
    sigalg = urllib.parse.unquote_plus(raw["SigAlg"])
    if sigalg not in REDIRECT_SIG_ALGS:
        return False, f"unsupported SigAlg {sigalg}", sigalg
    key_type, hash_cls = REDIRECT_SIG_ALGS[sigalg]
    signed = "&".join(f"{k}={raw[k]}" for k in (message_param, "RelayState", "SigAlg") if k in raw).encode()
    try:
        signature = base64.b64decode(urllib.parse.unquote_plus(raw["Signature"]), validate=False)
    except Exception:  # noqa: BLE001
        return False, "Signature is not base64", sigalg
    if not certs:
        return False, "the SP metadata has no signing certificate", sigalg
    for cert in certs:
        public = cert.public_key()
        try:
            if key_type == "rsa" and isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, signed, padding.PKCS1v15(), hash_cls())
                return True, None, sigalg
            if key_type == "ec" and isinstance(public, ec.EllipticCurvePublicKey):
                public.verify(signature, signed, ec.ECDSA(hash_cls()))
                return True, None, sigalg
        except InvalidSignature:
            continue
    return False, "redirect signature does not verify with the SP's signing certificate", sigalg


def strip_xml_declaration(xml):
    xml = xml.lstrip()
    if xml.startswith("<?xml"):
        xml = xml[xml.index("?>") + 2 :].lstrip()
    return xml


def find_text(xml, path):
    el = SafeET.fromstring(xml).find(path, NS)
    return None if el is None else (el.text or "")


# ------------------------------------------------------------------------------------------------ IdP


class Idp:
    def __init__(self, args, port, workdir):
        self.args = args
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.entity_id = f"{self.base}/idp"
        self.sign_alg, self.digest_alg = SIGN_ALGS[args.sign_alg]
        if args.digest_alg:
            self.digest_alg = DIGEST_ALGS[args.digest_alg]
        self.sign_response = args.sign_response == "yes"
        self.sign_assertion = args.sign_assertion == "yes"
        self.name_id_format = NAMEID_FORMATS[args.name_id_format]
        self.users = default_users()
        for name, user in args.user or []:
            self.users[name] = user

        with open(args.sp_metadata, "rb") as f:
            self.sp = SpInfo(f.read())

        self.key, self.cert, key_path, cert_path = make_key_and_cert(
            workdir, f"test-idp-127.0.0.1-{port}", args.key_file
        )
        self.metadata_path = os.path.join(workdir, "idp-metadata.xml")
        with open(self.metadata_path, "w") as f:
            f.write(idp_metadata_xml(self.entity_id, self.base, self.cert, self.name_id_format))

        xmlsec = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"
        conf = IdPConfig()
        conf.load(
            {
                "entityid": self.entity_id,
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [
                                (f"{self.base}/sso", BINDING_HTTP_REDIRECT),
                                (f"{self.base}/sso", BINDING_HTTP_POST),
                            ],
                            "single_logout_service": [(f"{self.base}/slo", BINDING_HTTP_REDIRECT)],
                        },
                        "name_id_format": [self.name_id_format],
                        # Redirect-binding signatures are checked here (over the raw query); XML-signed
                        # (POST-binding) requests are verified by pysaml2 whenever they carry a signature.
                        "want_authn_requests_signed": False,
                        "sign_response": self.sign_response,
                        "sign_assertion": self.sign_assertion,
                    }
                },
                "key_file": key_path,
                "cert_file": cert_path,
                "xmlsec_binary": xmlsec,
                "metadata": {"local": [args.sp_metadata]},
                "accepted_time_diff": 60,
                "signing_algorithm": self.sign_alg,
                "digest_algorithm": self.digest_alg,
                "delete_tmpfiles": True,
            }
        )
        self.server = Server(config=conf)
        # Attributes as WSO2 sends them: Name = the claim URI, NameFormat basic, no FriendlyName. (pysaml2's
        # own maps would add a FriendlyName or fall back to NameFormat uri.) pysaml2 7 takes the release
        # policy per call (`release_policy`), not from the config.
        self.server.config.attribute_converters.insert(0, AttributeConverterNOOP(NAME_FORMAT_BASIC))
        self.policy = Policy(
            {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None, "name_form": NAME_FORMAT_BASIC}},
            mds=self.server.metadata,
        )
        if self.sp.entity_id not in self.server.metadata.keys():
            raise SystemExit(f"idp.py: pysaml2 did not load the SP entity {self.sp.entity_id}")

        self.lock = threading.Lock()  # guards everything below and the pysaml2 Server
        self.events = []
        self.pending = {}  # login form key -> request state
        self.sessions = []  # {"name_id", "session_index", "sp", "active"}

    # -------------------------------------------------------------------------------------- helpers

    def record(self, event, **fields):
        with self.lock:
            entry = {"seq": len(self.events) + 1, "time": time.time(), "event": event}
            entry.update(fields)
            self.events.append(entry)
        log.info("event %s", json.dumps({k: v for k, v in entry.items() if k not in ("xml", "request_xml")}))

    def redirect_url(self, location, param, xml, relay_state):
        query = f"{param}={urllib.parse.quote_plus(deflate_b64(xml))}"
        if relay_state:
            query += f"&RelayState={urllib.parse.quote_plus(relay_state)}"
        query += f"&SigAlg={urllib.parse.quote_plus(self.sign_alg)}"
        hash_cls = hashes.SHA1 if self.sign_alg == SIG_RSA_SHA1 else hashes.SHA256
        signature = self.key.sign(query.encode(), padding.PKCS1v15(), hash_cls())
        query += f"&Signature={urllib.parse.quote_plus(base64.b64encode(signature).decode())}"
        return location + ("&" if "?" in location else "?") + query

    @staticmethod
    def check_issue_instant(msg, event, **extra):
        """pysaml2 computes but ignores its own IssueInstant check; enforce +-5 minutes (SP and IdP share a clock)."""
        try:
            issued = calendar.timegm(str_to_time(msg.issue_instant))
        except Exception as exc:  # noqa: BLE001
            raise BadRequest(event, f"bad IssueInstant {msg.issue_instant!r}: {exc}", **extra) from exc
        if abs(time.time() - issued) > MAX_SKEW_SECONDS:
            raise BadRequest(event, f"IssueInstant {msg.issue_instant} is more than {MAX_SKEW_SECONDS} s off", **extra)

    def check_issuer(self, xml, event):
        try:
            issuer = find_text(xml, "saml:Issuer")
        except Exception as exc:  # noqa: BLE001
            raise BadRequest(event, f"unparsable XML: {exc}") from exc
        issuer = (issuer or "").strip()
        if issuer != self.sp.entity_id:
            raise BadRequest(event, f"unknown issuer {issuer!r} (SP metadata has {self.sp.entity_id!r})")
        return issuer

    # ------------------------------------------------------------------------------------------ SSO

    def sso(self, binding, params, raw):
        """Checks an AuthnRequest and returns the login form's hidden state key."""
        event = "authn_request_rejected"
        saml_request = params.get("SAMLRequest")
        if not saml_request:
            raise BadRequest(event, "no SAMLRequest", binding=binding)
        relay_state = params.get("RelayState")
        sigalg = None
        if binding == BINDING_HTTP_REDIRECT:
            try:
                xml = inflate_b64(saml_request)
            except ValueError as exc:
                raise BadRequest(event, str(exc), binding=binding) from exc
            self.check_issuer(xml, event)
            signed = "Signature" in raw or "SigAlg" in raw
            if self.sp.authn_requests_signed or signed:
                ok, reason, sigalg = verify_redirect_signature(raw, "SAMLRequest", self.sp.certs)
                if not ok:
                    raise BadRequest(event, reason, binding=binding, sig_alg=sigalg)
        else:
            try:
                xml = base64.b64decode(saml_request)
            except Exception as exc:  # noqa: BLE001
                raise BadRequest(event, f"SAMLRequest is not base64: {exc}", binding=binding) from exc
            self.check_issuer(xml, event)
            signed = b"Signature" in xml

        try:
            with self.lock:
                req = self.server.parse_authn_request(saml_request, binding)
                msg = req.message
                self.check_issue_instant(msg, event, binding=binding)
                if binding == BINDING_HTTP_POST:
                    if msg.signature is None and self.sp.authn_requests_signed:
                        raise BadRequest(event, "POST AuthnRequest without an XML signature", binding=binding)
                    signed = msg.signature is not None
                    if signed:
                        sigalg = msg.signature.signed_info.signature_method.algorithm
                resp_args = self.server.response_args(msg, [BINDING_HTTP_POST])
        except BadRequest:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BadRequest(event, f"pysaml2 refused the AuthnRequest: {type(exc).__name__}: {exc}", binding=binding) from exc

        key = secrets.token_urlsafe(18)
        state = {
            "request_id": msg.id,
            "sp": resp_args["sp_entity_id"].strip(),
            "acs": resp_args["destination"],
            "relay_state": relay_state,
            "resp_args": resp_args,
        }
        with self.lock:
            self.pending[key] = state
        self.record(
            "authn_request",
            binding=binding,
            id=msg.id,
            issuer=state["sp"],
            acs=state["acs"],
            acs_in_request=msg.assertion_consumer_service_url,
            protocol_binding=msg.protocol_binding,
            destination=msg.destination,
            relay_state=relay_state,
            signed=signed,
            sig_alg=sigalg,
            force_authn=msg.force_authn,
            is_passive=msg.is_passive,
            name_id_policy_format=msg.name_id_policy.format if msg.name_id_policy is not None else None,
            xml=xml.decode() if isinstance(xml, bytes) else xml,
        )
        return key, state

    def login(self, form):
        """Returns (http status, html)."""
        key = form.get("key", "")
        with self.lock:
            state = self.pending.get(key)
        if state is None:
            self.record("login_rejected", reason="unknown or used login key")
            return 400, page("Unknown login", "<p>This login request is unknown or was already used.</p>")
        username = form.get("username", "")
        user = self.users.get(username)
        if user is None or not secrets.compare_digest(user["password"], form.get("password", "")):
            self.record("login_failed", username=username, request_id=state["request_id"])
            return 401, login_page(key, state, error="Wrong username or password.")
        with self.lock:
            self.pending.pop(key, None)
            name_id = NameID(format=self.name_id_format, text=username)
            identity = {claim: [value] for claim, value in user["claims"].items()}
            response = self.server.create_authn_response(
                identity,
                userid=username,
                name_id=name_id,
                authn={"class_ref": PASSWORD_PROTECTED_TRANSPORT, "authn_auth": self.entity_id},
                sign_response=self.sign_response,
                sign_assertion=self.sign_assertion,
                sign_alg=self.sign_alg,
                digest_alg=self.digest_alg,
                release_policy=self.policy,
                **state["resp_args"],
            )
        xml = str(response)
        root = SafeET.fromstring(xml.encode())
        assertion = root.find("saml:Assertion", NS)
        session_index = None
        if assertion is not None:
            stmt = assertion.find("saml:AuthnStatement", NS)
            session_index = stmt.get("SessionIndex") if stmt is not None else None
        with self.lock:
            self.sessions.append(
                {"name_id": username, "session_index": session_index, "sp": state["sp"], "active": True}
            )
        self.record(
            "login",
            username=username,
            name_id=username,
            name_id_format=self.name_id_format,
            session_index=session_index,
            in_response_to=state["request_id"],
            response_id=root.get("ID"),
            assertion_id=assertion.get("ID") if assertion is not None else None,
            acs=state["acs"],
            sp=state["sp"],
            relay_state=state["relay_state"],
            xml=xml,
        )
        b64 = base64.b64encode(xml.encode()).decode()
        return 200, post_form_page(state["acs"], {"SAMLResponse": b64, "RelayState": state["relay_state"]})

    # ------------------------------------------------------------------------------------------ SLO

    def slo(self, raw):
        """An HTTP-Redirect LogoutRequest (or LogoutResponse) from the SP. Returns the Location to answer."""
        params = {k: urllib.parse.unquote_plus(v) for k, v in raw.items()}
        if "SAMLResponse" in params:
            return self.slo_response(raw, params)
        event = "logout_request_rejected"
        if "SAMLRequest" not in params:
            raise BadRequest(event, "no SAMLRequest")
        try:
            xml = inflate_b64(params["SAMLRequest"])
        except ValueError as exc:
            raise BadRequest(event, str(exc)) from exc
        self.check_issuer(xml, event)
        ok, reason, sigalg = verify_redirect_signature(raw, "SAMLRequest", self.sp.certs)
        if not ok:
            raise BadRequest(event, reason, sig_alg=sigalg, xml=xml.decode(errors="replace"))
        try:
            with self.lock:
                req = self.server.parse_logout_request(params["SAMLRequest"], BINDING_HTTP_REDIRECT)
                msg = req.message
                self.check_issue_instant(msg, event)
                resp = self.server.create_logout_response(msg, [BINDING_HTTP_REDIRECT], sign=False)
                destination = self.sp.slo.get(BINDING_HTTP_REDIRECT)
        except BadRequest:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BadRequest(event, f"pysaml2 refused the LogoutRequest: {type(exc).__name__}: {exc}") from exc
        if not destination:
            raise BadRequest(event, "the SP metadata has no HTTP-Redirect SingleLogoutService")
        name_id = msg.name_id.text if msg.name_id is not None else None
        session_indexes = [si.text for si in msg.session_index or []]
        matched = False
        with self.lock:
            for s in self.sessions:
                if s["active"] and s["name_id"] == name_id and (
                    not session_indexes or s["session_index"] in session_indexes
                ):
                    s["active"] = False
                    matched = True
        resp_xml = str(resp)
        self.record(
            "logout",
            id=msg.id,
            issuer=msg.issuer.text.strip() if msg.issuer is not None else None,
            name_id=name_id,
            name_id_format=msg.name_id.format if msg.name_id is not None else None,
            session_indexes=session_indexes,
            sig_alg=sigalg,
            relay_state=params.get("RelayState"),
            matched_session=matched,
            response_id=SafeET.fromstring(resp_xml.encode()).get("ID"),
            response_destination=destination,
            xml=xml.decode(errors="replace"),
        )
        return self.redirect_url(destination, "SAMLResponse", resp_xml, params.get("RelayState"))

    def slo_response(self, raw, params):
        try:
            xml = inflate_b64(params["SAMLResponse"]).decode(errors="replace")
            root = SafeET.fromstring(xml.encode())
            status = root.find("samlp:Status/samlp:StatusCode", NS)
        except Exception as exc:  # noqa: BLE001
            raise BadRequest("logout_response_rejected", f"unparsable LogoutResponse: {exc}") from exc
        ok, reason, sigalg = verify_redirect_signature(raw, "SAMLResponse", self.sp.certs)
        self.record(
            "logout_response_received",
            signature_ok=ok,
            signature_problem=reason,
            sig_alg=sigalg,
            in_response_to=root.get("InResponseTo"),
            status=status.get("Value") if status is not None else None,
            xml=xml,
        )
        return None

    def idp_initiated_logout(self, params):
        """Back-channel LogoutRequest to the SP. `binding`: `soap` (SAML SOAP binding: text/xml envelope, to the
        SP's SOAP SLO endpoint, else its POST one, else its Redirect one), or `wso2-form` (what WSO2 IS really
        sends: a form POST of SAMLRequest=base64(LogoutRequest), to the POST, else the Redirect SLO URL)."""
        name_id = params.get("name_id")
        if not name_id:
            raise BadRequest("idp_initiated_logout_rejected", "name_id is required")
        session_index = params.get("session_index")
        binding = params.get("binding", "soap")
        sign = params.get("sign", "yes") == "yes"
        if binding not in ("soap", "wso2-form"):
            raise BadRequest("idp_initiated_logout_rejected", f"unknown binding {binding}")
        preferred = [BINDING_SOAP] if binding == "soap" else []
        preferred += [BINDING_HTTP_POST, BINDING_HTTP_REDIRECT]
        destination = params.get("destination") or next(
            (self.sp.slo[b] for b in preferred if self.sp.slo.get(b)), None
        )
        if not destination:
            raise BadRequest("idp_initiated_logout_rejected", "the SP metadata has no SingleLogoutService")
        with self.lock:
            req_id, req = self.server.create_logout_request(
                destination,
                self.sp.entity_id,
                name_id=NameID(format=self.name_id_format, text=name_id),
                session_indexes=[session_index] if session_index else None,
                sign=sign,
                sign_alg=self.sign_alg,
                digest_alg=self.digest_alg,
            )
        xml = strip_xml_declaration(str(req))
        if binding == "soap":
            body = (
                '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">'
                f"<soap-env:Body>{xml}</soap-env:Body></soap-env:Envelope>"
            ).encode()
            headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "http://www.oasis-open.org/committees/security"}
        else:
            body = urllib.parse.urlencode({"SAMLRequest": base64.b64encode(xml.encode()).decode()}).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        http_req = urllib.request.Request(destination, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(http_req, timeout=30) as r:
                status, resp_body = r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, resp_body = exc.code, exc.read().decode(errors="replace")
        except Exception as exc:  # noqa: BLE001
            status, resp_body = 0, f"{type(exc).__name__}: {exc}"
        if 200 <= status < 400:
            with self.lock:
                for s in self.sessions:
                    if s["name_id"] == name_id and (not session_index or s["session_index"] == session_index):
                        s["active"] = False
        result = {
            "status": status,
            "body": resp_body,
            "request_id": req_id,
            "destination": destination,
            "binding": binding,
            "signed": sign,
            "request_xml": xml,
        }
        self.record("idp_initiated_logout", name_id=name_id, session_index=session_index, **result)
        return result


# ---------------------------------------------------------------------------------------------- pages


def esc(value):
    return html.escape("" if value is None else str(value), quote=True)


def page(title, body):
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{esc(title)}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def login_page(key, state, error=None):
    # Kept deliberately regular for the Rust helper: one <form ... action="..."> and one <input> per line,
    # attributes always double-quoted, values HTML-escaped.
    err = f'<p class="error">{esc(error)}</p>\n' if error else ""
    return page(
        "Test IdP: sign in",
        f"<h1>Test IdP</h1>\n<p>Sign in to {esc(state['sp'])}</p>\n{err}"
        '<form method="post" action="/login">\n'
        f'<input type="hidden" name="key" value="{esc(key)}">\n'
        '<label>Username <input type="text" name="username" value=""></label>\n'
        '<label>Password <input type="password" name="password" value=""></label>\n'
        '<button type="submit">Sign in</button>\n'
        "</form>",
    )


def post_form_page(action, fields):
    inputs = "".join(
        f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">\n'
        for name, value in fields.items()
        if value is not None and value != ""
    )
    return page(
        "Test IdP: continue",
        f'<form method="post" action="{esc(action)}">\n{inputs}'
        '<noscript><button type="submit">Continue</button></noscript>\n'
        "</form>\n<script>document.forms[0].submit();</script>",
    )


# ----------------------------------------------------------------------------------------------- HTTP


class Handler(BaseHTTPRequestHandler):
    idp = None  # set in main
    server_version = "jsm-sso-test-idp/1"

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)

    def send(self, status, body, content_type="text/html; charset=utf-8", headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, value):
        self.send(status, json.dumps(value, indent=1), "application/json")

    def read_form(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        return dict(urllib.parse.parse_qsl(body, keep_blank_values=True))

    def guarded(self, fn):
        try:
            fn()
        except BadRequest as exc:
            self.idp.record(exc.event, reason=exc.reason, **exc.extra)
            self.send(400, page("Bad request", f"<p>{esc(exc.reason)}</p>"))
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            self.idp.record("error", reason=f"{type(exc).__name__}: {exc}", path=self.path)
            self.send(500, page("Internal error", f"<pre>{esc(traceback.format_exc())}</pre>"))

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/sso":
            self.guarded(lambda: self.sso_redirect(url.query))
        elif url.path == "/slo":
            self.guarded(lambda: self.slo(url.query))
        elif url.path == "/log":
            with self.idp.lock:
                events = list(self.idp.events)
            self.send_json(200, events)
        elif url.path in ("/metadata", "/idp/metadata"):
            with open(self.idp.metadata_path, "rb") as f:
                self.send(200, f.read(), "application/samlmetadata+xml")
        else:
            self.send(404, page("Not found", "<p>Not found</p>"))

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/sso":
            self.guarded(self.sso_post)
        elif url.path == "/login":
            self.guarded(self.login)
        elif url.path == "/idp-initiated-logout":
            self.guarded(lambda: self.idp_initiated_logout(url.query))
        else:
            self.send(404, page("Not found", "<p>Not found</p>"))

    def sso_redirect(self, query):
        raw = single_params(raw_query_pairs(query), "authn_request_rejected")
        params = {k: urllib.parse.unquote_plus(v) for k, v in raw.items()}
        key, state = self.idp.sso(BINDING_HTTP_REDIRECT, params, raw)
        self.send(200, login_page(key, state))

    def sso_post(self):
        params = self.read_form()
        key, state = self.idp.sso(BINDING_HTTP_POST, params, {})
        self.send(200, login_page(key, state))

    def login(self):
        status, body = self.idp.login(self.read_form())
        self.send(status, body)

    def slo(self, query):
        raw = single_params(raw_query_pairs(query), "logout_request_rejected")
        location = self.idp.slo(raw)
        if location is None:
            self.send(200, page("Logged out", "<p>Logout response received.</p>"))
        else:
            self.send(302, page("Redirect", f'<a href="{esc(location)}">continue</a>'), headers={"Location": location})

    def idp_initiated_logout(self, query):
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if self.headers.get("Content-Length"):
            params.update(self.read_form())
        self.send_json(200, self.idp.idp_initiated_logout(params))


def watch_stdin():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main():
    started = time.monotonic()
    p = argparse.ArgumentParser(description="A SAML 2.0 IdP for tests (pysaml2)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick a free one)")
    p.add_argument("--sp-metadata", required=True, help="the SP's metadata XML file")
    p.add_argument("--workdir", required=True, help="where the key, cert and idp-metadata.xml are written")
    p.add_argument("--sign-alg", choices=sorted(SIGN_ALGS), default="rsa-sha256")
    p.add_argument("--digest-alg", choices=sorted(DIGEST_ALGS), help="default: the one matching --sign-alg")
    p.add_argument("--sign-response", choices=("yes", "no"), default="yes")
    p.add_argument("--sign-assertion", choices=("yes", "no"), default="yes")
    p.add_argument("--name-id-format", choices=sorted(NAMEID_FORMATS), default="unspecified")
    p.add_argument("--key-file", help="use this RSA private key (PEM) instead of generating one (saves ~0.4 s)")
    p.add_argument("--user", action="append", type=parse_user, help="extra user name:password[:email[:given[:last]]]")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (parent died)")
    p.add_argument("--verbose", action="store_true", help="pysaml2 debug logging on stderr")
    args = p.parse_args()

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="idp %(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if not args.verbose:
        logging.getLogger("saml2").setLevel(logging.WARNING)
    os.makedirs(args.workdir, exist_ok=True)

    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    Handler.idp = Idp(args, port, args.workdir)

    if args.exit_on_stdin_eof:
        threading.Thread(target=watch_stdin, daemon=True).start()
    log.info("entityID %s ready in %.3f s", Handler.idp.entity_id, time.monotonic() - started)
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
