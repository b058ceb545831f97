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
pub fn check_url(callback_url: &str, allow_private: bool) -> Result<(), &'static str> {
    if callback_url.len() > MAX_URL_LEN {
        return Err("it is longer than 2048 characters");
    }
    let uri: Uri = callback_url.parse().map_err(|_| "it is not a URL")?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("its scheme is not http or https"),
    }
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return Err("it has no host");
    };
    // An address written out is judged here; a name, once resolved, at each call.
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>();
    if !allow_private && literal.is_ok_and(|ip| !super::address::is_public(ip)) {
        return Err(super::address::INSIDE);
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
        assert_eq!(check_url("https://apps.example.test/hook?x=1", false), Ok(()));
        assert_eq!(check_url("http://127.0.0.1:9000/", true), Ok(()));
        assert!(check_url("http://127.0.0.1:9000/", false).is_err());
        assert!(check_url("http://[fe80::1]/", false).is_err());
        assert!(check_url("ftp://apps.example.test/", true).is_err());
        assert!(check_url("/relative", true).is_err());
        assert!(check_url("not a url", true).is_err());
        assert!(check_url(&format!("https://a.test/{}", "x".repeat(2048)), true).is_err());
    }
}
