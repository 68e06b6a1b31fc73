//! ML-KEM-768 (FIPS 203) glue: compact seed storage, validated public keys, zeroized secrets.

use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{B32, EncodedSizeUser, KemCore, MlKem768};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

/// Size of an ML-KEM-768 encapsulation (public) key.
pub const KEM_PUBLIC_LEN: usize = 1184;
/// Size of an ML-KEM-768 ciphertext.
pub const KEM_CIPHERTEXT_LEN: usize = 1088;
/// Size of the stored secret: the FIPS 203 key-generation seed `d || z`.
pub(crate) const KEM_SEED_LEN: usize = 64;

type Ek = <MlKem768 as KemCore>::EncapsulationKey;
type Dk = <MlKem768 as KemCore>::DecapsulationKey;

/// The encapsulation key is malformed (wrong length or coefficients not reduced mod q).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidKemKey;

/// An ML-KEM-768 secret, stored as its 64-byte key-generation seed. No `Debug`.
#[derive(Clone)]
pub(crate) struct KemSecret {
    seed: Zeroizing<[u8; KEM_SEED_LEN]>,
}

impl KemSecret {
    pub(crate) fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; KEM_SEED_LEN]);
        rng.fill_bytes(seed.as_mut());
        Self { seed }
    }

    pub(crate) fn from_seed(seed: [u8; KEM_SEED_LEN]) -> Self {
        Self {
            seed: Zeroizing::new(seed),
        }
    }

    pub(crate) fn seed(&self) -> &[u8; KEM_SEED_LEN] {
        &self.seed
    }

    fn expand(&self) -> (Dk, Ek) {
        let mut d = B32::default();
        let mut z = B32::default();
        d.copy_from_slice(&self.seed[..32]);
        z.copy_from_slice(&self.seed[32..]);
        let keys = MlKem768::generate_deterministic(&d, &z);
        d.zeroize();
        z.zeroize();
        keys
    }

    pub(crate) fn public_bytes(&self) -> Vec<u8> {
        self.expand().1.as_bytes().to_vec()
    }

    /// Decapsulation never fails in ML-KEM (implicit rejection yields a pseudorandom key that
    /// then fails authentication further up).
    pub(crate) fn decapsulate(&self, ciphertext: &[u8; KEM_CIPHERTEXT_LEN]) -> Zeroizing<[u8; 32]> {
        let (dk, _) = self.expand();
        let mut out = Zeroizing::new([0u8; 32]);
        let ct = ml_kem::Ciphertext::<MlKem768>::from(*ciphertext);
        if let Ok(mut ss) = dk.decapsulate(&ct) {
            out.copy_from_slice(&ss);
            ss.zeroize();
        }
        out
    }
}

/// Parses an encapsulation key, applying FIPS 203's input check (decode then re-encode must be
/// the identity, i.e. every coefficient is already reduced).
fn parse_public(bytes: &[u8]) -> Result<Ek, InvalidKemKey> {
    let arr: [u8; KEM_PUBLIC_LEN] = bytes.try_into().map_err(|_| InvalidKemKey)?;
    let encoded = ml_kem::Encoded::<Ek>::from(arr);
    let ek = Ek::from_bytes(&encoded);
    if ek.as_bytes().as_slice() != bytes {
        return Err(InvalidKemKey);
    }
    Ok(ek)
}

pub(crate) fn validate_public(bytes: &[u8]) -> Result<(), InvalidKemKey> {
    parse_public(bytes).map(|_| ())
}

/// Encapsulates to `public`, returning (ciphertext, shared secret).
pub(crate) fn encapsulate<R: CryptoRng + RngCore>(
    rng: &mut R,
    public: &[u8],
) -> Result<([u8; KEM_CIPHERTEXT_LEN], Zeroizing<[u8; 32]>), InvalidKemKey> {
    let ek = parse_public(public)?;
    let (ct, mut ss) = ek.encapsulate(rng).map_err(|()| InvalidKemKey)?;
    let mut shared = Zeroizing::new([0u8; 32]);
    shared.copy_from_slice(&ss);
    ss.zeroize();
    let mut ct_out = [0u8; KEM_CIPHERTEXT_LEN];
    ct_out.copy_from_slice(&ct);
    Ok((ct_out, shared))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn encapsulate_decapsulate_agree() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let secret = KemSecret::generate(&mut rng);
        let public = secret.public_bytes();
        assert_eq!(public.len(), KEM_PUBLIC_LEN);
        let (ct, ss) = encapsulate(&mut rng, &public).unwrap();
        assert_eq!(*secret.decapsulate(&ct), *ss);
        let mut bad = ct;
        bad[0] ^= 1;
        assert_ne!(*secret.decapsulate(&bad), *ss);
    }

    #[test]
    fn malformed_public_keys_are_rejected() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let public = KemSecret::generate(&mut rng).public_bytes();
        assert_eq!(validate_public(&public[..100]), Err(InvalidKemKey));
        // 0xFF.. encodes coefficients >= q, which FIPS 203's modulus check rejects.
        let mut unreduced = public.clone();
        unreduced[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
        assert_eq!(validate_public(&unreduced), Err(InvalidKemKey));
    }
}
