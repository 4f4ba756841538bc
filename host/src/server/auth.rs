//! API tokens: secrets made from the OS's random source, stored only as
//! their SHA-256, and who a request's bearer token makes its caller.

use sha2::{Digest, Sha256};

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The holder of the server's admin token: manages tenants and tokens.
    Admin,
    /// A tenant's token: sees and touches only that tenant's objects.
    Tenant(String),
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("this endpoint needs a token: send `Authorization: Bearer <token>`")]
    Missing,
    /// The token is unknown or revoked (which one is not said).
    #[error("the token is not valid")]
    Invalid,
    /// A valid token without the right to this endpoint.
    #[error("this token may not use this endpoint")]
    Forbidden,
}

/// A new token secret: `eddy_` and 32 random bytes in hex.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("eddy_{}", crate::serdes::hex(&bytes)))
}

/// The SHA-256 of a secret, in hex: what the server stores.
pub fn hash(secret: &str) -> String {
    crate::serdes::hex(&Sha256::digest(secret.as_bytes()))
}

/// The public id of a token: the start of its hash, enough to name it.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).ok_or(AuthError::Missing)?;
    let token = token.trim();
    if token.is_empty() { Err(AuthError::Missing) } else { Ok(token) }
}

/// Compares two hashes in time independent of where they differ.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn secrets_are_random_and_stored_as_hashes() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("eddy_") && a.len() == 5 + 64);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert!(!hash(&a).contains(&a[5..]));
        assert!(same_hash(&hash(&a), &hash(&a)) && !same_hash(&hash(&a), &hash(&b)));
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(None), Err(AuthError::Missing));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::Missing));
        assert_eq!(bearer(Some("Bearer  ")), Err(AuthError::Missing));
    }
}
