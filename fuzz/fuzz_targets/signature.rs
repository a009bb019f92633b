//! `X-Hub-Signature-256`: any header, body and secret. Never a panic; a
//! header verifies only when it is the body's HMAC under a configured secret;
//! the right signature verifies (rotation included) and a changed one does not.
#![no_main]

use arbitrary::Arbitrary;
use ghsync::webhook::{SignatureError, verify};
use ghsync_fuzz::sign;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

#[derive(Arbitrary, Debug)]
struct Input {
    /// What an attacker sends as the header.
    header: String,
    body: Vec<u8>,
    secret: String,
    /// A second configured secret, as during rotation.
    other: String,
    /// Which digest byte to change, and how.
    flip_at: u8,
    flip: u8,
}

fuzz_target!(|input: Input| {
    let Input { header, body, secret, other, flip_at, flip } = input;
    let secrets = [SecretString::from(secret.clone())];
    let rotating = [SecretString::from(other.clone()), SecretString::from(secret.clone())];
    let good = sign(secret.as_bytes(), &body);

    // Anything sent verifies only if it is the right digest.
    if verify(Some(&header), &body, &secrets).is_ok() {
        let hex = header.trim().strip_prefix("sha256=").expect("accepted without sha256=");
        assert_eq!(hex.to_ascii_lowercase(), good["sha256=".len()..], "accepted a wrong signature");
    }
    assert_eq!(verify(None, &body, &secrets), Err(SignatureError::Missing));
    assert_eq!(verify(Some(&good), &body, &[]), Err(SignatureError::Mismatch), "no secret, no match");

    // The right signature verifies, with either secret configured first.
    assert_eq!(verify(Some(&good), &body, &secrets), Ok(()));
    assert_eq!(verify(Some(&good), &body, &rotating), Ok(()));
    // HMAC pads short keys with zeros, so another secret may sign the same: only then may it match.
    let other_only = verify(Some(&good), &body, &[SecretString::from(other.clone())]);
    assert_eq!(other_only.is_ok(), sign(other.as_bytes(), &body) == good);

    // One changed digest byte: refused.
    let mut digest = hex::decode(&good["sha256=".len()..]).unwrap();
    let at = usize::from(flip_at) % digest.len();
    digest[at] ^= flip.max(1);
    let mutated = format!("sha256={}", hex::encode(&digest));
    assert_eq!(verify(Some(&mutated), &body, &rotating), Err(SignatureError::Mismatch));
    // Cut short or with a digit more: not a signature at all.
    assert_eq!(verify(Some(&good[..good.len() - 1]), &body, &secrets), Err(SignatureError::Malformed));
    assert_eq!(verify(Some(&format!("{good}0")), &body, &secrets), Err(SignatureError::Malformed));
    assert_eq!(verify(Some(&good.replace("sha256=", "sha1=")), &body, &secrets), Err(SignatureError::Malformed));
});
