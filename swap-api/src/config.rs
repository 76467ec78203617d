//! DeepSpeed's `"aio"` configuration section, accepted verbatim.

use serde::{Deserialize, Serialize};

use crate::ds_config::{self, count, Level, TOP_LEVEL};
use crate::{Error, Result};

/// Largest `block_size`: one piece must fit a single kernel request.
const MAX_BLOCK_SIZE: usize = 1 << 30;
/// Largest `queue_depth` per worker.
const MAX_QUEUE_DEPTH: usize = 4096;
/// Largest `intra_op_parallelism`.
const MAX_PARALLELISM: usize = 256;

/// The `"aio"` section of a DeepSpeed config: how the I/O engine splits and
/// queues requests.
///
/// Keys and defaults are DeepSpeed's. `thread_count` is accepted as the older
/// name of `intra_op_parallelism`. Unknown keys are an error that names the
/// key and the known ones (DeepSpeed ignores them silently). The section's
/// `use_gds` key is accepted and left to the swappers, which act on it
/// (`tensorswap_swapper::AioSection`): it says how tensors travel,
/// not how the engine runs.
///
/// ```
/// use tensorswap_core::AioConfig;
/// let aio = AioConfig::from_json(r#"{"aio": {"block_size": 262144, "thread_count": 2}}"#)?;
/// assert_eq!(aio.block_size, 256 << 10);
/// assert_eq!(aio.intra_op_parallelism, 2);
/// assert_eq!(aio.queue_depth, 8); // DeepSpeed's default
///
/// let built = AioConfig::default().with_block_size(256 << 10).with_parallelism(2);
/// assert_eq!(built, aio);
/// assert_eq!(AioConfig::from_json(&built.to_json())?, built);
///
/// let err = AioConfig::from_json(r#"{"block_sz": 1}"#).unwrap_err();
/// assert!(err.to_string().contains("block_sz"));
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AioConfig {
    /// Bytes per I/O piece (DeepSpeed default 1048576).
    #[serde(deserialize_with = "count")]
    pub block_size: usize,
    /// Pieces in flight per worker (default 8).
    #[serde(deserialize_with = "count")]
    pub queue_depth: usize,
    /// Workers one request is spread over (default 1; alias `thread_count`).
    #[serde(alias = "thread_count", deserialize_with = "count")]
    pub intra_op_parallelism: usize,
    /// Submit pieces one at a time instead of in batches (default false).
    pub single_submit: bool,
    /// Keep submitting while completions are reaped (default true).
    pub overlap_events: bool,
}

impl Default for AioConfig {
    fn default() -> Self {
        Self {
            block_size: 1 << 20,
            queue_depth: 8,
            intra_op_parallelism: 1,
            single_submit: false,
            overlap_events: true,
        }
    }
}

impl AioConfig {
    /// Parses either a whole DeepSpeed config (its `"aio"` key is used, other
    /// top-level sections are left to their owners; without one, or with
    /// `"aio": null`, DeepSpeed's defaults) or the bare section. Counts may be
    /// written as integral floats (`1e6`), as DeepSpeed's docs do.
    pub fn from_json(text: &str) -> Result<Self> {
        Ok(Self::from_json_with_gds(text)?.0)
    }

    /// The config as a DeepSpeed `{"aio": {...}}` object, every key spelled out.
    pub fn to_json(&self) -> String {
        let doc = serde_json::json!({ "aio": self });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }

    /// Checks that every value is usable, naming the key otherwise.
    pub fn validate(&self) -> Result<()> {
        let check = |key: &str, value: usize, max: usize| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(Error::Config {
                    reason: format!("`{key}` is {value}; it must be between 1 and {max}"),
                })
            }
        };
        check("block_size", self.block_size, MAX_BLOCK_SIZE)?;
        check("queue_depth", self.queue_depth, MAX_QUEUE_DEPTH)?;
        check(
            "intra_op_parallelism",
            self.intra_op_parallelism,
            MAX_PARALLELISM,
        )
    }

    /// Sets `block_size`.
    pub fn with_block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes;
        self
    }

    /// Sets `queue_depth`.
    pub fn with_queue_depth(mut self, depth: usize) -> Self {
        self.queue_depth = depth;
        self
    }

    /// Sets `intra_op_parallelism`.
    pub fn with_parallelism(mut self, workers: usize) -> Self {
        self.intra_op_parallelism = workers;
        self
    }

    /// Sets `single_submit`.
    pub fn with_single_submit(mut self, single: bool) -> Self {
        self.single_submit = single;
        self
    }

    /// Sets `overlap_events`.
    pub fn with_overlap_events(mut self, overlap: bool) -> Self {
        self.overlap_events = overlap;
        self
    }
}

impl AioConfig {
    /// [`from_json`](Self::from_json), with the value of `use_gds` (false
    /// when absent): the one key of the section that is not the engine's
    /// (the swappers act on it).
    pub fn from_json_with_gds(text: &str) -> Result<(Self, bool)> {
        parse_section(text)
    }
}

fn parse_section(text: &str) -> Result<(AioConfig, bool)> {
    let levels = [Level {
        key: "aio",
        siblings: TOP_LEVEL,
        sibling_prefixes: &[],
    }];
    let mut section = ds_config::find_section(text, "aio", &levels)?;
    let use_gds = match section.as_mut().and_then(|keys| keys.remove("use_gds")) {
        None => false,
        Some(serde_json::Value::Bool(on)) => on,
        Some(other) => {
            return Err(ds_config::config_error(
                "aio",
                &format!("`use_gds` is {other}; it must be true or false"),
            ))
        }
    };
    let config: AioConfig = ds_config::parse("aio", section)?;
    config.validate()?;
    Ok((config, use_gds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_deepspeed() {
        let c = AioConfig::from_json("{}").unwrap();
        assert_eq!(c, AioConfig::default());
        assert_eq!(
            (c.block_size, c.queue_depth, c.intra_op_parallelism),
            (1048576, 8, 1)
        );
        assert!(!c.single_submit && c.overlap_events);
    }

    #[test]
    fn whole_deepspeed_config_is_accepted() {
        let text = r#"{
            "train_batch_size": 8,
            "zero_optimization": {"stage": 3},
            "aio": {"block_size": 131072, "queue_depth": 16, "intra_op_parallelism": 4,
                    "single_submit": true, "overlap_events": false, "use_gds": true}
        }"#;
        let c = AioConfig::from_json(text).unwrap();
        assert_eq!(
            c,
            AioConfig {
                block_size: 131072,
                queue_depth: 16,
                intra_op_parallelism: 4,
                single_submit: true,
                overlap_events: false,
            }
        );
        assert_eq!(parse_section(text).unwrap(), (c, true));
    }

    #[test]
    fn a_whole_config_without_the_section_gets_the_defaults() {
        for text in [
            r#"{"train_batch_size": 8, "zero_optimization": {"stage": 3}}"#,
            r#"{"train_batch_size": 8, "aio": null}"#,
            "{}",
        ] {
            assert_eq!(
                AioConfig::from_json(text).unwrap(),
                AioConfig::default(),
                "{text}"
            );
        }
    }

    #[test]
    fn deepspeed_float_counts_are_accepted() {
        let c = AioConfig::from_json(r#"{"aio": {"block_size": 1.048576e6, "queue_depth": 16.0}}"#)
            .unwrap();
        assert_eq!((c.block_size, c.queue_depth), (1 << 20, 16));
        let err = AioConfig::from_json(r#"{"aio": {"block_size": 1500.5}}"#).unwrap_err();
        assert!(err.to_string().contains("whole number"), "{err}");
    }

    #[test]
    fn the_section_and_the_config_must_be_objects() {
        for (text, says) in [
            (
                r#"{"aio": [1]}"#,
                "`aio` must be a JSON object, not an array",
            ),
            (r#"{"aio": 3}"#, "not a number"),
            ("[1]", "the config must be a JSON object"),
            ("7", "the config must be a JSON object"),
        ] {
            let err = AioConfig::from_json(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn use_gds_must_be_a_boolean() {
        let err = AioConfig::from_json(r#"{"aio": {"use_gds": 1}}"#).unwrap_err();
        assert!(
            matches!(&err, Error::Config { reason } if reason.contains("use_gds")),
            "{err}"
        );
        assert!(!parse_section(r#"{"aio": {}}"#).unwrap().1);
    }

    #[test]
    fn unknown_key_names_itself_and_the_known_ones() {
        let err = AioConfig::from_json(r#"{"aio": {"queue_dept": 4}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("queue_dept"), "{err}");
        assert!(
            err.contains("queue_depth") && err.contains("block_size"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_config_errors() {
        for text in [
            r#"{"block_size": 0}"#,
            r#"{"queue_depth": 100000}"#,
            r#"{"thread_count": 0}"#,
            r#"{"block_size": -1}"#,
            r#"{"block_size": "1M"}"#,
            r#"{"thread_count": 2, "intra_op_parallelism": 2}"#,
            "not json",
        ] {
            assert!(
                matches!(AioConfig::from_json(text), Err(Error::Config { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn serde_round_trip() {
        let c = AioConfig::default()
            .with_block_size(4096)
            .with_queue_depth(32)
            .with_parallelism(3)
            .with_single_submit(true)
            .with_overlap_events(false);
        assert_eq!(AioConfig::from_json(&c.to_json()).unwrap(), c);
        let text: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(text["aio"]["intra_op_parallelism"], 3);
    }
}
