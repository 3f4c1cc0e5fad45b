//! The journal beside a running engine: a background thread that fsyncs
//! and compacts it and reports its health on the status board.
//!
//! Apart from [`journal`](crate::journal), so the journal's file format does
//! not depend on the engine that journals through it.

use crate::engine::Engine;
use crate::journal::{Journal, SYNC_INTERVAL};
use crate::status::State;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The journal of a running program and its background thread (fsync,
/// compaction, takeover). Dropping it stops the thread and fsyncs.
pub(crate) struct Running {
    journal: Arc<Journal>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn publish(engine: &Engine, journal: &Journal, last: &mut Option<(State, String)>) {
    let now = journal.health();
    if last.as_ref() != Some(&now) {
        engine.status().set_store(now.0, now.1.clone());
        *last = Some(now);
    }
}

impl Running {
    pub(crate) fn start(engine: &Arc<Engine>, journal: Journal) -> Running {
        let journal = Arc::new(journal);
        journal.attach(engine.store());
        engine.set_journal(Arc::clone(&journal));
        let mut last = None;
        publish(engine, &journal, &mut last);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (engine, journal, stop) =
                (Arc::clone(engine), Arc::clone(&journal), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("journal".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(SYNC_INTERVAL);
                        journal.tick(engine.store());
                        publish(&engine, &journal, &mut last);
                    }
                })
        };
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                log::error!("journal: cannot start its thread ({e}); fsync only at exit");
                None
            }
        };
        Running {
            journal,
            stop,
            thread,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            if t.join().is_err() {
                log::error!("journal thread panicked");
            }
        }
        if let Err(e) = self.journal.sync() {
            log::error!("journal: final fsync failed: {e}");
        }
    }
}
