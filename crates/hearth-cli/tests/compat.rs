//! The job checked against the model once it is loaded (rows no longer than the positions,
//! weights that fit the config), trained weights that hold NaN refused by name, and output
//! that stays bounded whatever the data holds. On the tiny BERT of `assets/tiny-bert`
//! (2 layers, 128 positions).

use std::path::{Path, PathBuf};

use crate::util::{assert_user_error, copy_dir, hearth, root, stderr, temp_dir, write};

const TINY: &str = "assets/tiny-bert";

/// A CSV of `rows` short texts over `classes` labels (`c0`, `c1`, …).
fn csv(dir: &Path, rows: usize, classes: usize) -> String {
    let mut text = String::from("text,label\n");
    for i in 0..rows {
        text.push_str(&format!("a good day number {i},c{}\n", i % classes));
    }
    write(dir, "d.csv", text.as_bytes())
}

/// Trains a tiny adapter on `data` into `dir/adapter` and returns its directory.
fn train(dir: &Path, data: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join("adapter");
    let mut args = vec![
        "train",
        "--model",
        TINY,
        "--data",
        data,
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--max-length",
        "16",
    ];
    args.extend(extra);
    let out_str = out.to_string_lossy().into_owned();
    args.extend(["--out", &out_str]);
    let run = hearth(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    out
}

#[test]
fn a_max_length_past_the_positions_is_refused_in_train_and_predict() {
    let dir = temp_dir("compat-length");
    // One text of about 300 tokens: at --max-length 129 the 129th position does not exist.
    let long = "good ".repeat(300);
    let data = write(
        &dir,
        "long.csv",
        format!("text,label\n{long},a\nshort,b\n{long},a\nshort too,b\n").as_bytes(),
    );
    let out = hearth(&[
        "train",
        "--model",
        TINY,
        "--data",
        &data,
        "--steps",
        "1",
        "--max-length",
        "129",
        "--out",
        &dir.join("never").to_string_lossy(),
    ]);
    assert_user_error(&out, "train.max_length (--max-length) is 129");
    assert_user_error(&out, "max_position_embeddings (128)");

    // An adapter whose run record asks for more positions than the model has.
    let adapter = train(&dir, &csv(&dir, 16, 2), &[]);
    let record_path = adapter.join("hearth_run.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).expect("record")).expect("json");
    record["job"]["train"]["max_length"] = 600.into();
    std::fs::write(&record_path, record.to_string()).expect("write record");
    let out = hearth(&["predict", "--adapter", &adapter.to_string_lossy(), &long]);
    assert_user_error(
        &out,
        "train.max_length (of the adapter's hearth_run.json) is 600",
    );
}

#[test]
fn a_config_with_fewer_layers_than_the_weights_is_refused_by_name() {
    let dir = temp_dir("compat-layers");
    let model = dir.join("model");
    copy_dir(&root().join(TINY), &model);
    let config_path = model.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).expect("config")).expect("json");
    config["num_hidden_layers"] = 1.into();
    std::fs::write(&config_path, config.to_string()).expect("write config");
    let data = csv(&dir, 16, 2);
    let out = hearth(&[
        "train",
        "--model",
        &model.to_string_lossy(),
        "--data",
        &data,
        "--steps",
        "1",
        "--max-length",
        "16",
        "--out",
        &dir.join("never").to_string_lossy(),
    ]);
    assert_user_error(&out, "num_hidden_layers = 1");
    assert_user_error(&out, "encoder.layer.1.");
    assert!(!dir.join("never").join("adapter_model.safetensors").exists());

    // More layers than the weights hold is refused too (the tensors are missing).
    config["num_hidden_layers"] = 3.into();
    std::fs::write(&config_path, config.to_string()).expect("write config");
    let out = hearth(&[
        "train",
        "--model",
        &model.to_string_lossy(),
        "--data",
        &data,
        "--steps",
        "1",
        "--out",
        &dir.join("never2").to_string_lossy(),
    ]);
    assert_user_error(&out, "encoder.layer.2.");
}

#[test]
fn unused_tensors_of_the_weights_are_a_warning() {
    let dir = temp_dir("compat-unused");
    let model = dir.join("model");
    copy_dir(&root().join(TINY), &model);
    // An extra tensor nothing reads, and a pre-training head that is normal to leave out.
    let weights_path = model.join("model.safetensors");
    let bytes = std::fs::read(&weights_path).expect("weights");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("reads");
    let extra = [0u8; 8];
    let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = file.tensors();
    for name in ["encoder.mystery.weight", "cls.predictions.bias"] {
        views.push((
            name.to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &extra)
                .expect("view"),
        ));
    }
    std::fs::write(
        &weights_path,
        safetensors::serialize(views, None).expect("serializes"),
    )
    .expect("write weights");
    let run = hearth(&[
        "train",
        "--model",
        &model.to_string_lossy(),
        "--data",
        &csv(&dir, 16, 2),
        "--steps",
        "1",
        "--max-length",
        "16",
        "--out",
        &dir.join("adapter").to_string_lossy(),
    ]);
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains("warning: model.safetensors holds 1 tensor(s) this model does not use (encoder.mystery.weight)"),
        "{err}"
    );
    assert!(!err.contains("cls.predictions"), "{err}");
}

#[test]
fn an_adapter_holding_nan_is_refused_with_the_tensor_s_name() {
    let dir = temp_dir("compat-nan");
    let adapter = train(&dir, &csv(&dir, 16, 2), &[]);
    let weights_path = adapter.join("adapter_model.safetensors");
    let bytes = std::fs::read(&weights_path).expect("weights");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("reads");
    let mut names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
    names.sort();
    let target = names
        .iter()
        .find(|n| n.contains("lora_B"))
        .expect("a lora_B tensor")
        .clone();
    let view = file.tensor(&target).expect("tensor");
    let nan: Vec<u8> = std::iter::repeat_n(f32::NAN.to_le_bytes(), view.data().len() / 4)
        .flatten()
        .collect();
    let mut views = file.tensors();
    for (name, v) in &mut views {
        if *name == target {
            *v = safetensors::tensor::TensorView::new(v.dtype(), v.shape().to_vec(), &nan)
                .expect("view");
        }
    }
    std::fs::write(
        &weights_path,
        safetensors::serialize(views, None).expect("serializes"),
    )
    .expect("write");
    let out = hearth(&["predict", "--adapter", &adapter.to_string_lossy(), "hello"]);
    assert_user_error(&out, &format!("tensor \"{target}\" holds NaN"));
    assert_eq!(out.stdout, b"", "no scores printed");
}

#[test]
fn many_classes_print_a_summary_not_the_matrix() {
    let dir = temp_dir("compat-classes");
    // 30 classes: above the 20 printed in full, the matrix gives way to the worst confusions.
    let data = csv(&dir, 120, 30);
    let run = hearth(&[
        "train",
        "--model",
        TINY,
        "--data",
        &data,
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--max-length",
        "16",
        "--out",
        &dir.join("adapter").to_string_lossy(),
    ]);
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(!err.contains("confusion (rows: gold"), "{err}");
    assert!(err.contains("most confused (30 classes"), "{err}");
    assert!(err.contains("30 classes: the "), "{err}");
    // The data line lists 20 labels and says how many there are.
    assert!(err.contains("… (30 labels in all)"), "{err}");
    assert!(
        err.lines().count() < 80,
        "{} lines: {err}",
        err.lines().count()
    );
}

#[test]
fn a_garbage_header_is_escaped_and_cut_in_the_message() {
    let dir = temp_dir("compat-garbage");
    // A header of control bytes and one 2 MB "column name".
    let mut bytes = b"\x1b[2J\x07,".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 2_000_000));
    bytes.extend(b"\nrow,1\nrow,2\n");
    let data = write(&dir, "garbage.csv", &bytes);
    let out = hearth(&[
        "train",
        "--model",
        TINY,
        "--data",
        &data,
        "--out",
        &dir.join("never").to_string_lossy(),
    ]);
    assert_user_error(&out, "no column named `text`");
    let err = stderr(&out);
    assert!(err.len() < 4000, "{} bytes of stderr", err.len());
    assert!(err.contains("\\u{1b}[2J\\u{7}"), "{err}");
    assert!(
        !err.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters in {err:?}"
    );
}
