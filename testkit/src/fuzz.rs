//! A small mutation fuzzer for parsers, run as an ordinary test: from valid
//! inputs it makes byte flips, overwrites, insertions, deletions,
//! truncations, duplications and wholly random inputs, and a parser passes
//! when it returns (Ok or Err) for every one without panicking or hanging.
//! `ALLUXIO_FUZZ_ITERATIONS` sets how many inputs each parser gets (2,000
//! by default, what CI runs; `scripts/fuzz.sh` runs a million). The seed
//! is fixed per run and printed, so a failure can be replayed with
//! `ALLUXIO_FUZZ_SEED`.
//!
//! The same valid inputs seed the coverage-guided cargo-fuzz targets in
//! `fuzz/` ([`save_seeds`]; `scripts/fuzz-smoke.sh`), so both fuzzers
//! start from one definition of what a valid input looks like.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Inputs per parser.
pub fn iterations() -> usize {
    std::env::var("ALLUXIO_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// The seed of this run: `ALLUXIO_FUZZ_SEED`, or a random one (printed).
pub fn seed() -> u64 {
    let seed = std::env::var("ALLUXIO_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("fuzz seed {seed} (replay with ALLUXIO_FUZZ_SEED={seed})");
    seed
}

/// One mutation of `data`.
pub fn mutate(rng: &mut StdRng, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        let len = out.len();
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                // Boundary values are where parsers go wrong.
                out[i] = [0x00, 0xff, 0x7f, 0x80, 0x01][rng.random_range(0..5)];
            }
            2 => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                out.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(16));
                out.drain(i..i + n);
            }
            4 => out.truncate(rng.random_range(0..=len)),
            5 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(64));
                let piece = out[i..i + n].to_vec();
                let at = rng.random_range(0..=len);
                out.splice(at..at, piece);
            }
            _ => {
                let n = rng.random_range(0..64);
                out = (0..n).map(|_| rng.random()).collect();
            }
        }
    }
    out
}

/// Calls `parse` with `iterations()` inputs made from `seeds` (valid
/// examples); `fix` may repair what makes every mutation fail early (a
/// checksum) so the parser's deeper paths are reached too.
pub fn run(name: &str, seeds: &[Vec<u8>], fix: impl Fn(&mut [u8]), mut parse: impl FnMut(&[u8])) {
    assert!(!seeds.is_empty(), "{name}: no seed inputs");
    let mut rng = StdRng::seed_from_u64(seed());
    for _ in 0..iterations() {
        let base = &seeds[rng.random_range(0..seeds.len())];
        let mut input = mutate(&mut rng, base);
        if rng.random_bool(0.5) {
            fix(&mut input);
        }
        parse(&input);
    }
}

/// Writes `seeds` as the starting corpus of the cargo-fuzz target
/// `target` (`fuzz/fuzz_targets/<target>.rs`) when `ALLUXIO_FUZZ_SEEDS_DIR`
/// is set: one file per seed in `<dir>/<target>/`.
pub fn save_seeds(target: &str, seeds: &[Vec<u8>]) {
    let Some(dir) = std::env::var_os("ALLUXIO_FUZZ_SEEDS_DIR") else {
        return;
    };
    let dir = std::path::Path::new(&dir).join(target);
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), seed).expect("write a seed");
    }
}
