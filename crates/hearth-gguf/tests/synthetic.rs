//! hearth-gguf on GGUF files built byte by byte here: every supported storage type with
//! expected values from ggml's formulas (scales chosen to be exact in f16), alignment, every
//! metadata type, and malformed input (truncation at every length, forged counts, bad types),
//! which must be an error, never a panic.

use hearth_gguf::{GgmlType, Gguf, GgufError, LlamaConfig, Value, ValueType, dequantize};

/// A GGUF writer for tests: metadata as raw (key, type id, value bytes), tensors as
/// (name, dims, type id, data), laid out with the given alignment.
#[derive(Default)]
struct Builder {
    version: u32,
    kv: Vec<(String, u32, Vec<u8>)>,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    alignment: u64,
}

fn s(text: &str) -> Vec<u8> {
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

impl Builder {
    fn new() -> Self {
        Builder {
            version: 3,
            alignment: 32,
            ..Default::default()
        }
    }

    fn kv(mut self, key: &str, type_id: u32, value: Vec<u8>) -> Self {
        self.kv.push((key.into(), type_id, value));
        self
    }

    fn u32(self, key: &str, v: u32) -> Self {
        self.kv(key, 4, v.to_le_bytes().to_vec())
    }

    fn f32(self, key: &str, v: f32) -> Self {
        self.kv(key, 6, v.to_le_bytes().to_vec())
    }

    fn str(self, key: &str, v: &str) -> Self {
        self.kv(key, 8, s(v))
    }

    fn str_array(self, key: &str, items: &[&str]) -> Self {
        let mut v = 8u32.to_le_bytes().to_vec();
        v.extend((items.len() as u64).to_le_bytes());
        for item in items {
            v.extend(s(item));
        }
        self.kv(key, 9, v)
    }

    fn alignment(mut self, a: u32) -> Self {
        self.alignment = u64::from(a);
        self.u32("general.alignment", a)
    }

    fn tensor(mut self, name: &str, dims: &[u64], type_id: u32, data: Vec<u8>) -> Self {
        self.tensors
            .push((name.into(), dims.to_vec(), type_id, data));
        self
    }

    fn build(&self) -> Vec<u8> {
        let pad = |n: u64| n.div_ceil(self.alignment) * self.alignment;
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.kv.len() as u64).to_le_bytes());
        for (key, type_id, value) in &self.kv {
            out.extend(s(key));
            out.extend(type_id.to_le_bytes());
            out.extend(value);
        }
        let mut offset = 0u64;
        for (name, dims, type_id, data) in &self.tensors {
            out.extend(s(name));
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(type_id.to_le_bytes());
            out.extend(offset.to_le_bytes());
            offset = pad(offset + data.len() as u64);
        }
        out.resize(pad(out.len() as u64) as usize, 0);
        let n = self.tensors.len();
        for (i, (_, _, _, data)) in self.tensors.iter().enumerate() {
            out.extend(data);
            // No padding after the last tensor, so every strict prefix of the file is short.
            if i + 1 < n {
                out.resize(pad(out.len() as u64) as usize, 0);
            }
        }
        out
    }
}

const F16_HALF: [u8; 2] = 0x3800u16.to_le_bytes(); // 0.5
const F16_QUARTER: [u8; 2] = 0x3400u16.to_le_bytes(); // 0.25
const F16_TWO: [u8; 2] = 0x4000u16.to_le_bytes(); // 2.0
const F16_MINUS_ONE: [u8; 2] = 0xBC00u16.to_le_bytes(); // -1.0

/// Two Q4_0 blocks. Byte j of block b holds j in its low nibble and 15 − j (block 0) or b·j mod
/// 16 in its high nibble, so the low and high halves differ and the order shows.
fn q4_0_data() -> (Vec<u8>, Vec<f32>) {
    let mut data = Vec::new();
    let mut want = Vec::new();
    for (b, d) in [(0u8, 0.5f32), (1, 2.0)] {
        data.extend(if b == 0 { F16_HALF } else { F16_TWO });
        let highs: Vec<u8> = (0..16u8)
            .map(|j| if b == 0 { 15 - j } else { (3 * j + 1) % 16 })
            .collect();
        data.extend((0..16u8).map(|j| j | (highs[j as usize] << 4)));
        want.extend((0..16).map(|j| (j as f32 - 8.0) * d));
        want.extend(highs.iter().map(|&h| (f32::from(h) - 8.0) * d));
    }
    (data, want)
}

fn q4_1_data() -> (Vec<u8>, Vec<f32>) {
    let mut data = F16_QUARTER.to_vec();
    data.extend(F16_MINUS_ONE);
    data.extend((0..16u8).map(|j| (15 - j) | (((j * 5) % 16) << 4)));
    let mut want: Vec<f32> = (0..16u8).map(|j| f32::from(15 - j) * 0.25 - 1.0).collect();
    want.extend((0..16u8).map(|j| f32::from((j * 5) % 16) * 0.25 - 1.0));
    (data, want)
}

fn q8_0_data() -> (Vec<u8>, Vec<f32>) {
    let mut data = F16_TWO.to_vec();
    data.extend((0..32i8).map(|j| ((j - 16) * 3) as u8));
    let want = (0..32i8).map(|j| f32::from((j - 16) * 3) * 2.0).collect();
    (data, want)
}

fn f16_data() -> (Vec<u8>, Vec<f32>) {
    // 1, −2, 0.5, the smallest subnormal 2^−24, 65504 (the largest finite), −0, +inf, 1/3 (0x3555).
    let bits = [
        0x3C00u16, 0xC000, 0x3800, 0x0001, 0x7BFF, 0x8000, 0x7C00, 0x3555,
    ];
    let want = vec![
        1.0,
        -2.0,
        0.5,
        2f32.powi(-24),
        65504.0,
        -0.0,
        f32::INFINITY,
        0.333_251_95,
    ];
    (bits.iter().flat_map(|b| b.to_le_bytes()).collect(), want)
}

fn bf16_data() -> (Vec<u8>, Vec<f32>) {
    let bits = [0x3F80u16, 0xC020, 0x4049, 0x0001];
    let want: Vec<f32> = bits
        .iter()
        .map(|&b| f32::from_bits(u32::from(b) << 16))
        .collect();
    assert_eq!(&want[..2], &[1.0, -2.5]);
    (bits.iter().flat_map(|b| b.to_le_bytes()).collect(), want)
}

fn f32_data() -> (Vec<u8>, Vec<f32>) {
    let want = vec![1.5f32, -0.125, 3.0e-8, f32::MAX, 7.0];
    (want.iter().flat_map(|v| v.to_le_bytes()).collect(), want)
}

/// A file with one tensor of each supported type and some metadata of each kind.
fn every_type() -> Builder {
    Builder::new()
        .str("general.architecture", "llama")
        .u32("llama.block_count", 2)
        .str_array("tokenizer.ggml.tokens", &["<s>", "a", "é"])
        .tensor("f32", &[5], 0, f32_data().0)
        .tensor("f16", &[8], 1, f16_data().0)
        .tensor("bf16", &[2, 2], 30, bf16_data().0)
        .tensor("q8_0", &[32], 8, q8_0_data().0)
        .tensor("q4_0", &[32, 2], 2, q4_0_data().0)
        .tensor("q4_1", &[32], 3, q4_1_data().0)
}

#[test]
fn each_supported_type_dequantizes_as_ggml_defines() {
    let bytes = every_type().build();
    let gguf = Gguf::parse(&bytes).expect("parses");
    for (name, want) in [
        ("f32", f32_data().1),
        ("f16", f16_data().1),
        ("bf16", bf16_data().1),
        ("q8_0", q8_0_data().1),
        ("q4_0", q4_0_data().1),
        ("q4_1", q4_1_data().1),
    ] {
        let got = gguf.dequantize(name).expect("dequantizes");
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(g.to_bits() == w.to_bits(), "{name}[{i}]: {g} vs {w}");
        }
    }
    let q4 = gguf.tensor("q4_0").expect("q4_0");
    assert_eq!(
        (q4.dims.clone(), q4.shape(), q4.size),
        (vec![32, 2], vec![2, 32], 36)
    );
    assert_eq!(q4.ggml_type, GgmlType::Q4_0);
}

#[test]
fn low_nibbles_are_the_first_half_of_a_block() {
    // One Q4_0 block with d = 1: every byte 0xF0 → elements 0..16 are 0 − 8, 16..32 are 15 − 8.
    let mut block = 0x3C00u16.to_le_bytes().to_vec();
    block.extend([0xF0u8; 16]);
    let x = dequantize(GgmlType::Q4_0, &block, 32).expect("dequantizes");
    assert!(
        x[..16].iter().all(|&v| v == -8.0) && x[16..].iter().all(|&v| v == 7.0),
        "{x:?}"
    );
}

#[test]
fn metadata_of_every_type_reads_back() {
    let mut nested = 9u32.to_le_bytes().to_vec(); // an array of arrays of u8
    nested.extend(2u64.to_le_bytes());
    for items in [&[1u8, 2][..], &[3]] {
        nested.extend(0u32.to_le_bytes());
        nested.extend((items.len() as u64).to_le_bytes());
        nested.extend(items);
    }
    let bytes = Builder::new()
        .kv("u8", 0, vec![200])
        .kv("i8", 1, vec![0xFF])
        .kv("u16", 2, 60000u16.to_le_bytes().to_vec())
        .kv("i16", 3, (-300i16).to_le_bytes().to_vec())
        .u32("u32", 4_000_000_000)
        .kv("i32", 5, (-7i32).to_le_bytes().to_vec())
        .f32("f32", 0.25)
        .kv("bool", 7, vec![1])
        .str("string", "héllo")
        .kv("u64", 10, u64::MAX.to_le_bytes().to_vec())
        .kv("i64", 11, i64::MIN.to_le_bytes().to_vec())
        .kv("f64", 12, 1e-300f64.to_le_bytes().to_vec())
        .kv("nested", 9, nested)
        .kv(
            "empty",
            9,
            [5u32.to_le_bytes().to_vec(), 0u64.to_le_bytes().to_vec()].concat(),
        )
        .str_array("strings", &["a", "", "ü"])
        .build();
    let g = Gguf::parse(&bytes).expect("parses");
    assert_eq!(g.get("u8"), Some(&Value::U8(200)));
    assert_eq!(g.get("i8"), Some(&Value::I8(-1)));
    assert_eq!(g.get_u32("u16").expect("u16"), 60000);
    assert_eq!(g.get_i64("i16").expect("i16"), -300);
    assert_eq!(g.get_u32("u32").expect("u32"), 4_000_000_000);
    assert_eq!(g.get_i64("i32").expect("i32"), -7);
    assert_eq!(g.get_f32("f32").expect("f32"), 0.25);
    assert!(g.get_bool("bool").expect("bool"));
    assert_eq!(g.get_str("string").expect("string"), "héllo");
    assert_eq!(g.get_u64("u64").expect("u64"), u64::MAX);
    assert_eq!(g.get_i64("i64").expect("i64"), i64::MIN);
    assert_eq!(g.get_f64("f64").expect("f64"), 1e-300);
    assert_eq!(
        g.get("nested"),
        Some(&Value::Array(
            ValueType::Array,
            vec![
                Value::Array(ValueType::U8, vec![Value::U8(1), Value::U8(2)]),
                Value::Array(ValueType::U8, vec![Value::U8(3)])
            ]
        ))
    );
    assert_eq!(g.get("empty"), Some(&Value::Array(ValueType::I32, vec![])));
    assert_eq!(
        g.get_array_str("strings").expect("strings"),
        vec!["a", "", "ü"]
    );
    assert_eq!(g.metadata().len(), 15);
    assert!(g.tensors().is_empty());

    // Wrong types and absent keys name the key and what was found.
    let err = g
        .get_u32("u64")
        .expect_err("u64::MAX does not fit u32")
        .to_string();
    assert!(err.contains("\"u64\"") && err.contains("u32"), "{err}");
    let err = g.get_u32("i8").expect_err("negative").to_string();
    assert!(err.contains("\"i8\""), "{err}");
    let err = g.get_str("f32").expect_err("not a string").to_string();
    assert!(err.contains("a f32") && err.contains("a string"), "{err}");
    let err = g
        .get_array_str("nested")
        .expect_err("arrays, not strings")
        .to_string();
    assert!(err.contains("an array of 2 array"), "{err}");
    assert!(matches!(g.get_u32("absent"), Err(GgufError::MissingKey { key }) if key == "absent"));
}

#[test]
fn alignment_is_honoured() {
    let (f32_bytes, f32_want) = f32_data();
    for alignment in [1u32, 8, 64, 256] {
        let bytes = Builder::new()
            .alignment(alignment)
            .tensor("a", &[5], 0, f32_bytes.clone())
            .tensor("b", &[5], 0, f32_bytes.iter().rev().copied().collect())
            .build();
        let g = Gguf::parse(&bytes).expect("parses");
        assert_eq!(g.alignment, u64::from(alignment));
        assert_eq!(g.data_offset % u64::from(alignment), 0);
        let b = g.tensor("b").expect("b");
        assert_eq!(
            b.offset,
            20u64.div_ceil(u64::from(alignment)) * u64::from(alignment)
        );
        assert_eq!(g.dequantize("a").expect("a"), f32_want);
    }
    // The default, 32: a header of 24 + 8 + 1 + 4 + 8 + 4 + 8 = 57 bytes is padded to 64.
    let bytes = Builder::new().tensor("a", &[5], 0, f32_bytes).build();
    let g = Gguf::parse(&bytes).expect("parses");
    assert_eq!((g.alignment, g.data_offset), (32, 64));

    for bad in [0u32, 3, 48] {
        let bytes = Builder::new().u32("general.alignment", bad).build();
        assert!(
            matches!(Gguf::parse(&bytes), Err(GgufError::BadAlignment { .. })),
            "{bad}"
        );
    }
    let bytes = Builder::new().str("general.alignment", "32").build();
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::WrongType { .. })
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = every_type().u32("general.alignment", 16).build();
    Gguf::parse(&bytes).expect("the whole file parses");
    for len in 0..bytes.len() {
        let err = Gguf::parse(&bytes[..len]).expect_err("a strict prefix must not parse");
        let msg = err.to_string();
        assert!(!msg.is_empty());
        assert!(
            matches!(
                err,
                GgufError::Truncated { .. } | GgufError::TensorOutOfBounds { .. }
            ),
            "cut at {len}: {msg}"
        );
    }
}

#[test]
fn the_metadata_reads_from_any_prefix_that_holds_the_header() {
    let bytes = every_type().u32("general.alignment", 16).build();
    let whole = Gguf::parse(&bytes).expect("the whole file parses");
    let header = usize::try_from(whole.data_offset).expect("small");
    for len in 0..=bytes.len() {
        let prefix = &bytes[..len];
        if len < header {
            // The header cut short is an error (the padding before the data may be missing).
            if let Ok(gguf) = Gguf::parse_metadata(prefix) {
                assert!(
                    len >= header - 16,
                    "cut at {len} in the header of {header} bytes"
                );
                assert_eq!(gguf.tensors(), whole.tensors(), "cut at {len}");
            }
            continue;
        }
        let gguf = Gguf::parse_metadata(prefix).expect("the header is whole");
        assert_eq!(gguf.metadata(), whole.metadata(), "cut at {len}");
        assert_eq!(gguf.tensors(), whole.tensors(), "cut at {len}");
        for info in whole.tensors() {
            let end = header + (info.offset + info.size) as usize;
            let data = gguf.tensor_data(info);
            if end <= len {
                assert_eq!(data, whole.tensor_data(info), "{} cut at {len}", info.name);
            } else {
                assert!(data.is_empty(), "{} cut at {len}", info.name);
                assert!(
                    gguf.dequantize(&info.name).is_err(),
                    "{} cut at {len}",
                    info.name
                );
            }
        }
    }
    // What the header itself must get right is still checked.
    assert!(matches!(
        Gguf::parse_metadata(&bytes[..10]),
        Err(GgufError::Truncated { .. })
    ));
}

#[test]
fn version_2_parses_and_others_are_refused() {
    let mut b = every_type();
    b.version = 2;
    assert!(Gguf::parse(&b.build()).is_ok());
    b.version = 1;
    let err = Gguf::parse(&b.build()).expect_err("v1").to_string();
    assert!(err.contains("version 1"), "{err}");
    b.version = 3u32.swap_bytes();
    assert!(matches!(
        Gguf::parse(&b.build()),
        Err(GgufError::BigEndian { .. })
    ));
    let mut bytes = every_type().build();
    bytes[..4].copy_from_slice(b"GGML");
    assert!(matches!(Gguf::parse(&bytes), Err(GgufError::BadMagic { found }) if &found == b"GGML"));
}

fn parse_err(b: Builder) -> String {
    Gguf::parse(&b.build()).expect_err("malformed").to_string()
}

#[test]
fn malformed_files_are_errors_that_say_what_is_wrong() {
    let f32x4 = vec![0u8; 16];
    let e = parse_err(Builder::new().kv("k", 13, vec![]));
    assert!(e.contains("\"k\"") && e.contains("value type 13"), "{e}");
    let e = parse_err(Builder::new().tensor("t", &[4], 99, f32x4.clone()));
    assert!(e.contains("\"t\"") && e.contains("ggml type id 99"), "{e}");
    let e = parse_err(Builder::new().tensor("t", &[1, 1, 1, 1, 4], 0, f32x4.clone()));
    assert!(e.contains("5 dimensions"), "{e}");
    let e = parse_err(Builder::new().tensor("t", &[u64::MAX, 2], 0, vec![]));
    assert!(e.contains("overflows"), "{e}");
    let e = parse_err(Builder::new().tensor("t", &[16], 2, vec![0; 9]));
    assert!(
        e.contains("not a multiple of the Q4_0 block size 32"),
        "{e}"
    );
    let e = parse_err(Builder::new().tensor("t", &[8], 0, f32x4.clone()));
    assert!(e.contains("\"t\"") && e.contains("outside"), "{e}");
    let e = parse_err(Builder::new().u32("k", 1).u32("k", 2));
    assert!(e.contains("\"k\" appears twice"), "{e}");
    let e = parse_err(Builder::new().tensor("t", &[4], 0, f32x4.clone()).tensor(
        "t",
        &[4],
        0,
        f32x4.clone(),
    ));
    assert!(e.contains("\"t\" appears twice"), "{e}");
    let e = parse_err(Builder::new().kv(
        "k",
        8,
        [2u64.to_le_bytes().to_vec(), vec![0xC3, 0x28]].concat(),
    ));
    assert!(e.contains("UTF-8"), "{e}");

    // A tensor offset that is not a multiple of the alignment.
    let mut bytes = Builder::new().tensor("t", &[4], 0, f32x4.clone()).build();
    let offset_at = 24 + 8 + 1 + 4 + 8 + 4; // header, name, n_dims, dim, type
    bytes[offset_at..offset_at + 8].copy_from_slice(&4u64.to_le_bytes());
    bytes.extend([0u8; 4]);
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::MisalignedOffset { offset: 4, .. })
    ));

    // Forged counts: huge arrays, strings, tensor and key counts end in a short-read error
    // without allocating for them first.
    let huge = [8u32.to_le_bytes().to_vec(), u64::MAX.to_le_bytes().to_vec()].concat();
    assert!(parse_err(Builder::new().kv("k", 9, huge)).contains("truncated"));
    assert!(
        parse_err(Builder::new().kv("k", 8, u64::MAX.to_le_bytes().to_vec())).contains("truncated")
    );
    let mut bytes = Builder::new().build();
    bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::Truncated { .. })
    ));

    // Arrays nested deeper than the limit are refused rather than recursed into.
    let mut deep = Vec::new();
    for _ in 0..1000 {
        deep.extend(9u32.to_le_bytes());
        deep.extend(1u64.to_le_bytes());
    }
    let e = parse_err(Builder::new().kv("k", 9, deep));
    assert!(e.contains("nested deeper"), "{e}");
}

#[test]
fn unsupported_types_are_named() {
    let bytes = Builder::new()
        .tensor("blk.0.q", &[256], 16, vec![0; 66])
        .build();
    let g = Gguf::parse(&bytes).expect("an IQ2_XXS tensor still parses");
    let e = g
        .dequantize("blk.0.q")
        .expect_err("IQ2_XXS is not supported")
        .to_string();
    assert!(e.contains("\"blk.0.q\"") && e.contains("IQ2_XXS"), "{e}");
    assert!(matches!(
        g.dequantize("nope"),
        Err(GgufError::TensorNotFound { .. })
    ));
    assert!(
        !hearth_gguf::can_dequantize(GgmlType::IQ2_XXS)
            && hearth_gguf::can_dequantize(GgmlType::Q4_K)
    );
    let e = dequantize(GgmlType::Q8_0, &[0; 33], 32)
        .expect_err("one byte short")
        .to_string();
    assert!(e.contains("33 bytes") && e.contains("32 elements"), "{e}");
}

#[test]
fn llama_config_reads_the_keys_and_names_what_is_missing() {
    let full = || {
        Builder::new()
            .str("general.architecture", "llama")
            .u32("llama.block_count", 30)
            .u32("llama.embedding_length", 576)
            .u32("llama.feed_forward_length", 1536)
            .u32("llama.attention.head_count", 9)
            .u32("llama.context_length", 8192)
            .f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
            .str_array("tokenizer.ggml.tokens", &["a", "b", "c"])
    };
    let bytes = full()
        .u32("llama.attention.head_count_kv", 3)
        .f32("llama.rope.freq_base", 1e5)
        .build();
    let c = LlamaConfig::from_gguf(&Gguf::parse(&bytes).expect("parses")).expect("config");
    assert_eq!(
        (
            c.num_hidden_layers,
            c.hidden_size,
            c.intermediate_size,
            c.num_attention_heads,
            c.num_key_value_heads
        ),
        (30, 576, 1536, 9, 3)
    );
    assert_eq!(
        (
            c.rope_theta,
            c.rms_norm_eps,
            c.max_position_embeddings,
            c.vocab_size
        ),
        (1e5, 1e-5, 8192, 3)
    );
    assert_eq!(c.head_dim(), 64);

    // llama.cpp's defaults for the two optional keys.
    let c = LlamaConfig::from_gguf(&Gguf::parse(&full().build()).expect("parses")).expect("config");
    assert_eq!((c.num_key_value_heads, c.rope_theta), (9, 10_000.0));

    let bytes = Builder::new()
        .str("general.architecture", "llama")
        .u32("llama.block_count", 30)
        .build();
    let e = LlamaConfig::from_gguf(&Gguf::parse(&bytes).expect("parses")).expect_err("incomplete");
    assert!(e.to_string().contains("llama.attention.head_count"), "{e}");
    let bytes = full().str("llama.rope.freq_base", "fast").build();
    let e = LlamaConfig::from_gguf(&Gguf::parse(&bytes).expect("parses")).expect_err("mistyped");
    assert!(e.to_string().contains("llama.rope.freq_base"), "{e}");
    let e = LlamaConfig::from_gguf(&Gguf::parse(&Builder::new().build()).expect("parses"))
        .expect_err("empty");
    assert!(e.to_string().contains("general.architecture"), "{e}");
}

/// With `HEARTH_GGUF_SEED` set to a path, writes the every-type file there: `scripts/fuzz.sh`
/// seeds the `gguf` fuzz target with it. Without it, only checks the file parses.
#[test]
fn write_fuzz_seed() {
    let bytes = every_type().build();
    Gguf::parse(&bytes).expect("the seed parses");
    if let Some(path) = std::env::var_os("HEARTH_GGUF_SEED") {
        std::fs::write(&path, &bytes).expect("the seed is written");
    }
}
