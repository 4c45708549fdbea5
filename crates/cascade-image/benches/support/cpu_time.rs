//! CPU time of the benchmarking thread, so that throughput is per core even when other
//! processes share the machine (ctapipe's reference throughput is CPU time too).
//!
//! Linux: the first field of `/proc/thread-self/schedstat`, the thread's time on a CPU
//! in ns, which the kernel updates at scheduler ticks (see [`criterion`]). Elsewhere (or
//! if the file is unreadable), wall time.

use std::time::{Duration, Instant};

/// Runs `routine` `iters` times and returns the CPU time (or wall time) it took.
pub fn measure(iters: u64, mut routine: impl FnMut()) -> Duration {
    let wall = Instant::now();
    let cpu = thread_cpu_ns();
    for _ in 0..iters {
        routine();
    }
    match (cpu, thread_cpu_ns()) {
        (Some(start), Some(end)) => Duration::from_nanos(end.saturating_sub(start)),
        _ => wall.elapsed(),
    }
}

fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Criterion settings for [`measure`]: the kernel updates a thread's CPU time at scheduler
/// ticks (a few ms), so samples must be long: 10 flat samples over 5 s (0.5 s each, tick
/// error < 1 %) after 1 s of warm-up. Use with `SamplingMode::Flat`.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10)
}
