//! Finding adapters: listing them, and choosing one the way wgpu's own
//! tools do (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`).

use std::fmt;

use tensorswap_core::{Error, Result};

use crate::BACKEND;

/// One adapter wgpu can drive here, as [`adapters`] lists it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdapterSummary {
    /// Name, driver, backend and device type as the driver reports them.
    pub info: wgpu::AdapterInfo,
    /// The largest buffer the adapter allows, in bytes (`max_buffer_size`).
    pub max_buffer_size: u64,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = &self.info;
        write!(
            f,
            "{} ({:?}, {:?}), driver {} {}, largest buffer {} bytes",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info,
            self.max_buffer_size
        )
    }
}

/// The adapters of `backends` (default: `WGPU_BACKEND`, else all), in
/// wgpu's order.
///
/// ```no_run
/// for adapter in tensorswap_wgpu::adapters(None) {
///     println!("{adapter}");
/// }
/// ```
pub fn adapters(backends: Option<wgpu::Backends>) -> Vec<AdapterSummary> {
    let (instance, backends) = instance(backends);
    pollster::block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .map(|adapter| AdapterSummary {
            info: adapter.get_info(),
            max_buffer_size: adapter.limits().max_buffer_size,
        })
        .collect()
}

fn instance(backends: Option<wgpu::Backends>) -> (wgpu::Instance, wgpu::Backends) {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if let Some(backends) = backends {
        desc.backends = backends;
    }
    let backends = desc.backends;
    (wgpu::Instance::new(desc), backends)
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wanted {
    pub(crate) backends: Option<wgpu::Backends>,
    /// A case-insensitive part of the adapter's name.
    pub(crate) name: Option<String>,
    pub(crate) power: Option<wgpu::PowerPreference>,
}

/// The adapter `wanted` describes; `Unavailable` with what there is when
/// none matches.
pub(crate) fn select(wanted: &Wanted) -> Result<wgpu::Adapter> {
    let (instance, backends) = instance(wanted.backends);
    let name = wanted
        .name
        .clone()
        .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
        .filter(|name| !name.is_empty());
    if let Some(name) = name {
        let all = pollster::block_on(instance.enumerate_adapters(backends));
        let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
        let needle = name.to_lowercase();
        return all
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&needle))
            .ok_or_else(|| Error::Unavailable {
                component: BACKEND,
                reason: format!(
                    "no adapter of backends {backends:?} has a name containing {name:?} \
                     (WGPU_ADAPTER_NAME); there are: {names:?}"
                ),
            });
    }
    let options = wgpu::RequestAdapterOptions {
        power_preference: wanted
            .power
            .or_else(wgpu::PowerPreference::from_env)
            .unwrap_or(wgpu::PowerPreference::HighPerformance),
        ..Default::default()
    };
    pollster::block_on(instance.request_adapter(&options)).map_err(|error| Error::Unavailable {
        component: BACKEND,
        reason: format!(
            "no adapter for backends {backends:?}: {error}; on a machine without a GPU, \
             `apt-get install mesa-vulkan-drivers libvulkan1` provides lavapipe (software Vulkan)"
        ),
    })
}
