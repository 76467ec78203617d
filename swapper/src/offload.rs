//! DeepSpeed's `zero_optimization.offload_param` and `offload_optimizer`
//! sections, accepted verbatim.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use tensorswap_core::ds_config::{self, count, Level, TOP_LEVEL, ZERO_LEVEL};
use tensorswap_core::{AioConfig, Error, Result};

/// Where DeepSpeed offloads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffloadDevice {
    /// No offload: the swapper keeps everything in device memory.
    None,
    /// Pinned host memory only.
    Cpu,
    /// NVMe files under `nvme_path`.
    #[default]
    Nvme,
}

/// `nvme_path`: one folder, DeepSpeed's form, or several (one per drive)
/// that the store stripes over: a list, in JSON or from Rust.
///
/// ```
/// use tensorswap_swapper::{NvmePath, OffloadParamConfig};
/// let one = OffloadParamConfig::from_json(r#"{"offload_param": {"nvme_path": "/nvme0"}}"#)?;
/// let two = OffloadParamConfig::from_json(r#"{"offload_param": {"nvme_path": ["/nvme0", "/nvme1"]}}"#)?;
/// assert_eq!(one.nvme_path.unwrap().folders().len(), 1);
/// assert_eq!(two.nvme_path, Some(NvmePath::from(vec!["/nvme0".into(), "/nvme1".into()])));
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NvmePath {
    /// One folder (written as a string, as DeepSpeed writes it).
    One(PathBuf),
    /// Several folders, in stripe order (written as a list).
    Several(Vec<PathBuf>),
}

impl NvmePath {
    /// The folders, in stripe order.
    pub fn folders(&self) -> &[PathBuf] {
        match self {
            Self::One(path) => std::slice::from_ref(path),
            Self::Several(paths) => paths,
        }
    }
}

impl From<PathBuf> for NvmePath {
    fn from(path: PathBuf) -> Self {
        Self::One(path)
    }
}

impl From<&Path> for NvmePath {
    fn from(path: &Path) -> Self {
        Self::One(path.to_path_buf())
    }
}

impl From<Vec<PathBuf>> for NvmePath {
    fn from(paths: Vec<PathBuf>) -> Self {
        Self::Several(paths)
    }
}

/// `zero_optimization.offload_param`: how parameters are swapped.
///
/// Keys and defaults are DeepSpeed's; `buffer_size` and `max_in_cpu` count
/// elements and may be written as DeepSpeed's docs write them (`1e8`). An
/// unknown key is an error naming it.
///
/// ```
/// use tensorswap_swapper::OffloadParamConfig;
/// let c = OffloadParamConfig::from_json(
///     r#"{"zero_optimization": {"offload_param": {"device": "nvme", "nvme_path": "/local_nvme", "buffer_count": 6}}}"#,
/// )?;
/// assert_eq!((c.buffer_count, c.buffer_size), (6, 100_000_000));
/// assert!(OffloadParamConfig::from_json(r#"{"buffer_cnt": 6}"#).is_err());
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OffloadParamConfig {
    /// `none`, `cpu` or `nvme` (default `nvme` here; DeepSpeed's is `none`).
    pub device: OffloadDevice,
    /// Folder for the swap files, or folders to stripe them over (required
    /// for `nvme`).
    pub nvme_path: Option<NvmePath>,
    /// Parameters that may be swapped in at once (default 5).
    #[serde(deserialize_with = "count")]
    pub buffer_count: usize,
    /// Elements of the largest parameter (default 1e8).
    #[serde(deserialize_with = "count")]
    pub buffer_size: usize,
    /// Elements kept in pinned host memory instead of NVMe (default 1e9).
    #[serde(deserialize_with = "count")]
    pub max_in_cpu: usize,
    /// Page-lock the staging buffers (default false; tensorswap pins where
    /// the memlock limit allows either way, see [`tensorswap_core::Pinning::Auto`]).
    pub pin_memory: bool,
}

impl Default for OffloadParamConfig {
    fn default() -> Self {
        Self {
            device: OffloadDevice::Nvme,
            nvme_path: None,
            buffer_count: 5,
            buffer_size: 100_000_000,
            max_in_cpu: 1_000_000_000,
            pin_memory: false,
        }
    }
}

/// `zero_optimization.offload_optimizer`: how optimizer state is swapped.
///
/// Keys and defaults are DeepSpeed's. `fast_init` and `ratio` are accepted
/// and checked but change nothing here (see their fields).
///
/// ```
/// use tensorswap_swapper::OffloadOptimizerConfig;
/// let c = OffloadOptimizerConfig::from_json(r#"{"offload_optimizer": {"pipeline_read": true, "pipeline_write": true}}"#)?;
/// assert_eq!(c.buffers_needed(), 3);
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OffloadOptimizerConfig {
    /// `none`, `cpu` or `nvme` (default `nvme` here).
    pub device: OffloadDevice,
    /// Folder for the swap files, or folders to stripe them over (required
    /// for `nvme`).
    pub nvme_path: Option<NvmePath>,
    /// Pinned buffers, each holding one sub-group's state (default 4).
    #[serde(deserialize_with = "count")]
    pub buffer_count: usize,
    /// Read sub-group i+1 while the caller updates sub-group i.
    pub pipeline_read: bool,
    /// Write sub-group i-1 back while the caller updates sub-group i.
    pub pipeline_write: bool,
    /// Page-lock the buffers (default false; see [`OffloadParamConfig::pin_memory`]).
    pub pin_memory: bool,
    /// DeepSpeed: initialise optimizer state on NVMe quickly (default
    /// false). Ignored: the optimizer swapper writes state the caller gives.
    pub fast_init: bool,
    /// DeepSpeed: the share of optimizer steps run on the CPU in ZeRO-Offload
    /// ++ (default 1.0, between 0 and 1). Ignored: it concerns where the step
    /// runs, not how state is swapped.
    pub ratio: f64,
}

impl Default for OffloadOptimizerConfig {
    fn default() -> Self {
        Self {
            device: OffloadDevice::Nvme,
            nvme_path: None,
            buffer_count: 4,
            pipeline_read: false,
            pipeline_write: false,
            pin_memory: false,
            fast_init: false,
            ratio: 1.0,
        }
    }
}

impl OffloadOptimizerConfig {
    /// Buffers a step needs for the configured overlap: one for the group
    /// being updated, one more for reading ahead, one more for writing behind.
    pub fn buffers_needed(&self) -> usize {
        1 + usize::from(self.pipeline_read) + usize::from(self.pipeline_write)
    }
}

/// DeepSpeed's whole `"aio"` section as the swappers read it: the engine's
/// settings, and `use_gds`, which asks the swappers to move tensors between
/// files and device memory directly (GPUDirect Storage) where the device
/// can, falling back to pinned host memory with the reason otherwise
/// ([`DataPath`](super::DataPath)).
///
/// ```
/// use tensorswap_swapper::AioSection;
/// let aio = AioSection::from_json(r#"{"aio": {"block_size": 262144, "use_gds": true}}"#)?;
/// assert!(aio.use_gds);
/// assert_eq!(aio.engine.block_size, 256 << 10);
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AioSection {
    /// How the I/O engine splits and queues requests.
    pub engine: AioConfig,
    /// Direct storage between files and device memory (default false).
    pub use_gds: bool,
}

impl AioSection {
    /// Parses a whole DeepSpeed config (its `"aio"` key) or the bare section.
    pub fn from_json(text: &str) -> Result<Self> {
        let (engine, use_gds) = AioConfig::from_json_with_gds(text)?;
        Ok(Self { engine, use_gds })
    }
}

impl From<AioConfig> for AioSection {
    /// The engine's settings, without direct storage.
    fn from(engine: AioConfig) -> Self {
        Self {
            engine,
            use_gds: false,
        }
    }
}

/// The way from a whole config to `zero_optimization.<key>`.
fn levels(key: &'static str) -> [Level; 2] {
    [
        Level {
            key: "zero_optimization",
            siblings: TOP_LEVEL,
            sibling_prefixes: &[],
        },
        Level {
            key,
            siblings: ZERO_LEVEL,
            sibling_prefixes: &["stage3_"],
        },
    ]
}

impl OffloadParamConfig {
    /// Parses a whole DeepSpeed config (its `zero_optimization.offload_param`;
    /// DeepSpeed's defaults when it has none or it is `null`), a
    /// `zero_optimization` object, or the bare section.
    pub fn from_json(text: &str) -> Result<Self> {
        let key = "offload_param";
        ds_config::parse(key, ds_config::find_section(text, key, &levels(key))?)
    }
}

impl OffloadOptimizerConfig {
    /// Parses a whole DeepSpeed config (its
    /// `zero_optimization.offload_optimizer`; DeepSpeed's defaults when it has
    /// none or it is `null`), a `zero_optimization` object, or the bare
    /// section.
    pub fn from_json(text: &str) -> Result<Self> {
        let key = "offload_optimizer";
        let config: Self =
            ds_config::parse(key, ds_config::find_section(text, key, &levels(key))?)?;
        if !(0.0..=1.0).contains(&config.ratio) {
            return Err(ds_config::config_error(
                key,
                &format!("`ratio` is {}; it must be between 0 and 1", config.ratio),
            ));
        }
        if config.fast_init || config.ratio != 1.0 {
            tracing::info!(
                fast_init = config.fast_init,
                ratio = config.ratio,
                "offload_optimizer: `fast_init` and `ratio` are accepted and ignored by tensorswap"
            );
        }
        Ok(config)
    }
}

/// The folders an `nvme` section names (none for other devices), or an
/// error saying they are missing.
pub(crate) fn nvme_folders(
    key: &str,
    device: OffloadDevice,
    path: &Option<NvmePath>,
) -> Result<Vec<PathBuf>> {
    match (device, path.as_ref().map(NvmePath::folders)) {
        (OffloadDevice::Nvme, Some([])) => Err(Error::Config {
            reason: format!("{key}.nvme_path is an empty list; give at least one folder"),
        }),
        (OffloadDevice::Nvme, Some(folders)) => Ok(folders.to_vec()),
        (OffloadDevice::Nvme, None) => Err(Error::Config {
            reason: format!("{key}.device is \"nvme\" but {key}.nvme_path is not set"),
        }),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ZeRO-Infinity example of DeepSpeed's configuration docs, verbatim.
    const DOCS: &str = r#"{
        "train_micro_batch_size_per_gpu": 1,
        "zero_optimization": {
            "stage": 3,
            "offload_optimizer": {"device": "nvme", "nvme_path": "/local_nvme", "pin_memory": true,
                                  "ratio": 0.3, "buffer_count": 4, "fast_init": false},
            "offload_param": {"device": "nvme", "nvme_path": "/local_nvme", "pin_memory": true,
                              "buffer_count": 5, "buffer_size": 1e8, "max_in_cpu": 1e9}
        },
        "aio": {"block_size": 1048576, "queue_depth": 8, "thread_count": 1,
                "single_submit": false, "overlap_events": true}
    }"#;

    #[test]
    fn deepspeeds_documented_config_parses_verbatim() {
        let param = OffloadParamConfig::from_json(DOCS).unwrap();
        assert_eq!(
            (param.buffer_size, param.max_in_cpu),
            (100_000_000, 1_000_000_000)
        );
        assert!(param.pin_memory);
        let optimizer = OffloadOptimizerConfig::from_json(DOCS).unwrap();
        assert_eq!((optimizer.ratio, optimizer.fast_init), (0.3, false));
        assert_eq!(
            optimizer.nvme_path,
            Some(NvmePath::One("/local_nvme".into()))
        );
        assert_eq!(
            AioSection::from_json(DOCS).unwrap().engine,
            AioConfig::default()
        );
    }

    #[test]
    fn a_config_or_zero_object_without_the_section_gets_the_defaults() {
        for text in [
            r#"{"train_batch_size": 8, "zero_optimization": {"stage": 3}}"#,
            r#"{"train_batch_size": 8}"#,
            r#"{"stage": 3, "stage3_max_live_parameters": 1e9}"#,
            r#"{"zero_optimization": {"offload_param": null, "offload_optimizer": null}}"#,
            r#"{"zero_optimization": null}"#,
            "{}",
        ] {
            assert_eq!(
                OffloadParamConfig::from_json(text).unwrap(),
                OffloadParamConfig::default(),
                "{text}"
            );
            assert_eq!(
                OffloadOptimizerConfig::from_json(text).unwrap(),
                OffloadOptimizerConfig::default(),
                "{text}"
            );
        }
    }

    #[test]
    fn misplaced_or_misspelt_sections_are_errors_naming_the_key() {
        for (text, says) in [
            (
                r#"{"zero_optimization": 5}"#,
                "`zero_optimization` must be a JSON object",
            ),
            (
                r#"{"zero_optimization": {"offload_param": [1]}}"#,
                "`offload_param` must be a JSON object",
            ),
            (r#"{"buffer_cnt": 6}"#, "buffer_cnt"),
            (r#"{"offload_param": {"buffer_size": 1.5}}"#, "whole number"),
            (r#"{"offload_param": {"max_in_cpu": -1}}"#, "negative"),
        ] {
            let err = OffloadParamConfig::from_json(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
        for ratio in ["1.5", "-0.1"] {
            let text = format!(r#"{{"offload_optimizer": {{"ratio": {ratio}}}}}"#);
            let err = OffloadOptimizerConfig::from_json(&text)
                .unwrap_err()
                .to_string();
            assert!(err.contains("`ratio`"), "{text}: {err}");
        }
    }
}
