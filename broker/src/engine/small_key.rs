//! Keys stored inline when short, so a table lookup touches one allocation instead of two.
//!
//! Most keys are short (`user:1234`, `session:abcdef`): up to 22 bytes live inside the table node
//! itself, longer ones on the heap. This saves a cache miss per probe and 16-32 bytes per key.

const INLINE: usize = 22;

#[derive(Clone)]
pub enum SmallKey {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl SmallKey {
    pub fn new(key: &[u8]) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            SmallKey::Inline { len: key.len() as u8, bytes }
        } else {
            SmallKey::Heap(key.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SmallKey::Inline { len, bytes } => &bytes[..*len as usize],
            SmallKey::Heap(b) => b,
        }
    }
}

impl std::fmt::Debug for SmallKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_keys() {
        assert_eq!(std::mem::size_of::<SmallKey>(), 24);
        for key in [&b""[..], b"k", &[7u8; 22], &[9u8; 23], &[1u8; 300]] {
            assert_eq!(SmallKey::new(key).as_bytes(), key);
        }
        assert!(matches!(SmallKey::new(&[0; 22]), SmallKey::Inline { .. }));
        assert!(matches!(SmallKey::new(&[0; 23]), SmallKey::Heap(_)));
    }
}
