-- The customer helpdesk: the service account's API token (sealed), the cached directory of service
-- desks and portals, and which customers were added to which service desk. Times are Unix seconds (UTC).

CREATE TABLE portal_api_tokens (
    tenant_id       TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    email           TEXT NOT NULL,
    api_token       TEXT NOT NULL,
    account_id      TEXT,
    display_name    TEXT,
    status          TEXT NOT NULL CHECK (status IN ('ok', 'failing')),
    status_reason   TEXT,
    failing_since   BIGINT,
    last_checked_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Service desks, their portal ids and request types, as the service account last saw them (JSON).
CREATE TABLE portal_directories (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    fetched_at BIGINT NOT NULL,
    body       TEXT NOT NULL
);

-- Customers this service added to a service desk, so that it is not asked again on every page.
CREATE TABLE portal_desk_customers (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id      TEXT NOT NULL,
    service_desk_id TEXT NOT NULL,
    added_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, service_desk_id)
);
