//! The runtime WebSocket connections run on, apart from request handling.
//!
//! When an instance restarts, every client reconnects at once: tens of thousands of
//! sockets each starting several subscriptions, so thousands of socket tasks are ready at
//! the same moment. On one runtime an HTTP request would queue behind all of them (a side
//! query took over a second during the load suite's `storm`). Sockets therefore run on a
//! runtime of their own: HTTP requests keep their own run queue, and the kernel shares the
//! cores between the two fairly, so a storm of subscriptions slows itself, not the API.

use std::future::Future;

use anyhow::Context;
use tokio::runtime::{Builder, Handle, Runtime};

/// Owns the sockets' runtime; dropping it (when the server stops) ends every socket task.
pub struct SocketRuntime {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl SocketRuntime {
    /// One worker thread per core, like the request runtime.
    pub fn start() -> anyhow::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .thread_name("minifig-ws")
            .enable_all()
            .build()
            .context("starting the WebSocket runtime")?;
        let handle = runtime.handle().clone();
        Ok(SocketRuntime { runtime: Some(runtime), handle })
    }

    /// Runs one socket's task on this runtime.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        drop(self.handle.spawn(task));
    }
}

impl Drop for SocketRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which async code must not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
