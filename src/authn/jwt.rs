//! Compact JWS tokens as the service-account tokens use them: signed here with the signing key
//! (header `alg` and upstream's `kid`), verified with jsonwebtoken against every public key of
//! `--service-account-key-file`. Claims are plain JSON; what they mean is `serviceaccount`'s.

use base64::Engine;
use serde_json::{Value, json};

use super::keys::{PublicKey, SigningKey};

/// Longest bearer token looked at: a service-account token is about a kilobyte; anything far
/// longer is not one, and is refused before any base64 or signature work.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `claims` signed with `key`: `header.payload.signature`.
pub fn sign(key: &SigningKey, claims: &Value) -> Result<String, String> {
    let header = json!({"alg": key.alg().name(), "kid": key.public.kid});
    let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
    let mut token = format!("{}.{}", b64url(&header), b64url(&payload));
    let sig = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&b64url(&sig));
    Ok(token)
}

/// Whether `token` looks like a JWS at all (three base64url parts), before anything is decoded.
pub fn is_jws(token: &str) -> bool {
    token.len() <= MAX_TOKEN_BYTES
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The claims of `token` without checking its signature: only to see whose it is (the issuer)
/// before paying for a signature check, as upstream's `hasCorrectIssuer`.
pub fn unverified_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The claims of `token` if one of `keys` signed it. Time and audience are not checked here:
/// the caller checks them on every use (a verified token may be remembered a while).
pub fn verify(token: &str, keys: &[PublicKey]) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut last = "no key of the token's algorithm".to_string();
    for key in keys.iter().filter(|k| k.alg.jsonwebtoken() == header.alg) {
        match jsonwebtoken::decode::<Value>(token, &key.decoding_key(), &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("invalid signature: {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_with_its_key_only() {
        let rsa = SigningKey::from_pem(include_bytes!("../../tests/data/serviceaccounts/rsa.key"))
            .unwrap();
        let ec = SigningKey::from_pem(include_bytes!("../../tests/data/serviceaccounts/ec.key"))
            .unwrap();
        for key in [&rsa, &ec] {
            let token = sign(key, &json!({"sub": "me", "aud": ["a"]})).unwrap();
            assert!(is_jws(&token));
            assert_eq!(unverified_claims(&token).unwrap()["sub"], "me");
            let both = [rsa.public.clone(), ec.public.clone()];
            assert_eq!(verify(&token, &both).unwrap()["sub"], "me");
            let other = if std::ptr::eq(key, &rsa) { &ec } else { &rsa };
            assert!(verify(&token, std::slice::from_ref(&other.public)).is_err());
            // A changed payload no longer matches the signature.
            let mut parts: Vec<&str> = token.split('.').collect();
            let forged = b64url(br#"{"sub":"admin","aud":["a"]}"#);
            parts[1] = &forged;
            assert!(verify(&parts.join("."), &both).is_err());
        }
    }
}
