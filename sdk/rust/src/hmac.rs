//! HMAC-SHA256, for signing what a plugin sends (a webhook body, say) so the receiver can check it came
//! from you: `X-Signature: sha256=<hex>` is the usual header.
//!
//! ```
//! let signature = chathooks_sdk::hmac::signature_header("secret", b"{\"hello\":1}");
//! assert!(signature.starts_with("sha256="));
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of `message` under `key` (RFC 2104), by the `hmac` crate.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// `sha256=<lower-case hex of HMAC-SHA256(secret, body)>`.
pub fn signature_header(secret: &str, body: &[u8]) -> String {
    let mac = hmac_sha256(secret.as_bytes(), body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in mac {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc4231_case_2() {
        let mac = super::signature_header("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            mac,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
