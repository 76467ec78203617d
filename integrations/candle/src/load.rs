//! Reading a safetensors file through tensorswap's engine: slab-sized
//! reads at aligned offsets, several in flight, each tensor assembled (and
//! uploaded to its device) while the next reads run.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use candle_core::{Device, Shape, Tensor};
use tensorswap_core::{
    AioConfig, AnyEngine, DirectIo, EngineKind, IoEngineExt, NamedOptions, PinnedPool, SwapFile,
};

use crate::header::{self, Entry, Header, MAX_HEADER};
use crate::host::{assembly, Assembly};
use crate::{Error, Result};

/// File offsets of reads are multiples of this (the largest logical block
/// size of common NVMe drives), so that they can go direct.
const ALIGN: u64 = 4096;

/// How safetensors files are read.
///
/// ```
/// let options = tensorswap_candle::LoadOptions::default().slab_size(4 << 20).slabs(4);
/// assert_eq!(options.queue_depth(), 4);
/// ```
#[derive(Debug, Clone)]
pub struct LoadOptions {
    slab_size: usize,
    slabs: usize,
    engine: EngineKind,
    direct_io: DirectIo,
}

impl Default for LoadOptions {
    /// 8 reads of 8 MiB in flight, io_uring where it can be had, direct I/O
    /// where the file system allows it.
    fn default() -> Self {
        Self {
            slab_size: 8 << 20,
            slabs: 8,
            engine: EngineKind::Auto,
            direct_io: DirectIo::Auto,
        }
    }
}

impl LoadOptions {
    /// Bytes per read (rounded up to 4 KiB).
    pub fn slab_size(mut self, bytes: usize) -> Self {
        self.slab_size = bytes.max(1).next_multiple_of(ALIGN as usize);
        self
    }

    /// Reads in flight (at least 1): the pinned slabs of the read pool.
    pub fn slabs(mut self, count: usize) -> Self {
        self.slabs = count.max(1);
        self
    }

    /// The engine (io_uring or the thread pool).
    pub fn engine(mut self, kind: EngineKind) -> Self {
        self.engine = kind;
        self
    }

    /// Direct-I/O policy.
    pub fn direct_io(mut self, policy: DirectIo) -> Self {
        self.direct_io = policy;
        self
    }

    /// Reads in flight.
    pub fn queue_depth(&self) -> usize {
        self.slabs
    }
}

/// Every tensor of the safetensors file at `path`, on `device`, by name.
///
/// The header is checked against the file before the data is read
/// ([`Error::Format`] names the tensor that does not fit); a dtype candle
/// cannot hold is [`Error::Unsupported`]; a failed read is
/// [`Error::Core`] with the file, offset and errno.
pub fn load_safetensors(
    path: impl AsRef<Path>,
    device: &Device,
    options: &LoadOptions,
) -> Result<HashMap<String, Tensor>> {
    let path = path.as_ref();
    let file = SwapFile::open_named(
        path,
        NamedOptions::read_only()
            .direct_io(options.direct_io)
            .checksums(false),
    )?;
    let engine = AnyEngine::new(options.engine, &AioConfig::default())?;
    let header = read_header(&engine, &file, path)?;
    let pool = PinnedPool::builder()
        .slab_size(options.slab_size)
        .slabs(options.slabs)
        .build()?;
    pool.register_with(&engine);
    read_tensors(&engine, &file, &pool, header, device)
}

/// The 8-byte length and the JSON header, through the engine.
fn read_header(engine: &AnyEngine, file: &SwapFile, path: &Path) -> Result<Header> {
    let bad = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let file_len = file.len()?;
    if file_len < 8 {
        return Err(bad(format!(
            "{file_len} bytes: too short for a header length"
        )));
    }
    let len = engine.read(file, 0, vec![0u8; 8])?.wait()?.buf;
    let json_len = u64::from_le_bytes(len.try_into().unwrap_or([0xff; 8]));
    if json_len > MAX_HEADER || json_len > file_len - 8 {
        return Err(bad(format!(
            "the header claims {json_len} bytes, the file has {file_len} (and headers are at most {MAX_HEADER})"
        )));
    }
    let json = engine
        .read(file, 8, vec![0u8; json_len as usize])?
        .wait()?
        .buf;
    header::parse(path, &json, 8 + json_len, file_len)
}

/// A tensor of the header with its bytes arriving.
struct Pending {
    entry: Entry,
    assembly: Box<dyn Assembly>,
}

impl Pending {
    fn start(entry: Entry) -> Result<Self> {
        let assembly = assembly(entry.dtype, (entry.end - entry.start) as usize)?;
        Ok(Self { entry, assembly })
    }

    /// The tensor, once its last byte has arrived.
    fn finish(self, device: &Device, path: &Path) -> Result<(String, Tensor)> {
        let shape = Shape::from(self.entry.shape);
        let name = self.entry.name;
        match self.assembly.finish(&shape, device) {
            Some(tensor) => Ok((name, tensor?)),
            None => Err(Error::Format {
                path: path.to_path_buf(),
                reason: format!("tensor {name:?} ended before its last byte"),
            }),
        }
    }
}

fn read_tensors(
    engine: &AnyEngine,
    file: &SwapFile,
    pool: &PinnedPool,
    header: Header,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let path = file.path().to_path_buf();
    let end = header
        .tensors
        .iter()
        .map(|t| t.end)
        .max()
        .unwrap_or(header.data_start);
    let mut loaded = HashMap::with_capacity(header.tensors.len());
    let mut waiting: VecDeque<Entry> = header.tensors.into();
    let mut current: Option<Pending> = None;
    let slab = pool.slab_size() as u64;
    let mut next_read = header.data_start / ALIGN * ALIGN;
    let mut in_flight = VecDeque::new();
    loop {
        // Keep every slab busy reading ahead.
        while next_read < end && in_flight.len() < pool.stats().slabs {
            let mut buf = pool.wait_lease()?;
            let len = (end - next_read).min(slab);
            buf.set_len(len as usize)?;
            in_flight.push_back((next_read, engine.read(file, next_read, buf)?));
            next_read += len;
        }
        let Some((at, ticket)) = in_flight.pop_front() else {
            break;
        };
        let buf = ticket.wait()?.buf;
        let chunk_end = at + buf.len() as u64;
        // Hand the chunk's bytes to the tensors it covers, in file order.
        loop {
            let mut pending = match current.take() {
                Some(pending) => pending,
                None => {
                    if waiting.front().is_none_or(|next| next.start >= chunk_end) {
                        break;
                    }
                    let Some(entry) = waiting.pop_front() else {
                        break;
                    };
                    Pending::start(entry)?
                }
            };
            let (from, to) = (
                at.max(pending.entry.start),
                chunk_end.min(pending.entry.end),
            );
            if from < to
                && !pending
                    .assembly
                    .push(&buf[(from - at) as usize..(to - at) as usize])
            {
                return Err(Error::Format {
                    path,
                    reason: format!(
                        "tensor {:?} received more bytes than it holds",
                        pending.entry.name
                    ),
                });
            }
            if pending.entry.end > chunk_end {
                current = Some(pending);
                break;
            }
            let (name, tensor) = pending.finish(device, &path)?;
            loaded.insert(name, tensor);
        }
    }
    // Empty tensors at the very end of the data.
    for entry in current.map(|p| p.entry).into_iter().chain(waiting) {
        let (name, tensor) = Pending::start(entry)?.finish(device, &path)?;
        loaded.insert(name, tensor);
    }
    Ok(loaded)
}
