//! A TCP proxy whose open connections can be frozen: nothing more is forwarded on them,
//! in either direction, yet both sockets stay open. That is what a failover or a dropped
//! NAT entry looks like from the client's side: a connection that is up and silent.
//! Connections opened after a freeze of the open ones are forwarded normally.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

pub struct FreezableProxy {
    /// `127.0.0.1:<port>`
    pub address: String,
    /// Connections numbered below this forward nothing more.
    frozen_below: Arc<AtomicU64>,
    opened: Arc<AtomicU64>,
    accepting: tokio::task::JoinHandle<()>,
}

impl FreezableProxy {
    /// Forwards every connection made to [`FreezableProxy::address`] to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port for the proxy");
        let address = listener.local_addr().unwrap().to_string();
        let frozen_below = Arc::new(AtomicU64::new(0));
        let opened = Arc::new(AtomicU64::new(0));
        let target = target.to_owned();
        let (frozen, count) = (frozen_below.clone(), opened.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else { continue };
                let number = count.fetch_add(1, Ordering::SeqCst);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(forward(client_read, server_write, number, frozen.clone()));
                tokio::spawn(forward(server_read, client_write, number, frozen.clone()));
            }
        });
        FreezableProxy { address, frozen_below, opened, accepting }
    }

    /// Freezes every connection open now.
    pub fn freeze_open_connections(&self) {
        self.frozen_below.store(self.opened.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Freezes every connection, open now or opened later: the far side is up and silent.
    pub fn freeze_everything(&self) {
        self.frozen_below.store(u64::MAX, Ordering::SeqCst);
    }

    /// Connections opened from now on are forwarded again (frozen ones stay frozen).
    pub fn thaw_new_connections(&self) {
        self.frozen_below.store(self.opened.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Connections made through the proxy so far.
    pub fn connections(&self) -> u64 {
        self.opened.load(Ordering::SeqCst)
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn forward(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, number: u64, frozen_below: Arc<AtomicU64>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if number < frozen_below.load(Ordering::SeqCst) {
            // Hold both sockets open, silent, until the test ends.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
