//! Writer -> reader round trips, typed getters, and the writer's refusals.

mod gguf_support;

use gguf_support::*;
use tramontane::gguf::GgufWriter;
use tramontane::kernels::GgmlType;
use tramontane::{Array, Error, GgufFile, Value};

#[test]
fn every_value_type_round_trips_in_order() {
    let meta = every_value_type();
    let tensors = some_tensors();
    let f = GgufFile::from_bytes(write(&meta, &tensors).unwrap()).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    let read: Vec<(&str, &Value)> = f.metadata().iter().collect();
    assert_eq!(read.len(), meta.len());
    for ((k, v), (rk, rv)) in meta.iter().zip(&read) {
        assert_eq!(k, rk);
        // Compare bit patterns so -0.0 and other float edge values count.
        assert_eq!(canonical(v), canonical(rv), "{k}");
        assert_eq!(v, *rv, "{k}");
    }
    for t in &tensors {
        let got = f.tensor(t.name).unwrap();
        assert_eq!((got.ty(), got.dims()), (t.ty, &t.dims[..]));
        assert_eq!(got.data, &t.data[..], "{}", t.name);
        assert_eq!(got.info.offset % 32, 0);
    }
    let names: Vec<&str> = f.tensors().map(|t| t.name.as_str()).collect();
    let want: Vec<&str> = tensors.iter().map(|t| t.name).collect();
    assert_eq!(names, want, "file order");
}

#[test]
fn tensor_bytes_are_borrowed_from_the_file_not_copied() {
    let path = scratch("borrowed.gguf");
    std::fs::write(&path, write(&[], &some_tensors()).unwrap()).unwrap();
    let f = GgufFile::open(&path).unwrap();
    let whole = f.bytes().as_ptr_range();
    for t in f.tensors() {
        let data = f.tensor_of(t).unwrap().data;
        assert!(whole.contains(&data.as_ptr()));
        assert_eq!(
            data.as_ptr() as usize - whole.start as usize,
            (f.data_offset() + t.offset) as usize
        );
    }
}

#[test]
fn alignment_key_changes_padding_and_offsets() {
    let meta = vec![("general.alignment", Value::U32(64))];
    let tensors = some_tensors();
    let bytes = write(&meta, &tensors).unwrap();
    let f = GgufFile::from_bytes(bytes).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    // Each tensor starts where the previous one ended, rounded up to 64.
    let mut want = 0;
    for t in f.tensors() {
        assert_eq!(t.offset, want, "{}", t.name);
        want = (t.offset + t.n_bytes).div_ceil(64) * 64;
    }
}

#[test]
fn getters_convert_integers_that_fit_and_refuse_the_rest() {
    let meta = vec![
        ("u8", Value::U8(7)),
        ("i32.neg", Value::I32(-1)),
        ("i64.big", Value::I64(1 << 40)),
        ("u64.max", Value::U64(u64::MAX)),
        ("f64", Value::F64(0.25)),
        ("f64.huge", Value::F64(1e300)),
        ("s", Value::String("x".into())),
        ("b", Value::Bool(true)),
        ("a", Value::Array(Array::F32(vec![1.0]))),
    ];
    let f = GgufFile::from_bytes(write(&meta, &[]).unwrap()).unwrap();
    assert_eq!(f.get_u32("u8").unwrap(), 7);
    assert_eq!(f.get_u64("i64.big").unwrap(), 1 << 40);
    assert_eq!(f.get_i64("i32.neg").unwrap(), -1);
    assert_eq!(f.get_f32("f64").unwrap(), 0.25);
    assert_eq!(f.get_f32("u8").unwrap(), 7.0);
    assert_eq!(f.get_str("s").unwrap(), "x");
    assert!(f.get_bool("b").unwrap());
    assert_eq!(f.get_array("a").unwrap().as_f32s(), Some(&[1.0f32][..]));
    assert_eq!(f.opt_u32("absent").unwrap(), None);
    assert_eq!(f.opt_str("s").unwrap(), Some("x"));

    let wrong = |r: tramontane::Result<_>| matches!(r, Err(Error::WrongValueType { .. }));
    assert!(wrong(f.get_u32("i32.neg").map(|_| ())));
    assert!(wrong(f.get_u32("i64.big").map(|_| ())));
    assert!(wrong(f.get_i64("u64.max").map(|_| ())));
    assert!(wrong(f.get_f32("f64.huge").map(|_| ())));
    assert!(wrong(f.get_u32("s").map(|_| ())));
    assert!(wrong(f.get_str("u8").map(|_| ())));
    assert!(wrong(f.get_bool("u8").map(|_| ())));
    assert!(wrong(f.opt_u32("s").map(|_| ())));
    assert!(matches!(
        f.get_u32("absent"),
        Err(Error::MissingKey { ref key }) if key == "absent"
    ));
    assert!(matches!(
        f.tensor("absent"),
        Err(Error::MissingTensor { ref name }) if name == "absent"
    ));
}

#[test]
fn writer_refuses_what_the_reader_would() {
    let mut w = GgufWriter::new();
    w.add("k", Value::U8(1)).unwrap();
    assert!(matches!(
        w.add("k", Value::U8(2)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        w.add("general.alignment", Value::U32(24)),
        Err(Error::BadAlignment { .. })
    ));
    assert!(matches!(
        w.add("general.alignment", Value::U64(32)),
        Err(Error::BadAlignment { .. })
    ));
    let mut deep = Array::U8(vec![]);
    for _ in 0..tramontane::gguf::MAX_ARRAY_DEPTH {
        deep = Array::Array(vec![deep]);
    }
    assert!(matches!(
        w.add("deep", Value::Array(deep)),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(w.add_tensor("t", GgmlType::Q4_0, &[64, 2]).unwrap(), 72);
    assert!(matches!(
        w.add_tensor("t", GgmlType::F32, &[1]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        w.add_tensor("u", GgmlType::Q4_0, &[48]),
        Err(Error::NotBlockMultiple { .. })
    ));
    assert!(matches!(
        w.add_tensor("u", GgmlType::F32, &[]),
        Err(Error::BadDims { .. })
    ));
    assert!(matches!(
        w.add_tensor("u", GgmlType::F32, &[0]),
        Err(Error::BadDims { .. })
    ));
    assert!(matches!(
        w.add_tensor("u", GgmlType::F32, &[1 << 31, 1 << 31]),
        Err(Error::Overflow { .. })
    ));

    let mut d = w.write_header(Vec::new()).unwrap();
    assert!(matches!(
        d.write_tensor(&[0; 71]),
        Err(Error::InvalidArgument { .. })
    ));
    d.write_tensor(&[0; 72]).unwrap();
    assert!(matches!(
        d.write_tensor(&[]),
        Err(Error::InvalidArgument { .. })
    ));
    let bytes = d.finish().unwrap();
    assert_eq!(GgufFile::from_bytes(bytes).unwrap().n_tensors(), 1);

    let mut w = GgufWriter::new();
    w.add_tensor("t", GgmlType::F32, &[1]).unwrap();
    let d = w.write_header(Vec::new()).unwrap();
    assert!(matches!(d.finish(), Err(Error::InvalidArgument { .. })));
}

#[test]
fn writer_streams_into_a_file() {
    let path = scratch("streamed.gguf");
    let tensors = some_tensors();
    let mut w = GgufWriter::new();
    w.add("general.architecture", Value::String("test".into()))
        .unwrap();
    for t in &tensors {
        w.add_tensor(t.name, t.ty, &t.dims).unwrap();
    }
    let mut d = w.create(&path).unwrap();
    for t in &tensors {
        assert_eq!(d.next_tensor().unwrap().name, t.name);
        d.write_tensor(&t.data).unwrap();
    }
    d.finish().unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.path(), Some(path.as_path()));
    assert_eq!(f.get_str("general.architecture").unwrap(), "test");
    for t in &tensors {
        assert_eq!(f.tensor(t.name).unwrap().data, &t.data[..]);
    }
}

#[test]
fn open_reports_the_path_of_a_missing_file() {
    let e = GgufFile::open("target/definitely/not/here.gguf").unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
    assert!(e.to_string().contains("not/here.gguf"), "{e}");
}

#[test]
fn gguf_file_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GgufFile>();
    send_sync::<tramontane::Tensor<'static>>();
}
