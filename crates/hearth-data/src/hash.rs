//! The few fixed hash functions the crate computes itself (FNV-1a and the splitmix64 mixer),
//! so that duplicate hashes and near-duplicate signatures are the same on every platform and
//! in every run, unlike those of the standard library's randomly seeded hasher.

/// The FNV-1a starting state.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// `state` advanced over `bytes` by FNV-1a.
pub(crate) fn fnv1a(mut state: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        state = (state ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    state
}

/// A deterministic 64-bit hash of a text: FNV-1a, then the splitmix64 finalizer.
pub(crate) fn text_hash(text: &str) -> u64 {
    mix64(fnv1a(FNV_OFFSET, text.as_bytes()))
}

/// The next number of a splitmix64 sequence.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix64(*state)
}

/// The splitmix64 finalizer: a bijection of u64 that scrambles every bit.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // FNV-1a of "a" is a published test vector.
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b""), FNV_OFFSET);
        // The first splitmix64 output from seed 0 is a published test vector too.
        assert_eq!(splitmix64(&mut 0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(text_hash("a"), mix64(0xaf63_dc4c_8601_ec8c));
    }
}
