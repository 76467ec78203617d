//! Construction knobs of [`WgpuDevice`].

use std::time::Duration;

use tensorswap_core::{Error, Result};

use crate::adapter::{self, Wanted};
use crate::worker::Staging;
use crate::{WgpuDevice, BACKEND};

/// Default bytes per staging buffer. Measured on lavapipe at 256 MiB
/// transfers: 2-4 MiB x 2 moved 10.6-11.1 GB/s, 8 MiB x 3 9.3-9.5 GB/s,
/// 32 MiB x 3 7.5 GB/s; a small ring stays in the CPU's caches.
const STAGING_SIZE: usize = 4 << 20;
/// Default staging buffers per direction: two overlap staging with copying.
const STAGING_BUFFERS: usize = 2;
/// Staging buffers are whole pages.
const STAGING_GRANULE: usize = 4096;

/// Builds a [`WgpuDevice`]; see [`WgpuDevice::builder`].
///
/// ```no_run
/// use tensorswap_wgpu::WgpuDevice;
///
/// let dev = WgpuDevice::builder()
///     .adapter_name("llvmpipe")
///     .staging_buffers(4)
///     .build()?;
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WgpuDeviceBuilder {
    wanted: Wanted,
    staging_size: usize,
    staging_buffers: usize,
    timeout: Duration,
    usage: wgpu::BufferUsages,
}

impl Default for WgpuDeviceBuilder {
    fn default() -> Self {
        Self {
            wanted: Wanted::default(),
            staging_size: STAGING_SIZE,
            staging_buffers: STAGING_BUFFERS,
            timeout: Duration::from_secs(60),
            usage: wgpu::BufferUsages::STORAGE,
        }
    }
}

impl WgpuDeviceBuilder {
    /// Backends to look on (default: `WGPU_BACKEND`, else all that are
    /// compiled in: Vulkan and GL on Linux).
    pub fn backends(mut self, backends: wgpu::Backends) -> Self {
        self.wanted.backends = Some(backends);
        self
    }

    /// Opens the first adapter whose name contains `name`, ignoring case
    /// (default: `WGPU_ADAPTER_NAME`, else wgpu's choice).
    pub fn adapter_name(mut self, name: impl Into<String>) -> Self {
        self.wanted.name = Some(name.into());
        self
    }

    /// Which adapter wgpu prefers when no name is given (default:
    /// `WGPU_POWER_PREF`, else high performance).
    pub fn power_preference(mut self, power: wgpu::PowerPreference) -> Self {
        self.wanted.power = Some(power);
        self
    }

    /// Bytes per staging buffer (default 4 MiB, rounded up to whole 4 KiB
    /// pages). A transfer moves through staging buffers one piece of this
    /// size at a time.
    pub fn staging_buffer_size(mut self, bytes: usize) -> Self {
        self.staging_size = bytes;
        self
    }

    /// Staging buffers per direction (default 2): how many pieces of
    /// uploads, and of downloads, may be in flight at once.
    pub fn staging_buffers(mut self, count: usize) -> Self {
        self.staging_buffers = count;
        self
    }

    /// Longest wait for one piece of a transfer (default 60 s); past it the
    /// transfer fails and the device is treated as hung.
    pub fn transfer_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Usages device memory gets besides `COPY_SRC | COPY_DST` (default
    /// `STORAGE`), for binding it in your shaders.
    pub fn usage(mut self, usage: wgpu::BufferUsages) -> Self {
        self.usage = usage;
        self
    }

    /// Finds the adapter and opens a device on it with the adapter's own
    /// limits (wgpu's defaults would cap buffers at 256 MiB).
    ///
    /// `Unavailable` when no adapter matches (no GPU and no software
    /// driver, or a `WGPU_ADAPTER_NAME` that matches nothing).
    pub fn build(self) -> Result<WgpuDevice> {
        let staging = self.staging()?;
        let adapter = adapter::select(&self.wanted)?;
        let info = adapter.get_info();
        let desc = wgpu::DeviceDescriptor {
            label: Some("tensorswap"),
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&desc)).map_err(|e| Error::Unavailable {
                component: BACKEND,
                reason: format!(
                    "opening a device on {} ({:?}): {e}",
                    info.name, info.backend
                ),
            })?;
        WgpuDevice::start(device, queue, staging, self.usage)
    }

    /// Wraps a device and queue the application already has, e.g. an engine
    /// that renders or computes with wgpu. Its limits are used as they are:
    /// allocations above its `max_buffer_size` are [`Error::TooLarge`].
    pub fn wrap(self, device: wgpu::Device, queue: wgpu::Queue) -> Result<WgpuDevice> {
        WgpuDevice::start(device, queue, self.staging()?, self.usage)
    }

    fn staging(&self) -> Result<Staging> {
        if self.staging_buffers == 0 || self.staging_size == 0 {
            return Err(Error::Config {
                reason: format!(
                    "wgpu staging needs at least one buffer of at least one byte; \
                     got {} buffers of {} bytes",
                    self.staging_buffers, self.staging_size
                ),
            });
        }
        if self.timeout.is_zero() {
            return Err(Error::Config {
                reason: "wgpu transfer_timeout must be longer than zero".into(),
            });
        }
        Ok(Staging {
            chunk: self.staging_size.next_multiple_of(STAGING_GRANULE) as u64,
            buffers: self.staging_buffers,
            timeout: self.timeout,
        })
    }
}

/// The constructors: each goes through a builder.
impl WgpuDevice {
    /// Opens the default adapter (honouring `WGPU_BACKEND`,
    /// `WGPU_ADAPTER_NAME` and `WGPU_POWER_PREF`) with the default knobs.
    pub fn open() -> Result<Self> {
        Self::builder().build()
    }

    /// Starts configuring a device.
    pub fn builder() -> WgpuDeviceBuilder {
        WgpuDeviceBuilder::default()
    }

    /// Wraps a device and queue the application already has, with the
    /// default knobs; see [`WgpuDeviceBuilder::wrap`].
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        Self::builder().wrap(device, queue)
    }
}
