//! Standard output for the subcommands: write errors that name it, and a
//! reader gone away told apart from other failures.

/// True when `error` comes from writing to a pipe whose reader has gone.
pub(crate) fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Standard output, whose errors say that they are standard output's
/// (`tensorswap info > /dev/full`: "writing to standard output: No space
/// left on device"), keeping their kind.
pub(crate) struct Stdout<W>(pub(crate) W);

impl<W: std::io::Write> Stdout<W> {
    fn say(error: std::io::Error) -> std::io::Error {
        std::io::Error::new(error.kind(), format!("writing to standard output: {error}"))
    }
}

impl<W: std::io::Write> std::io::Write for Stdout<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(Self::say)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(Self::say)
    }
}
