//! Access tokens: HS256 JWTs with `sub`, `role`, `iat` and `exp`, verified strictly, and
//! how they travel (`Authorization: Bearer <token>`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::principal::Principal;
use crate::domain::Role;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iat: i64,
    exp: i64,
}

/// Why a presented token was not accepted. Deliberately coarse: telling an attacker which
/// check failed helps them, telling a user that it expired helps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Signs and verifies tokens with one key. Cheap to clone: every request clones the
/// state holding it, several times, and `Validation` alone is three hash sets and a vector
/// (copying them was 4% of a `figurines` request's instructions under callgrind).
#[derive(Clone)]
pub struct TokenKeys(Arc<Keys>);

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: chrono::Duration,
}

impl TokenKeys {
    pub fn new(secret: &SecretString, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        let ttl_secs = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2);
        TokenKeys(Arc::new(Keys {
            encoding: EncodingKey::from_secret(secret.expose_secret().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
            validation,
            ttl: chrono::Duration::seconds(ttl_secs),
        }))
    }

    pub fn issue(&self, principal: Principal) -> anyhow::Result<IssuedToken> {
        let now = Utc::now();
        let expires_at = now + self.0.ttl;
        let claims = Claims {
            sub: principal.user_id.to_string(),
            role: principal.role.as_str().to_owned(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.0.encoding)?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or(expires_at);
        Ok(IssuedToken { token, expires_at })
    }

    /// The principal a token names, with its expiry. Only HS256 under our key, unexpired,
    /// with every claim present and well-formed, passes.
    pub fn verify(&self, token: &str) -> Result<(Principal, DateTime<Utc>), TokenError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &self.0.validation).map_err(|err| {
                match err.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        let claims = data.claims;
        // `exp == now` passes jsonwebtoken's check (it tests `exp < now`); treat it as expired.
        if claims.exp <= Utc::now().timestamp() {
            return Err(TokenError::Expired);
        }
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| TokenError::Invalid)?;
        let role = claims.role.parse::<Role>().map_err(|_| TokenError::Invalid)?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0).ok_or(TokenError::Invalid)?;
        Ok((Principal { user_id, role }, expires_at))
    }
}

/// Extracts the token from an `Authorization` header value: `Bearer <token>`, scheme in any case.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn a_clone_shares_the_keys_rather_than_copying_them() {
        let keys = TokenKeys::new(&SecretString::from("k".repeat(32)), 60);
        let copy = keys.clone();
        assert!(Arc::ptr_eq(&keys.0, &copy.0), "every request clones the state holding these");
        assert_eq!(Arc::strong_count(&keys.0), 2);
    }

    #[test]
    fn bearer_tokens_are_extracted_whatever_the_scheme_case() {
        assert_eq!(bearer_token("Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    fn keys() -> TokenKeys {
        TokenKeys::new(&SecretString::from("k".repeat(32)), 3600)
    }

    fn principal() -> Principal {
        Principal { user_id: Uuid::now_v7(), role: Role::Customer }
    }

    fn sign(claims: &serde_json::Value, alg: Algorithm, key: &[u8]) -> String {
        jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).unwrap()
    }

    #[test]
    fn issued_tokens_verify_to_the_same_principal() {
        let p = principal();
        let issued = keys().issue(p).unwrap();
        let (verified, exp) = keys().verify(&issued.token).unwrap();
        assert_eq!(verified, p);
        assert_eq!(exp, issued.expires_at);
    }

    #[test]
    fn another_key_or_algorithm_or_a_tampered_payload_is_invalid() {
        let issued = TokenKeys::new(&SecretString::from("x".repeat(32)), 60).issue(principal()).unwrap();
        assert_eq!(keys().verify(&issued.token), Err(TokenError::Invalid));

        let now = Utc::now().timestamp();
        let claims =
            serde_json::json!({"sub": Uuid::now_v7().to_string(), "role": "ADMIN", "iat": now, "exp": now + 60});
        let hs512 = sign(&claims, Algorithm::HS512, "k".repeat(32).as_bytes());
        assert_eq!(keys().verify(&hs512), Err(TokenError::Invalid));

        let good = keys().issue(principal()).unwrap().token;
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(keys().verify(&parts.join(".")), Err(TokenError::Invalid));

        let unsigned = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert_eq!(keys().verify(&unsigned), Err(TokenError::Invalid));
        assert_eq!(keys().verify("garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn expired_tokens_and_missing_claims_are_refused() {
        let now = Utc::now().timestamp();
        let key = "k".repeat(32);
        let expired = sign(
            &serde_json::json!({"sub": Uuid::now_v7().to_string(), "role": "CUSTOMER", "iat": now - 100, "exp": now - 1}),
            Algorithm::HS256,
            key.as_bytes(),
        );
        assert_eq!(keys().verify(&expired), Err(TokenError::Expired));
        let no_role = sign(
            &serde_json::json!({"sub": Uuid::now_v7().to_string(), "iat": now, "exp": now + 60}),
            Algorithm::HS256,
            key.as_bytes(),
        );
        assert_eq!(keys().verify(&no_role), Err(TokenError::Invalid));
        let bad_sub = sign(
            &serde_json::json!({"sub": "1", "role": "CUSTOMER", "iat": now, "exp": now + 60}),
            Algorithm::HS256,
            key.as_bytes(),
        );
        assert_eq!(keys().verify(&bad_sub), Err(TokenError::Invalid));
    }
}
