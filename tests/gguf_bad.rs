//! Hand-made bad GGUF files: each must be refused with the right error variant, never a panic,
//! an abort (a huge allocation) or a hang.

mod gguf_support;

use gguf_support::*;
use tramontane::{Error, GgufFile};

/// A GGUF file built field by field, so that any field can be wrong.
#[derive(Clone, Default)]
struct Raw(Vec<u8>);

impl Raw {
    /// Magic, version and the two counts.
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        Raw::default()
            .bytes(b"GGUF")
            .u32(version)
            .u64(n_tensors)
            .u64(n_kv)
    }
    fn bytes(mut self, b: &[u8]) -> Raw {
        self.0.extend_from_slice(b);
        self
    }
    fn u32(self, v: u32) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(self, v: u64) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    fn str(self, s: &[u8]) -> Raw {
        self.u64(s.len() as u64).bytes(s)
    }
    /// A key of value type u32 (4).
    fn kv_u32(self, key: &str, v: u32) -> Raw {
        self.str(key.as_bytes()).u32(4).u32(v)
    }
    /// A tensor info.
    fn tensor(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Raw {
        let mut r = self.str(name.as_bytes()).u32(dims.len() as u32);
        for &d in dims {
            r = r.u64(d);
        }
        r.u32(ty).u64(offset)
    }
    /// Zero padding up to a multiple of 32, then `n` data bytes.
    fn data(mut self, n: usize) -> Raw {
        let pad = self.0.len().next_multiple_of(32);
        self.0.resize(pad + n, 0);
        self
    }
    fn open(&self) -> tramontane::Result<GgufFile> {
        GgufFile::from_bytes(self.0.clone())
    }
    fn err(&self) -> Error {
        match self.open() {
            Ok(_) => panic!("accepted a bad file"),
            Err(e) => e,
        }
    }
}

/// One valid F32 tensor "t" of 8 values, to vary one field at a time.
fn one_tensor(dims: &[u64], ty: u32, offset: u64, data: usize) -> Raw {
    Raw::header(3, 1, 0)
        .tensor("t", dims, ty, offset)
        .data(data)
}

#[test]
fn the_raw_builder_makes_valid_files() {
    let f = one_tensor(&[8], 0, 0, 32).open().expect("valid");
    assert_eq!(f.tensor("t").unwrap().data.len(), 32);
    let f = Raw::header(2, 0, 1)
        .kv_u32("a", 7)
        .open()
        .expect("valid v2");
    assert_eq!((f.version(), f.get_u32("a").unwrap()), (2, 7));
}

#[test]
fn truncated_at_every_offset_is_refused() {
    let tensors = some_tensors();
    let full = write(&every_value_type(), &tensors).unwrap();
    let f = GgufFile::from_bytes(full.clone()).unwrap();
    let data_offset = f.data_offset() as usize;
    let data_end = data_offset
        + f.tensors()
            .map(|t| (t.offset + t.n_bytes) as usize)
            .max()
            .unwrap();
    // The first length at which the header parses (bounds fail instead) is the header end.
    let mut header_end = None;
    for len in 0..full.len() {
        let r = GgufFile::from_bytes(full[..len].to_vec());
        match (r, header_end) {
            (Ok(_), _) => assert!(len >= data_end, "accepted a file cut at {len}"),
            (Err(Error::TensorOutOfBounds { .. }), None) => header_end = Some(len),
            (Err(Error::TensorOutOfBounds { .. }), Some(_)) => assert!(len < data_end),
            (
                Err(Error::Truncated { .. } | Error::LengthPastEnd { .. } | Error::TooMany { .. }),
                None,
            ) => {}
            (Err(Error::BadMagic { .. }), _) => panic!("prefix of the magic called bad at {len}"),
            (Err(e), h) => panic!("cut at {len} (header end {h:?}): unexpected {e}"),
        }
    }
    let header_end = header_end.expect("a header end");
    assert!(header_end + 32 > data_offset && header_end <= data_offset);
}

#[test]
fn truncated_file_without_tensors_is_refused_everywhere() {
    let full = write(&every_value_type(), &[]).unwrap();
    for len in 0..full.len() {
        match GgufFile::from_bytes(full[..len].to_vec()) {
            Err(Error::Truncated { .. } | Error::LengthPastEnd { .. } | Error::TooMany { .. }) => {}
            // Without tensors the header may end before its padding.
            Ok(f) => assert!(len as u64 + 32 > f.data_offset()),
            Err(e) => panic!("cut at {len}: unexpected {e}"),
        }
    }
}

#[test]
fn magic_version_and_endianness() {
    assert!(matches!(Raw::default().err(), Error::Truncated { .. }));
    assert!(matches!(
        Raw::default().bytes(b"GG").err(),
        Error::Truncated { .. }
    ));
    assert!(matches!(
        Raw::default().bytes(b"GGML....").err(),
        Error::BadMagic { .. }
    ));
    assert!(matches!(
        Raw::default().bytes(b"\x00").err(),
        Error::BadMagic { .. }
    ));
    assert!(matches!(
        Raw::header(1, 0, 0).err(),
        Error::UnsupportedVersion { version: 1 }
    ));
    assert!(matches!(
        Raw::header(4, 0, 0).err(),
        Error::UnsupportedVersion { version: 4 }
    ));
    // A big-endian writer stores version 3 as 00 00 00 03 (and counts byte-swapped too).
    let be = Raw::default()
        .bytes(b"GGUF")
        .bytes(&3u32.to_be_bytes())
        .u64(0)
        .u64(0);
    assert!(matches!(be.err(), Error::BigEndian { version: 3 }));
    let be2 = Raw::default()
        .bytes(b"GGUF")
        .bytes(&2u32.to_be_bytes())
        .u64(0)
        .u64(0);
    assert!(matches!(be2.err(), Error::BigEndian { version: 2 }));
}

#[test]
fn huge_counts_and_lengths_are_refused_before_allocating() {
    assert!(matches!(
        Raw::header(3, 0, u64::MAX).err(),
        Error::TooMany { .. }
    ));
    assert!(matches!(
        Raw::header(3, u64::MAX, 0).err(),
        Error::TooMany { .. }
    ));
    // 1000 keys cannot fit in 100 bytes (each needs at least 13).
    let r = Raw::header(3, 0, 1000).bytes(&[0; 100]);
    assert!(matches!(r.err(), Error::TooMany { count: 1000, .. }));
    // A tensor count that the bytes after the metadata cannot hold.
    let r = Raw::header(3, 2, 1).kv_u32("k", 1).tensor("t", &[8], 0, 0);
    assert!(matches!(r.err(), Error::TooMany { count: 2, .. }));
    // Key and string lengths past the end.
    let r = Raw::header(3, 0, 1).u64(u64::MAX).bytes(&[0; 32]);
    assert!(matches!(
        r.err(),
        Error::LengthPastEnd { len: u64::MAX, .. }
    ));
    let r = Raw::header(3, 0, 1)
        .str(b"k")
        .u32(8)
        .u64(1 << 40)
        .bytes(b"x");
    assert!(matches!(r.err(), Error::LengthPastEnd { .. }));
    // Array counts: u32 elements, strings, and arrays of arrays.
    for elem in [4u32, 8, 9, 12] {
        let r = Raw::header(3, 0, 1)
            .str(b"a")
            .u32(9)
            .u32(elem)
            .u64(u64::MAX / 2)
            .bytes(&[0; 64]);
        assert!(
            matches!(r.err(), Error::TooMany { .. }),
            "element type {elem}"
        );
    }
    // A tensor name past the end.
    let r = Raw::header(3, 1, 0).u64(1 << 50).bytes(&[0; 40]);
    assert!(matches!(r.err(), Error::LengthPastEnd { .. }));
}

#[test]
fn bad_value_type_ids() {
    let r = Raw::header(3, 0, 1).str(b"k").u32(13).u32(0);
    assert!(matches!(r.err(), Error::InvalidValueType { id: 13, .. }));
    let r = Raw::header(3, 0, 1).str(b"k").u32(u32::MAX).u32(0);
    assert!(matches!(r.err(), Error::InvalidValueType { .. }));
    let r = Raw::header(3, 0, 1).str(b"k").u32(9).u32(13).u64(1).u32(0);
    assert!(matches!(r.err(), Error::InvalidValueType { id: 13, .. }));
}

#[test]
fn invalid_utf8_in_keys_values_and_names() {
    let r = Raw::header(3, 0, 1).str(b"k\xff").u32(4).u32(0);
    assert!(matches!(r.err(), Error::InvalidUtf8 { .. }));
    let r = Raw::header(3, 0, 1).str(b"k").u32(8).str(b"\xc3\x28");
    assert!(matches!(r.err(), Error::InvalidUtf8 { .. }));
    let r = Raw::header(3, 0, 1)
        .str(b"k")
        .u32(9)
        .u32(8)
        .u64(1)
        .str(b"\x80");
    assert!(matches!(r.err(), Error::InvalidUtf8 { .. }));
    let r = Raw::header(3, 1, 0)
        .str(b"\xfe")
        .u32(1)
        .u64(8)
        .u32(0)
        .u64(0)
        .data(32);
    assert!(matches!(r.err(), Error::InvalidUtf8 { .. }));
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let nested = |depth: usize| {
        // depth arrays, each holding the next; the innermost is an empty u8 array.
        let mut r = Raw::header(3, 0, 1).str(b"deep").u32(9);
        for _ in 1..depth {
            r = r.u32(9).u64(1);
        }
        r.u32(0).u64(0)
    };
    let limit = tramontane::gguf::MAX_ARRAY_DEPTH;
    nested(limit).open().expect("at the limit");
    assert!(matches!(
        nested(limit + 1).err(),
        Error::NestingTooDeep { .. }
    ));
    // Far deeper than the bytes need: must not overflow the stack either.
    assert!(matches!(
        nested(100_000).err(),
        Error::NestingTooDeep { .. }
    ));
}

#[test]
fn duplicate_keys_and_tensors() {
    let r = Raw::header(3, 0, 2).kv_u32("a", 1).kv_u32("a", 2);
    assert!(matches!(r.err(), Error::DuplicateKey { ref key, .. } if key == "a"));
    let r = Raw::header(3, 2, 0)
        .tensor("t", &[8], 0, 0)
        .tensor("t", &[8], 0, 32)
        .data(64);
    assert!(matches!(r.err(), Error::DuplicateTensor { ref name, .. } if name == "t"));
}

#[test]
fn bad_alignment() {
    // Not a power of two, or (1 GiB) above the 16 MiB bound: a tiny file with no tensors
    // asking for 1 GiB of alignment made the writer pad a header to that size.
    for v in [0u32, 48, 3, 1 << 30] {
        let r = Raw::header(3, 0, 1).kv_u32("general.alignment", v);
        assert!(matches!(r.err(), Error::BadAlignment { .. }), "{v}");
    }
    // Right value, wrong type (u64), as llama.cpp requires u32.
    let r = Raw::header(3, 0, 1)
        .str(b"general.alignment")
        .u32(10)
        .u64(32);
    assert!(matches!(r.err(), Error::BadAlignment { .. }));
    let r = Raw::header(3, 0, 1)
        .str(b"general.alignment")
        .u32(8)
        .str(b"32");
    assert!(matches!(r.err(), Error::BadAlignment { .. }));
    // A good one is used, up to the bound.
    let f = Raw::header(3, 0, 1)
        .kv_u32("general.alignment", 64)
        .open()
        .unwrap();
    assert_eq!((f.alignment(), f.data_offset() % 64), (64, 0));
    let f = Raw::header(3, 0, 1)
        .kv_u32("general.alignment", 1 << 24)
        .open()
        .unwrap();
    assert_eq!(f.alignment(), 1 << 24);
}

#[test]
fn bad_dims() {
    let dims_err = |dims: &[u64]| one_tensor(dims, 0, 0, 64).err();
    assert!(matches!(dims_err(&[]), Error::BadDims { .. }));
    assert!(matches!(dims_err(&[1, 1, 1, 1, 1]), Error::BadDims { .. }));
    assert!(matches!(dims_err(&[8, 0]), Error::BadDims { .. }));
    assert!(matches!(dims_err(&[u64::MAX]), Error::BadDims { .. }));
    assert!(matches!(dims_err(&[1 << 63]), Error::BadDims { .. }));
    // Element count overflows u64, or i64 as ggml counts.
    assert!(matches!(
        dims_err(&[1 << 40, 1 << 40]),
        Error::Overflow { .. }
    ));
    assert!(matches!(
        dims_err(&[1 << 32, 1 << 31]),
        Error::Overflow { .. }
    ));
    // Elements fit, bytes do not: 2^62 f32 values.
    assert!(matches!(
        dims_err(&[1 << 31, 1 << 31]),
        Error::Overflow { .. }
    ));
    // n_dims huge: refused before reading any dims.
    let r = Raw::header(3, 1, 0).str(b"t").u32(u32::MAX).bytes(&[0; 64]);
    assert!(matches!(r.err(), Error::BadDims { .. }));
}

#[test]
fn bad_tensor_type_ids() {
    assert!(matches!(
        one_tensor(&[32], 1000, 0, 64).err(),
        Error::UnknownTensorType { id: 1000, .. }
    ));
    assert!(matches!(
        one_tensor(&[32], 43, 0, 64).err(),
        Error::UnknownTensorType { id: 43, .. }
    ));
    for (id, want) in [
        (4, "Q4_2"),
        (5, "Q4_3"),
        (31, "Q4_0_4_4"),
        (38, "IQ4_NL_8_8"),
    ] {
        match one_tensor(&[32], id, 0, 64).err() {
            Error::RetiredTensorType { name, .. } => assert_eq!(name, want),
            e => panic!("id {id}: {e}"),
        }
    }
    // Q4_0 rows must be whole 32-value blocks.
    assert!(matches!(
        one_tensor(&[33], 2, 0, 64).err(),
        Error::NotBlockMultiple {
            ne0: 33,
            block: 32,
            ..
        }
    ));
}

#[test]
fn tensor_bounds_and_alignment() {
    // 8 f32 = 32 bytes; the data section has 32.
    one_tensor(&[8], 0, 0, 32).open().unwrap();
    assert!(matches!(
        one_tensor(&[8], 0, 0, 31).err(),
        Error::TensorOutOfBounds { .. }
    ));
    assert!(matches!(
        one_tensor(&[8], 0, 32, 32).err(),
        Error::TensorOutOfBounds { .. }
    ));
    // offset + size overflows u64
    assert!(matches!(
        one_tensor(&[8], 0, u64::MAX - 31, 32).err(),
        Error::TensorOutOfBounds { .. }
    ));
    assert!(matches!(
        one_tensor(&[8], 0, 16, 64).err(),
        Error::MisalignedTensor {
            offset: 16,
            alignment: 32,
            ..
        }
    ));
}
