//! `alloc`: allocate memory until killed (for OOM-kill tests).
//!
//! Every `STEP_DELAY_MS` (default 5) it allocates `ALLOC_MB_PER_STEP` MiB
//! (default 8), writes to every page so the memory is resident, keeps it,
//! and logs `alloc: <total> MiB`. Logs `alloc: starting` first.

use crate::common::{env_or, log, sleep_ms};

const PAGE: usize = 4096;

pub(crate) fn run() -> ! {
    let step_mb: usize = env_or("ALLOC_MB_PER_STEP", 8).max(1);
    let delay_ms: u64 = env_or("STEP_DELAY_MS", 5);
    log!("alloc: starting ({step_mb} MiB per step)");
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; step_mb << 20];
        for i in (0..chunk.len()).step_by(PAGE) {
            chunk[i] = 1;
        }
        held.push(std::hint::black_box(chunk));
        log!("alloc: {} MiB", held.len() * step_mb);
        sleep_ms(delay_ms);
    }
}
