//! How many sockets are open, in total and per client address, and the caps on both
//! (`WS_MAX_SOCKETS`, `WS_MAX_SOCKETS_PER_ADDRESS`).
//!
//! A place is taken before the upgrade is answered, so a refused client gets an HTTP
//! answer it can read (503 or 429, `Retry-After`, a GraphQL error body) instead of a socket
//! closed at once. The place is an [`Admission`] that the socket's task owns: whichever way
//! the task ends (the client leaves, a close code, a panic, the runtime shutting down, an
//! upgrade that never completes), dropping it gives the place back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::Notify;

use crate::auth::ClientAddress;

/// When a refused client is told to try again. Places free up as other clients leave, which
/// nothing predicts; a few seconds keeps a refused client from hammering without making it
/// wait long once there is room.
pub const RETRY_AFTER_SECS: u64 = 5;

pub struct SocketRegistry {
    max_total: usize,
    max_per_address: usize,
    counts: Mutex<Counts>,
    /// Woken when the last socket closes (the shutdown waits for that).
    emptied: Notify,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// Only addresses with a socket open: an entry goes with its last socket.
    per_address: HashMap<IpAddr, usize>,
}

/// Why an upgrade was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `WS_MAX_SOCKETS` are open.
    Full { max: usize },
    /// The client's address has `WS_MAX_SOCKETS_PER_ADDRESS` open.
    AddressFull { max: usize },
}

impl SocketRegistry {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(SocketRegistry {
            max_total,
            max_per_address,
            counts: Mutex::new(Counts::default()),
            emptied: Notify::new(),
        })
    }

    /// Takes a place for a socket of `client`, or says why there is none.
    pub fn admit(self: &Arc<Self>, client: ClientAddress) -> Result<Admission, Refusal> {
        let address = client.group();
        let mut counts = self.lock();
        if counts.total >= self.max_total {
            return Err(Refusal::Full { max: self.max_total });
        }
        let of_address = counts.per_address.entry(address).or_insert(0);
        if *of_address >= self.max_per_address {
            return Err(Refusal::AddressFull { max: self.max_per_address });
        }
        *of_address += 1;
        counts.total += 1;
        Ok(Admission { registry: self.clone(), address })
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// Resolves once no socket is open.
    pub async fn all_closed(&self) {
        loop {
            let emptied = self.emptied.notified();
            tokio::pin!(emptied);
            // Registered before the count is read, so a close in between is not missed.
            emptied.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            emptied.await;
        }
    }

    fn release(&self, address: IpAddr) {
        let mut counts = self.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(of_address) = counts.per_address.get_mut(&address) {
            *of_address = of_address.saturating_sub(1);
            if *of_address == 0 {
                counts.per_address.remove(&address);
            }
        }
        let emptied = counts.total == 0;
        drop(counts);
        if emptied {
            self.emptied.notify_waiters();
        }
    }

    /// A panic elsewhere while the lock was held leaves counts that are still whole (every
    /// change under it is a single step), so they are used rather than given up.
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One socket's place; dropping it frees the place.
pub struct Admission {
    registry: Arc<SocketRegistry>,
    address: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.registry.release(self.address);
    }
}

impl IntoResponse for Refusal {
    /// 503 when the instance is full (another instance may have room: the load balancer
    /// or the client's retry goes there), 429 when this client has too many; both with
    /// `Retry-After` and the GraphQL error envelope of `/graphql`, code `RATE_LIMITED`.
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Refusal::Full { max } => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("this server holds its maximum of {max} WebSocket connections; try again shortly"),
            ),
            Refusal::AddressFull { max } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many WebSocket connections from your address (at most {max}); close some, or run several operations on one"
                ),
            ),
        };
        let body = json!({"errors": [{
            "message": message,
            "extensions": {"code": "RATE_LIMITED", "retryAfter": RETRY_AFTER_SECS},
        }]});
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn client(text: &str) -> ClientAddress {
        ClientAddress(text.parse().unwrap())
    }

    #[test]
    fn each_address_and_the_total_are_capped_and_places_come_back_on_drop() {
        let registry = SocketRegistry::new(3, 2);
        let a1 = registry.admit(client("192.0.2.1")).unwrap();
        let a2 = registry.admit(client("192.0.2.1")).unwrap();
        assert_eq!(registry.admit(client("192.0.2.1")).err(), Some(Refusal::AddressFull { max: 2 }));
        let b1 = registry.admit(client("192.0.2.2")).unwrap();
        assert_eq!(registry.admit(client("192.0.2.3")).err(), Some(Refusal::Full { max: 3 }));
        drop(a1);
        assert_eq!(registry.open(), 2);
        let a3 = registry.admit(client("192.0.2.1")).unwrap();
        drop((a2, a3, b1));
        assert_eq!(registry.open(), 0);
        assert!(registry.lock().per_address.is_empty(), "no entry outlives its sockets");
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let registry = SocketRegistry::new(10, 1);
        let _one = registry.admit(client("2001:db8:1:2::1")).unwrap();
        assert!(registry.admit(client("2001:db8:1:2::ffff")).is_err());
        assert!(registry.admit(client("2001:db8:1:3::1")).is_ok());
    }

    #[test]
    fn a_panicking_socket_task_gives_its_place_back() {
        let registry = SocketRegistry::new(1, 1);
        let admission = registry.admit(client("192.0.2.1")).unwrap();
        let task = std::thread::spawn(move || {
            let _admission = admission;
            panic!("a socket task fails");
        });
        assert!(task.join().is_err());
        assert_eq!(registry.open(), 0);
    }

    #[tokio::test]
    async fn all_closed_waits_for_the_last_socket() {
        let registry = SocketRegistry::new(10, 10);
        registry.all_closed().await;
        let one = registry.admit(client("192.0.2.1")).unwrap();
        let two = registry.admit(client("192.0.2.2")).unwrap();
        let waiting = tokio::spawn({
            let registry = registry.clone();
            async move { registry.all_closed().await }
        });
        drop(one);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "one socket is still open");
        drop(two);
        tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
    }

    #[test]
    fn refusals_are_readable_http_answers() {
        let full = Refusal::Full { max: 3 }.into_response();
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.headers()[RETRY_AFTER], "5");
        assert_eq!(Refusal::AddressFull { max: 2 }.into_response().status(), StatusCode::TOO_MANY_REQUESTS);
    }
}
