//! `--approval-webhook URL`: each new pending approval is POSTed as JSON, signed with
//! HMAC-SHA256 so the receiver can tell it came from this gateway, and when.
//!
//! The signature covers the time of sending and the body (`{timestamp}.{body}`), and the time is
//! sent beside it: a receiver that refuses timestamps more than a few minutes old cannot be made
//! to act twice on a recorded delivery (Stripe and Slack sign their webhooks the same way).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Approval;

/// The signature header: `sha256=` and the hex HMAC-SHA256 of `{timestamp}.{body}` under the
/// shared secret.
pub const SIGNATURE_HEADER: &str = "x-mcpgate-signature";
/// When the delivery was signed: seconds since the Unix epoch, as decimal digits.
pub const TIMESTAMP_HEADER: &str = "x-mcpgate-timestamp";

pub struct Webhook {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: String,
}

impl Webhook {
    pub fn new(url: reqwest::Url, secret: String) -> Self {
        Self {
            client: reqwest::Client::new(),
            url,
            secret,
        }
    }

    /// Sends in the background: a slow or failing receiver never delays the held call.
    pub fn announce(&self, approval: &Approval) {
        let body = serde_json::to_vec(approval).expect("an approval serialises");
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let signature = sign(&self.secret, timestamp, &body);
        let request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .timeout(std::time::Duration::from_secs(10))
            .body(body);
        let id = approval.id.clone();
        tokio::spawn(async move {
            match request.send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    tracing::warn!(approval = %id, status = %response.status(), "approval webhook refused the notice")
                }
                Err(err) => {
                    tracing::warn!(approval = %id, error = %err, "approval webhook unreachable")
                }
            }
        });
    }
}

/// The signature header's value for a delivery of `body` at `timestamp`.
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("sha256={}", hmac_sha256_hex(secret, &signed))
}

fn hmac_sha256_hex(secret: &str, data: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hmac_sha256_hex("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let body = br#"{"id":"apr_1"}"#;
        assert_eq!(
            sign("Jefe", 1_700_000_000, body),
            format!(
                "sha256={}",
                hmac_sha256_hex("Jefe", br#"1700000000.{"id":"apr_1"}"#)
            )
        );
        assert_ne!(
            sign("Jefe", 1_700_000_000, body),
            sign("Jefe", 1_700_000_001, body)
        );
    }
}
