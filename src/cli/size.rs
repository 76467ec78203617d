//! Byte sizes on the command line and in tables: `4K`, `256M`, `1G` (powers of 1024).

/// Parses `123`, `4K`, `4KiB`, `256M`, `1G`, `1T` (case-insensitive, powers of 1024).
pub(crate) fn parse(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 4096, 4K, 256M, 1G)"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
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
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("4K"), Ok(4096));
        assert_eq!(parse("256mib"), Ok(256 << 20));
        assert_eq!(parse("1G"), Ok(1 << 30));
        assert!(parse("12Q").unwrap_err().contains("unknown unit"));
        assert!(parse("K").is_err());
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
