//! DeepSpeed's `zero_optimization.offload_param` and `offload_optimizer`
//! sections, accepted verbatim.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{AioConfig, Error, Result};

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

/// `zero_optimization.offload_param`: how parameters are swapped.
///
/// Keys and defaults are DeepSpeed's; `buffer_size` and `max_in_cpu` count
/// elements. An unknown key is an error naming it.
///
/// ```
/// use swap_api::swapper::OffloadParamConfig;
/// let c = OffloadParamConfig::from_json(
///     r#"{"zero_optimization": {"offload_param": {"device": "nvme", "nvme_path": "/local_nvme", "buffer_count": 6}}}"#,
/// )?;
/// assert_eq!((c.buffer_count, c.buffer_size), (6, 100_000_000));
/// assert!(OffloadParamConfig::from_json(r#"{"buffer_cnt": 6}"#).is_err());
/// # Ok::<(), swap_api::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OffloadParamConfig {
    /// `none`, `cpu` or `nvme` (default `nvme` here; DeepSpeed's is `none`).
    pub device: OffloadDevice,
    /// Folder for the swap files (required for `nvme`).
    pub nvme_path: Option<PathBuf>,
    /// Parameters that may be swapped in at once (default 5).
    pub buffer_count: usize,
    /// Elements of the largest parameter (default 1e8).
    pub buffer_size: usize,
    /// Elements kept in pinned host memory instead of NVMe (default 1e9).
    pub max_in_cpu: usize,
    /// Page-lock the staging buffers (default false; tensorswap pins where
    /// the memlock limit allows either way, see [`crate::Pinning::Auto`]).
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
/// ```
/// use swap_api::swapper::OffloadOptimizerConfig;
/// let c = OffloadOptimizerConfig::from_json(r#"{"offload_optimizer": {"pipeline_read": true, "pipeline_write": true}}"#)?;
/// assert_eq!(c.buffers_needed(), 3);
/// # Ok::<(), swap_api::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OffloadOptimizerConfig {
    /// `none`, `cpu` or `nvme` (default `nvme` here).
    pub device: OffloadDevice,
    /// Folder for the swap files (required for `nvme`).
    pub nvme_path: Option<PathBuf>,
    /// Pinned buffers, each holding one sub-group's state (default 4).
    pub buffer_count: usize,
    /// Read sub-group i+1 while the caller updates sub-group i.
    pub pipeline_read: bool,
    /// Write sub-group i-1 back while the caller updates sub-group i.
    pub pipeline_write: bool,
    /// Page-lock the buffers (default false; see [`OffloadParamConfig::pin_memory`]).
    pub pin_memory: bool,
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
/// use swap_api::swapper::AioSection;
/// let aio = AioSection::from_json(r#"{"aio": {"block_size": 262144, "use_gds": true}}"#)?;
/// assert!(aio.use_gds);
/// assert_eq!(aio.engine.block_size, 256 << 10);
/// # Ok::<(), swap_api::Error>(())
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
        let (engine, use_gds) = crate::config::parse_section(text)?;
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

macro_rules! section {
    ($ty:ty, $key:literal) => {
        impl $ty {
            #[doc = concat!("Parses a whole DeepSpeed config (its `zero_optimization.", $key, "`), a `zero_optimization` object, or the bare section.")]
            pub fn from_json(text: &str) -> Result<Self> {
                let value: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| config_error($key, e))?;
                let zero = value.get("zero_optimization").unwrap_or(&value);
                let section = zero.get($key).unwrap_or(zero).clone();
                serde_json::from_value(section).map_err(|e| config_error($key, e))
            }
        }
    };
}

section!(OffloadParamConfig, "offload_param");
section!(OffloadOptimizerConfig, "offload_optimizer");

fn config_error(key: &str, err: serde_json::Error) -> Error {
    Error::Config {
        reason: format!("\"{key}\" section: {err}"),
    }
}

/// The folder an `nvme` section names, or an error saying it is missing.
pub(crate) fn nvme_folder(
    key: &str,
    device: OffloadDevice,
    path: &Option<PathBuf>,
) -> Result<Option<PathBuf>> {
    match (device, path) {
        (OffloadDevice::Nvme, Some(path)) => Ok(Some(path.clone())),
        (OffloadDevice::Nvme, None) => Err(Error::Config {
            reason: format!("{key}.device is \"nvme\" but {key}.nvme_path is not set"),
        }),
        _ => Ok(None),
    }
}
