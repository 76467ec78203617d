//! Fuzzing DeepSpeed config parsing: the `aio`, `offload_param` and
//! `offload_optimizer` sections and whole configs, from seeds shaped like
//! real DeepSpeed configs, mutated byte-wise and token-wise, plus generated
//! JSON trees over DeepSpeed's keys.
//!
//! Every input goes to all four parsers. An input passes when each parser
//! returns a value that validates and survives its own round trip, or an
//! `Error::Config` whose message is bounded. A panic, a stack overflow or
//! another error kind fails the test.
//!
//! Budget: `TENSORSWAP_FUZZ_CASES` inputs per strategy (default 1500, about
//! ten seconds in a debug build); raise it for a longer run, in release:
//! `TENSORSWAP_FUZZ_CASES=200000 cargo test --release -p tensorswap-core --test fuzz_configs`. Extra
//! seeds: every `*.json` under `TENSORSWAP_FUZZ_SEEDS` (default: DeepSpeed's
//! test tree at `../shared/deepspeed` next to the workspace, when present).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value};
use tensorswap_core::{AioConfig, Error};
use tensorswap_swapper::{AioSection, OffloadOptimizerConfig, OffloadParamConfig};

/// Configs written the ways DeepSpeed's docs and tests write them.
const SEEDS: &[&str] = &[
    r#"{"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3,
        "offload_optimizer": {"device": "nvme", "nvme_path": "/local_nvme", "pin_memory": true, "ratio": 0.3, "buffer_count": 4, "fast_init": false},
        "offload_param": {"device": "nvme", "nvme_path": "/local_nvme", "pin_memory": true, "buffer_count": 5, "buffer_size": 1e8, "max_in_cpu": 1e9}},
        "aio": {"block_size": 1048576, "queue_depth": 8, "thread_count": 1, "single_submit": false, "overlap_events": true}}"#,
    r#"{"aio": {"block_size": 262144, "queue_depth": 32, "intra_op_parallelism": 4, "single_submit": true, "overlap_events": false, "use_gds": true}}"#,
    r#"{"train_batch_size": 8, "zero_optimization": {"stage": 3, "stage3_max_live_parameters": 1e9, "offload_param": {"device": "cpu"}}}"#,
    r#"{"train_batch_size": 4, "gradient_accumulation_steps": 1, "steps_per_print": 1,
        "zero_optimization": {"stage": 2, "reduce_bucket_size": 7000000, "allgather_bucket_size": 7000000, "reduce_scatter": true, "cpu_offload": true},
        "gradient_clipping": 1.0, "fp16": {"enabled": true, "loss_scale": 0, "loss_scale_window": 1000, "hysteresis": 2, "min_loss_scale": 1}}"#,
    r#"{"device": "nvme", "nvme_path": "/mnt/nvme", "buffer_count": 6, "pipeline_read": true, "pipeline_write": true}"#,
    r#"{"offload_param": null, "offload_optimizer": {}}"#,
    r#"{"block_size": 1.048576e6, "queue_depth": 8.0}"#,
    "{}",
];

/// Pieces mutations insert: JSON syntax, DeepSpeed's keys, awkward numbers.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-1",
    "1.5",
    "1e8",
    "1e400",
    "-1e400",
    "18446744073709551616",
    "9223372036854775808",
    "1e-400",
    "0.0000001",
    "\"aio\"",
    "\"zero_optimization\"",
    "\"offload_param\"",
    "\"offload_optimizer\"",
    "\"block_size\"",
    "\"queue_depth\"",
    "\"thread_count\"",
    "\"intra_op_parallelism\"",
    "\"use_gds\"",
    "\"buffer_size\"",
    "\"max_in_cpu\"",
    "\"ratio\"",
    "\"device\"",
    "\"nvme\"",
    "\"nvme_path\"",
    "\"stage\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\u{feff}",
    "\u{0}",
];

/// Keys generated trees draw from.
const KEYS: &[&str] = &[
    "aio",
    "zero_optimization",
    "offload_param",
    "offload_optimizer",
    "block_size",
    "queue_depth",
    "thread_count",
    "intra_op_parallelism",
    "single_submit",
    "overlap_events",
    "use_gds",
    "device",
    "nvme_path",
    "buffer_count",
    "buffer_size",
    "max_in_cpu",
    "pin_memory",
    "pipeline_read",
    "pipeline_write",
    "fast_init",
    "ratio",
    "stage",
    "train_batch_size",
    "stage3_prefetch_bucket_size",
    "fp16",
];

fn budget() -> u32 {
    std::env::var("TENSORSWAP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

/// The built-in seeds and every `*.json` file under the seed folder.
fn seeds() -> Vec<String> {
    let folder = std::env::var_os("TENSORSWAP_FUZZ_SEEDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/deepspeed"));
    let mut seeds: Vec<String> = SEEDS.iter().map(|s| s.to_string()).collect();
    let mut stack = vec![folder];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    seeds.push(text);
                }
            }
        }
    }
    seeds
}

/// Longest `Display` of a config error any input may produce.
const MAX_MESSAGE: usize = 2500;

fn check_error(parser: &str, err: Error) -> Result<(), TestCaseError> {
    let text = err.to_string();
    prop_assert!(
        matches!(err, Error::Config { .. }),
        "{parser}: not a Config error: {text}"
    );
    prop_assert!(
        text.len() <= MAX_MESSAGE,
        "{parser}: a {}-byte message",
        text.len()
    );
    Ok(())
}

/// Runs `input` through every parser and checks what comes back.
fn check(input: &str) -> Result<(), TestCaseError> {
    match AioConfig::from_json(input) {
        Ok(c) => {
            prop_assert!(c.validate().is_ok(), "accepted an invalid {c:?}");
            prop_assert_eq!(AioConfig::from_json(&c.to_json()).ok(), Some(c));
        }
        Err(e) => check_error("AioConfig", e)?,
    }
    match AioSection::from_json(input) {
        Ok(s) => prop_assert!(s.engine.validate().is_ok()),
        Err(e) => check_error("AioSection", e)?,
    }
    match OffloadParamConfig::from_json(input) {
        Ok(c) => {
            let text = serde_json::to_string(&c).expect("serializes");
            prop_assert_eq!(OffloadParamConfig::from_json(&text).ok(), Some(c));
        }
        Err(e) => check_error("OffloadParamConfig", e)?,
    }
    match OffloadOptimizerConfig::from_json(input) {
        Ok(c) => {
            prop_assert!((0.0..=1.0).contains(&c.ratio), "ratio {}", c.ratio);
            let text = serde_json::to_string(&c).expect("serializes");
            prop_assert_eq!(OffloadOptimizerConfig::from_json(&text).ok(), Some(c));
        }
        Err(e) => check_error("OffloadOptimizerConfig", e)?,
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Insert { at: usize, token: usize },
    Delete { at: usize, len: usize },
    Repeat { at: usize, len: usize, times: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1usize..30, 2usize..200).prop_map(|(at, len, times)| Mutation::Repeat {
            at,
            len,
            times
        }),
    ]
}

fn apply(seed: &str, mutations: &[Mutation]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for m in mutations {
        let n = bytes.len().max(1);
        match *m {
            Mutation::Flip { at, byte } => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b ^= byte;
                }
            }
            Mutation::Insert { at, token } => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, TOKENS[token].bytes());
            }
            Mutation::Delete { at, len } => {
                let at = at % n;
                let end = (at + len).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            Mutation::Repeat { at, len, times } => {
                let at = at % n;
                let end = (at + len).min(bytes.len());
                let piece = bytes[at.min(end)..end].to_vec();
                for _ in 1..times {
                    bytes.splice(end..end, piece.iter().copied());
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0u64..10).prop_map(|e| Value::from(10f64.powi(e as i32 * 3))),
        "[a-z/]{0,12}".prop_map(Value::String),
        prop::sample::select(&["nvme", "cpu", "none", "NVME", ""][..]).prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_string),
                        "[a-z_]{1,12}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: budget(),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs `strategy`'s inputs through [`check`] and says how many ran.
fn fuzz<S: Strategy>(what: &str, strategy: S, input: impl Fn(S::Value) -> String) {
    let started = Instant::now();
    let inputs = AtomicUsize::new(0);
    runner()
        .run(&strategy, |value| {
            inputs.fetch_add(1, Ordering::Relaxed);
            check(&input(value))
        })
        .unwrap();
    eprintln!(
        "fuzz {what}: {} inputs, no finding, {:.1} s",
        inputs.into_inner(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn mutated_deepspeed_configs_never_panic_and_fail_as_config_errors() {
    let seeds = seeds();
    fuzz(
        &format!("mutations of {} seeds", seeds.len()),
        (0..seeds.len(), prop::collection::vec(mutation(), 1..8)),
        |(seed, mutations)| apply(&seeds[seed], &mutations),
    );
}

#[test]
fn generated_json_trees_over_deepspeeds_keys_never_panic() {
    fuzz("JSON trees", json_value(), |value| value.to_string());
}

/// Found by the generator: a ratio that came back one ulp off after a JSON
/// round trip, until serde_json parsed floats exactly (`float_roundtrip`).
#[test]
fn float_fields_survive_a_json_round_trip_exactly() {
    for ratio in [
        "8.91106589389193e-14",
        "0.1",
        "2.2250738585072014e-308",
        "0.30000000000000004",
    ] {
        check(&format!(r#"{{"ratio": {ratio}}}"#)).unwrap();
        let c = OffloadOptimizerConfig::from_json(&format!(r#"{{"ratio": {ratio}}}"#)).unwrap();
        assert_eq!(c.ratio, ratio.parse::<f64>().unwrap(), "{ratio}");
    }
}

#[test]
fn deep_nesting_and_huge_inputs_fail_cleanly() {
    for depth in [200, 100_000] {
        for (open, close) in [
            ("[", "]"),
            ("{\"aio\":", "}"),
            ("{\"zero_optimization\":", "}"),
        ] {
            let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            check(&text).unwrap();
            assert!(AioConfig::from_json(&text).is_err(), "{open} x {depth}");
        }
    }
    let key = "k".repeat(50 << 20);
    for text in [
        format!(r#"{{"aio": {{"{key}": 1}}}}"#),
        format!(r#"{{"offload_param": {{"device": "{key}"}}}}"#),
        format!(r#"{{"aio": {{"block_size": "{key}"}}}}"#),
    ] {
        check(&text).unwrap();
    }
}
