//! Any bytes: the GGUF reader returns an error or a file whose tensors all lie inside the
//! input, and dequantizing any of them (supported or not) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
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
