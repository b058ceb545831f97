//! Who is calling: bearer JWTs checked against the configured issuer and keys, as an OIDC provider
//! such as Keycloak issues them (RS256/ES256 keys from a JWKS file or URL), or HS256 with a shared
//! secret for development. The subject (`sub`) is the user id; the admin scope (in `scope`, `scp`
//! or Keycloak's `realm_access.roles`) grants operations on every user.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState};

/// How tokens are checked. Every field is optional except that at least one key source is needed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Required `iss` claim (e.g. `https://sso.example.com/realms/trackwire`); unchecked when absent.
    pub issuer: Option<String>,
    /// Required `aud` claim; unchecked when absent.
    pub audience: Option<String>,
    /// Shared HS256 secret (development only: whoever knows it can mint tokens for anyone).
    pub hs256_secret: Option<String>,
    /// A JWKS document on disk (the provider's public keys).
    #[schema(value_type = Option<String>)]
    pub jwks_file: Option<PathBuf>,
    /// The provider's JWKS endpoint (Keycloak: `<issuer>/protocol/openid-connect/certs`); fetched
    /// at start and again when a token names a key id we do not have (key rotation).
    pub jwks_url: Option<String>,
    /// The scope or role that grants operations on every user (erasure, retention runs).
    pub admin_scope: String,
}

impl AuthConfig {
    pub const DEFAULT_ADMIN_SCOPE: &'static str = "trackwire:admin";

    pub fn admin_scope(&self) -> &str {
        if self.admin_scope.is_empty() { Self::DEFAULT_ADMIN_SCOPE } else { &self.admin_scope }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("auth: no key source: set auth.hs256_secret, auth.jwks_file or auth.jwks_url")]
    NoKeys,
    #[error("auth: cannot read the JWKS file {path}: {source}")]
    ReadJwks { path: PathBuf, source: std::io::Error },
    #[error("auth: the JWKS from {origin} is not a JWK set: {detail}")]
    BadJwks { origin: String, detail: String },
    #[error("auth: cannot fetch the JWKS from {url}: {detail}")]
    FetchJwks { url: String, detail: String },
}

/// The claims we read. `exp` is required and checked by the validator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    /// Space-separated OAuth scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm_access: Option<RealmAccess>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RealmAccess {
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Claims {
    fn has(&self, wanted: &str) -> bool {
        let in_scope = self.scope.as_deref().is_some_and(|s| s.split(' ').any(|s| s == wanted));
        let in_scp = match &self.scp {
            Some(serde_json::Value::String(s)) => s.split(' ').any(|s| s == wanted),
            Some(serde_json::Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(wanted)),
            _ => false,
        };
        let in_roles = self.realm_access.as_ref().is_some_and(|r| r.roles.iter().any(|r| r == wanted));
        in_scope || in_scp || in_roles
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub admin: bool,
}

impl Caller {
    /// The user a `/users/{id}` path names (`me` is the caller), if the caller may act on them.
    pub fn may_act_on(&self, path_user: &str) -> Result<String, ApiError> {
        let user = if path_user == "me" { self.user_id.as_str() } else { path_user };
        if user == self.user_id || self.admin {
            Ok(user.to_owned())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token may only act on its own user: use /users/me, or a token with the admin scope",
            ))
        }
    }

    /// Whether the caller may see data owned by `owner`.
    pub fn may_see(&self, owner: &str) -> bool {
        self.admin || owner == self.user_id
    }
}

struct Keys {
    by_kid: HashMap<String, (DecodingKey, Algorithm)>,
    /// Keys without a `kid` (single-key sets).
    anonymous: Vec<(DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
}

/// Checks bearer tokens.
pub struct Authenticator {
    config: AuthConfig,
    hs256: Option<DecodingKey>,
    keys: RwLock<Keys>,
}

/// Key rotation: a token with an unknown key id refetches the JWKS at most this often.
const JWKS_REFRESH_MIN: Duration = Duration::from_secs(30);

impl Authenticator {
    pub fn new(config: AuthConfig) -> Result<Authenticator, AuthSetupError> {
        if config.hs256_secret.is_none() && config.jwks_file.is_none() && config.jwks_url.is_none() {
            return Err(AuthSetupError::NoKeys);
        }
        let hs256 = config.hs256_secret.as_ref().map(|s| DecodingKey::from_secret(s.as_bytes()));
        let mut keys = Keys { by_kid: HashMap::new(), anonymous: Vec::new(), fetched: None };
        if let Some(path) = &config.jwks_file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| AuthSetupError::ReadJwks { path: path.clone(), source })?;
            add_jwks(&mut keys, &text, &path.display().to_string())?;
        }
        if let Some(url) = &config.jwks_url {
            let text = fetch(url)?;
            add_jwks(&mut keys, &text, url)?;
            keys.fetched = Some(Instant::now());
        }
        Ok(Authenticator { config, hs256, keys: RwLock::new(keys) })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The caller a bearer token proves, or why it does not.
    pub fn check(&self, token: &str) -> Result<Caller, ApiError> {
        let header = decode_header(token).map_err(|e| unauthorized(format!("the bearer token is not a JWT ({e})")))?;
        let candidates: Vec<(DecodingKey, Algorithm)> = if header.alg == Algorithm::HS256 {
            self.hs256.iter().map(|k| (k.clone(), Algorithm::HS256)).collect()
        } else {
            self.asymmetric_keys(header.kid.as_deref())
        };
        if candidates.is_empty() {
            return Err(unauthorized(format!(
                "no key for this token (alg {:?}, kid {:?}): it was not issued by the configured provider",
                header.alg,
                header.kid.unwrap_or_default()
            )));
        }
        let mut last_error = None;
        for (key, alg) in candidates {
            if alg != header.alg {
                continue;
            }
            let mut validation = Validation::new(alg);
            validation.set_required_spec_claims(&["exp", "sub"]);
            match &self.config.issuer {
                Some(issuer) => validation.set_issuer(&[issuer]),
                None => validation.iss = None,
            }
            match &self.config.audience {
                Some(audience) => validation.set_audience(&[audience]),
                None => validation.validate_aud = false,
            }
            match decode::<Claims>(token, &key, &validation) {
                Ok(data) => {
                    let admin = data.claims.has(self.config.admin_scope());
                    if data.claims.sub.is_empty() {
                        return Err(unauthorized("the token's subject (sub) is empty".into()));
                    }
                    return Ok(Caller { user_id: data.claims.sub, admin });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(unauthorized(match last_error {
            Some(e) => format!("the bearer token was refused: {e}"),
            None => format!("the token's algorithm {:?} does not match the provider's key", header.alg),
        }))
    }

    fn asymmetric_keys(&self, kid: Option<&str>) -> Vec<(DecodingKey, Algorithm)> {
        let lookup = |keys: &Keys| -> Vec<(DecodingKey, Algorithm)> {
            match kid.and_then(|k| keys.by_kid.get(k)) {
                Some(found) => vec![found.clone()],
                None if kid.is_none() => keys.anonymous.iter().chain(keys.by_kid.values()).cloned().collect(),
                None => keys.anonymous.clone(),
            }
        };
        let found = lookup(&self.keys.read().unwrap_or_else(|p| p.into_inner()));
        if !found.is_empty() || kid.is_none() {
            return found;
        }
        // An unknown key id: the provider may have rotated its keys.
        let Some(url) = &self.config.jwks_url else { return found };
        {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            if keys.fetched.is_some_and(|t| t.elapsed() < JWKS_REFRESH_MIN) {
                return found;
            }
        }
        match fetch(url) {
            Ok(text) => {
                let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
                keys.fetched = Some(Instant::now());
                if let Err(err) = add_jwks(&mut keys, &text, url) {
                    tracing::warn!(%err, "JWKS refresh failed");
                }
                lookup(&keys)
            }
            Err(err) => {
                tracing::warn!(%err, "JWKS refresh failed");
                self.keys.write().unwrap_or_else(|p| p.into_inner()).fetched = Some(Instant::now());
                found
            }
        }
    }
}

fn unauthorized(message: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

fn fetch(url: &str) -> Result<String, AuthSetupError> {
    let fail = |detail: String| AuthSetupError::FetchJwks { url: url.to_owned(), detail };
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).build().into();
    let mut response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    response.body_mut().read_to_string().map_err(|e| fail(e.to_string()))
}

fn add_jwks(keys: &mut Keys, text: &str, origin: &str) -> Result<(), AuthSetupError> {
    let bad = |detail: String| AuthSetupError::BadJwks { origin: origin.to_owned(), detail };
    let set: JwkSet = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    for jwk in &set.keys {
        let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
        let alg = match jwk.common.key_algorithm {
            // KeyAlgorithm and Algorithm share their JOSE names ("RS256", "ES256", …).
            Some(alg) => serde_json::to_value(alg).ok().and_then(|v| v.as_str().and_then(|s| s.parse().ok())),
            None => match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Some(Algorithm::ES256),
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
                _ => None,
            },
        };
        let Some(alg) = alg.filter(|a| *a != Algorithm::HS256) else { continue };
        match &jwk.common.key_id {
            Some(kid) => {
                keys.by_kid.insert(kid.clone(), (key, alg));
            }
            None => keys.anonymous.push((key, alg)),
        }
    }
    Ok(())
}

/// Mints an HS256 token (development: `trackwire token`, and tests).
pub fn mint_hs256(secret: &str, claims: &Claims) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("HS256 signing cannot fail")
}

/// The bearer token of a request, if any (device tokens and JWTs alike).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer(&parts.headers).ok_or_else(|| {
            unauthorized("no bearer token: send `Authorization: Bearer <JWT>` from the identity provider".into())
        })?;
        let caller = if state.auth.config().jwks_url.is_some() {
            // A JWKS refresh may block on the network; keep it off the async workers.
            let (auth, token) = (state.auth.clone(), token.to_owned());
            tokio::task::spawn_blocking(move || auth.check(&token)).await.map_err(ApiError::internal)??
        } else {
            state.auth.check(token)?
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}
