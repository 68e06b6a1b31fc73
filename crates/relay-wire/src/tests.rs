use super::*;

fn prekey(id: u32, len: usize) -> Prekey {
    Prekey {
        id,
        bytes: (0..len).map(|i| (i as u8).wrapping_mul(7)).collect(),
    }
}

fn addr() -> Address {
    Address {
        account: [9; 32],
        device: 7,
    }
}

fn all_frames() -> Vec<Frame> {
    let requests = vec![
        Request::Authenticate {
            identity_key: [1; 32],
            device_id: 3,
            relay_host: "relay.example:443".into(),
            signature: [2; 64],
        },
        Request::Ping,
        Request::DeleteAccount,
        Request::UsernameClaim {
            username: "alice".into(),
            pin_verifier: None,
        },
        Request::UsernameClaim {
            username: "alice".into(),
            pin_verifier: Some([5; 32]),
        },
        Request::UsernameLookup {
            username: "bob".into(),
        },
        Request::UsernameChange {
            username: "carol".into(),
        },
        Request::UsernameRelease,
        Request::RegLockSet {
            pin_verifier: [4; 32],
        },
        Request::RegLockClear,
        Request::UploadSignedPrekey(prekey(1, 96)),
        Request::UploadOneTimePrekeys(vec![prekey(1, 32), prekey(2, 32)]),
        Request::UploadOneTimePrekeys(vec![]),
        Request::UploadLastResortKemPrekey(prekey(9, 1632)),
        Request::UploadOneTimeKemPrekeys(vec![prekey(10, 1632)]),
        Request::FetchBundle { address: addr() },
        Request::PrekeyCount,
        Request::SendEnvelope {
            recipient: addr(),
            envelope: vec![0xAB; 1000],
        },
    ];
    let mut frames: Vec<Frame> = requests
        .into_iter()
        .enumerate()
        .map(|(i, request)| Frame::Request {
            id: i as u64 * 1_000_003,
            request,
        })
        .collect();
    let responses = vec![
        (Op::Ping, Ok(Response::Ok)),
        (
            Op::UsernameLookup,
            Ok(Response::Account { account: [3; 32] }),
        ),
        (
            Op::FetchBundle,
            Ok(Response::Bundle(Bundle {
                signed_prekey: prekey(1, 96),
                one_time_prekey: Some(prekey(2, 32)),
                kem_prekey: Some(KemPrekey {
                    prekey: prekey(3, 1632),
                    last_resort: false,
                }),
            })),
        ),
        (
            Op::FetchBundle,
            Ok(Response::Bundle(Bundle {
                signed_prekey: prekey(1, 96),
                one_time_prekey: None,
                kem_prekey: Some(KemPrekey {
                    prekey: prekey(4, 1632),
                    last_resort: true,
                }),
            })),
        ),
        (
            Op::FetchBundle,
            Ok(Response::Bundle(Bundle {
                signed_prekey: prekey(1, 96),
                one_time_prekey: None,
                kem_prekey: None,
            })),
        ),
        (
            Op::PrekeyCount,
            Ok(Response::PrekeyCount {
                one_time: 5,
                one_time_kem: 6,
            }),
        ),
        (
            Op::SendEnvelope,
            Err(ErrorResponse::new(ErrorCode::MailboxFull, 10_000, "full")),
        ),
    ];
    for (i, (op, result)) in responses.into_iter().enumerate() {
        frames.push(Frame::Response {
            id: i as u64,
            op: op as u16,
            result,
        });
    }
    frames.push(Frame::Response {
        id: 1,
        op: 0xBEEF,
        result: Err(ErrorResponse::new(ErrorCode::UnknownOp, 0, "unknown op")),
    });
    frames.push(Frame::Push(Push::Challenge { challenge: [8; 32] }));
    frames.push(Frame::Push(Push::Envelope(Delivery {
        message_id: 42,
        received_at_ms: 1_700_000_000_000,
        envelope: vec![1, 2, 3],
    })));
    frames.push(Frame::Push(Push::QueueDrained));
    frames.push(Frame::Push(Push::PrekeysLow {
        one_time: 1,
        one_time_kem: 2,
    }));
    frames.push(Frame::PushAck { message_id: 42 });
    frames
}

#[test]
fn every_frame_round_trips() {
    for frame in all_frames() {
        let bytes = frame.encode().unwrap();
        assert_eq!(Frame::decode(&bytes), Ok(frame.clone()), "{frame:?}");
        let header = peek_header(&bytes).unwrap();
        assert_eq!(header.version, PROTOCOL_VERSION);
    }
}

#[test]
fn every_truncation_is_rejected_without_panicking() {
    for frame in all_frames() {
        let bytes = frame.encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                Frame::decode(&bytes[..cut]).is_err(),
                "{frame:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    for frame in all_frames() {
        let mut bytes = frame.encode().unwrap();
        bytes.push(0);
        assert_eq!(
            Frame::decode(&bytes),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }
}

#[test]
fn unknown_version_kind_and_op_are_typed_errors() {
    let mut bytes = Frame::Request {
        id: 1,
        request: Request::Ping,
    }
    .encode()
    .unwrap();
    bytes[0] = 2;
    assert_eq!(
        Frame::decode(&bytes),
        Err(DecodeError::UnsupportedVersion(2))
    );
    assert_eq!(
        DecodeError::UnsupportedVersion(2).error_code(),
        ErrorCode::UnsupportedVersion
    );
    bytes[0] = 1;
    bytes[1] = 9;
    assert_eq!(Frame::decode(&bytes), Err(DecodeError::UnknownKind(9)));
    bytes[1] = 0;
    bytes[10] = 0x7F;
    bytes[11] = 0x7F;
    assert_eq!(Frame::decode(&bytes), Err(DecodeError::UnknownOp(0x7F7F)));
    assert_eq!(DecodeError::UnknownOp(1).error_code(), ErrorCode::UnknownOp);
}

#[test]
fn oversized_frames_and_fields_are_rejected_before_allocation() {
    let big = vec![1u8; MAX_FRAME_LEN + 1];
    assert!(matches!(
        Frame::decode(&big),
        Err(DecodeError::FrameTooLarge { .. })
    ));

    // An envelope claiming 4 GiB in a 30-byte frame.
    let mut bytes = Frame::Request {
        id: 1,
        request: Request::SendEnvelope {
            recipient: addr(),
            envelope: vec![],
        },
    }
    .encode()
    .unwrap();
    let len_at = bytes.len() - 4;
    bytes[len_at..].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Frame::decode(&bytes),
        Err(DecodeError::TooLong {
            field: "envelope",
            ..
        })
    ));

    // Too many prekeys in one upload.
    let mut bytes = Frame::Request {
        id: 1,
        request: Request::UploadOneTimePrekeys(vec![]),
    }
    .encode()
    .unwrap();
    let at = bytes.len() - 2;
    bytes[at..].copy_from_slice(&(MAX_PREKEYS_PER_UPLOAD as u16 + 1).to_be_bytes());
    assert!(matches!(
        Frame::decode(&bytes),
        Err(DecodeError::TooLong {
            field: "prekey_count",
            ..
        })
    ));

    // A username longer than the bound (which the encoder refuses to write, so the length
    // byte of one at the bound is raised by hand).
    let mut long = Frame::Request {
        id: 1,
        request: Request::UsernameLookup {
            username: "a".repeat(MAX_USERNAME_LEN),
        },
    }
    .encode()
    .unwrap();
    long[HEADER_LEN] += 1;
    long.push(b'a');
    assert!(matches!(
        Frame::decode(&long),
        Err(DecodeError::TooLong {
            field: "username",
            ..
        })
    ));
}

#[test]
fn bad_flags_and_utf8_are_rejected() {
    let mut bytes = Frame::Request {
        id: 1,
        request: Request::UsernameClaim {
            username: "abc".into(),
            pin_verifier: None,
        },
    }
    .encode()
    .unwrap();
    let last = bytes.len() - 1;
    bytes[last] = 2;
    assert!(matches!(
        Frame::decode(&bytes),
        Err(DecodeError::BadValue {
            field: "has_pin",
            ..
        })
    ));
    let mut bytes = Frame::Request {
        id: 1,
        request: Request::UsernameLookup {
            username: "ab".into(),
        },
    }
    .encode()
    .unwrap();
    let last = bytes.len() - 1;
    bytes[last] = 0xFF;
    assert_eq!(
        Frame::decode(&bytes),
        Err(DecodeError::BadUtf8 { field: "username" })
    );
    // Non-envelope pushes must carry id 0.
    let mut bytes = Frame::Push(Push::QueueDrained).encode().unwrap();
    bytes[9] = 1;
    assert!(matches!(
        Frame::decode(&bytes),
        Err(DecodeError::BadValue {
            field: "push_id",
            ..
        })
    ));
}

#[test]
fn random_mutations_never_panic() {
    let frames = all_frames();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut decoded_ok = 0;
    for _ in 0..20_000 {
        let frame = &frames[(next() as usize) % frames.len()];
        let mut bytes = frame.encode().unwrap();
        for _ in 0..=(next() % 4) {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        if let Ok(f) = Frame::decode(&bytes) {
            // Whatever decodes must re-encode to the same bytes (canonical encoding).
            assert_eq!(f.encode().unwrap(), bytes);
            decoded_ok += 1;
        }
    }
    assert!(decoded_ok > 0);
}

#[test]
fn auth_message_layout() {
    let msg = auth_message(&[7; 32], "h:1");
    assert_eq!(&msg[..19], b"sotto-relay-auth-v1");
    assert_eq!(&msg[19..51], &[7; 32]);
    assert_eq!(&msg[51..], b"h:1");
}

#[test]
fn error_codes_round_trip() {
    for v in 0..200u16 {
        assert_eq!(ErrorCode::from_u16(v).to_u16(), v);
    }
    assert_eq!(ErrorCode::from_u16(35), ErrorCode::PinIncorrect);
    let long = ErrorResponse::new(ErrorCode::Internal, 0, "é".repeat(300));
    assert!(long.message.len() <= MAX_ERROR_MESSAGE_LEN);
}

#[test]
fn op_auth_requirements() {
    assert!(!Op::SendEnvelope.requires_auth());
    assert!(!Op::FetchBundle.requires_auth());
    assert!(!Op::UsernameLookup.requires_auth());
    assert!(Op::UsernameClaim.requires_auth());
    assert!(Op::UploadSignedPrekey.requires_auth());
    assert!(Op::DeleteAccount.requires_auth());
}

/// The exact bytes of a `DeleteAccount` request (docs/PROTOCOL.md, section 13): header only,
/// op 0x0003, empty body; any body byte is trailing.
#[test]
fn delete_account_bytes() {
    let frame = Frame::Request {
        id: 0x0102_0304_0506_0708,
        request: Request::DeleteAccount,
    };
    let bytes = frame.encode().unwrap();
    assert_eq!(
        bytes,
        [1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x03],
        "version, kind request, id, op"
    );
    assert_eq!(Frame::decode(&bytes), Ok(frame));
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        Frame::decode(&long),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    assert_eq!(Op::from_u16(3), Ok(Op::DeleteAccount));
    // Its success response is the empty `Ok`.
    let response = Frame::Response {
        id: 9,
        op: Op::DeleteAccount as u16,
        result: Ok(Response::Ok),
    };
    let bytes = response.encode().unwrap();
    assert_eq!(bytes, [1, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0x00, 0x03, 0]);
    assert_eq!(Frame::decode(&bytes), Ok(response));
}

/// The encoder refuses what the decoder would reject, naming the field, instead of cutting
/// it to fit (which would send something other than what the caller asked for).
#[test]
fn encoding_refuses_oversized_fields_instead_of_truncating() {
    let request = |request| Frame::Request { id: 1, request }.encode();
    assert_eq!(
        request(Request::UsernameLookup {
            username: "a".repeat(MAX_USERNAME_LEN + 1),
        }),
        Err(EncodeError {
            field: "username",
            len: MAX_USERNAME_LEN + 1,
            max: MAX_USERNAME_LEN,
        })
    );
    let recipient = Address {
        account: [7; 32],
        device: 1,
    };
    assert_eq!(
        request(Request::SendEnvelope {
            recipient,
            envelope: vec![0; MAX_ENVELOPE_LEN + 1],
        })
        .map_err(|e| e.field),
        Err("envelope")
    );
    let key = Prekey {
        id: 1,
        bytes: vec![0; 32],
    };
    assert_eq!(
        request(Request::UploadOneTimePrekeys(vec![
            key.clone();
            MAX_PREKEYS_PER_UPLOAD
                + 1
        ]))
        .map_err(|e| e.field),
        Err("prekey_count")
    );
    assert_eq!(
        request(Request::UploadSignedPrekey(Prekey {
            id: 1,
            bytes: vec![0; MAX_PREKEY_LEN + 1],
        }))
        .map_err(|e| e.field),
        Err("prekey")
    );
    // A KEM prekey may be longer than an X25519 one, up to its own limit.
    assert!(
        request(Request::UploadLastResortKemPrekey(Prekey {
            id: 1,
            bytes: vec![0; MAX_KEM_PREKEY_LEN],
        }))
        .is_ok()
    );
    let long_error = ErrorResponse {
        code: ErrorCode::Internal,
        detail: 0,
        message: "x".repeat(MAX_ERROR_MESSAGE_LEN + 1),
    };
    assert_eq!(
        Frame::Response {
            id: 1,
            op: 0,
            result: Err(long_error),
        }
        .encode()
        .map_err(|e| e.field),
        Err("message")
    );
    // At the limits everything encodes and decodes back unchanged.
    let at_limit = Frame::Request {
        id: 2,
        request: Request::SendEnvelope {
            recipient,
            envelope: vec![1; MAX_ENVELOPE_LEN],
        },
    };
    assert_eq!(Frame::decode(&at_limit.encode().unwrap()), Ok(at_limit));
}

#[test]
fn request_debug_names_only_the_op() {
    let claim = Request::UsernameClaim {
        username: "canaryname".into(),
        pin_verifier: Some([0xAB; 32]),
    };
    let shown = format!(
        "{claim:?} {:?}",
        Frame::Request {
            id: 1,
            request: claim.clone()
        }
    );
    assert!(shown.contains("UsernameClaim"), "{shown}");
    assert!(!shown.contains("canary"), "{shown}");
    assert!(!shown.contains("171"), "{shown}");
}
