//! What a swapper knows about a tensor: element type and shape.

use std::fmt;

use tensorswap_core::{Error, Result};

/// The caller's name for a tensor (DeepSpeed's `ds_id`); any `u64`.
pub type TensorId = u64;

/// Element types a tensor can have; only the element size matters to a swapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// 64-bit float.
    F64,
    /// 32-bit float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// 16-bit brain float.
    BF16,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// 8-bit signed integer.
    I8,
    /// 8-bit unsigned integer (also raw bytes).
    U8,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I8 | DType::U8 => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            DType::F64 => "f64",
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I8 => "i8",
            DType::U8 => "u8",
        };
        f.write_str(name)
    }
}

/// Element type and shape of a tensor.
///
/// ```
/// use tensorswap_swapper::{DType, TensorMeta};
/// let meta = TensorMeta::new(DType::F16, [3, 5]);
/// assert_eq!(meta.elements()?, 15);
/// assert_eq!(meta.bytes()?, 30);
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorMeta {
    /// Element type.
    pub dtype: DType,
    /// Extent of each dimension.
    pub shape: Vec<usize>,
}

impl TensorMeta {
    /// A tensor of `dtype` with `shape`.
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        Self {
            dtype,
            shape: shape.into(),
        }
    }

    /// A flat tensor of `bytes` raw bytes.
    pub fn bytes_of(bytes: usize) -> Self {
        Self::new(DType::U8, [bytes])
    }

    /// Number of elements (the product of the shape), checking overflow.
    pub fn elements(&self) -> Result<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| self.overflow())
    }

    /// Bytes of the elements (the logical length), checking overflow.
    pub fn bytes(&self) -> Result<usize> {
        self.elements()?
            .checked_mul(self.dtype.size())
            .ok_or_else(|| self.overflow())
    }

    fn overflow(&self) -> Error {
        Error::Layout {
            reason: format!(
                "a {} tensor of shape {:?} overflows usize",
                self.dtype, self.shape
            ),
        }
    }
}
