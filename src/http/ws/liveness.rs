//! Whether the client is still there.
//!
//! A client that vanished without a FIN (a phone that lost its network, a NAT that forgot
//! the mapping) leaves a half-open socket that TCP reports as healthy for as long as the
//! server only writes small keep-alives into the kernel's buffer: it would hold its place
//! and its subscriptions forever. So every keep-alive tick also sends a WebSocket ping
//! frame, which every compliant WebSocket library answers on its own (RFC 6455 section
//! 5.5.2), and a socket from which *nothing* arrived (no message, no pong, no frame of any
//! kind) for [`SILENT_INTERVALS`] whole intervals is closed. The frame, not the
//! subprotocol's `pong`, is what counts: legacy `graphql-ws` clients never answer `ka`,
//! and a browser answers ping frames even when the page sends nothing.

/// Keep-alive intervals a client may stay silent: one ping may go unanswered (or be
/// answered late), not two.
pub const SILENT_INTERVALS: u8 = 2;

/// What the socket heard since the last keep-alive tick.
#[derive(Debug)]
pub struct Liveness {
    heard: bool,
    silent: u8,
}

impl Liveness {
    /// The client was just heard from (it sent `connection_init`).
    pub fn at_init() -> Self {
        Liveness { heard: true, silent: 0 }
    }

    /// Any frame arrived.
    pub fn heard(&mut self) {
        self.heard = true;
    }

    /// At each keep-alive tick: whether the client has now been silent too long.
    pub fn silent_too_long(&mut self) -> bool {
        if std::mem::take(&mut self.heard) {
            self.silent = 0;
        } else {
            self.silent = self.silent.saturating_add(1);
        }
        self.silent >= SILENT_INTERVALS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_silent_intervals_are_too_many_and_any_frame_starts_over() {
        let mut liveness = Liveness::at_init();
        assert!(!liveness.silent_too_long(), "heard during the first interval");
        assert!(!liveness.silent_too_long(), "one silent interval");
        liveness.heard();
        assert!(!liveness.silent_too_long());
        assert!(!liveness.silent_too_long());
        assert!(liveness.silent_too_long(), "two silent intervals");
    }
}
