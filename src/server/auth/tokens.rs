//! Session tokens: JWT, HS256 only, `exp` required; each names a server-side session.

use std::{io::Write, path::Path, time::Duration};

use anyhow::Context;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::super::{
    config::Config,
    error::{AppError, AppResult},
};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    /// The server-side session (see `services::sessions`): revocable, shared by replicas.
    sid: Uuid,
    iat: i64,
    exp: i64,
}

/// What a valid token says: whose it is, and which session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    pub user: Uuid,
    pub session: Uuid,
}

/// Signs and checks session tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl: Duration,
}

impl JwtKeys {
    /// From `JWT_SECRET`, or the secret generated once into the data directory.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let secret = match &config.jwt_secret {
            Some(secret) => secret.clone().into_bytes(),
            None => load_or_create_secret(&config.data_dir.join("jwt_secret"))?,
        };
        Ok(Self::new(&secret, config.jwt_ttl))
    }

    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        // Only HS256 is accepted: `alg: none` and algorithm confusion fail validation.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, user_id: Uuid, session: Uuid) -> AppResult<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            sid: session,
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|err| AppError::Internal(anyhow::anyhow!("signing a token: {err}")))
    }

    /// The claims of a well-signed, unexpired token; any defect is simply "unauthorized".
    /// Whether its session is still live is `Sessions::authenticate`'s question.
    pub fn verify(&self, token: &str) -> AppResult<TokenClaims> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| TokenClaims {
                user: data.claims.sub,
                session: data.claims.sid,
            })
            .map_err(|_| AppError::Unauthorized)
    }
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    use rand::RngCore;
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a new JWT secret");
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_other_keys() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let other = JwtKeys::new(b"fedcba9876543210fedcba9876543210", Duration::from_secs(60));
        let id = Uuid::new_v4();
        let session = Uuid::new_v4();
        let token = keys.issue(id, session).expect("token");
        assert_eq!(
            keys.verify(&token).expect("valid"),
            TokenClaims { user: id, session }
        );
        assert!(other.verify(&token).is_err());
        assert!(keys.verify("not-a-token").is_err());
    }
}
