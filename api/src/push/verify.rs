//! The verification challenge: before a subscription is created, its callback URL must show it
//! is willing to receive deliveries. It gets `GET <callback_url>?hub.mode=subscribe&
//! hub.challenge=<random>&hub.verify_token=<the subscriber's token>` and answers 2xx with
//! `{"hub.challenge": "<random>"}` within `push.timeout_secs` (the handshake of Strava's
//! webhooks, from WebSub).

use std::io::Read;

use axum::http::Uri;

/// Longest callback URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a callback URL is refused before anything is sent to it.
pub fn check_url(callback_url: &str) -> Result<(), &'static str> {
    if callback_url.len() > MAX_URL_LEN {
        return Err("it is longer than 2048 characters");
    }
    let uri: Uri = callback_url.parse().map_err(|_| "it is not a URL")?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("its scheme is not http or https"),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("it has no host");
    }
    Ok(())
}

/// Sends the challenge; Err says what the callback did wrong.
pub fn challenge(agent: &ureq::Agent, callback_url: &str, verify_token: Option<&str>) -> Result<(), String> {
    let challenge = uuid::Uuid::new_v4().simple().to_string();
    let mut request = agent.get(callback_url).query("hub.mode", "subscribe").query("hub.challenge", &challenge);
    if let Some(token) = verify_token {
        request = request.query("hub.verify_token", token);
    }
    let mut response = request.call().map_err(|e| format!("the callback could not be reached: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the callback answered HTTP {} to the challenge", status.as_u16()));
    }
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(64 * 1024)
        .read_to_end(&mut body)
        .map_err(|e| format!("the callback's answer could not be read: {e}"))?;
    let echoed = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("hub.challenge").and_then(|c| c.as_str()).map(str::to_owned));
    if echoed.as_deref() != Some(challenge.as_str()) {
        return Err("the callback did not answer {\"hub.challenge\": <the challenge it was sent>}".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_urls_are_callbacks() {
        assert_eq!(check_url("https://apps.example.test/hook?x=1"), Ok(()));
        assert_eq!(check_url("http://127.0.0.1:9000/"), Ok(()));
        assert!(check_url("ftp://apps.example.test/").is_err());
        assert!(check_url("/relative").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url(&format!("https://a.test/{}", "x".repeat(2048))).is_err());
    }
}
