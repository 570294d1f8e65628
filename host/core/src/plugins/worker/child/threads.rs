//! How many of a worker's call threads run at once (worker side).
//!
//! One thread reads a request, runs it inline and reads the next: for the usual call of a few
//! microseconds, a batch of requests that arrived together is answered by one thread with no
//! hand-off between threads (each hand-off is a wake-up costing more than the call). When every
//! running thread is inside a call while requests wait (a slow or stuck plugin), a monitor
//! wakes one more thread within a tick, up to `max_concurrent_calls`; a thread that finishes
//! its call while another is free to read goes back to sleep. So a slow call delays the
//! requests behind it by about a tick, and a hung one holds its own thread only.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How often the monitor looks while calls are running.
pub const TICK: Duration = Duration::from_millis(1);
/// Ticks without any call before the monitor sleeps until the next call.
const IDLE_TICKS: u32 = 100;

#[derive(Default)]
struct State {
    total: usize,
    /// Threads not asleep: reading, or in a call.
    active: usize,
    in_call: usize,
    /// Wake-ups granted to sleeping threads and not yet taken.
    granted: usize,
    monitor_asleep: bool,
}

#[derive(Default)]
pub struct Threads {
    state: Mutex<State>,
    sleepers: Condvar,
    monitor: Condvar,
}

impl Threads {
    /// `total` threads, one of them active at first.
    pub fn new(total: usize) -> Arc<Threads> {
        Arc::new(Threads {
            state: Mutex::new(State {
                total: total.max(1),
                active: 1,
                ..State::default()
            }),
            ..Threads::default()
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while counting; the counts stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Threads started after the first wait here until the monitor needs them.
    pub fn wait_turn(&self) {
        let mut s = self.lock();
        while s.granted == 0 {
            s = self.sleepers.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.granted -= 1;
    }

    /// The calling thread starts a call.
    pub fn enter(&self) {
        let mut s = self.lock();
        s.in_call += 1;
        if s.monitor_asleep {
            s.monitor_asleep = false;
            self.monitor.notify_one();
        }
    }

    /// The calling thread finished its call; it goes to sleep (and returns once woken) when
    /// another thread is free to read the next request.
    pub fn leave(&self) {
        let mut s = self.lock();
        s.in_call -= 1;
        if s.active - s.in_call > 1 {
            s.active -= 1;
            drop(s);
            self.wait_turn();
        }
    }

    /// Wakes one more thread if every active thread is inside a call and `waiting()` says
    /// requests are waiting; whether calls are running.
    fn look(&self, waiting: &dyn Fn() -> bool) -> bool {
        let mut s = self.lock();
        if s.in_call > 0 && s.in_call == s.active && s.active < s.total && waiting() {
            s.active += 1;
            s.granted += 1;
            self.sleepers.notify_one();
        }
        s.in_call > 0
    }

    /// The monitor: every tick while calls run, `waiting()` is asked whether requests wait
    /// unread and `tick()` runs (answers held too long are sent); after a while without calls
    /// it sleeps until the next call starts.
    pub fn monitor(&self, waiting: &dyn Fn() -> bool, tick: &dyn Fn()) {
        let mut quiet = 0;
        loop {
            std::thread::sleep(TICK);
            tick();
            if self.look(waiting) {
                quiet = 0;
                continue;
            }
            quiet += 1;
            if quiet >= IDLE_TICKS {
                quiet = 0;
                let mut s = self.lock();
                s.monitor_asleep = s.in_call == 0;
                while s.monitor_asleep {
                    s = self.monitor.wait(s).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// (active, granted), read under one lock.
    fn counts(t: &Threads) -> (usize, usize) {
        let s = t.lock();
        (s.active, s.granted)
    }

    #[test]
    fn a_second_thread_is_woken_only_when_every_active_one_is_in_a_call_and_work_waits() {
        let t = Threads::new(2);
        assert!(!t.look(&|| true), "no call: nothing to do");
        t.enter();
        assert!(t.look(&|| false), "in a call, nothing waiting: no wake-up");
        assert_eq!(counts(&t).1, 0);
        assert!(t.look(&|| true));
        assert_eq!(counts(&t), (2, 1));
        // The woken thread takes its turn; the cap holds.
        t.wait_turn();
        t.enter();
        t.look(&|| true);
        assert_eq!(counts(&t), (2, 0));
    }

    #[test]
    fn a_thread_leaving_its_call_sleeps_while_another_is_free_to_read() {
        let t = Threads::new(2);
        t.enter();
        t.look(&|| true);
        t.wait_turn();
        // Thread one is still in its call; thread two leaves and stays active (the only reader).
        t.enter();
        t.leave();
        assert_eq!(counts(&t).0, 2);
        // Thread one leaves while thread two reads: it goes to sleep until woken.
        let slept = Arc::new(AtomicUsize::new(0));
        let (t2, slept2) = (t.clone(), slept.clone());
        let sleeper = std::thread::spawn(move || {
            t2.leave();
            slept2.store(1, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(slept.load(Ordering::SeqCst), 0, "asleep");
        assert_eq!(counts(&t).0, 1);
        t.enter();
        t.look(&|| true);
        sleeper.join().expect("woken");
        assert_eq!(slept.load(Ordering::SeqCst), 1);
    }
}
