//! libFuzzer target: the shadow model (`runtime/tests/support/shadow.rs`)
//! on operation sequences decoded from the fuzzer's bytes. The first byte
//! picks the heap's settings (GOGC, stress, checkmark, background sweep);
//! the second, whether the run is the two-mutator variant (odd: the rest
//! is split between two threads) or one mutator; the rest are operations
//! (`Op::decode`). A difference between the heap and the shadow panics,
//! which libFuzzer reports as a crash with the input that caused it.
//! `SPANHEAP_MODEL_FAULT=n` runs it against a collector broken on purpose
//! (marking loses every n-th object), to see the fuzzer catch it.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../runtime/tests/support/shadow.rs"]
mod shadow;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (mut cfg, ops) = shadow::decode(rest);
    // A check of the fuzzer itself: SPANHEAP_MODEL_FAULT=n breaks the
    // collector (marking loses every n-th object), which must crash.
    cfg.fault_lose_every = std::env::var("SPANHEAP_MODEL_FAULT")
        .ok()
        .and_then(|v| v.parse().ok());
    if mode & 1 == 1 && ops.len() >= 2 {
        let (a, b) = ops.split_at(ops.len() / 2);
        shadow::run_concurrent(&cfg, a, b, 24);
    } else {
        shadow::run_single(&cfg, &ops);
    }
});
