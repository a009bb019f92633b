//! The App's JWT (RS256, `iss` = App id, `iat` 60 s back, `exp` 10 min after
//! `iat`), signed with jsonwebtoken as re-exported by octocrab (one crypto
//! backend: two would panic at the first signature) and reused until a
//! minute before it expires.

use chrono::{DateTime, Duration, Utc};
use octocrab::jsonwebtoken::{self, Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::sync::Mutex;

/// GitHub's advice against clock drift.
const BACKDATE: Duration = Duration::seconds(60);
/// `exp` may be at most 10 minutes ahead; counting from the backdated `iat` keeps us under it.
const LIFETIME: Duration = Duration::seconds(600);
/// Sign a new one this long before the old one expires.
const REUSE_MARGIN: Duration = Duration::seconds(60);

#[derive(Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: u64,
}

fn sign(
    app_id: u64,
    key: &EncodingKey,
    now: DateTime<Utc>,
) -> Result<(String, DateTime<Utc>), jsonwebtoken::errors::Error> {
    let iat = now - BACKDATE;
    let exp = iat + LIFETIME;
    let claims = Claims { iat: iat.timestamp(), exp: exp.timestamp(), iss: app_id };
    Ok((jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)?, exp))
}

/// Proves at startup that the configured key can sign.
pub fn sign_test_jwt(key: &EncodingKey) -> Result<String, jsonwebtoken::errors::Error> {
    sign(1, key, Utc::now()).map(|(jwt, _)| jwt)
}

pub struct AppJwt {
    app_id: u64,
    key: EncodingKey,
    cached: Mutex<Option<(String, DateTime<Utc>)>>,
}

impl AppJwt {
    pub fn new(app_id: u64, key: EncodingKey) -> Self {
        Self { app_id, key, cached: Mutex::new(None) }
    }

    pub fn bearer(&self, now: DateTime<Utc>) -> Result<String, jsonwebtoken::errors::Error> {
        let mut cached = self.cached.lock().expect("jwt cache poisoned");
        if let Some((jwt, exp)) = cached.as_ref()
            && now + REUSE_MARGIN < *exp
        {
            return Ok(jwt.clone());
        }
        let (jwt, exp) = sign(self.app_id, &self.key, now)?;
        *cached = Some((jwt.clone(), exp));
        Ok(jwt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EncodingKey {
        EncodingKey::from_rsa_pem(fake_github::DEMO_APP_KEY.as_bytes()).unwrap()
    }

    /// Decodes with the public key: the signature is checked too.
    fn claims_of(jwt: &str) -> serde_json::Value {
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<serde_json::Value>(
            jwt,
            &jsonwebtoken::DecodingKey::from_rsa_pem(fake_github::DEMO_APP_PUBLIC_KEY.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap();
        data.claims
    }

    #[test]
    fn claims_follow_githubs_rules() {
        let now = Utc::now();
        let jwt = AppJwt::new(42, key()).bearer(now).unwrap();
        let claims = claims_of(&jwt);
        assert_eq!(claims["iss"], 42);
        assert_eq!(claims["iat"], (now - BACKDATE).timestamp());
        let exp = claims["exp"].as_i64().unwrap();
        assert!(exp - now.timestamp() <= 600, "exp at most 10 minutes ahead");
    }

    #[test]
    fn the_jwt_is_reused_until_near_expiry() {
        let app = AppJwt::new(42, key());
        let now = Utc::now();
        let first = app.bearer(now).unwrap();
        assert_eq!(app.bearer(now + Duration::seconds(300)).unwrap(), first);
        assert_ne!(app.bearer(now + Duration::seconds(500)).unwrap(), first);
    }
}
