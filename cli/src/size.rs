//! Byte sizes on the command line and in tables: `4K`, `256M`, `1G` (powers of 1024).

/// What every size option's `--help` says of its units.
pub(crate) const UNITS: &str = "Sizes are bytes, or K, M, G, T (KiB, MiB, GiB, TiB): powers of 1024. KB, MB, GB, TB are refused as ambiguous; rates are printed in GB/s (10^9 bytes) and GiB/s.";

/// Parses `123`, `4K`, `4KiB`, `256M`, `1G`, `1T` (case-insensitive, powers
/// of 1024), with or without a space before the unit, so what [`show`]
/// prints (`256 MiB`) parses back. `KB`, `MB`, `GB` and `TB` are refused:
/// they read as powers of 1000 as often as of 1024.
pub(crate) fn parse(text: &str) -> Result<usize, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("{text:?}: a size cannot be negative"));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let unit = unit.trim_start();
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 4096, 4K, 256M, 1G)"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        "kb" | "mb" | "gb" | "tb" => {
            let binary = format!("{}{}", &unit[..1], "iB");
            return Err(format!(
                "{text:?}: {unit} is ambiguous (powers of 1000 or of 1024?); write {digits}{} or {digits}{binary} for powers of 1024",
                &unit[..1]
            ));
        }
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use K, M, G or T)"
            ))
        }
    };
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("{text:?} does not fit in {} bits", usize::BITS))
}

/// Formats a byte count with the largest exact power-of-1024 unit (`4 KiB`, `256 MiB`).
pub(crate) fn show(bytes: usize) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

/// Formats a byte count to three significant figures (`2.13 MiB`, `1.00 GiB`).
pub(crate) fn show_approx(bytes: usize) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift {
            let value = bytes as f64 / (1u64 << shift) as f64;
            let decimals = if value < 10.0 {
                2
            } else if value < 100.0 {
                1
            } else {
                0
            };
            return format!("{value:.decimals$} {unit}");
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Inputs per property; `TENSORSWAP_FUZZ_CASES` raises it.
    fn cases() -> u32 {
        std::env::var("TENSORSWAP_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text: a size or a message that quotes it, never a panic.
        #[test]
        fn any_text_is_a_size_or_an_error(text in any::<String>()) {
            match parse(&text) {
                Ok(n) => prop_assert_eq!(parse(&show(n)), Ok(n)),
                Err(message) => {
                    let quoted = format!("{text:?}");
                    prop_assert!(message.contains(&quoted), "{}", message);
                }
            }
        }

        /// Digits and a unit in any case: exactly n << shift, or "does not fit".
        #[test]
        fn number_and_unit_scale_or_overflow(
            n in any::<u64>(),
            unit in prop::sample::select(&["", "b", "K", "k", "KiB", "m", "M", "mib", "G", "g", "GiB", "t", "T", "TiB"][..]),
            pad in prop::sample::select(&["", " ", "\t"][..]),
        ) {
            let shift = match unit.chars().next().map(|c| c.to_ascii_lowercase()) {
                None | Some('b') => 0,
                Some('k') => 10,
                Some('m') => 20,
                Some('g') => 30,
                _ => 40,
            };
            let want = usize::try_from(n).ok().and_then(|n| n.checked_mul(1 << shift));
            let got = parse(&format!("{pad}{n}{unit}{pad}"));
            match want {
                Some(bytes) => prop_assert_eq!(got, Ok(bytes)),
                None => prop_assert!(got.unwrap_err().contains("does not fit")),
            }
        }
    }

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("4K"), Ok(4096));
        assert_eq!(parse("256mib"), Ok(256 << 20));
        assert_eq!(parse("1G"), Ok(1 << 30));
        assert_eq!(parse("256 MiB"), Ok(256 << 20));
        assert!(parse("12Q").unwrap_err().contains("unknown unit"));
        assert!(parse("K").is_err());
        assert!(parse("-1").unwrap_err().contains("cannot be negative"));
        for ambiguous in ["1MB", "4kb", "2 GB", "1tB"] {
            let why = parse(ambiguous).unwrap_err();
            assert!(why.contains("ambiguous"), "{why}");
        }
        assert!(parse("1MB").unwrap_err().contains("write 1M or 1MiB"));
        assert!(parse("99999999999T").unwrap_err().contains("does not fit"));
        assert_eq!(show(4096), "4 KiB");
        assert_eq!(show(256 << 20), "256 MiB");
        assert_eq!(show(1000), "1000 B");
        assert_eq!(show_approx(1 << 30), "1.00 GiB");
        assert_eq!(show_approx(2_234_000), "2.13 MiB");
        assert_eq!(show_approx(300 << 20), "300 MiB");
        assert_eq!(show_approx(7), "7 B");
    }
}
