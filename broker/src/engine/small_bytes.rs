//! Byte strings stored inline when short: keys and string values.
//!
//! Most keys (`user:1234`) and many values (counters, flags, small tokens) are short. Up to 30 bytes
//! live inside the table node itself; longer ones in a `Vec` (so APPEND grows in amortised time). A
//! short value then costs no allocation to write, no free to overwrite and no extra cache miss to read,
//! which is most of what a SET or GET costs once the socket work is done.

const INLINE: usize = 30;

#[derive(Clone, PartialEq, Eq)]
pub enum SmallBytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Default for SmallBytes {
    fn default() -> Self {
        SmallBytes::Inline { len: 0, bytes: [0; INLINE] }
    }
}

impl SmallBytes {
    pub fn new(data: &[u8]) -> Self {
        if data.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..data.len()].copy_from_slice(data);
            SmallBytes::Inline { len: data.len() as u8, bytes }
        } else {
            SmallBytes::Heap(data.to_vec())
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, bytes } => &bytes[..*len as usize],
            SmallBytes::Heap(v) => v,
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            SmallBytes::Inline { len, bytes } => &mut bytes[..*len as usize],
            SmallBytes::Heap(v) => v,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The heap bytes a string of `len` bytes takes (0 when it sits inline).
    pub const fn heap_len(len: usize) -> usize {
        if len <= INLINE { 0 } else { len }
    }

    /// Heap bytes held beyond the inline form (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        match self {
            SmallBytes::Inline { .. } => 0,
            SmallBytes::Heap(v) => v.capacity(),
        }
    }

    /// Grows or shrinks to `new_len`, padding with `fill`; moves to the heap when it no longer fits.
    pub fn resize(&mut self, new_len: usize, fill: u8) {
        match self {
            SmallBytes::Inline { len, bytes } if new_len <= INLINE => {
                if new_len > *len as usize {
                    bytes[*len as usize..new_len].fill(fill);
                }
                *len = new_len as u8;
            }
            SmallBytes::Inline { .. } => {
                let mut v = Vec::with_capacity(new_len);
                v.extend_from_slice(self.as_slice());
                v.resize(new_len, fill);
                *self = SmallBytes::Heap(v);
            }
            SmallBytes::Heap(v) => v.resize(new_len, fill),
        }
    }

    pub fn extend_from_slice(&mut self, data: &[u8]) {
        let start = self.len();
        self.resize(start + data.len(), 0);
        self.as_mut_slice()[start..].copy_from_slice(data);
    }
}

impl std::fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_growth() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 32);
        for data in [&b""[..], b"k", &[7u8; 30], &[9u8; 31], &[1u8; 300]] {
            assert_eq!(SmallBytes::new(data).as_slice(), data);
        }
        assert!(matches!(SmallBytes::new(&[0; 30]), SmallBytes::Inline { .. }));
        let mut s = SmallBytes::new(b"hello");
        s.extend_from_slice(b" world");
        assert_eq!(s.as_slice(), b"hello world");
        s.extend_from_slice(&[b'!'; 40]);
        assert!(matches!(s, SmallBytes::Heap(_)));
        assert_eq!(s.len(), 51);
        let mut p = SmallBytes::default();
        p.resize(3, 0);
        p.as_mut_slice()[2] = b'x';
        assert_eq!(p.as_slice(), b"\0\0x");
    }
}
