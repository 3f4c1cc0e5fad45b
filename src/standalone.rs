//! `--standalone`: the sources and the store without osqueryd. Each new row is
//! printed as one JSON object per line on stdout.

use crate::engine::Engine;
use crate::sources::{self, Plan};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

pub fn run(
    engine: &Arc<Engine>,
    specs: &[Plan],
    options: sources::Options,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<i32> {
    let (tx, rx) = mpsc::channel();
    engine.observe(tx);
    let running = sources::start(engine, specs, options, stop)?;
    let stdout = std::io::stdout();
    let mut printed = 0u64;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(row) => {
                let mut out = stdout.lock();
                if writeln!(out, "{}", row.to_json())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    // stdout is closed (piped into head, say): we are done.
                    log::info!("standalone: stdout closed, stopping");
                    break;
                }
                printed += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {
                if stop.load(Ordering::Relaxed) || running.all_finished() {
                    break;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    running.join();
    // Rows added while the sources wound down.
    for row in rx.try_iter() {
        println!("{}", row.to_json());
        printed += 1;
    }
    log::info!("standalone: printed {printed} row(s)");
    Ok(0)
}
