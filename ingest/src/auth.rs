//! Device authentication by bearer token: the static list from config, plus tokens the API
//! issues per user (`POST /api/v1/users/{id}/device-tokens`), which bind a device to its owner.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

/// One accepted token and the device it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DeviceToken {
    /// The secret the device sends as `Authorization: Bearer <token>`.
    pub token: String,
    /// The only `device_id` this token may send batches for; `"*"` allows any device (development).
    #[serde(default = "any_device")]
    pub device_id: String,
    /// The only user whose batches this token may send; absent allows any user (tokens from
    /// config, for development and trusted gateways). Tokens issued by the API always have one.
    #[serde(default)]
    pub user_id: Option<String>,
}

fn any_device() -> String {
    "*".into()
}

/// Looks up tokens in constant time per request; issued tokens are added and revoked at runtime.
#[derive(Debug, Default)]
pub struct TokenAuth {
    /// Shared bindings: a request takes a reference count, not copies of three strings.
    tokens: RwLock<HashMap<String, Arc<DeviceToken>>>,
}

impl TokenAuth {
    pub fn new(tokens: &[DeviceToken]) -> Self {
        TokenAuth { tokens: RwLock::new(tokens.iter().map(|t| (t.token.clone(), Arc::new(t.clone()))).collect()) }
    }

    /// What the token is bound to, or None for an unknown token.
    pub fn binding(&self, token: &str) -> Option<Arc<DeviceToken>> {
        self.tokens.read().unwrap_or_else(|p| p.into_inner()).get(token).cloned()
    }

    pub fn insert(&self, token: DeviceToken) {
        self.tokens.write().unwrap_or_else(|p| p.into_inner()).insert(token.token.clone(), Arc::new(token));
    }

    /// Revokes one token; true if it existed.
    pub fn remove(&self, token: &str) -> bool {
        self.tokens.write().unwrap_or_else(|p| p.into_inner()).remove(token).is_some()
    }

    /// Revokes every token of a user (erasure); how many there were.
    pub fn remove_user(&self, user_id: &str) -> usize {
        let mut tokens = self.tokens.write().unwrap_or_else(|p| p.into_inner());
        let before = tokens.len();
        tokens.retain(|_, t| t.user_id.as_deref() != Some(user_id));
        before - tokens.len()
    }
}
