//! `--approval-webhook URL`: each new pending approval is POSTed as JSON, signed with
//! HMAC-SHA256 so the receiver can tell it came from this gateway.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Approval;

/// The signature header: `sha256=` and the hex HMAC-SHA256 of the body under the shared secret.
pub const SIGNATURE_HEADER: &str = "x-mcpgate-signature";

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
        let signature = sign(&self.secret, &body);
        let request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
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

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
