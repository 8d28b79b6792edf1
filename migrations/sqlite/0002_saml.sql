-- SAML: the SP keys of each tenant, its IdPs, pending AuthnRequests, the replay cache, customer sessions
-- and login events. Times are Unix seconds (UTC); JSON columns hold small documents as text.

CREATE TABLE sp_keys (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    state              TEXT NOT NULL CHECK (state IN ('current', 'next', 'retired')),
    private_key        TEXT NOT NULL,
    certificate_pem    TEXT NOT NULL,
    fingerprint_sha256 TEXT NOT NULL,
    not_after          BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    retired_at         BIGINT
);
CREATE UNIQUE INDEX sp_keys_one_current ON sp_keys (tenant_id) WHERE state = 'current';
CREATE UNIQUE INDEX sp_keys_one_next ON sp_keys (tenant_id) WHERE state = 'next';

CREATE TABLE idps (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    enabled             BOOLEAN NOT NULL,
    entity_id           TEXT NOT NULL,
    sso_url             TEXT NOT NULL,
    sso_binding         TEXT NOT NULL,
    slo_url             TEXT,
    slo_binding         TEXT,
    source              TEXT NOT NULL CHECK (source IN ('metadata_url', 'metadata_file', 'manual')),
    metadata_url        TEXT,
    settings            TEXT NOT NULL,
    warnings            TEXT NOT NULL,
    metadata_valid_until BIGINT,
    next_refresh_at     BIGINT,
    last_refresh_at     BIGINT,
    last_refresh_status TEXT,
    last_refresh_error  TEXT,
    last_login_at       BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (tenant_id, entity_id)
);
CREATE INDEX idps_refresh ON idps (next_refresh_at);

CREATE TABLE idp_certificates (
    idp_id             TEXT NOT NULL REFERENCES idps (id) ON DELETE CASCADE,
    fingerprint_sha256 TEXT NOT NULL,
    der_base64         TEXT NOT NULL,
    subject            TEXT NOT NULL,
    not_after          BIGINT NOT NULL,
    key_bits           BIGINT NOT NULL,
    added_at           BIGINT NOT NULL,
    PRIMARY KEY (idp_id, fingerprint_sha256)
);

-- Each metadata refresh, good or bad.
CREATE TABLE idp_refreshes (
    id          TEXT PRIMARY KEY,
    idp_id      TEXT NOT NULL REFERENCES idps (id) ON DELETE CASCADE,
    occurred_at BIGINT NOT NULL,
    status      TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX idp_refreshes_idp ON idp_refreshes (idp_id, occurred_at);

-- AuthnRequests we sent, bound to one browser by the hash of a random cookie handle.
CREATE TABLE authn_requests (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    idp_id         TEXT NOT NULL REFERENCES idps (id) ON DELETE CASCADE,
    browser_handle TEXT NOT NULL,
    return_to      TEXT NOT NULL,
    test_mode      BOOLEAN NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX authn_requests_browser ON authn_requests (browser_handle);

-- Assertion IDs already used, per IdP, kept until the assertion could no longer be accepted anyway.
CREATE TABLE used_assertions (
    idp_id       TEXT NOT NULL,
    assertion_id TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (idp_id, assertion_id)
);

CREATE TABLE customer_sessions (
    token_hash     TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    idp_id         TEXT NOT NULL REFERENCES idps (id) ON DELETE CASCADE,
    email          TEXT,
    display_name   TEXT,
    name_id        TEXT NOT NULL,
    name_id_format TEXT,
    session_index  TEXT,
    attributes     TEXT NOT NULL,
    account_id     TEXT,
    csrf_token     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX customer_sessions_subject ON customer_sessions (idp_id, name_id);

CREATE TABLE login_events (
    id          TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    idp_id      TEXT,
    occurred_at BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    reason_code TEXT,
    message     TEXT NOT NULL,
    details     TEXT NOT NULL,
    name_id     TEXT,
    email       TEXT
);
CREATE INDEX login_events_tenant ON login_events (tenant_id, seq);
