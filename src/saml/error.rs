//! Why a sign-in failed: a stable code, a message for the admin (which check, expected vs received),
//! details for the login activity, and whether the request was malformed (400) or refused (403).

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct LoginFailure {
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    pub malformed: bool,
}

impl LoginFailure {
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        LoginFailure { code, message: message.into(), details: json!({}), malformed: false }
    }

    pub fn malformed(code: &'static str, message: impl Into<String>) -> Self {
        LoginFailure { code, message: message.into(), details: json!({}), malformed: true }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details[key] = value.into();
        self
    }

    pub fn expected(self, expected: impl Into<Value>, received: impl Into<Value>) -> Self {
        self.with("expected", expected).with("received", received)
    }

    /// What the customer sees: short, no configuration detail.
    pub fn public_message(&self) -> &'static str {
        match self.code {
            "no_pending_request" | "in_response_to_mismatch" | "unsolicited_not_allowed" => {
                "This sign-in was not started here, or it took too long. Please start again."
            }
            "replay" => "This sign-in response was already used. Please start again.",
            "expired" | "not_yet_valid" => {
                "The sign-in response is outside its validity period. If this keeps happening, the clocks of the \
                 identity provider and this service differ."
            }
            _ if self.malformed => "The sign-in response could not be read.",
            _ => "Your identity provider's response was not accepted.",
        }
    }
}

impl From<super::precheck::PrecheckError> for LoginFailure {
    fn from(e: super::precheck::PrecheckError) -> Self {
        let malformed = matches!(e.code(), "empty" | "bad_base64" | "not_utf8" | "malformed_xml" | "encoding");
        LoginFailure { code: e.code(), message: e.to_string(), details: json!({ "check": "pre-check" }), malformed }
    }
}

/// Maps samael's verdict to our codes. samael's messages already carry expected vs received.
pub fn from_samael(e: &samael::service_provider::Error) -> LoginFailure {
    use samael::service_provider::Error as E;
    let code = match e {
        E::DestinationValidationError { .. } => "destination_mismatch",
        E::AssertionExpired { .. }
        | E::ResponseExpired { .. }
        | E::AssertionSubjectConfirmationExpired { .. }
        | E::AssertionConditionExpired { .. } => "expired",
        E::AssertionSubjectConfirmationExpiredBefore { .. } | E::AssertionConditionExpiredBefore { .. } => {
            "not_yet_valid"
        }
        E::AssertionBearerSubjectConfirmationMissing | E::AssertionSubjectConfirmationMissing => {
            "subject_confirmation_missing"
        }
        E::AssertionIssuerMismatch { .. } | E::ResponseIssuerMismatch { .. } => "issuer_mismatch",
        E::AssertionConditionAudienceRestrictionFailed { .. } => "audience_mismatch",
        E::AssertionRecipientMismatch { .. } => "recipient_mismatch",
        E::AssertionInResponseToInvalid { .. } | E::ResponseInResponseToInvalid { .. } => "in_response_to_mismatch",
        E::ResponseBadStatusCode { .. } => "status_not_success",
        E::EncryptedAssertionsNotYetSupported => "encrypted_assertion",
        E::FailedToValidateSignature | E::CryptoXmlError(_) | E::CryptoProviderError(_) => "signature_invalid",
        _ => "invalid_response",
    };
    let message = match code {
        "signature_invalid" => {
            "the signature does not verify with any of this identity provider's signing certificates \
             (or the signed content was altered); if the IdP changed its certificate, refresh its metadata"
                .to_string()
        }
        _ => e.to_string(),
    };
    LoginFailure { code, message, details: json!({ "check": "signature and conditions" }), malformed: false }
}
