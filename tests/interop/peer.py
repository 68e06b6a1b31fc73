#!/usr/bin/env python3
"""Interop peer: the Python `doubleratchet` 1.3 package configured with Sotto's Double Ratchet
parameters, driven over JSON lines on stdin/stdout by crates/protocol/tests/interop.rs.

Sotto parameters (docs/PROTOCOL.md, "Double Ratchet"):
  KDF_RK  = HKDF-SHA256(salt=root key, ikm=DH output, info=ROOT_INFO) -> 64 bytes (RK || CK)
  KDF_CK  = HMAC-SHA256(ck, 0x01) -> message key, HMAC-SHA256(ck, 0x02) -> next chain key
  ENCRYPT = ChaCha20-Poly1305, (key || nonce) = HKDF-SHA256(salt=0*32, ikm=mk, info=MK_INFO)[:44]
  AD      = session AD || ratchet_pub(32) || PN (u32 BE) || N (u32 BE)

Requests (one JSON object per line):
  {"op": "init_alice", "shared_secret", "remote_ratchet_key", "ad", "plaintext"} -> {"message"}
  {"op": "init_bob", "shared_secret", "own_ratchet_secret", "ad", "message"}     -> {"plaintext"}
  {"op": "encrypt", "plaintext"}                                                  -> {"message"}
  {"op": "decrypt", "message"}                                        -> {"plaintext"} | {"error"}
Byte strings are hex; a message is {"ratchet_key", "pn", "n", "ciphertext"}.
"""

import asyncio
import json
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import doubleratchet
from doubleratchet import AuthenticationFailedException, DoubleRatchet, EncryptedMessage, Header
from doubleratchet.aead import AEAD
from doubleratchet.recommended import HashFunction, kdf_hkdf, kdf_separate_hmacs
from doubleratchet.recommended.diffie_hellman_ratchet_curve25519 import DiffieHellmanRatchet

ROOT_INFO = b"Sotto_DoubleRatchet_Root_v1"
MESSAGE_KEY_INFO = b"Sotto_DoubleRatchet_MessageKeys_v1"
# KDFChain.step keeps the FIRST 32 output bytes as the next chain key and returns the rest as
# the message key, so HMAC input 0x02 (next chain key) must come first.
MESSAGE_CHAIN_CONSTANT = b"\x02\x01"
MAX_SKIP = 1000
MAX_STORED_SKIPPED_KEYS = 2000


class RootKDF(kdf_hkdf.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return ROOT_INFO


class MessageKDF(kdf_separate_hmacs.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256


def _expand(key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=44, salt=b"\x00" * 32, info=MESSAGE_KEY_INFO).derive(key)


class SottoAEAD(AEAD):
    @staticmethod
    async def encrypt(plaintext: bytes, key: bytes, associated_data: bytes) -> bytes:
        okm = _expand(key)
        return ChaCha20Poly1305(okm[:32]).encrypt(okm[32:], plaintext, associated_data)

    @staticmethod
    async def decrypt(ciphertext: bytes, key: bytes, associated_data: bytes) -> bytes:
        okm = _expand(key)
        try:
            return ChaCha20Poly1305(okm[:32]).decrypt(okm[32:], ciphertext, associated_data)
        except InvalidTag as e:
            raise AuthenticationFailedException("authentication failed") from e


class SottoDoubleRatchet(DoubleRatchet):
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: Header) -> bytes:
        return (
            associated_data
            + header.ratchet_pub
            + header.previous_sending_chain_length.to_bytes(4, "big")
            + header.sending_chain_length.to_bytes(4, "big")
        )


CONFIG = dict(
    diffie_hellman_ratchet_class=DiffieHellmanRatchet,
    root_chain_kdf=RootKDF,
    message_chain_kdf=MessageKDF,
    message_chain_constant=MESSAGE_CHAIN_CONSTANT,
    dos_protection_threshold=MAX_SKIP,
    max_num_skipped_message_keys=MAX_STORED_SKIPPED_KEYS,
    aead=SottoAEAD,
)


def to_json(m: EncryptedMessage) -> dict:
    return {
        "ratchet_key": m.header.ratchet_pub.hex(),
        "pn": m.header.previous_sending_chain_length,
        "n": m.header.sending_chain_length,
        "ciphertext": m.ciphertext.hex(),
    }


def from_json(d: dict) -> EncryptedMessage:
    return EncryptedMessage(
        header=Header(
            ratchet_pub=bytes.fromhex(d["ratchet_key"]),
            previous_sending_chain_length=d["pn"],
            sending_chain_length=d["n"],
        ),
        ciphertext=bytes.fromhex(d["ciphertext"]),
    )


async def main() -> None:
    ratchet = None
    ad = b""
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "init_alice":
                ad = bytes.fromhex(req["ad"])
                ratchet, msg = await SottoDoubleRatchet.encrypt_initial_message(
                    shared_secret=bytes.fromhex(req["shared_secret"]),
                    recipient_ratchet_pub=bytes.fromhex(req["remote_ratchet_key"]),
                    message=bytes.fromhex(req["plaintext"]),
                    associated_data=ad,
                    **CONFIG,
                )
                resp = {"message": to_json(msg)}
            elif op == "init_bob":
                ad = bytes.fromhex(req["ad"])
                ratchet, pt = await SottoDoubleRatchet.decrypt_initial_message(
                    shared_secret=bytes.fromhex(req["shared_secret"]),
                    own_ratchet_priv=bytes.fromhex(req["own_ratchet_secret"]),
                    message=from_json(req["message"]),
                    associated_data=ad,
                    **CONFIG,
                )
                resp = {"plaintext": pt.hex()}
            elif op == "encrypt":
                msg = await ratchet.encrypt_message(bytes.fromhex(req["plaintext"]), ad)
                resp = {"message": to_json(msg)}
            elif op == "decrypt":
                pt = await ratchet.decrypt_message(from_json(req["message"]), ad)
                resp = {"plaintext": pt.hex()}
            else:
                resp = {"error": f"unknown op {op}"}
        except Exception as e:  # reported to the Rust side, which decides what is expected
            resp = {"error": type(e).__name__}
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    assert doubleratchet.__version__.startswith("1.3"), doubleratchet.__version__
    asyncio.run(main())
