//! SipHash-1-2 over a byte slice in one call, keyed per process: what Redis's `dict` hashes keys with.
//!
//! Why not `std`'s `RandomState`: it is SipHash-1-3 behind the streaming `Hasher` trait, which hashes
//! a slice's length as a separate 8-byte write and buffers the tail, about twice the instructions of
//! this one-shot form for a typical key; a key, a hash field or a set member is hashed on nearly every
//! command. A keyed SipHash still keeps hash flooding out (a client cannot choose colliding keys
//! without the random key), which is why Redis uses it and why a faster unkeyed hash is not used.

/// A random 128-bit key, fixed for the life of the hasher.
#[derive(Clone, Copy, Debug)]
pub struct SipKey {
    k0: u64,
    k1: u64,
}

impl SipKey {
    /// A key from the process's random source (`RandomState`'s seeds, which come from the OS).
    pub fn random() -> SipKey {
        use std::hash::{BuildHasher, Hasher};
        let seed = std::collections::hash_map::RandomState::new();
        let mut a = seed.build_hasher();
        a.write_u8(0);
        let mut b = seed.build_hasher();
        b.write_u8(1);
        SipKey { k0: a.finish(), k1: b.finish() }
    }

    #[cfg(test)]
    const fn new(k0: u64, k1: u64) -> SipKey {
        SipKey { k0, k1 }
    }

    /// SipHash-1-2 of `data`.
    #[inline]
    pub fn hash(&self, data: &[u8]) -> u64 {
        sip::<1, 2>(self.k0, self.k1, data)
    }
}

#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-C-D (C compression rounds per 8-byte block, D finalization rounds).
#[inline(always)]
fn sip<const C: usize, const D: usize>(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [k0 ^ 0x736f_6d65_7073_6575, k1 ^ 0x646f_7261_6e64_6f6d, k0 ^ 0x6c79_6765_6e65_7261, k1 ^ 0x7465_6462_7974_6573];
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let m = u64::from_le_bytes(block.try_into().expect("8 bytes"));
        v[3] ^= m;
        for _ in 0..C {
            round(&mut v);
        }
        v[0] ^= m;
    }
    let tail = blocks.remainder();
    let mut last = (data.len() as u64) << 56;
    for (i, b) in tail.iter().enumerate() {
        last |= u64::from(*b) << (8 * i);
    }
    v[3] ^= last;
    for _ in 0..C {
        round(&mut v);
    }
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rounds are SipHash's: with 2 and 4 rounds the function is `std`'s SipHasher (SipHash-2-4)
    /// for every length around the block size.
    #[test]
    #[allow(deprecated)]
    fn rounds_are_siphash() {
        use std::hash::Hasher;
        let data: Vec<u8> = (0..40u8).collect();
        for len in 0..data.len() {
            let mut reference = std::hash::SipHasher::new_with_keys(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
            reference.write(&data[..len]);
            assert_eq!(sip::<2, 4>(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908, &data[..len]), reference.finish(), "length {len}");
        }
        // The published SipHash-2-4 vector for 15 bytes 00..0e under key 00..0f.
        assert_eq!(sip::<2, 4>(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908, &data[..15]), 0xa129_ca61_49be_45e5);
        let key = SipKey::new(1, 2);
        assert_ne!(key.hash(b"a"), key.hash(b"b"));
        assert_ne!(SipKey::random().hash(b"a"), SipKey::random().hash(b"a"));
    }
}
