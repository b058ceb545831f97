//! Device authentication by bearer token (a static list from config for now).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One accepted token and the device it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceToken {
    /// The secret the device sends as `Authorization: Bearer <token>`.
    pub token: String,
    /// The only `device_id` this token may send batches for; `"*"` allows any device (development).
    #[serde(default = "any_device")]
    pub device_id: String,
}

fn any_device() -> String {
    "*".into()
}

/// Looks up tokens in constant time per request.
#[derive(Debug, Clone, Default)]
pub struct TokenAuth {
    tokens: HashMap<String, String>,
}

impl TokenAuth {
    pub fn new(tokens: &[DeviceToken]) -> Self {
        TokenAuth { tokens: tokens.iter().map(|t| (t.token.clone(), t.device_id.clone())).collect() }
    }

    /// The device id the token is bound to (`"*"` for any), or None for an unknown token.
    pub fn device_for(&self, token: &str) -> Option<&str> {
        self.tokens.get(token).map(String::as_str)
    }
}
