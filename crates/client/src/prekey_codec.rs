//! Public prekey encodings of docs/PROTOCOL.md §4 (the relay stores them opaquely) and the
//! conversion of a relay bundle into a protocol bundle.

use sotto_protocol::{
    Address, KemPreKeyKind, KemPreKeyPublic, OneTimePreKeyPublic, PreKeyBundle, SignedPreKeyPublic,
};
use sotto_relay_wire as wire;

pub(crate) fn encode_signed(p: &SignedPreKeyPublic) -> Vec<u8> {
    let mut v = p.id.to_be_bytes().to_vec();
    v.extend_from_slice(&p.key);
    v.extend_from_slice(&p.signature);
    v
}

pub(crate) fn encode_one_time(p: &OneTimePreKeyPublic) -> Vec<u8> {
    let mut v = p.id.to_be_bytes().to_vec();
    v.extend_from_slice(&p.key);
    v
}

pub(crate) fn encode_kem(p: &KemPreKeyPublic) -> Vec<u8> {
    let mut v = p.id.to_be_bytes().to_vec();
    v.push(match p.kind {
        KemPreKeyKind::LastResort => 0x02,
        KemPreKeyKind::OneTime => 0x03,
    });
    v.extend_from_slice(&p.key);
    v.extend_from_slice(&p.signature);
    v
}

fn split_id(b: &[u8]) -> Option<(u32, &[u8])> {
    let (id, rest) = b.split_at_checked(4)?;
    Some((u32::from_be_bytes(id.try_into().ok()?), rest))
}

fn decode_signed(b: &[u8]) -> Option<SignedPreKeyPublic> {
    let (id, rest) = split_id(b)?;
    if rest.len() != 96 {
        return None;
    }
    Some(SignedPreKeyPublic {
        id,
        key: rest[..32].try_into().ok()?,
        signature: rest[32..].try_into().ok()?,
    })
}

fn decode_one_time(b: &[u8]) -> Option<OneTimePreKeyPublic> {
    let (id, rest) = split_id(b)?;
    Some(OneTimePreKeyPublic {
        id,
        key: rest.try_into().ok()?,
    })
}

fn decode_kem(b: &[u8]) -> Option<KemPreKeyPublic> {
    let (id, rest) = split_id(b)?;
    let (kind, rest) = rest.split_first()?;
    let kind = match kind {
        0x02 => KemPreKeyKind::LastResort,
        0x03 => KemPreKeyKind::OneTime,
        _ => return None,
    };
    let (key, sig) = rest.split_at_checked(rest.len().checked_sub(64)?)?;
    Some(KemPreKeyPublic {
        id,
        kind,
        key: key.to_vec(),
        signature: sig.try_into().ok()?,
    })
}

/// Turns the relay's bundle into a protocol bundle (identity = the address's account).
pub(crate) fn to_protocol_bundle(address: Address, b: &wire::Bundle) -> Option<PreKeyBundle> {
    let kem = b.kem_prekey.as_ref()?;
    let kem_prekey = decode_kem(&kem.prekey.bytes)?;
    if kem_prekey.id != kem.prekey.id {
        return None;
    }
    let signed_prekey = decode_signed(&b.signed_prekey.bytes)?;
    let one_time_prekey = match &b.one_time_prekey {
        Some(p) => Some(decode_one_time(&p.bytes)?),
        None => None,
    };
    Some(PreKeyBundle {
        address,
        identity: address.account.identity_key().ok()?,
        signed_prekey,
        one_time_prekey,
        kem_prekey,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;
    use sotto_protocol::{
        IdentityKeyPair, KemPreKeySecret, OneTimePreKeySecret, SignedPreKeySecret,
    };

    #[test]
    fn prekey_encodings_round_trip() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let s = SignedPreKeySecret::generate(&mut OsRng, &id, 7).public();
        assert_eq!(decode_signed(&encode_signed(&s)), Some(s.clone()));
        assert_eq!(encode_signed(&s).len(), 100);
        let o = OneTimePreKeySecret::generate(&mut OsRng, 8).public();
        assert_eq!(decode_one_time(&encode_one_time(&o)), Some(o.clone()));
        let k = KemPreKeySecret::generate(&mut OsRng, &id, 9, KemPreKeyKind::OneTime).public();
        assert_eq!(encode_kem(&k).len(), 1253);
        assert_eq!(decode_kem(&encode_kem(&k)), Some(k));
        assert_eq!(decode_signed(&[0; 99]), None);
        assert_eq!(decode_kem(&[0; 10]), None);
    }
}
