//! A bit-exact copy of CPython's `random.Random` for the few operations a data split needs.
//!
//! The reference training script shuffles its rows with `random.Random(seed).shuffle(rows)`.
//! To hold out the very same evaluation rows, this module reproduces CPython's Mersenne
//! Twister (`Modules/_randommodule.c`: `init_by_array` seeding from the 32-bit chunks of the
//! seed, `genrand_uint32`, `getrandbits`) and the pure-Python `_randbelow_with_getrandbits` and
//! `shuffle` of `Lib/random.py`.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// CPython's `random.Random`, seeded from a non-negative integer.
#[derive(Debug, Clone)]
pub struct PythonRandom {
    state: [u32; N],
    index: usize,
}

impl PythonRandom {
    /// The generator `random.Random(seed)` creates.
    ///
    /// CPython splits the absolute value of an integer seed into 32-bit words, least significant
    /// first, with no leading zero words (zero itself is the single word 0), and feeds them to
    /// `init_by_array`. A `u64` is therefore one word below 2^32 and two words from there on.
    pub fn new(seed: u64) -> Self {
        // Truncation is the point: these are the low and high 32-bit chunks of the seed.
        let low = seed as u32;
        let high = (seed >> 32) as u32;
        let mut rng = Self {
            state: [0; N],
            index: N,
        };
        if high == 0 {
            rng.init_by_array(&[low]);
        } else {
            rng.init_by_array(&[low, high]);
        }
        rng
    }

    fn init_genrand(&mut self, seed: u32) {
        self.state[0] = seed;
        for i in 1..N {
            let prev = self.state[i - 1];
            // `i < 624`, so the cast is exact.
            self.state[i] = 1_812_433_253_u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let mt = &mut self.state;
        let mut i = 1;
        let mut j = 0;
        for _ in 0..N.max(key.len()) {
            let prev = mt[i - 1];
            // The key index is added as a 32-bit value, wrapping as in C.
            mt[i] = (mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1];
            mt[i] =
                (mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        // The most significant bit is set so the state can never be all zeros.
        mt[0] = 0x8000_0000;
    }

    /// The next 32-bit output of the twister (CPython's `genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    fn twist(&mut self) {
        let mt = &mut self.state;
        let mag01 = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for kk in 0..N - M {
            let y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + M] ^ (y >> 1) ^ mag01(y);
        }
        for kk in N - M..N - 1 {
            let y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + M - N] ^ (y >> 1) ^ mag01(y);
        }
        let y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
        mt[N - 1] = mt[M - 1] ^ (y >> 1) ^ mag01(y);
        self.index = 0;
    }

    /// CPython's `getrandbits(k)` for `1 <= k <= 64`.
    ///
    /// Up to 32 bits come from the top of one output. Beyond that CPython fills 32-bit words
    /// from the least significant up, and the last (most significant) word keeps only the top
    /// bits of its output.
    fn getrandbits(&mut self, k: u32) -> u64 {
        debug_assert!((1..=64).contains(&k));
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        let low = u64::from(self.next_u32());
        let high = u64::from(self.next_u32() >> (64 - k));
        (high << 32) | low
    }

    /// A uniform integer in `0..n` for `n >= 1`, drawn the way CPython's
    /// `_randbelow_with_getrandbits` draws it (rejection sampling on `n.bit_length()` bits).
    ///
    /// `n == 0` returns 0 instead of raising, since no caller here can ask for it.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = u64::BITS - n.leading_zeros();
        let mut r = self.getrandbits(k);
        while r >= n {
            r = self.getrandbits(k);
        }
        r
    }

    /// Shuffles in place exactly as `random.Random.shuffle` does: walking from the back,
    /// swapping each position `i` with a position drawn from `0..=i`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            // `i + 1` fits in u64 and the result is at most `i`, so both casts are exact.
            let j = self.randbelow(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The order `random.Random(seed).shuffle(list(range(n)))` leaves the indices `0..n` in.
pub fn python_shuffle_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    PythonRandom::new(seed).shuffle(&mut indices);
    indices
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is the report a failing test should give.
mod tests {
    use super::*;

    #[test]
    fn raw_outputs_match_cpython() {
        // python3 -c "import random; r=random.Random(0); print([r.getrandbits(32) for _ in range(3)])"
        let mut rng = PythonRandom::new(0);
        let got: Vec<u32> = (0..3).map(|_| rng.next_u32()).collect();
        assert_eq!(got, EXPECTED_SEED0_U32);
    }

    #[test]
    fn wide_getrandbits_matches_cpython() {
        // python3 -c "import random; r=random.Random(7); print([r.getrandbits(k) for k in (40, 64, 33)])"
        let mut rng = PythonRandom::new(7);
        let got: Vec<u64> = [40, 64, 33].iter().map(|&k| rng.getrandbits(k)).collect();
        assert_eq!(got, EXPECTED_SEED7_WIDE);
    }

    #[test]
    fn randbelow_one_consumes_a_draw_and_returns_zero() {
        // Python draws one bit for n == 1 (bit_length of 1 is 1) and rejects until it is 0;
        // the shuffle never asks for it, but the generator must stay in step if someone does.
        let mut rng = PythonRandom::new(3);
        assert_eq!(rng.randbelow(1), 0);
    }

    const EXPECTED_SEED0_U32: [u32; 3] = [3_626_764_237, 1_654_615_998, 3_255_389_356];
    const EXPECTED_SEED7_WIDE: [u64; 3] =
        [1_040_772_936_760, 7_283_207_964_119_141_687, 2_795_742_288];
}
