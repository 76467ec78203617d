//! [`WorkerThread`]: a queue of messages and the thread(s) that serve it,
//! closed and joined on drop.

use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// Threads serving one message queue.
///
/// Dropping the handle closes the queue, so each thread's receive loop ends
/// once it has taken every queued message, and then joins the threads (a
/// thread that panicked is logged, never propagated).
///
/// ```
/// use tensorswap_core::sync::WorkerThread;
/// let (tx, rx) = std::sync::mpsc::channel::<u32>();
/// let worker = WorkerThread::spawn("doubler".into(), move |jobs| {
///     for n in jobs {
///         tx.send(2 * n).unwrap();
///     }
/// })?;
/// worker.send(21u32).unwrap();
/// drop(worker); // finishes the queue, then joins
/// assert_eq!(rx.recv()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WorkerThread<M> {
    queue: Option<Sender<M>>,
    threads: Vec<JoinHandle<()>>,
    name: String,
}

impl<M: Send + 'static> WorkerThread<M> {
    /// Starts one thread named `name` that runs `serve` over the queue.
    pub fn spawn(
        name: String,
        serve: impl FnOnce(Receiver<M>) + Send + 'static,
    ) -> io::Result<Self> {
        let (queue, rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(name.clone())
            .spawn(move || serve(rx))?;
        Ok(Self {
            queue: Some(queue),
            threads: vec![thread],
            name,
        })
    }

    /// Starts `count` threads (`name-0`, `name-1`, ...) that share the
    /// queue: whichever is free takes the next message. `serve` gets the
    /// shared receiver and returns when `recv` fails.
    pub fn spawn_many(
        name: String,
        count: usize,
        serve: impl Fn(&Mutex<Receiver<M>>) + Clone + Send + 'static,
    ) -> io::Result<Self> {
        let (queue, rx) = mpsc::channel();
        let rx = Arc::new(Mutex::new(rx));
        let mut this = Self {
            queue: Some(queue),
            threads: Vec::with_capacity(count),
            name,
        };
        for i in 0..count {
            let (rx, serve) = (Arc::clone(&rx), serve.clone());
            let thread = thread::Builder::new()
                .name(format!("{}-{i}", this.name))
                .spawn(move || serve(&rx))?;
            this.threads.push(thread);
        }
        Ok(this)
    }

    /// Queues `msg`, or hands it back when the queue is closed or every
    /// thread has ended.
    pub fn send(&self, msg: M) -> Result<(), M> {
        match &self.queue {
            Some(queue) => queue.send(msg).map_err(|e| e.0),
            None => Err(msg),
        }
    }

    /// Closes the queue: later sends fail, and the threads end once the
    /// queued messages are taken. Dropping the handle closes it too.
    pub fn close(&mut self) {
        self.queue = None;
    }
}

impl<M> std::fmt::Debug for WorkerThread<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerThread")
            .field("name", &self.name)
            .field("threads", &self.threads.len())
            .field("open", &self.queue.is_some())
            .finish()
    }
}

/// Takes the next message from a queue shared by
/// [`WorkerThread::spawn_many`]'s threads; `None` once it is closed and empty.
pub fn next_shared<M>(rx: &Mutex<Receiver<M>>) -> Option<M> {
    rx.lock().unwrap_or_else(|e| e.into_inner()).recv().ok()
}

impl<M> Drop for WorkerThread<M> {
    fn drop(&mut self) {
        drop(self.queue.take());
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!(thread = %self.name, "a tensorswap worker thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn many_threads_drain_the_queue_before_drop_returns() {
        let served = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&served);
        let pool = WorkerThread::spawn_many("test-pool".into(), 3, move |rx| {
            while let Some(n) = next_shared(rx) {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        })
        .unwrap();
        for n in 1..=100 {
            pool.send(n).unwrap();
        }
        drop(pool);
        assert_eq!(served.load(Ordering::Relaxed), 5050);
    }

    #[test]
    fn a_closed_queue_hands_the_message_back() {
        let mut worker = WorkerThread::spawn("test-closed".into(), |rx| for _ in rx {}).unwrap();
        worker.close();
        assert_eq!(worker.send(7), Err(7));
    }

    #[test]
    fn an_ended_thread_hands_the_message_back_and_a_panic_is_not_propagated() {
        let worker = WorkerThread::<u8>::spawn("test-panics".into(), |_rx| panic!("boom")).unwrap();
        while worker.send(1).is_ok() {
            std::thread::yield_now();
        }
        drop(worker);
    }
}
