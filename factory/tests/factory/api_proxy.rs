//! A proxy in front of the API that can spoil a given number of requests, the way a load
//! balancer or a network does during a rolling deploy: answer `502`, drop the connection,
//! or let the change through and lose the answer. It reads one HTTP/1.1 request per
//! connection (asking the server to close after answering), so that each fault hits
//! exactly one request, whatever the client's connection pool does.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to a request it spoils.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers `502 Bad Gateway` without passing the request on.
    BadGateway,
    /// Closes the connection without an answer; the request never reaches the server.
    Drop,
    /// Passes the request on, throws the server's answer away and answers `502`: the change
    /// is made, the client never hears of it.
    LoseTheAnswer,
    /// Answers what the API answers when the order was being changed by someone else at the
    /// same moment (`CONFLICT`); the request never reaches the server.
    Conflict,
}

struct Plan {
    fault: Fault,
    /// Requests still to spoil.
    left: u64,
    /// Only requests whose body contains this are spoiled ("" for all).
    matching: &'static str,
    /// Requests spoiled so far.
    spoiled: u64,
}

pub struct ApiProxy {
    /// `http://127.0.0.1:<port>/graphql`
    pub url: String,
    plan: Arc<Mutex<Option<Plan>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl ApiProxy {
    /// Forwards to the API at `api_url` (`http://127.0.0.1:<port>/graphql`).
    pub async fn start(api_url: &str) -> Self {
        let target = api_url.trim_start_matches("http://").split('/').next().expect("host:port").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port for the proxy");
        let url = format!("http://{}/graphql", listener.local_addr().expect("local address"));
        let plan: Arc<Mutex<Option<Plan>>> = Arc::new(Mutex::new(None));
        let shared = plan.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, target.clone(), shared.clone()));
            }
        });
        ApiProxy { url, plan, accepting }
    }

    /// Spoils the next `times` requests whose body contains `matching` with `fault`.
    pub fn spoil(&self, fault: Fault, times: u64, matching: &'static str) {
        *self.plan.lock().unwrap() = Some(Plan { fault, left: times, matching, spoiled: 0 });
    }

    /// Lets every request through again.
    pub fn heal(&self) {
        if let Some(plan) = self.plan.lock().unwrap().as_mut() {
            plan.left = 0;
        }
    }

    /// Requests spoiled since the last [`spoil`](Self::spoil).
    pub fn spoiled(&self) -> u64 {
        self.plan.lock().unwrap().as_ref().map_or(0, |plan| plan.spoiled)
    }
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn serve(mut client: TcpStream, target: String, plan: Arc<Mutex<Option<Plan>>>) {
    let Some((head, body)) = read_request(&mut client).await else { return };
    let fault = {
        let mut plan = plan.lock().unwrap();
        match plan.as_mut() {
            Some(plan) if plan.left > 0 && contains(&body, plan.matching) => {
                plan.left -= 1;
                plan.spoiled += 1;
                Some(plan.fault)
            }
            _ => None,
        }
    };
    match fault {
        Some(Fault::Drop) => {}
        Some(Fault::BadGateway) => answer(&mut client, "502 Bad Gateway", "text/plain", "bad gateway").await,
        Some(Fault::Conflict) => {
            let body = r#"{"data":null,"errors":[{"message":"the order is being changed by someone else; try again","extensions":{"code":"CONFLICT"}}]}"#;
            answer(&mut client, "200 OK", "application/json", body).await;
        }
        Some(Fault::LoseTheAnswer) => {
            let _ = forward(&head, &body, &target).await;
            answer(&mut client, "502 Bad Gateway", "text/plain", "bad gateway").await;
        }
        None => {
            if let Some(response) = forward(&head, &body, &target).await {
                let _ = client.write_all(&response).await;
            }
        }
    }
    let _ = client.shutdown().await;
}

/// One request: its head (up to the blank line) and its body (`Content-Length` bytes).
async fn read_request(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        let read = client.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buffer[end..].to_vec();
    while body.len() < length {
        let read = client.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some((head, body))
}

/// Sends the request to the server on a connection of its own, asking it to close the
/// connection after answering, and returns the whole answer.
async fn forward(head: &str, body: &[u8], target: &str) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(target).await.ok()?;
    let mut request: String = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .map(|line| format!("{line}\r\n"))
        .collect();
    request.push_str("connection: close\r\n\r\n");
    server.write_all(request.as_bytes()).await.ok()?;
    server.write_all(body).await.ok()?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await.ok()?;
    Some(response)
}

async fn answer(client: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
}

fn contains(body: &[u8], needle: &str) -> bool {
    needle.is_empty() || body.windows(needle.len()).any(|window| window == needle.as_bytes())
}
