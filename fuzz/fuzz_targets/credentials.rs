//! Tokens, capabilities, act-as headers and cluster keys, as a caller
//! sends them: each is refused or accepted, never a panic. A forged input
//! must not verify under a key the fuzzer does not know.
#![no_main]

use alluxio_common::auth::{ActAs, ClusterKey};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static ClusterKey {
    static KEY: OnceLock<ClusterKey> = OnceLock::new();
    KEY.get_or_init(ClusterKey::generate)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // A fresh random key per process: nothing the fuzzer builds can carry
    // its MAC, so a token or capability that verifies is a forgery.
    assert!(key().verify(&text).is_err(), "forged token accepted");
    assert!(
        key().verify_capability(&text, 42).is_err(),
        "forged capability accepted"
    );
    let _ = ActAs::parse(&text);
    let _ = ClusterKey::from_hex(&text);
});
