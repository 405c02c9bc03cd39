//! Memory checks before large allocations: a run that would not fit in the machine's memory stops at once
//! with the size it needs and the option that helps, instead of being killed by the OOM killer (or aborting
//! on a failed allocation) after minutes of work.

use anyhow::bail;

/// Bytes of memory available to new allocations (Linux `MemAvailable`); `None` where it cannot be read.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses a step that needs about `bytes` of memory when more than that is not available: the error
/// names `what`, both sizes and `fix` (the option that makes the step smaller).
pub fn check_fits(bytes: u64, what: &str, fix: &str) -> anyhow::Result<()> {
    if let Some(available) = available_bytes() {
        if bytes > available {
            bail!(
                "{what} needs about {:.1} GiB of memory but {:.1} GiB is available; {fix}",
                gib(bytes),
                gib(available)
            );
        }
    }
    Ok(())
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_size_is_refused_with_the_sizes_and_the_fix() {
        let available = available_bytes().expect("/proc/meminfo is readable on Linux");
        assert!(available > 0);
        let err = check_fits(available * 4, "the simulation", "lower --cells").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("GiB of memory") && msg.contains("lower --cells"),
            "{msg}"
        );
        check_fits(1 << 20, "a small step", "n/a").unwrap();
    }
}
