//! Numbers read in place from a GGUF file's bytes, for the few big metadata arrays that live as
//! long as the model (a SentencePiece vocabulary's scores): no copy on the heap, where the
//! metadata's own `Vec` would be duplicated.

use std::sync::Arc;

use super::mmap::Storage;

/// A little-endian f32 array inside a file's bytes (any alignment: each element is read with
/// `from_le_bytes`).
#[derive(Clone)]
pub(crate) struct F32View {
    storage: Arc<Storage>,
    start: usize,
    len: usize,
}

impl F32View {
    /// The `len` floats at `start` in `storage`; None when they are not all there.
    pub(crate) fn new(storage: Arc<Storage>, start: usize, len: usize) -> Option<F32View> {
        let end = len.checked_mul(4)?.checked_add(start)?;
        storage.bytes().get(start..end)?;
        Some(F32View {
            storage,
            start,
            len,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Element `i`, or None out of range.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<f32> {
        if i >= self.len {
            return None;
        }
        let p = self.start.checked_add(i * 4)?;
        let b: [u8; 4] = self
            .storage
            .bytes()
            .get(p..p.checked_add(4)?)?
            .try_into()
            .ok()?;
        Some(f32::from_le_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_place() {
        let mut bytes = vec![0xAA];
        for x in [1.5f32, -0.0, f32::INFINITY] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let s = Arc::new(Storage::Owned(bytes));
        let v = F32View::new(Arc::clone(&s), 1, 3).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v.get(0), Some(1.5));
        assert_eq!(v.get(1).map(f32::to_bits), Some((-0.0f32).to_bits()));
        assert_eq!(v.get(2), Some(f32::INFINITY));
        assert_eq!(v.get(3), None);
        assert!(F32View::new(Arc::clone(&s), 2, 3).is_none());
        assert!(F32View::new(s, 1, usize::MAX).is_none());
    }

    #[test]
    fn a_files_f32_array_in_place() {
        use crate::gguf::{Array, GgufFile, GgufWriter, Value};
        let scores = vec![0.5f32, -1000.0, f32::NAN, 3.25];
        let mut w = GgufWriter::new();
        w.add("a.string", Value::String("x".into())).unwrap();
        w.add("a.scores", Value::Array(Array::F32(scores.clone())))
            .unwrap();
        w.add("a.ints", Value::Array(Array::I32(vec![1, 2])))
            .unwrap();
        let f =
            GgufFile::from_bytes(w.write_header(Vec::new()).unwrap().finish().unwrap()).unwrap();
        let v = f.f32_view("a.scores").unwrap();
        let read: Vec<u32> = (0..v.len())
            .filter_map(|i| v.get(i))
            .map(f32::to_bits)
            .collect();
        assert_eq!(read, scores.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        assert!(f.f32_view("a.ints").is_none());
        assert!(f.f32_view("a.string").is_none());
        assert!(f.f32_view("missing").is_none());
    }
}
