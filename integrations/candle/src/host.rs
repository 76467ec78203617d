//! candle tensors in host memory as bytes, both ways: the bytes of a CPU
//! tensor, and a tensor of any dtype built from bytes as they arrive.

use candle_core::{CpuStorage, DType, Device, Layout, Shape, Storage, Tensor};

use crate::raw::{bytes_of, Filling, Plain};
use crate::{Error, Result};

/// candle's dtypes without an element size (6- and 4-bit floats): kept as
/// packed bytes, whole storages only.
pub(crate) fn is_packed(dtype: DType) -> bool {
    matches!(dtype, DType::F6E2M3 | DType::F6E3M2 | DType::F4)
}

/// Calls `f` with the bytes of a contiguous CPU tensor, in candle's own
/// storage (no copy).
pub(crate) fn with_cpu_bytes<R>(tensor: &Tensor, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
    let (storage, layout) = tensor.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(Error::Unsupported {
            what: format!(
                "{:?} tensor where a CPU tensor was expected",
                tensor.device().location()
            ),
        });
    };
    let all = storage_bytes(cpu);
    let range = byte_range(tensor.dtype(), layout, all.len())?;
    Ok(f(&all[range]))
}

/// Where a contiguous tensor's bytes lie in a storage of `storage_len` bytes.
pub(crate) fn byte_range(
    dtype: DType,
    layout: &Layout,
    storage_len: usize,
) -> Result<std::ops::Range<usize>> {
    if !layout.is_contiguous() {
        return Err(Error::Unsupported {
            what: String::from("a non-contiguous layout (call contiguous() first)"),
        });
    }
    if is_packed(dtype) {
        // No element size: only a whole storage has a byte extent.
        if layout.start_offset() != 0 {
            return Err(Error::Unsupported {
                what: format!("a view into a packed {dtype:?} storage; only whole {dtype:?} tensors can be swapped"),
            });
        }
        return Ok(0..storage_len);
    }
    let size = dtype.size_in_bytes();
    let start = layout.start_offset() * size;
    let end = start + layout.shape().elem_count() * size;
    if end > storage_len {
        return Err(Error::Unsupported {
            what: format!("a layout ({start}..{end}) past its storage ({storage_len} bytes)"),
        });
    }
    Ok(start..end)
}

fn storage_bytes(cpu: &CpuStorage) -> &[u8] {
    match cpu {
        CpuStorage::U8(v)
        | CpuStorage::F6E2M3(v)
        | CpuStorage::F6E3M2(v)
        | CpuStorage::F4(v)
        | CpuStorage::F8E8M0(v) => v,
        CpuStorage::U32(v) => bytes_of(v),
        CpuStorage::I16(v) => bytes_of(v),
        CpuStorage::I32(v) => bytes_of(v),
        CpuStorage::I64(v) => bytes_of(v),
        CpuStorage::BF16(v) => bytes_of(v),
        CpuStorage::F16(v) => bytes_of(v),
        CpuStorage::F32(v) => bytes_of(v),
        CpuStorage::F64(v) => bytes_of(v),
        CpuStorage::F8E4M3(v) => bytes_of(v),
    }
}

/// A tensor being assembled in host memory from its bytes, in order, in
/// the vector that becomes its CPU storage (no copy on the CPU; one upload
/// for another device).
pub(crate) trait Assembly: Send {
    /// Appends bytes; false when more arrive than the tensor holds.
    fn push(&mut self, bytes: &[u8]) -> bool;
    /// The tensor, on `device`; `None` until every byte has arrived.
    fn finish(
        self: Box<Self>,
        shape: &Shape,
        device: &Device,
    ) -> Option<candle_core::Result<Tensor>>;
}

impl<T: Plain> Assembly for Filling<T> {
    fn push(&mut self, bytes: &[u8]) -> bool {
        Filling::push(self, bytes)
    }

    fn finish(
        self: Box<Self>,
        shape: &Shape,
        device: &Device,
    ) -> Option<candle_core::Result<Tensor>> {
        let vec = Filling::finish(*self)?;
        Some(Tensor::from_vec(vec, shape, device))
    }
}

/// Packed dtypes (and F8E8M0): candle keeps their bytes as they are.
struct RawBytes {
    dtype: DType,
    bytes: Vec<u8>,
    len: usize,
}

impl Assembly for RawBytes {
    fn push(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.len - self.bytes.len() {
            return false;
        }
        self.bytes.extend_from_slice(bytes);
        true
    }

    fn finish(
        self: Box<Self>,
        shape: &Shape,
        device: &Device,
    ) -> Option<candle_core::Result<Tensor>> {
        (self.bytes.len() == self.len)
            .then(|| Tensor::from_raw_buffer(&self.bytes, self.dtype, shape.dims(), device))
    }
}

/// An assembly for `bytes` bytes of `dtype`.
pub(crate) fn assembly(dtype: DType, bytes: usize) -> Result<Box<dyn Assembly>> {
    fn typed<T: Plain>(bytes: usize) -> Option<Box<dyn Assembly>> {
        Filling::<T>::new(bytes).map(|f| Box::new(f) as Box<dyn Assembly>)
    }
    if !is_packed(dtype) && bytes % dtype.size_in_bytes().max(1) != 0 {
        return Err(Error::Unsupported {
            what: format!("{bytes} bytes of {dtype:?}: not a whole number of elements"),
        });
    }
    let made = match dtype {
        DType::U8 => typed::<u8>(bytes),
        DType::U32 => typed::<u32>(bytes),
        DType::I16 => typed::<i16>(bytes),
        DType::I32 => typed::<i32>(bytes),
        DType::I64 => typed::<i64>(bytes),
        DType::BF16 => typed::<half::bf16>(bytes),
        DType::F16 => typed::<half::f16>(bytes),
        DType::F32 => typed::<f32>(bytes),
        DType::F64 => typed::<f64>(bytes),
        DType::F8E4M3 => typed::<float8::F8E4M3>(bytes),
        DType::F6E2M3 | DType::F6E3M2 | DType::F4 | DType::F8E8M0 => {
            let mut vec = Vec::new();
            vec.try_reserve_exact(bytes).ok().map(|()| {
                Box::new(RawBytes {
                    dtype,
                    bytes: vec,
                    len: bytes,
                }) as Box<dyn Assembly>
            })
        }
        other => return Err(unsupported_dtype(other)),
    };
    made.ok_or(Error::Core(tensorswap_core::Error::OutOfMemory {
        backend: "host",
        requested: bytes,
        available: tensorswap_core::sys::available_memory(),
    }))
}

/// A dtype newer than this crate.
pub(crate) fn unsupported_dtype(dtype: DType) -> Error {
    Error::Unsupported {
        what: format!("candle dtype {dtype:?}, newer than tensorswap-candle"),
    }
}
