//! The part of numpy's legacy `RandomState` (MT19937) that scikit-learn's shuffled splits use:
//! integer seeding, `permutation(n)` and `choice(a, size, replace=False)`.
//!
//! Written from the published algorithms: MT19937 (Matsumoto & Nishimura 1998, `init_genrand` seeding and
//! the standard tempering), and numpy's documented legacy shuffle (Fisher–Yates from the last position
//! down, each swap partner drawn by masked rejection sampling of 32-bit outputs). With the same seed the
//! draws equal numpy's bit for bit (checked against numpy in the golden tests).

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// numpy `RandomState(seed)` for an integer seed in `[0, 2^32)`.
#[derive(Clone)]
pub(crate) struct NumpyRandomState {
    state: [u32; N],
    pos: usize,
}

impl NumpyRandomState {
    /// Seeds like `np.random.RandomState(seed)`.
    pub(crate) fn new(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        NumpyRandomState { state, pos: N }
    }

    fn twist(&mut self) {
        for i in 0..N {
            let y = (self.state[i] & UPPER_MASK) | (self.state[(i + 1) % N] & LOWER_MASK);
            let mut next = self.state[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= MATRIX_A;
            }
            self.state[i] = next;
        }
        self.pos = 0;
    }

    /// One tempered 32-bit output.
    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.twist();
        }
        let mut y = self.state[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    fn next_u64(&mut self) -> u64 {
        let hi = self.next_u32() as u64;
        let lo = self.next_u32() as u64;
        (hi << 32) | lo
    }

    /// A uniform integer in `[0, max]` by masked rejection (numpy's `random_interval`).
    fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        mask |= mask >> 32;
        if max <= 0xffff_ffff {
            loop {
                let v = (self.next_u32() as u64) & mask;
                if v <= max {
                    return v;
                }
            }
        } else {
            loop {
                let v = self.next_u64() & mask;
                if v <= max {
                    return v;
                }
            }
        }
    }

    /// Shuffles a slice in place like `RandomState.shuffle` on a 1-d array.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.interval(i as u64) as usize;
            items.swap(i, j);
        }
    }

    /// `RandomState.permutation(n)`.
    pub(crate) fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        self.shuffle(&mut v);
        v
    }

    /// `RandomState.choice(items, size, replace=False)` without probabilities.
    pub(crate) fn choice_without_replacement(
        &mut self,
        items: &[usize],
        size: usize,
    ) -> Vec<usize> {
        let perm = self.permutation(items.len());
        perm[..size.min(items.len())]
            .iter()
            .map(|&i| items[i])
            .collect()
    }
}
