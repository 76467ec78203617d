//! Opening a device by name, or the best one this machine can run.

use std::fmt;

use tensorswap_core::{Error, Result};

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
        "cpu" => tensorswap_cpu::CpuDevice::new().map(AnyDevice::Cpu),
        #[cfg(feature = "wgpu")]
        "wgpu" => tensorswap_wgpu::WgpuDevice::open().map(AnyDevice::Wgpu),
        #[cfg(feature = "cuda")]
        "cuda" => tensorswap_cuda::CudaDevice::open().map(AnyDevice::Cuda),
        other => Err(Error::Unsupported {
            component: "open",
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
        use tensorswap_core::Device;
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
    let candidates = COMPILED_BACKENDS.iter().map(|&b| (b, open(b)));
    match choose(candidates, software_adapter) {
        Ok((device, passed_over)) => {
            let backend = tensorswap_core::Device::info(&device).backend;
            tracing::info!(backend, passed_over = passed_over.len(), "device selected");
            Ok(Selection {
                device,
                passed_over,
            })
        }
        Err(passed_over) => {
            let reasons: Vec<String> = passed_over
                .iter()
                .map(|(b, e)| format!("{b}: {e}"))
                .collect();
            Err(Error::Unavailable {
                component: "device",
                reason: format!(
                    "no compiled-in backend can run here ({})",
                    reasons.join("; ")
                ),
            })
        }
    }
}

/// Backends with the error each gave, in preference order.
type PassedOver = Vec<(&'static str, Error)>;

/// The first candidate that opened and is not a software stand-in (says
/// `software`), else the first stand-in; with the others and why they were
/// passed over, or every reason when none opened.
fn choose<D>(
    candidates: impl IntoIterator<Item = (&'static str, Result<D>)>,
    software: impl Fn(&D) -> Option<Error>,
) -> std::result::Result<(D, PassedOver), PassedOver> {
    let mut passed_over = Vec::new();
    let mut fallback = None;
    for (backend, opened) in candidates {
        match opened {
            Ok(device) => match software(&device) {
                Some(reason) if fallback.is_none() => {
                    fallback = Some((backend, device));
                    passed_over.push((backend, reason));
                }
                _ => return Ok((device, passed_over)),
            },
            Err(error) => passed_over.push((backend, error)),
        }
    }
    match fallback {
        Some((backend, device)) => {
            passed_over.retain(|(b, _)| *b != backend);
            Ok((device, passed_over))
        }
        None => Err(passed_over),
    }
}

/// Why `device` is a software stand-in rather than a GPU, if it is one.
fn software_adapter(device: &AnyDevice) -> Option<Error> {
    #[cfg(feature = "wgpu")]
    #[allow(irrefutable_let_patterns)] // when wgpu is the only backend compiled in
    if let AnyDevice::Wgpu(dev) = device {
        let adapter = dev.adapter_info();
        if adapter.device_type == tensorswap_wgpu::wgpu::DeviceType::Cpu {
            return Some(Error::Unavailable {
                component: tensorswap_wgpu::BACKEND,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn gone(backend: &'static str) -> Error {
        Error::Unavailable {
            component: backend,
            reason: "not here".into(),
        }
    }

    /// Devices are names; "lavapipe" is the software stand-in.
    fn choose_among(
        candidates: Vec<(&'static str, Result<&'static str>)>,
    ) -> std::result::Result<(&'static str, Vec<&'static str>), Vec<&'static str>> {
        let software = |d: &&str| (*d == "lavapipe").then(|| gone("wgpu"));
        let names = |p: PassedOver| p.into_iter().map(|(b, _)| b).collect();
        choose(candidates, software)
            .map(|(d, passed)| (d, names(passed)))
            .map_err(names)
    }

    #[test]
    fn a_software_adapter_is_chosen_only_when_nothing_after_it_opens() {
        let gpu = vec![
            ("cuda", Err(gone("cuda"))),
            ("wgpu", Ok("nvidia")),
            ("cpu", Ok("ram")),
        ];
        assert_eq!(choose_among(gpu), Ok(("nvidia", vec!["cuda"])));
        let soft = vec![("wgpu", Ok("lavapipe")), ("cpu", Ok("ram"))];
        assert_eq!(choose_among(soft), Ok(("ram", vec!["wgpu"])));
        let only_soft = vec![("wgpu", Ok("lavapipe")), ("cpu", Err(gone("cpu")))];
        assert_eq!(choose_among(only_soft), Ok(("lavapipe", vec!["cpu"])));
        let none = vec![("wgpu", Err(gone("wgpu"))), ("cpu", Err(gone("cpu")))];
        assert_eq!(choose_among(none), Err(vec!["wgpu", "cpu"]));
    }
}
