//! Service configuration: environment variables, optionally layered over a TOML file.
//!
//! Every value is parsed into a typed setting once, at start-up; a bad value stops the process with a
//! message naming the variable and what is wrong with it.

mod url_pattern;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;
pub use url_pattern::UrlPattern;

use crate::crypto::MasterKey;

const PREFIX: &str = "JSM_SSO_";

/// Keys a configuration file or the environment may set (without the `JSM_SSO_` prefix).
const KEYS: &[&str] = &[
    "BASE_URL",
    "LISTEN",
    "DATABASE_URL",
    "MASTER_KEY",
    "PREVIOUS_MASTER_KEYS",
    "APP_KEY",
    "APP_NAME",
    "INSTALL_KEYS_URL",
    "ALLOWED_PRODUCT_URLS",
    "ALLOW_PRIVATE_URLS",
    "JWT_LEEWAY_SECS",
    "LOG_FORMAT",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable}: {message}")]
    Invalid { variable: String, message: String },
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid { variable: format!("{PREFIX}{key}"), message: message.into() }
    }
}

/// The public URL of this service. Parsed once: https unless the host is loopback, no query, no fragment,
/// and never a trailing slash in its string form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(Url);

impl BaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw.trim()).map_err(|e| format!("not a valid absolute URL ({e})"))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&url) => {}
            "http" => return Err("must use https unless the host is localhost or a loopback address".into()),
            other => return Err(format!("unsupported scheme `{other}`; use https")),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or a fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain credentials".into());
        }
        Ok(BaseUrl(url))
    }

    /// The URL without a trailing slash, e.g. `https://sso.example.com` or `https://example.com/sso`.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// The path prefix the service is mounted under (`""` when at the root).
    pub fn path_prefix(&self) -> &str {
        self.0.path().trim_end_matches('/')
    }

    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// An absolute URL for a path of this service (`path` starts with `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.as_str(), path)
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A database URL; its `Debug` and `Display` hide any password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.starts_with("sqlite:") {
            let path = raw.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            if path.split('?').next().unwrap_or("").is_empty() {
                return Err("a sqlite URL needs a file path, e.g. sqlite://data/jsm-sso.db".into());
            }
            Ok(DatabaseUrl(raw.to_string()))
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Url::parse(raw).map_err(|e| format!("not a valid PostgreSQL URL ({e})"))?;
            Ok(DatabaseUrl(raw.to_string()))
        } else {
            Err("must start with sqlite:// or postgres://".into())
        }
    }

    pub fn kind(&self) -> DatabaseKind {
        if self.0.starts_with("sqlite:") { DatabaseKind::Sqlite } else { DatabaseKind::Postgres }
    }

    /// The real URL, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// For SQLite: the database file's path.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        (self.kind() == DatabaseKind::Sqlite).then(|| {
            let rest = self.0.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            PathBuf::from(rest.split('?').next().unwrap_or(rest))
        })
    }

    fn redacted(&self) -> String {
        match Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("********"));
                url.to_string()
            }
            _ => self.0.clone(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// Given in `JSM_SSO_MASTER_KEY`.
    Explicit(MasterKey),
    /// Read from, or generated into, this file (SQLite deployments only).
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub base_url: BaseUrl,
    pub listen: SocketAddr,
    pub database_url: DatabaseUrl,
    pub master_key: MasterKeySource,
    /// Old keys still accepted for decryption, during a key rotation.
    pub previous_master_keys: Vec<MasterKey>,
    pub app_key: String,
    pub app_name: String,
    pub install_keys_url: Url,
    pub allowed_product_urls: Vec<UrlPattern>,
    pub allow_private_urls: bool,
    pub jwt_leeway: Duration,
    pub log_format: LogFormat,
}

impl Settings {
    /// Loads the settings from the process environment, over an optional TOML file.
    pub fn load(config_file: Option<&Path>) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_sources(config_file, &env)
    }

    /// Environment variables win over the file; the file's keys are the variable names, with or
    /// without the `JSM_SSO_` prefix, in any case (`base_url = "..."`).
    pub fn from_sources(config_file: Option<&Path>, env: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        let mut values: HashMap<&'static str, String> = HashMap::new();
        if let Some(path) = config_file {
            for (key, value) in read_config_file(path)? {
                values.insert(key, value);
            }
        }
        for key in KEYS {
            if let Some(v) = env.get(&format!("{PREFIX}{key}")) {
                values.insert(key, v.clone());
            }
        }
        for name in env.keys() {
            if let Some(rest) = name.strip_prefix(PREFIX)
                && !KEYS.contains(&rest)
                && !rest.starts_with("TEST")
            {
                tracing::warn!(variable = %name, "unknown configuration variable ignored");
            }
        }
        Self::from_values(&values)
    }

    fn from_values(values: &HashMap<&'static str, String>) -> Result<Settings, ConfigError> {
        let get = |key: &str| values.get(key).map(|s| s.trim()).filter(|s| !s.is_empty());

        let base_url = BaseUrl::parse(get("BASE_URL").unwrap_or("http://localhost:8080"))
            .map_err(|m| ConfigError::invalid("BASE_URL", m))?;
        let listen = get("LISTEN")
            .unwrap_or("127.0.0.1:8080")
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError::invalid("LISTEN", "must be an address and port, e.g. 0.0.0.0:8080"))?;
        let database_url = DatabaseUrl::parse(get("DATABASE_URL").unwrap_or("sqlite://data/jsm-sso.db"))
            .map_err(|m| ConfigError::invalid("DATABASE_URL", m))?;

        let master_key = match get("MASTER_KEY") {
            Some(raw) => MasterKeySource::Explicit(
                MasterKey::from_base64(raw).map_err(|m| ConfigError::invalid("MASTER_KEY", m))?,
            ),
            None => match database_url.sqlite_path() {
                Some(db_path) => {
                    let dir = db_path.parent().map(Path::to_path_buf).unwrap_or_default();
                    MasterKeySource::File(dir.join("master.key"))
                }
                None => {
                    return Err(ConfigError::invalid(
                        "MASTER_KEY",
                        "must be set when the database is PostgreSQL (every replica needs the same key); \
                         generate one with `openssl rand -base64 32`",
                    ));
                }
            },
        };
        let previous_master_keys = get("PREVIOUS_MASTER_KEYS")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(MasterKey::from_base64)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|m| ConfigError::invalid("PREVIOUS_MASTER_KEYS", m))?
            .unwrap_or_default();

        let app_key = get("APP_KEY").unwrap_or("jsm-sso").to_string();
        if app_key.is_empty()
            || app_key.len() > 64
            || !app_key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(ConfigError::invalid(
                "APP_KEY",
                "must be 1 to 64 characters of letters, digits, '-', '.' or '_'",
            ));
        }
        let app_name = get("APP_NAME").unwrap_or("SAML SSO for JSM customers").to_string();

        let install_keys_url =
            Url::parse(get("INSTALL_KEYS_URL").unwrap_or("https://connect-install-keys.atlassian.com"))
                .map_err(|e| ConfigError::invalid("INSTALL_KEYS_URL", format!("not a valid URL ({e})")))?;
        if !matches!(install_keys_url.scheme(), "https" | "http") {
            return Err(ConfigError::invalid("INSTALL_KEYS_URL", "must be an http(s) URL"));
        }

        let allowed_product_urls = get("ALLOWED_PRODUCT_URLS")
            .unwrap_or("https://*.atlassian.net,https://*.jira.com,https://*.jira-dev.com")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(UrlPattern::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| ConfigError::invalid("ALLOWED_PRODUCT_URLS", m))?;
        if allowed_product_urls.is_empty() {
            return Err(ConfigError::invalid("ALLOWED_PRODUCT_URLS", "must list at least one pattern"));
        }

        let allow_private_urls = parse_bool(get("ALLOW_PRIVATE_URLS").unwrap_or("false"))
            .ok_or_else(|| ConfigError::invalid("ALLOW_PRIVATE_URLS", "must be true or false"))?;
        let leeway: u64 =
            get("JWT_LEEWAY_SECS").unwrap_or("30").parse().ok().filter(|s| *s <= 300).ok_or_else(|| {
                ConfigError::invalid("JWT_LEEWAY_SECS", "must be a whole number of seconds from 0 to 300")
            })?;
        let log_format = match get("LOG_FORMAT").unwrap_or("text").to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(ConfigError::invalid("LOG_FORMAT", "must be `text` or `json`")),
        };

        Ok(Settings {
            base_url,
            listen,
            database_url,
            master_key,
            previous_master_keys,
            app_key,
            app_name,
            install_keys_url,
            allowed_product_urls,
            allow_private_urls,
            jwt_leeway: Duration::from_secs(leeway),
            log_format,
        })
    }

    /// Is a Jira site's base URL one this service may be installed into?
    pub fn product_url_allowed(&self, url: &Url) -> bool {
        self.allowed_product_urls.iter().any(|p| p.matches(url))
    }
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn read_config_file(path: &Path) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let file_err = |message: String| ConfigError::File { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(format!("cannot read it ({e})")))?;
    let table: toml::Table = text.parse().map_err(|e| file_err(format!("not valid TOML ({e})")))?;
    let mut out = Vec::new();
    for (name, value) in table {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix(PREFIX).unwrap_or(&upper);
        let key = KEYS.iter().find(|k| **k == bare).ok_or_else(|| file_err(format!("unknown key `{name}`")))?;
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| file_err(format!("`{name}` must list strings"))))
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            _ => return Err(file_err(format!("`{name}` must be a string, number or boolean"))),
        };
        out.push((*key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_sqlite_on_loopback() {
        let s = Settings::from_sources(None, &env(&[])).unwrap();
        assert_eq!(s.base_url.as_str(), "http://localhost:8080");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url.kind(), DatabaseKind::Sqlite);
        assert!(matches!(s.master_key, MasterKeySource::File(ref p) if p == Path::new("data/master.key")));
        assert_eq!(s.app_key, "jsm-sso");
        assert_eq!(s.jwt_leeway, Duration::from_secs(30));
        assert!(!s.allow_private_urls);
    }

    #[test]
    fn plain_http_base_url_is_refused_with_the_variable_named() {
        let err = Settings::from_sources(None, &env(&[("JSM_SSO_BASE_URL", "http://sso.example.com")])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("JSM_SSO_BASE_URL:"), "{msg}");
        assert!(msg.contains("https"), "{msg}");
    }

    #[test]
    fn base_url_keeps_its_path_prefix() {
        let b = BaseUrl::parse("https://example.com/sso/").unwrap();
        assert_eq!(b.as_str(), "https://example.com/sso");
        assert_eq!(b.path_prefix(), "/sso");
        assert_eq!(b.join("/x"), "https://example.com/sso/x");
        assert!(BaseUrl::parse("https://example.com/?a=1").is_err());
    }

    #[test]
    fn postgres_requires_an_explicit_master_key() {
        let err = Settings::from_sources(None, &env(&[("JSM_SSO_DATABASE_URL", "postgres://u:p@db/x")])).unwrap_err();
        assert!(err.to_string().starts_with("JSM_SSO_MASTER_KEY:"), "{err}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("JSM_SSO_LISTEN", "nope"),
            ("JSM_SSO_DATABASE_URL", "mysql://x"),
            ("JSM_SSO_MASTER_KEY", "c2hvcnQ="),
            ("JSM_SSO_APP_KEY", "has space"),
            ("JSM_SSO_ALLOWED_PRODUCT_URLS", "ftp://*.x"),
            ("JSM_SSO_ALLOW_PRIVATE_URLS", "maybe"),
            ("JSM_SSO_JWT_LEEWAY_SECS", "-1"),
            ("JSM_SSO_LOG_FORMAT", "xml"),
        ] {
            let err = Settings::from_sources(None, &env(&[(k, v)])).unwrap_err();
            assert!(err.to_string().starts_with(&format!("{k}:")), "{k}: {err}");
        }
    }

    #[test]
    fn file_values_are_overridden_by_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "base_url = \"https://a.example.com\"\nJSM_SSO_APP_KEY = \"from-file\"\njwt_leeway_secs = 5\n",
        )
        .unwrap();
        let s = Settings::from_sources(Some(&path), &env(&[("JSM_SSO_APP_KEY", "from-env")])).unwrap();
        assert_eq!(s.base_url.as_str(), "https://a.example.com");
        assert_eq!(s.app_key, "from-env");
        assert_eq!(s.jwt_leeway, Duration::from_secs(5));

        std::fs::write(&path, "bogus = 1\n").unwrap();
        let err = Settings::from_sources(Some(&path), &env(&[])).unwrap_err();
        assert!(err.to_string().contains("unknown key `bogus`"), "{err}");
    }

    #[test]
    fn database_url_hides_its_password() {
        let u = DatabaseUrl::parse("postgres://user:hunter2@db:5432/x").unwrap();
        assert!(!format!("{u:?}").contains("hunter2"));
        assert!(!u.to_string().contains("hunter2"));
        assert!(u.expose().contains("hunter2"));
    }
}
