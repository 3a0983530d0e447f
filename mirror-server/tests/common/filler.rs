//! Shared by the `serve` and `sync` test binaries (included with `#[path]`).

/// Deterministic filler bytes.
pub fn filler(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
