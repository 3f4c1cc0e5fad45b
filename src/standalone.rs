//! `--standalone`: the sources and the store without osqueryd. Each new row is
//! printed as one JSON object per line on stdout.

use crate::engine::Engine;
use crate::row::Row;
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
    let mut closed = false;
    let print = |row: &Row| -> bool {
        let mut out = stdout.lock();
        writeln!(out, "{}", row.to_json())
            .and_then(|()| out.flush())
            .is_ok()
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(row) => {
                if !print(&row) {
                    // stdout is closed (piped into head, say): we are done.
                    log::info!("standalone: stdout closed, stopping");
                    closed = true;
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
    if !closed {
        for row in rx.try_iter() {
            if !print(&row) {
                break;
            }
            printed += 1;
        }
    }
    log::info!("standalone: printed {printed} row(s)");
    Ok(0)
}
