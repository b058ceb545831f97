//! The `Trackwire-Signature` header: `t=<Unix seconds>,v1=<hex HMAC-SHA256>`, the MAC over
//! `"<t>.<body>"` keyed with the subscription's secret. The timestamp is signed with the body so
//! a receiver can refuse a captured delivery replayed later (the scheme Stripe's webhooks use).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header's name.
pub const HEADER: &str = "Trackwire-Signature";

fn mac(secret: &str, timestamp_s: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp_s`.
pub fn sign(secret: &str, timestamp_s: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp_s, body).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp_s},v1={hex}")
}

/// Whether `header` is a valid signature of `body` with `secret` (what a receiver checks);
/// the signed timestamp when it is.
pub fn verify(secret: &str, header: &str, body: &[u8]) -> Option<i64> {
    let mut timestamp = None;
    let mut tag = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", hex)) => tag = decode_hex(hex),
            _ => {}
        }
    }
    let timestamp = timestamp?;
    mac(secret, timestamp, body).verify_slice(&tag?).ok().map(|()| timestamp)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_time() {
        let header = sign("s3cret", 1_764_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1764000000,v1="), "{header}");
        assert_eq!(verify("s3cret", &header, b"{\"a\":1}"), Some(1_764_000_000));
        assert_eq!(verify("other", &header, b"{\"a\":1}"), None);
        assert_eq!(verify("s3cret", &header, b"{\"a\":2}"), None);
        let replayed = header.replace("t=1764000000", "t=1764000999");
        assert_eq!(verify("s3cret", &replayed, b"{\"a\":1}"), None);
        assert_eq!(verify("s3cret", "v1=zz", b""), None);
    }

    /// RFC 4231 test case 2, through the same MAC: the construction is HMAC-SHA256 and nothing else.
    #[test]
    fn the_mac_is_hmac_sha256() {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
