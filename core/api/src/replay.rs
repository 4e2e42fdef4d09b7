//! A loopback server that answers with recorded provider replies, in order, and keeps what it
//! was sent. `keel plugin test` points a plugin's provider origins at it (through the plugin
//! host's fake origins), so a plugin's cases run in the real host without the provider and
//! without loosening the sandbox: the plugin still reaches only the origins it declares.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The largest request body kept.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A reply to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Script {
    replies: VecDeque<RecordedReply>,
    received: Vec<ReceivedRequest>,
}

/// The running server; it stops when dropped.
pub struct ReplayServer {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReplayServer {
    /// Listens on 127.0.0.1 (a free port) and answers each request with the next of
    /// `replies`; once they are used up, with 599 and a body saying so.
    pub async fn start(replies: Vec<RecordedReply>) -> std::io::Result<ReplayServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let script = Arc::new(Mutex::new(Script {
            replies: replies.into(),
            received: Vec::new(),
        }));
        let served = Arc::clone(&script);
        let app = Router::new().fallback(move |req: Request| {
            let script = Arc::clone(&served);
            async move { answer(&script, req).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ReplayServer { addr, script, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.lock().received.clone()
    }

    /// How many replies were never asked for.
    pub fn unused(&self) -> usize {
        self.lock().replies.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(script: &Mutex<Script>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b.to_vec(),
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
    };
    let received = ReceivedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let what = format!("{} {}", received.method, received.path);
    let next = {
        let mut script = script.lock().unwrap_or_else(|e| e.into_inner());
        script.received.push(received);
        script.replies.pop_front()
    };
    let Some(reply) = next else {
        return Response::builder()
            .status(599)
            .body(Body::from(format!(
                "keel plugin test: no recorded reply left for {what}"
            )))
            .unwrap_or_default();
    };
    let mut res = Response::new(Body::from(reply.body));
    *res.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    for (name, value) in reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            res.headers_mut().append(n, v);
        }
    }
    res
}
