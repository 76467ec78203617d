//! Reading sections of DeepSpeed JSON configs the way DeepSpeed does: where
//! a section sits in a whole config, counts written as `1e8`, and messages
//! that stay short whatever the input.
//!
//! Uses only `error` (layer 1).

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// One level on the way to a section: the key that holds the next level,
/// and the keys that show a document is this level even without that key.
pub struct Level {
    /// The key that holds the next level.
    pub key: &'static str,
    /// Keys that show a document is this level even without [`key`](Self::key).
    pub siblings: &'static [&'static str],
    /// Sibling keys given by prefix (`stage3_...`).
    pub sibling_prefixes: &'static [&'static str],
}

/// Top-level keys of a whole DeepSpeed config (DeepSpeed's documented ones).
pub const TOP_LEVEL: &[&str] = &[
    "activation_checkpointing",
    "aio",
    "amp",
    "autotuning",
    "bf16",
    "checkpoint",
    "comms_logger",
    "communication_data_type",
    "compile",
    "compression_training",
    "csv_monitor",
    "curriculum_learning",
    "data_efficiency",
    "data_types",
    "dump_state",
    "eigenvalue",
    "elasticity",
    "flops_profiler",
    "fp16",
    "gradient_accumulation_steps",
    "gradient_clipping",
    "gradient_predivide_factor",
    "hybrid_engine",
    "memory_breakdown",
    "nebula",
    "optimizer",
    "pipeline",
    "prescale_gradients",
    "progressive_layer_drop",
    "quantize_training",
    "scheduler",
    "seq_parallel_communication_data_type",
    "sparse_attention",
    "sparse_gradients",
    "steps_per_print",
    "tensor_parallel",
    "tensorboard",
    "torch_autocast",
    "train_batch_size",
    "train_micro_batch_size_per_gpu",
    "wall_clock_breakdown",
    "wandb",
    "weight_quantization",
    "zero_allow_untested_optimizer",
    "zero_force_ds_cpu_optimizer",
    "zero_optimization",
];

/// Keys of DeepSpeed's `zero_optimization` object (besides `stage3_*`).
pub const ZERO_LEVEL: &[&str] = &[
    "allgather_bucket_size",
    "allgather_partitions",
    "contiguous_gradients",
    "cpu_offload",
    "cpu_offload_params",
    "cpu_offload_use_pin_memory",
    "elastic_checkpoint",
    "gather_16bit_weights_on_model_save",
    "ignore_unused_parameters",
    "legacy_stage1",
    "load_from_fp32_weights",
    "max_live_parameters",
    "max_reuse_distance",
    "memory_efficient_linear",
    "mics_hierarchical_params_gather",
    "mics_shard_size",
    "model_persistence_threshold",
    "offload_optimizer",
    "offload_param",
    "overlap_comm",
    "param_persistence_threshold",
    "prefetch_bucket_size",
    "reduce_bucket_size",
    "reduce_scatter",
    "round_robin_gradients",
    "stage",
    "sub_group_size",
    "zero_hpz_partition_size",
    "zero_quantized_gradients",
    "zero_quantized_weights",
];

/// The section at the end of `levels` in `text`, which may be a whole config,
/// any level on the way, or the bare section. `None` when the document is a
/// level that lacks the next key, or holds `null` there: DeepSpeed's
/// defaults apply.
///
/// A document counts as a level when it has that level's key or one of its
/// siblings; otherwise it is taken for the next level down, so a bare section
/// with a misspelt key still reaches the section's parser and its error.
pub fn find_section(
    text: &str,
    name: &str,
    levels: &[Level],
) -> Result<Option<Map<String, Value>>> {
    let doc: Value = serde_json::from_str(text).map_err(|e| config_error(name, &e))?;
    let Value::Object(mut node) = doc else {
        return Err(config_error(
            name,
            &format!("the config must be a JSON object, not {}", kind(&doc)),
        ));
    };
    for level in levels {
        match node.remove(level.key) {
            Some(Value::Object(inner)) => node = inner,
            Some(Value::Null) => return Ok(None),
            Some(other) => {
                return Err(config_error(
                    name,
                    &format!(
                        "`{}` must be a JSON object, not {}",
                        level.key,
                        kind(&other)
                    ),
                ))
            }
            None if node.keys().any(|k| level.is_sibling(k)) => return Ok(None),
            None => {}
        }
    }
    Ok(Some(node))
}

impl Level {
    fn is_sibling(&self, key: &str) -> bool {
        self.siblings.contains(&key) || self.sibling_prefixes.iter().any(|p| key.starts_with(p))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a found section (or DeepSpeed's defaults when there is none).
pub fn parse<T: serde::de::DeserializeOwned + Default>(
    name: &str,
    section: Option<Map<String, Value>>,
) -> Result<T> {
    match section {
        None => Ok(T::default()),
        Some(map) => serde_json::from_value(Value::Object(map)).map_err(|e| config_error(name, &e)),
    }
}

/// `Error::Config` for the section `name`, the input's words shortened.
pub fn config_error(name: &str, reason: &dyn std::fmt::Display) -> Error {
    Error::Config {
        reason: format!("\"{name}\" section: {}", bounded(&reason.to_string())),
    }
}

/// Longest word of input kept whole in a message.
pub const MAX_WORD: usize = 80;
/// Longest message.
pub const MAX_MESSAGE: usize = 2000;

/// `message` with every run of more than [`MAX_WORD`] non-space characters
/// cut to its start and its length, and at most [`MAX_MESSAGE`] bytes in
/// all: a 50 MB key must not come back whole in an error.
pub fn bounded(message: &str) -> String {
    let mut out = String::new();
    for (i, word) in message.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.chars().count() > MAX_WORD {
            let head: String = word.chars().take(MAX_WORD / 2).collect();
            out.push_str(&format!("{head}...({} bytes)", word.len()));
        } else {
            out.push_str(word);
        }
        if out.len() > MAX_MESSAGE {
            let cut = (0..=MAX_MESSAGE)
                .rev()
                .find(|&i| out.is_char_boundary(i))
                .unwrap_or(0);
            out.truncate(cut);
            out.push_str("...");
            break;
        }
    }
    out
}

/// Deserializes a count written as an integer or, as DeepSpeed's own docs
/// write them, as a float with an integral value (`1e8`).
pub fn count<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<usize, D::Error> {
    use serde::de::Error as _;
    match Number::deserialize(deserializer)? {
        Number::Int(n) => {
            usize::try_from(n).map_err(|_| D::Error::custom(format!("{n} is too large")))
        }
        Number::Signed(n) => Err(D::Error::custom(format!(
            "{n} is negative; a count is 0 or more"
        ))),
        Number::Float(f) => {
            // 2^64: the first float above every usize on 64-bit targets.
            let in_range = (0.0..18_446_744_073_709_551_616.0).contains(&f);
            if !in_range || f.fract() != 0.0 {
                return Err(D::Error::custom(format!(
                    "{f} is not a whole number of 0 or more"
                )));
            }
            // In range and integral, so the cast is exact (up to float precision).
            usize::try_from(f as u64).map_err(|_| D::Error::custom(format!("{f} is too large")))
        }
    }
}

/// A JSON number in one of serde_json's three shapes.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a whole number")]
enum Number {
    Int(u64),
    Signed(i64),
    Float(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_integral_floats_and_refuse_the_rest() {
        #[derive(Deserialize, Debug)]
        struct C {
            #[serde(deserialize_with = "count")]
            n: usize,
        }
        let n = |text: &str| {
            serde_json::from_str::<C>(text)
                .map(|c| c.n)
                .map_err(|e| e.to_string())
        };
        assert_eq!(n(r#"{"n": 1e8}"#), Ok(100_000_000));
        assert_eq!(n(r#"{"n": 1E9}"#), Ok(1_000_000_000));
        assert_eq!(n(r#"{"n": 5.0}"#), Ok(5));
        assert_eq!(n(r#"{"n": 7}"#), Ok(7));
        for bad in [
            "1.5",
            "-1",
            "-1.0",
            "1e30",
            "\"5\"",
            "true",
            "null",
            "18446744073709551616",
        ] {
            assert!(n(&format!(r#"{{"n": {bad}}}"#)).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_words_are_cut_and_messages_bounded() {
        let key = "k".repeat(50 << 20);
        let message = bounded(&format!("unknown field `{key}`, expected `a` or `b`"));
        assert!(message.len() < 200, "{} bytes", message.len());
        assert!(
            message.contains(&format!("({} bytes)", key.len() + 3)),
            "{message}"
        );
        assert!(message.ends_with("expected `a` or `b`"), "{message}");
        let many = "ab ".repeat(10_000);
        assert!(bounded(&many).len() <= MAX_MESSAGE + 3);
        assert_eq!(bounded("short as it is"), "short as it is");
    }
}
