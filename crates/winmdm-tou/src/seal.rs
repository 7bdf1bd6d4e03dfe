//! Sealing: AES-256-GCM with a key ID, so keys can rotate.
//!
//! A sealed token is `v1~<key id>~<base64url(nonce ‖ ciphertext ‖ tag)>`: only URL-unreserved
//! characters, so it travels in a query string unchanged, encoded or not. The additional
//! authenticated data binds the token to its purpose (page state or `OpaqueBlob`) and key
//! ID, so a state token can never pass as a blob or the other way round. Nonces are 96
//! random bits; rotate keys well before 2³² seals per key.

use core::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A source of random bytes (sans-I/O: the caller provides it).
pub trait Entropy {
    /// Fills `dest` with random bytes.
    ///
    /// # Errors
    /// [`EntropyUnavailable`] when no randomness can be had.
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable>;
}

/// Randomness could not be obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no randomness available")]
pub struct EntropyUnavailable;

/// The operating system's CSPRNG (through aws-lc-rs).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        aws_lc_rs::rand::fill(dest).map_err(|_| EntropyUnavailable)
    }
}

impl<F: FnMut(&mut [u8])> Entropy for F {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        self(dest);
        Ok(())
    }
}

/// A 256-bit sealing key with its ID. `Debug` does not print the key.
pub struct SealingKey {
    id: String,
    key: LessSafeKey,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealingKey({:?}, [redacted])", self.id)
    }
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Key IDs are 1–16 characters of `A-Z a-z 0-9 _ -`.
    #[error("key id {0:?} must be 1-16 characters of A-Z a-z 0-9 _ -")]
    BadId(String),
    /// Two keys of a keyring share an ID.
    #[error("key id {0:?} is used twice")]
    DuplicateId(String),
}

impl SealingKey {
    /// A key from 32 secret bytes (generate them with a CSPRNG; keep them in your secret
    /// store) and an ID that names it in every token.
    ///
    /// # Errors
    /// [`KeyError::BadId`].
    pub fn new(id: &str, secret: &[u8; 32]) -> Result<Self, KeyError> {
        let ok = (1..=16).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(KeyError::BadId(id.to_owned()));
        }
        let key =
            UnboundKey::new(&AES_256_GCM, secret).map_err(|_| KeyError::BadId(id.to_owned()))?;
        Ok(Self {
            id: id.to_owned(),
            key: LessSafeKey::new(key),
        })
    }

    /// The key's ID.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The current sealing key and the previous ones still accepted when opening.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<SealingKey>,
}

/// Why a sealed token did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Not a token of this format.
    #[error("not a sealed token")]
    Malformed,
    /// Sealed with a key this keyring does not hold.
    #[error("sealed with unknown key {0:?}")]
    UnknownKey(String),
    /// The seal does not verify (altered, forged, or sealed for another purpose).
    #[error("the seal does not verify")]
    Tampered,
}

/// Why sealing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// No randomness for the nonce.
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
    /// The cipher refused (cannot happen with valid keys).
    #[error("encryption failed")]
    Cipher,
}

impl Keyring {
    /// A keyring sealing with `current`.
    pub fn new(current: SealingKey) -> Self {
        Self {
            keys: vec![current],
        }
    }

    /// Also opens tokens sealed with `previous` (during a rotation).
    ///
    /// # Errors
    /// [`KeyError::DuplicateId`] when the ID is already in the keyring.
    pub fn with_previous(mut self, previous: SealingKey) -> Result<Self, KeyError> {
        if self.keys.iter().any(|k| k.id == previous.id) {
            return Err(KeyError::DuplicateId(previous.id));
        }
        self.keys.push(previous);
        Ok(self)
    }

    /// The ID of the key new tokens are sealed with.
    pub fn current_id(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    fn aad(purpose: &str, id: &str) -> Vec<u8> {
        format!("winmdm-tou/v1/{purpose}/{id}").into_bytes()
    }

    /// Seals `plaintext` for `purpose`.
    pub(crate) fn seal(
        &self,
        purpose: &str,
        plaintext: &[u8],
        rng: &mut dyn Entropy,
    ) -> Result<String, SealError> {
        let key = self.keys.first().ok_or(SealError::Cipher)?;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce)?;
        let mut buf = plaintext.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(purpose, &key.id)),
                &mut buf,
            )
            .map_err(|_| SealError::Cipher)?;
        let mut raw = Vec::with_capacity(NONCE_LEN + buf.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&buf);
        Ok(format!("v1~{}~{}", key.id, URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Opens a token sealed for `purpose`.
    pub(crate) fn open(&self, purpose: &str, token: &str) -> Result<Vec<u8>, OpenError> {
        /// Tokens longer than this are not ours.
        const MAX_TOKEN: usize = 16 * 1024;
        if token.len() > MAX_TOKEN {
            return Err(OpenError::Malformed);
        }
        let mut parts = token.trim().splitn(3, '~');
        let (Some("v1"), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(OpenError::Malformed);
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| OpenError::UnknownKey(id.chars().take(16).collect()))?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed)?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Malformed)?;
        let mut buf = sealed.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(Self::aad(purpose, &key.id)), &mut buf)
            .map_err(|_| OpenError::Tampered)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(id: &str, b: u8) -> Keyring {
        Keyring::new(SealingKey::new(id, &[b; 32]).unwrap())
    }

    #[test]
    fn seal_open_rotate_and_refuse() {
        let mut rng = |d: &mut [u8]| d.fill(7);
        let a = ring("k1", 1);
        let t = a.seal("state", b"hello", &mut rng).unwrap();
        assert!(t.starts_with("v1~k1~"));
        assert_eq!(a.open("state", &t).unwrap(), b"hello");
        // Another purpose does not open.
        assert_eq!(a.open("blob", &t), Err(OpenError::Tampered));
        // Rotation: the new ring seals with k2 and still opens k1.
        let b = ring("k2", 2)
            .with_previous(SealingKey::new("k1", &[1; 32]).unwrap())
            .unwrap();
        assert_eq!(b.open("state", &t).unwrap(), b"hello");
        assert!(
            b.seal("state", b"x", &mut rng)
                .unwrap()
                .starts_with("v1~k2~")
        );
        // A key with the right ID but other bytes: tampered.
        assert_eq!(ring("k1", 9).open("state", &t), Err(OpenError::Tampered));
        assert_eq!(
            ring("k3", 1).open("state", &t),
            Err(OpenError::UnknownKey("k1".into()))
        );
        // Bit flips anywhere in the body.
        let (head, body) = t.rsplit_once('~').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(body).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            let forged = format!("{head}~{}", URL_SAFE_NO_PAD.encode(&raw));
            assert_eq!(
                a.open("state", &forged),
                Err(OpenError::Tampered),
                "byte {i}"
            );
            raw[i] ^= 1;
        }
        for junk in [
            "",
            "v1",
            "v1~k1",
            "v1~k1~",
            "v2~k1~AAAA",
            "v1~k1~!!!!",
            "v1~k1~AAAA",
            "v1.k1.AAAA",
        ] {
            assert!(a.open("state", junk).is_err(), "{junk}");
        }
        assert!(SealingKey::new("", &[0; 32]).is_err());
        assert!(SealingKey::new("a.b", &[0; 32]).is_err());
        assert!(
            ring("k1", 1)
                .with_previous(SealingKey::new("k1", &[2; 32]).unwrap())
                .is_err()
        );
        assert!(!format!("{:?}", SealingKey::new("k1", &[0xAB; 32]).unwrap()).contains("171"));
    }
}
