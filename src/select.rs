//! Opening a device by name, or the best one this machine can run.

use std::fmt;

use swap_api::{Error, Result};

use crate::AnyDevice;

/// Backends compiled into this build, most preferred first.
pub const COMPILED_BACKENDS: &[&str] = &[
    #[cfg(feature = "cuda")]
    "cuda",
    #[cfg(feature = "wgpu")]
    "wgpu",
    #[cfg(feature = "cpu")]
    "cpu",
];

/// Opens the default device of the backend called `name` (`"cpu"`, `"wgpu"`, `"cuda"`).
///
/// A backend that is not compiled in is [`Error::Unsupported`] naming the
/// cargo feature to enable; one that cannot run here is whatever its
/// constructor says (usually [`Error::Unavailable`]).
pub fn open(name: &str) -> Result<AnyDevice> {
    match name {
        #[cfg(feature = "cpu")]
        "cpu" => backend_cpu::CpuDevice::new().map(AnyDevice::Cpu),
        #[cfg(feature = "wgpu")]
        "wgpu" => backend_wgpu::WgpuDevice::open().map(AnyDevice::Wgpu),
        #[cfg(feature = "cuda")]
        "cuda" => backend_cuda::CudaDevice::open().map(AnyDevice::Cuda),
        other => Err(Error::Unsupported {
            backend: "tensorswap",
            what: format!(
                "backend {other:?} in this build (compiled in: {}; the cargo features \
                 `cpu`, `wgpu` and `cuda` select backends)",
                COMPILED_BACKENDS.join(", ")
            ),
        }),
    }
}

/// The device [`open_best`] chose, and why each more preferred backend was passed over.
#[derive(Debug)]
pub struct Selection {
    /// The opened device.
    pub device: AnyDevice,
    /// Backends tried before it, with the error each gave.
    pub passed_over: Vec<(&'static str, Error)>,
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use swap_api::Device;
        write!(f, "chose {}", self.device.info())?;
        for (backend, why) in &self.passed_over {
            write!(f, "; passed over {backend}: {why}")?;
        }
        Ok(())
    }
}

/// Opens the most preferred backend that works here (cuda, then wgpu, then
/// cpu, among those compiled in) and says why the others were not chosen.
///
/// A software wgpu adapter (Mesa's lavapipe) is chosen only when nothing
/// after it opens: its "device memory" is host memory behind two copies, so
/// the cpu backend does the same job faster. Ask for it with
/// [`open`]`("wgpu")`.
///
/// ```
/// let selection = tensorswap::open_best()?;
/// println!("{selection}");
/// # Ok::<(), tensorswap::Error>(())
/// ```
pub fn open_best() -> Result<Selection> {
    let mut passed_over = Vec::new();
    let mut fallback = None;
    for &backend in COMPILED_BACKENDS {
        match open(backend) {
            Ok(device) => match software_adapter(&device) {
                Some(reason) if fallback.is_none() => {
                    fallback = Some(device);
                    passed_over.push((backend, reason));
                }
                _ => {
                    tracing::info!(backend, passed_over = passed_over.len(), "device selected");
                    return Ok(Selection {
                        device,
                        passed_over,
                    });
                }
            },
            Err(error) => passed_over.push((backend, error)),
        }
    }
    if let Some(device) = fallback {
        let backend = swap_api::Device::info(&device).backend;
        passed_over.retain(|(b, _)| *b != backend);
        return Ok(Selection {
            device,
            passed_over,
        });
    }
    let reasons: Vec<String> = passed_over
        .iter()
        .map(|(b, e)| format!("{b}: {e}"))
        .collect();
    Err(Error::Unavailable {
        backend: "tensorswap",
        reason: format!(
            "no compiled-in backend can run here ({})",
            reasons.join("; ")
        ),
    })
}

/// Why `device` is a software stand-in rather than a GPU, if it is one.
fn software_adapter(device: &AnyDevice) -> Option<Error> {
    #[cfg(feature = "wgpu")]
    #[allow(irrefutable_let_patterns)] // when wgpu is the only backend compiled in
    if let AnyDevice::Wgpu(dev) = device {
        let adapter = dev.adapter_info();
        if adapter.device_type == backend_wgpu::wgpu::DeviceType::Cpu {
            return Some(Error::Unavailable {
                backend: backend_wgpu::BACKEND,
                reason: format!(
                    "{} is a software adapter (its device memory is host memory); \
                     choose it by name (`--backend wgpu`) to use it anyway",
                    adapter.name
                ),
            });
        }
    }
    let _ = device;
    None
}
