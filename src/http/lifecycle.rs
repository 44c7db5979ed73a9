//! Where the instance is between SIGTERM and its exit, as `/readyz` and every socket see it.
//!
//! A load balancer notices that an instance is leaving only by its readiness probe, and only
//! at its next check: until then it keeps sending clients. So the instance first *drains*
//! (`/readyz` answers 503, everything else is served as before) for `SHUTDOWN_DRAIN_MS`,
//! and only then closes its sockets, each at a random moment within
//! `SHUTDOWN_CLOSE_SPREAD_MS`, with 1001 (going away): their clients reconnect, land on
//! another instance, and resume with their cursor or `afterVersion`.

use std::sync::Arc;

use tokio::sync::watch;

/// The phases, in order; an instance never goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serving,
    /// SIGTERM received: not ready, still serving.
    Draining,
    /// The drain is over: every socket closes, HTTP finishes what is in flight.
    ClosingSockets,
}

/// The instance's phase, shared by the probe, the sockets and the shutdown sequence.
#[derive(Clone)]
pub struct Lifecycle(Arc<watch::Sender<Phase>>);

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle(Arc::new(watch::Sender::new(Phase::Serving)))
    }
}

impl Lifecycle {
    pub fn phase(&self) -> Phase {
        *self.0.borrow()
    }

    /// Moves on to `phase`, unless the instance is already there or further.
    pub fn advance(&self, phase: Phase) {
        self.0.send_if_modified(|current| {
            let later = phase > *current;
            if later {
                *current = phase;
            }
            later
        });
    }

    /// What a socket holds to learn when to close.
    pub fn watch(&self) -> PhaseWatch {
        PhaseWatch(self.0.subscribe())
    }
}

/// One socket's view of the [`Lifecycle`].
pub struct PhaseWatch(watch::Receiver<Phase>);

impl PhaseWatch {
    /// Resolves once the sockets are to close (at once if they already are).
    pub async fn closing(&mut self) {
        if self.0.wait_for(|phase| *phase >= Phase::ClosingSockets).await.is_err() {
            // The instance is gone without a shutdown sequence (a test dropping it): its
            // runtime ends the socket, nothing is to be signalled.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_phase_only_moves_forward_and_sockets_learn_of_the_close() {
        let lifecycle = Lifecycle::default();
        let mut watch = lifecycle.watch();
        assert_eq!(lifecycle.phase(), Phase::Serving);
        lifecycle.advance(Phase::Draining);
        assert_eq!(lifecycle.phase(), Phase::Draining);
        let pending = tokio::time::timeout(std::time::Duration::from_millis(20), watch.closing()).await;
        assert!(pending.is_err(), "draining is not closing");
        lifecycle.advance(Phase::ClosingSockets);
        lifecycle.advance(Phase::Draining);
        assert_eq!(lifecycle.phase(), Phase::ClosingSockets);
        watch.closing().await;
        // A socket opened afterwards learns it at once.
        lifecycle.watch().closing().await;
    }
}
