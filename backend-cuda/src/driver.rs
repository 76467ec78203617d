//! Loading the CUDA driver, describing its errors, and listing devices.

use std::fmt;
use std::sync::OnceLock;

use cudarc::driver::{result, sys, DriverError};
use tensorswap_core::{Error, Result};

use crate::BACKEND;

/// Loads libcuda and runs `cuInit` once per process; `Unavailable` with the
/// reason when there is no driver library or it finds no usable device.
///
/// cudarc panics on the first driver call when libcuda is missing, so every
/// path into the driver starts here.
pub(crate) fn load() -> Result<()> {
    static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let outcome = LOADED.get_or_init(|| {
        if !driver_library_present() {
            return Err(
                "the CUDA driver library (libcuda.so) is not installed or not on the loader path"
                    .into(),
            );
        }
        result::init().map_err(|e| format!("cuInit failed: {}", describe(&e)))
    });
    outcome.clone().map_err(|reason| Error::Unavailable {
        component: BACKEND,
        reason,
    })
}

/// The Linux names of the driver library this crate checks.
const NAMES: [&std::ffi::CStr; 2] = [c"libcuda.so.1", c"libcuda.so"];

/// Whether a driver library already loaded by one of [`NAMES`] exports
/// `symbol`.
pub(crate) fn loaded_symbol(symbol: &std::ffi::CStr) -> bool {
    NAMES.iter().any(|name| {
        // SAFETY: dlopen of a NUL-terminated name that loads nothing new
        // (RTLD_NOLOAD); the handle is closed again after one lookup.
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
            if handle.is_null() {
                return false;
            }
            let found = !libc::dlsym(handle, symbol.as_ptr()).is_null();
            libc::dlclose(handle);
            found
        }
    })
}

/// True when the driver library can be loaded by one of its Linux names
/// (those cudarc tries, `libcuda.so` and `libcuda.so.1` among them), so that
/// no driver call panics for want of it; always, when cudarc was linked to
/// it (as candle's `cuda` feature has it).
fn driver_library_present() -> bool {
    NAMES.iter().any(|name| {
        // SAFETY: dlopen of a NUL-terminated name; the handle is only closed
        // again (the library stays loaded if anything else holds it).
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
            !handle.is_null() && libc::dlclose(handle) == 0
        }
    })
}

/// The number of CUDA devices (0 when the driver is missing).
pub(crate) fn device_count() -> Result<usize> {
    load()?;
    let count = result::device::get_count().map_err(|e| failed("count devices", &e))?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// `CUDA_ERROR_NAME: description`, as the driver words it.
pub(crate) fn describe(error: &DriverError) -> String {
    match (error.error_name(), error.error_string()) {
        (Ok(name), Ok(text)) => format!("{}: {}", name.to_string_lossy(), text.to_string_lossy()),
        _ => format!("{:?}", error.0),
    }
}

/// A driver call other than a transfer failed.
pub(crate) fn failed(op: &'static str, error: &DriverError) -> Error {
    Error::Device {
        component: BACKEND,
        op,
        reason: describe(error),
    }
}

/// One CUDA device, as [`devices`] lists it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CudaDeviceSummary {
    /// Device ordinal (what [`crate::CudaDevice::new`] takes).
    pub ordinal: usize,
    /// Name as the driver reports it.
    pub name: String,
    /// Total device memory in bytes.
    pub memory: usize,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// PCI address (`domain:bus:device.0`).
    pub pci_address: String,
    /// Current PCIe link as Linux reports it in sysfs (e.g. `32.0 GT/s PCIe x16`), when readable.
    pub pcie_link: Option<String>,
}

impl fmt::Display for CudaDeviceSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.compute_capability;
        write!(
            f,
            "cuda:{} {} ({} bytes, compute {major}.{minor}, PCI {}",
            self.ordinal, self.name, self.memory, self.pci_address
        )?;
        if let Some(link) = &self.pcie_link {
            write!(f, ", link {link}")?;
        }
        f.write_str(")")
    }
}

/// Every CUDA device of this machine; `Unavailable` without a driver.
///
/// ```no_run
/// for device in tensorswap_cuda::devices()? {
///     println!("{device}");
/// }
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
pub fn devices() -> Result<Vec<CudaDeviceSummary>> {
    (0..device_count()?).map(summary).collect()
}

fn summary(ordinal: usize) -> Result<CudaDeviceSummary> {
    let dev = result::device::get(ordinal as i32).map_err(|e| failed("get device", &e))?;
    let attribute = |attr| {
        // SAFETY: `dev` is a device handle the driver just returned.
        unsafe { result::device::get_attribute(dev, attr) }.map_err(|e| failed("query device", &e))
    };
    use sys::CUdevice_attribute as A;
    let pci_address = format!(
        "{:04x}:{:02x}:{:02x}.0",
        attribute(A::CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID)?,
        attribute(A::CU_DEVICE_ATTRIBUTE_PCI_BUS_ID)?,
        attribute(A::CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID)?
    );
    Ok(CudaDeviceSummary {
        ordinal,
        name: result::device::get_name(dev).map_err(|e| failed("query device", &e))?,
        // SAFETY: as above.
        memory: unsafe { result::device::total_mem(dev) }
            .map_err(|e| failed("query device", &e))?,
        compute_capability: (
            attribute(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            attribute(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        ),
        pcie_link: pcie_link(&pci_address),
        pci_address,
    })
}

/// The current link speed and width of a PCI device, from sysfs.
fn pcie_link(address: &str) -> Option<String> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/sys/bus/pci/devices/{address}/{file}"))
            .ok()
            .map(|s| s.trim().to_owned())
    };
    Some(format!(
        "{} x{}",
        read("current_link_speed")?,
        read("current_link_width")?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_driver_everything_is_unavailable_not_a_panic() {
        // On a machine with a driver this checks nothing about absence, but
        // listing must still work.
        match devices() {
            Ok(list) => assert!(list.iter().enumerate().all(|(i, d)| d.ordinal == i)),
            Err(error) => assert!(error.is_unavailable(), "{error}"),
        }
    }
}
