//! The closing handshake: the legacy client's `connection_error`, the close frame, and a
//! short wait for the client's own. Which code goes with which reason is the protocol's
//! ([`super::protocol`]).

use axum::extract::ws::{CloseFrame, Message, WebSocket};

use super::CLOSE_GRACE;
use super::protocol::{Fatal, Protocol, ServerMessage};

/// Closes the socket for `fatal`, the way `protocol` expects.
pub async fn close_for(socket: &mut WebSocket, protocol: Protocol, fatal: &Fatal) {
    let reason = fatal.reason();
    tracing::debug!(code = fatal.code(), %reason, "closing the socket");
    let tell = (protocol == Protocol::LegacyWs && fatal.tells_legacy_client())
        .then(|| ServerMessage::ConnectionError { message: &reason }.render(protocol));
    close(socket, fatal.code(), &reason, tell).await;
}

/// Sends `first` if any, then closes with `code`, then waits briefly for the client's close
/// frame: dropping the connection at once could reset it before the client has read ours.
pub async fn close(socket: &mut WebSocket, code: u16, reason: &str, first: Option<String>) {
    if let Some(message) = first
        && !matches!(tokio::time::timeout(CLOSE_GRACE, socket.send(Message::Text(message.into()))).await, Ok(Ok(())))
    {
        return;
    }
    let frame = CloseFrame { code, reason: close_reason(reason).into() };
    if let Ok(Ok(())) = tokio::time::timeout(CLOSE_GRACE, socket.send(Message::Close(Some(frame)))).await {
        let _ = tokio::time::timeout(CLOSE_GRACE, async { while let Some(Ok(_)) = socket.recv().await {} }).await;
    }
}

/// A close frame's reason is at most 123 bytes (RFC 6455 section 5.5: 125 with the code).
fn close_reason(reason: &str) -> &str {
    const MAX: usize = 123;
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(cut) && cut.len() >= 121);
    }
}
