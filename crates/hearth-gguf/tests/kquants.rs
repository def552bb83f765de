//! hearth-gguf's K-quant (Q2_K … Q6_K) and 5-bit (Q5_0, Q5_1) dequantization against gguf-py's
//! (`gguf.quants`, llama.cpp's own Python package), bit for bit: `tests/fixtures/kquants.gguf`,
//! written by `scripts/fixtures/gguf_kquants.py`, holds random blocks of each type next to
//! gguf-py's dequantization of them. On a real file, every tensor of Gemma 3 270M as Q4_K_M
//! (fetched by `scripts/fetch-assets.sh`) dequantizes to the same bytes as gguf-py's
//! (`tests/fixtures/gguf_gemma3.json`, written by `scripts/fixtures/gguf_gemma3.py`).

use std::path::PathBuf;

use hearth_gguf::{GgmlType, Gguf, GgufError, dequantize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const TYPES: [GgmlType; 7] = [
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

fn fixture() -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/kquants.gguf")).expect("tests/fixtures/kquants.gguf")
}

/// Every element equal to gguf-py's, bit for bit (the fixture's values are all finite).
#[test]
fn random_blocks_dequantize_as_gguf_py() {
    let bytes = fixture();
    let gguf = Gguf::parse(&bytes).expect("the fixture parses");
    assert_eq!(gguf.tensors().len(), 2 * TYPES.len());
    for t in TYPES {
        let info = gguf.tensor(t.name()).expect("the quantized tensor");
        assert_eq!(info.ggml_type, t);
        assert!(hearth_gguf::can_dequantize(t), "{t}");
        let want = gguf
            .dequantize(&format!("{t}.expected"))
            .expect("gguf-py's values");
        let got = gguf.dequantize(t.name()).expect("dequantizes");
        assert_eq!(got.len(), want.len(), "{t}");
        assert_eq!(got.len() as u64, 4 * t.block_size(), "{t}: four blocks");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{t}[{i}]: {g} vs gguf-py's {w}");
        }
    }
}

/// A block too short, a byte too many, or an element count that is not whole blocks is a clear
/// error naming the type and both lengths, never a panic.
#[test]
fn short_and_malformed_blocks_are_errors() {
    let bytes = fixture();
    let gguf = Gguf::parse(&bytes).expect("the fixture parses");
    for t in TYPES {
        let data = gguf.tensor_data(gguf.tensor(t.name()).expect("tensor"));
        let block = t.block_size();
        let size = t.type_size() as usize;
        for cut in [0, 1, size - 1, size + 1, data.len() - 1] {
            let e = dequantize(t, &data[..cut], block).expect_err("a cut block");
            assert!(matches!(e, GgufError::BadDataLength { .. }), "{t}: {e}");
            let text = e.to_string();
            assert!(
                text.contains(t.name()) && text.contains(&format!("{cut} bytes")),
                "{text}"
            );
        }
        let e = dequantize(t, &data[..size], block - 1).expect_err("not a whole block");
        assert!(
            e.to_string().contains(&format!("{} elements", block - 1)),
            "{e}"
        );
        let e = dequantize(t, &data[..size], 2 * block).expect_err("two blocks in one's bytes");
        assert!(matches!(e, GgufError::BadDataLength { .. }), "{t}: {e}");
        // Any bytes of the right length dequantize: nothing inside a block can be invalid.
        let x = dequantize(t, &vec![0xFF; 3 * size], 3 * block).expect("three blocks");
        assert_eq!(x.len() as u64, 3 * block, "{t}");
    }
}

/// Every tensor of the Gemma 3 270M Q4_K_M file (Q4_K, Q6_K, Q5_0, Q8_0, F32) dequantizes to
/// exactly gguf-py's values: the SHA-256 of each tensor's f32 bytes equals the fixture's. The
/// tensors are dequantized a few rows at a time through `dequantize`, so the 168M-element
/// embedding never needs its f32 copy in memory at once.
#[test]
fn every_tensor_of_gemma3_dequantizes_as_gguf_py() {
    let path = root().join("assets/gemma3/gemma-3-270m-q4_k_m.gguf");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-assets.sh)", path.display()));
    let fixture = std::fs::read_to_string(root().join("tests/fixtures/gguf_gemma3.json"))
        .expect("tests/fixtures/gguf_gemma3.json");
    let fixture: Json = serde_json::from_str(&fixture).expect("fixture is JSON");
    let want = fixture["tensors"].as_object().expect("tensors");
    let gguf = Gguf::parse(&bytes).expect("the Gemma file parses");
    assert_eq!(gguf.tensors().len(), want.len(), "the same tensors");
    let mut per_type = std::collections::BTreeMap::<&str, usize>::new();
    for info in gguf.tensors() {
        let name = &info.name;
        let w = &want[name.as_str()];
        assert_eq!(info.ggml_type.name(), w["type"], "{name}");
        let dims: Vec<u64> = w["dims"]
            .as_array()
            .expect("dims")
            .iter()
            .map(|d| d.as_u64().expect("a dim"))
            .collect();
        assert_eq!(info.dims, dims, "{name}");
        let t = info.ggml_type;
        let row = info.dims[0];
        let row_bytes = t.bytes_for(row).expect("whole blocks") as usize;
        let rows_per_chunk = (1 << 20) / row.max(1) as usize + 1;
        let mut hash = Sha256::new();
        let mut first = Vec::new();
        for chunk in gguf.tensor_data(info).chunks(rows_per_chunk * row_bytes) {
            let n = (chunk.len() / row_bytes) as u64 * row;
            let x = dequantize(t, chunk, n).unwrap_or_else(|e| panic!("{name}: {e}"));
            if first.is_empty() {
                first = x[..4.min(x.len())].to_vec();
            }
            for v in x {
                hash.update(v.to_le_bytes());
            }
        }
        // JSON holds each f32 as the shortest decimal of its f64 widening; serde_json's parse
        // may miss that f64 by an ulp, never the f32 it rounds to.
        let first_want: Vec<f32> = w["first"]
            .as_array()
            .expect("first")
            .iter()
            .map(|v| v.as_f64().expect("a number") as f32)
            .collect();
        assert_eq!(first, first_want, "{name}: first values");
        let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest, w["sha256"], "{name} ({t}): not gguf-py's values");
        *per_type.entry(t.name()).or_default() += 1;
    }
    // The file's K-quant tensors are what this test is for: make sure they were there.
    assert_eq!(per_type.get("Q4_K"), Some(&27), "{per_type:?}");
    assert_eq!(per_type.get("Q6_K"), Some(&9), "{per_type:?}");
}
