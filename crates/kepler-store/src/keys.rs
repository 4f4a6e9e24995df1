//! API keys: how they are made, hashed and checked (API.md §3).
//!
//! A key is `ki_live_` or `ki_test_` followed by [`SECRET_LEN`] random characters
//! from `[A-Za-z0-9]` (about 238 bits). The store keeps only the SHA-256 of the
//! whole key, hex-encoded, and looks a presented key up by that hash.
//!
//! # Why authentication does not leak timing
//!
//! The database never sees the secret: it compares *hashes* while walking its
//! unique index. An attacker can time that walk, but it can only tell them how
//! the SHA-256 of *their own guess* sorts against stored hashes; turning such a
//! hint into a key would mean finding a SHA-256 preimage. A plain (unsalted,
//! fast) hash is enough because the secret is long and uniformly random — there
//! is nothing to brute-force. After the row is found, the stored hash is compared
//! with the computed one by [`hashes_match`] in constant time, so even a lookup
//! that matched loosely (say, a future prefix index) could not be timed either.
//! Malformed keys are hashed like good ones before being refused, so the work
//! done before refusing does not depend on the shape of the input.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::LazyLock;

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of live keys.
pub const LIVE_PREFIX: &str = "ki_live_";
/// The prefix of sandbox keys.
pub const TEST_PREFIX: &str = "ki_test_";
/// Random characters after the prefix.
pub const SECRET_LEN: usize = 40;
/// The length of a whole key (both prefixes are 8 characters).
pub const KEY_LEN: usize = 8 + SECRET_LEN;

/// Makes a new key. `ThreadRng` is a CSPRNG seeded (and periodically reseeded) from the OS.
pub fn generate(sandbox: bool) -> String {
    let prefix = if sandbox { TEST_PREFIX } else { LIVE_PREFIX };
    let secret: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(SECRET_LEN)
        .map(char::from)
        .collect();
    format!("{prefix}{secret}")
}

/// The stored form of a key: SHA-256 of its bytes, lower-case hex.
pub fn hash_key(key: &str) -> String {
    // Through a buffer: `hex::encode` collects chars one by one, which cost
    // as much as the hash itself on every request.
    let mut text = [0u8; 64];
    let digest = Sha256::digest(key.as_bytes());
    match hex::encode_to_slice(digest, &mut text) {
        Ok(()) => String::from_utf8_lossy(&text).into_owned(),
        Err(_) => hex::encode(digest),
    }
}

/// A presented key, hashed, with whether it has the shape of a key at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    /// [`hash_key`] of the presented string, computed whatever its shape.
    pub hash: String,
    /// Whether the string is a prefix and exactly [`SECRET_LEN`] alphanumerics.
    pub well_formed: bool,
    /// Whether it carries the sandbox prefix.
    pub sandbox: bool,
}

/// Hashes a presented key, then judges its shape (hashing first, see the module docs).
pub fn inspect(presented: &str) -> PresentedKey {
    let hash = hash_key(presented);
    let KeyShape {
        well_formed,
        sandbox,
    } = shape(presented);
    PresentedKey {
        hash,
        well_formed,
        sandbox,
    }
}

/// A presented key's shape, which anybody can know (the key format is public).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyShape {
    /// A prefix and exactly [`SECRET_LEN`] alphanumerics.
    pub well_formed: bool,
    /// The sandbox prefix.
    pub sandbox: bool,
}

/// Judges a presented key's shape without hashing it.
pub fn shape(presented: &str) -> KeyShape {
    let (prefix_ok, sandbox) = if presented.starts_with(LIVE_PREFIX) {
        (true, false)
    } else if presented.starts_with(TEST_PREFIX) {
        (true, true)
    } else {
        (false, false)
    };
    let well_formed = prefix_ok
        && presented.len() == KEY_LEN
        && presented.as_bytes()[KEY_LEN - SECRET_LEN..]
            .iter()
            .all(u8::is_ascii_alphanumeric);
    KeyShape {
        well_formed,
        sandbox,
    }
}

/// What a process calls a presented key in its own memory (the cached hits,
/// `hits.rs`): 128 bits of std's SipHash under a key drawn at random when the
/// process first needs one, so that a remembered hit is found without
/// SHA-256 (~4,500 instructions of a ~63,000-instruction hit) and without
/// keeping the secret itself. Nobody outside the process knows the hashing
/// key, so nobody can make another string share a key's tag; the two halves
/// are the same keyed hash over distinct inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyTag(u64, u64);

/// The [`KeyTag`] of a presented key.
pub fn tag(presented: &str) -> KeyTag {
    static HASHER: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    KeyTag(
        HASHER.hash_one((0u8, presented)),
        HASHER.hash_one((1u8, presented)),
    )
}

/// Compares two hashes in time that depends only on their lengths.
pub fn hashes_match(stored: &str, computed: &str) -> bool {
    stored.as_bytes().ct_eq(computed.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_published_shape() {
        for sandbox in [false, true] {
            let key = generate(sandbox);
            let parsed = inspect(&key);
            assert!(parsed.well_formed, "{key}");
            assert_eq!(parsed.sandbox, sandbox);
            assert_eq!(key.len(), KEY_LEN);
            assert!(key.starts_with(if sandbox { "ki_test_" } else { "ki_live_" }));
        }
        assert_ne!(generate(false), generate(false));
    }

    #[test]
    fn shape_checks() {
        let secret = "a".repeat(SECRET_LEN);
        let check = |input: &str, well_formed: bool| {
            assert_eq!(inspect(input).well_formed, well_formed, "{input:?}");
            assert_eq!(
                inspect(input).hash,
                hash_key(input),
                "{input:?} is hashed whatever its shape"
            );
        };
        check(&format!("ki_live_{secret}"), true);
        check(&format!("ki_test_{secret}"), true);
        check(&format!("ki_prod_{secret}"), false);
        check(&format!("ki_live_{secret}a"), false);
        check(&format!("ki_live_{}", &secret[1..]), false);
        check(&format!("ki_live_{}-", &secret[1..]), false);
        check(&format!("ki_live_{}é", &secret[2..]), false);
        check("", false);
        check("ki_live_", false);
    }

    #[test]
    fn tags_tell_keys_apart_and_are_stable() {
        let key = generate(false);
        assert_eq!(tag(&key), tag(&key.clone()));
        assert_ne!(tag(&key), tag(&generate(false)));
        assert_ne!(tag("ki_live_a"), tag("ki_live_b"));
        let KeyTag(first, second) = tag(&key);
        assert_ne!(first, second, "the halves hash distinct inputs");
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hashes_match(&hash_key("abc"), &hash_key("abc")));
        assert!(!hashes_match(&hash_key("abc"), &hash_key("abd")));
        assert!(!hashes_match("ab", "abc"));
    }
}
