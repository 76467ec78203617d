//! `TENSORSWAP_REQUIRE`: the backends that must run, so that a skip fails.

/// Device backends and I/O engines the suites know, and `deepspeed`
/// (DeepSpeed's tests on the Python package, `scripts/deepspeed-suite.sh`);
/// a name outside this list is a typo.
pub const KNOWN_BACKENDS: &[&str] = &[
    "cpu",
    "wgpu",
    "cuda",
    "cuda-emulated",
    "uring",
    "threads",
    "deepspeed",
];

/// The environment variable listing required backends, comma-separated.
pub const REQUIRE_VAR: &str = "TENSORSWAP_REQUIRE";

/// Parses a `TENSORSWAP_REQUIRE` value; unknown names are an error naming them.
///
/// ```
/// use tensorswap_conformance::parse_required;
/// assert_eq!(parse_required("cpu, wgpu").unwrap(), vec!["cpu", "wgpu"]);
/// assert!(parse_required("").unwrap().is_empty());
/// assert!(parse_required("cpu,gpu").is_err());
/// ```
pub fn parse_required(value: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !KNOWN_BACKENDS.contains(n))
        .collect();
    if unknown.is_empty() {
        Ok(names)
    } else {
        Err(format!(
            "{REQUIRE_VAR} names unknown backend(s) {unknown:?}; known: {KNOWN_BACKENDS:?}"
        ))
    }
}

/// Reads `TENSORSWAP_REQUIRE` from the environment.
pub fn required_backends() -> Result<Vec<String>, String> {
    match std::env::var(REQUIRE_VAR) {
        Ok(value) => parse_required(&value),
        Err(std::env::VarError::NotPresent) => Ok(Vec::new()),
        Err(e) => Err(format!("{REQUIRE_VAR}: {e}")),
    }
}
