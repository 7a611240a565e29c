//! The async NATS client behind a synchronous `LogStore`: a thread of its own runs a tokio
//! runtime, and calls hand it futures and wait on a channel. Waiting on a std channel (not
//! `block_on`) is what lets the store be called from inside another runtime, as the node does.

use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub(crate) struct Bridge {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    pub(crate) fn start() -> std::io::Result<Bridge> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("jetstore".into()).spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })?;
        Ok(Bridge { handle, stop: Some(stop), thread: Some(thread) })
    }

    /// Runs `f` to completion on the bridge's runtime and returns its output.
    pub(crate) fn run<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> Result<T, String> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().map_err(|_| "the NATS client runtime stopped".to_string())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
