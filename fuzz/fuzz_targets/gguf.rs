//! Any bytes: the GGUF reader returns an error or a file whose tensors all lie inside the
//! input, and dequantizing any of them (supported or not) never panics; read for its metadata
//! only, each tensor's data is whole or empty. The same bytes, read
//! as a type selector and raw blocks, go straight to `dequantize` too: whole blocks of a
//! supported type (the K-quants included) give one f32 per element, anything else an error.
#![no_main]

use hearth_gguf::{GgmlType, dequantize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Some((&selector, data)) = bytes.split_first() {
        let t = GgmlType::ALL[usize::from(selector) % GgmlType::ALL.len()];
        let n = data.len() as u64 / t.type_size() * t.block_size();
        let whole = n / t.block_size() * t.type_size() == data.len() as u64;
        match dequantize(t, data, n) {
            Ok(x) => {
                assert!(hearth_gguf::can_dequantize(t) && whole, "{t}");
                assert_eq!(x.len() as u64, n);
            }
            Err(_) => assert!(!hearth_gguf::can_dequantize(t) || !whole, "{t}"),
        }
        // One element more than the bytes hold is always an error.
        assert!(dequantize(t, data, n + 1).is_err());
    }
    // The metadata alone (a page's read of a file's first bytes): never a panic; a tensor whose
    // data is not all there reads as empty and does not dequantize.
    if let Ok(meta) = hearth_gguf::Gguf::parse_metadata(bytes) {
        for info in meta.tensors() {
            let data = meta.tensor_data(info).len() as u64;
            assert!(data == info.size || data == 0, "{}", info.name);
            if data == 0 && info.n_elements() > 0 {
                assert!(meta.dequantize(&info.name).is_err(), "{}", info.name);
            }
        }
        let _ = hearth_gguf::LlamaConfig::from_gguf(&meta);
    }
    let Ok(gguf) = hearth_gguf::Gguf::parse(bytes) else {
        return;
    };
    for info in gguf.tensors() {
        assert_eq!(gguf.tensor_data(info).len() as u64, info.size);
        if info.n_elements() <= 1 << 20 {
            if let Ok(x) = gguf.dequantize(&info.name) {
                assert_eq!(x.len() as u64, info.n_elements());
            }
        }
    }
    let _ = hearth_gguf::LlamaConfig::from_gguf(&gguf);
});
