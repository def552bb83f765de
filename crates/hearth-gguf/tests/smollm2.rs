//! hearth-gguf against gguf-py (llama.cpp's Python reader) on a real file:
//! SmolLM2-135M-Instruct.Q4_1.gguf (Q4_1 weights, Q8_0 embeddings, F32 norms), fetched by
//! `scripts/fetch-assets.sh`. The expected values are in `tests/fixtures/gguf_smollm2.json`,
//! written by `scripts/fixtures/gguf_smollm2.py`; values are compared in ggml's (the file's) order.

use std::path::PathBuf;

use hearth_gguf::{GgmlType, Gguf, LlamaConfig};
use serde_json::Value as Json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load() -> (Vec<u8>, Json) {
    let path = root().join("assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-assets.sh)", path.display()));
    let fixture = std::fs::read_to_string(root().join("tests/fixtures/gguf_smollm2.json"))
        .expect("tests/fixtures/gguf_smollm2.json");
    (
        bytes,
        serde_json::from_str(&fixture).expect("fixture is JSON"),
    )
}

fn u64_of(v: &Json) -> u64 {
    v.as_u64().expect("an unsigned integer in the fixture")
}

fn f64_of(v: &Json) -> f64 {
    v.as_f64().expect("a number in the fixture")
}

#[test]
fn header_metadata_and_config_match_gguf_py() {
    let (bytes, fx) = load();
    let gguf = Gguf::parse(&bytes).expect("SmolLM2 parses");
    assert_eq!(u64::from(gguf.version), u64_of(&fx["version"]));
    assert_eq!(gguf.tensors().len() as u64, u64_of(&fx["tensor_count"]));
    assert_eq!(gguf.metadata().len() as u64, u64_of(&fx["kv_count"]));
    assert_eq!(gguf.data_offset, u64_of(&fx["data_offset"]));
    let names: Vec<&str> = gguf
        .tensors()
        .iter()
        .take(12)
        .map(|t| t.name.as_str())
        .collect();
    let expected: Vec<&str> = fx["tensor_names_head"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v.as_str().expect("str"))
        .collect();
    assert_eq!(names, expected);

    let md = &fx["metadata"];
    assert!(
        md["general.alignment"].is_null(),
        "the fixture expects the default alignment"
    );
    assert_eq!(gguf.alignment, hearth_gguf::DEFAULT_ALIGNMENT);
    assert_eq!(
        gguf.get_str("general.architecture").expect("arch"),
        md["general.architecture"]
    );
    let config = LlamaConfig::from_gguf(&gguf).expect("config");
    let u = |k: &str| u32::try_from(u64_of(&md[k])).expect("u32");
    assert_eq!(config.architecture, "llama");
    assert_eq!(config.num_hidden_layers, u("llama.block_count"));
    assert_eq!(config.hidden_size, u("llama.embedding_length"));
    assert_eq!(config.intermediate_size, u("llama.feed_forward_length"));
    assert_eq!(config.num_attention_heads, u("llama.attention.head_count"));
    assert_eq!(
        config.num_key_value_heads,
        u("llama.attention.head_count_kv")
    );
    assert_eq!(config.max_position_embeddings, u("llama.context_length"));
    // gguf-py widens the stored f32 to a Python float exactly, so these compare exactly.
    assert_eq!(
        f64::from(config.rope_theta),
        f64_of(&md["llama.rope.freq_base"])
    );
    assert_eq!(
        f64::from(config.rms_norm_eps),
        f64_of(&md["llama.attention.layer_norm_rms_epsilon"])
    );
    assert_eq!(u64::from(config.vocab_size), u64_of(&fx["vocab_size"]));

    let tokens = gguf.get_array_str("tokenizer.ggml.tokens").expect("tokens");
    let head: Vec<&str> = fx["tokens_head"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v.as_str().expect("str"))
        .collect();
    let tail: Vec<&str> = fx["tokens_tail"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v.as_str().expect("str"))
        .collect();
    assert_eq!(&tokens[..head.len()], head.as_slice());
    assert_eq!(&tokens[tokens.len() - tail.len()..], tail.as_slice());
    assert_eq!(
        u64::from(gguf.get_u32("tokenizer.ggml.bos_token_id").expect("bos")),
        u64_of(&fx["bos_token_id"])
    );
}

#[test]
fn tensor_infos_match_gguf_py() {
    let (bytes, fx) = load();
    let gguf = Gguf::parse(&bytes).expect("SmolLM2 parses");
    for (name, want) in fx["tensors"].as_object().expect("map") {
        let info = gguf.tensor(name).expect("tensor present");
        let dims: Vec<u64> = want["dims"]
            .as_array()
            .expect("dims")
            .iter()
            .map(u64_of)
            .collect();
        assert_eq!(info.dims, dims, "{name}: dims (ggml order)");
        assert_eq!(
            info.ggml_type.name(),
            want["type"].as_str().expect("type"),
            "{name}"
        );
        assert_eq!(info.n_elements(), u64_of(&want["n_elements"]), "{name}");
        assert_eq!(info.size, u64_of(&want["n_bytes"]), "{name}");
        assert_eq!(
            gguf.data_offset + info.offset,
            u64_of(&want["file_offset"]),
            "{name}"
        );
    }
    let embd = gguf.tensor("token_embd.weight").expect("embeddings");
    assert_eq!(
        embd.shape(),
        vec![49152, 576],
        "PyTorch order is [vocab, hidden]"
    );
}

/// Dequantized values: the first and last 64 elements within 1e-6 absolute, and the whole
/// tensor's sum, sum of |x| and sum of squares within 1e-6 relative (the sum relative to the
/// sum of |x|, since it may cancel). Both sides compute in f32 per element; the sums are f64.
#[test]
fn dequantized_values_match_gguf_py() {
    let (bytes, fx) = load();
    let gguf = Gguf::parse(&bytes).expect("SmolLM2 parses");
    let mut worst_value = 0f64;
    let mut worst_sum = 0f64;
    for (name, want) in fx["values"].as_object().expect("map") {
        let info = gguf.tensor(name).expect("tensor present");
        assert_eq!(
            info.ggml_type.name(),
            want["type"].as_str().expect("type"),
            "{name}"
        );
        let x = gguf.dequantize(name).expect("dequantizes");
        assert_eq!(x.len() as u64, info.n_elements());
        let first = want["first"].as_array().expect("first");
        let last = want["last"].as_array().expect("last");
        let tail = &x[x.len() - last.len()..];
        for (got, want) in x.iter().zip(first).chain(tail.iter().zip(last)) {
            let diff = (f64::from(*got) - f64_of(want)).abs();
            worst_value = worst_value.max(diff);
            assert!(diff <= 1e-6, "{name}: {got} vs {want}");
        }
        let sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
        let sum_abs: f64 = x.iter().map(|&v| f64::from(v).abs()).sum();
        let sum_sq: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        for (label, got, want, scale) in [
            ("sum", sum, f64_of(&want["sum"]), f64_of(&want["sum_abs"])),
            (
                "sum_abs",
                sum_abs,
                f64_of(&want["sum_abs"]),
                f64_of(&want["sum_abs"]),
            ),
            (
                "sum_sq",
                sum_sq,
                f64_of(&want["sum_sq"]),
                f64_of(&want["sum_sq"]),
            ),
        ] {
            let rel = (got - want).abs() / scale;
            worst_sum = worst_sum.max(rel);
            assert!(
                rel <= 1e-6,
                "{name}: {label} {got} vs {want} (relative {rel:e})"
            );
        }
    }
    eprintln!(
        "largest value difference {worst_value:e}, largest relative sum difference {worst_sum:e}"
    );
}

#[test]
fn ggml_type_table_matches_gguf_py() {
    let (_, fx) = load();
    let table = fx["ggml_types"].as_object().expect("map");
    for (name, want) in table {
        let t = GgmlType::from_id(u32::try_from(u64_of(&want["id"])).expect("id"))
            .unwrap_or_else(|| panic!("gguf-py's {name} is unknown here"));
        assert_eq!(t.name(), name);
        assert_eq!(t.block_size(), u64_of(&want["block_size"]), "{name}");
        assert_eq!(t.type_size(), u64_of(&want["type_size"]), "{name}");
    }
    assert_eq!(
        GgmlType::ALL.len(),
        table.len(),
        "both tables list the same types"
    );
}

/// Cutting the real file anywhere in its header, metadata or tensor infos, or short of its
/// last tensor, is an error.
#[test]
fn truncated_real_file_is_an_error() {
    let (bytes, _) = load();
    let header_end = Gguf::parse(&bytes).expect("parses").data_offset as usize;
    let mut cuts: Vec<usize> = (0..header_end).step_by(7919).collect();
    cuts.extend([header_end - 1, header_end, bytes.len() - 1]);
    for cut in cuts {
        assert!(
            Gguf::parse(&bytes[..cut]).is_err(),
            "a file cut at {cut} bytes parsed"
        );
    }
}
