//! Serving a router over HTTP/1.1 as `axum::serve` does, with graceful shutdown, but with
//! hyper's request-head buffer raised: hyper answers a head that overflows its buffer (about
//! 400 KiB by default) itself, with a bare 431 and no body, before any layer runs. With the
//! buffer at [`MAX_HEAD_READ_BYTES`] the kit's own head limits (`layers::head_limits`, far
//! lower) answer instead, with problem+json; what hyper still answers itself (a request target
//! the `http` crate cannot hold, a malformed head) is rewritten to problem+json on its way out.
//! `axum::serve` cannot be configured, hence this.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::layers::{MAX_HEADERS_BYTES, MAX_URI_BYTES};
use super::{PROBLEM_JSON, Problem};

/// hyper's read buffer, so the largest request head a client gets a problem+json for (a
/// larger one still gets hyper's bare 431). Each connection grows its buffer only as far as
/// its head needs.
pub const MAX_HEAD_READ_BYTES: usize = 2 * 1024 * 1024;
/// A client that has not sent its whole request head by then is disconnected.
const HEAD_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `stop` resolves; then accepts nothing more, lets
/// in-flight requests finish and returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Every connection holds a receiver: a value sent tells them to finish, and `closed()`
    // resolves once the last one has.
    let (stop_tx, stop_rx) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(e) => {
                    // A connection reset before it was accepted, or no file descriptor left:
                    // both are worth waiting out rather than stopping the server.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // `Router` serves hyper's `Incoming` bodies as they are.
        // The peer goes with every request of the connection (`ConnectInfo`, for `ClientAddr`).
        let service = TowerToHyperService::new(tower::Layer::layer(
            &axum::Extension(axum::extract::ConnectInfo(peer)),
            router.clone(),
        ));
        let mut stopping = stop_rx.clone();
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .max_buf_size(MAX_HEAD_READ_BYTES)
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_READ_TIMEOUT);
            let conn = builder
                .serve_connection(
                    TokioIo::new(ProblemOnParseError {
                        inner: stream,
                        replacing: None,
                    }),
                    service,
                )
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let served = tokio::select! {
                served = conn.as_mut() => served,
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(stopping);
        });
    }
    drop(listener);
    drop(stop_rx);
    // No connection left means nobody to tell.
    let _ = stop_tx.send(());
    stop_tx.closed().await;
    Ok(())
}

/// hyper answers a request head it cannot parse (a request target over the 65,534 bytes the
/// `http` crate parses, a head over [`MAX_HEAD_READ_BYTES`], a malformed head) itself, before
/// any layer runs, with a bare status and an empty body. This stream wrapper turns exactly
/// those answers into problem+json: an error status among 400/414/431 whose head says
/// `content-length: 0` and carries no body. The kit's own errors always have a body, so nothing
/// a service answers is touched.
struct ProblemOnParseError<S> {
    inner: S,
    /// The replacement being written: its bytes, how many are written, and how many bytes of
    /// hyper's answer to report written once it is.
    replacing: Option<(Vec<u8>, usize, usize)>,
}

/// The status of a bare error answer hyper wrote for an unparseable request head, if `buf` is
/// one (pure; unit-tested).
fn bare_error_status(buf: &[u8]) -> Option<StatusCode> {
    let head = std::str::from_utf8(buf).ok()?;
    let rest = head.strip_prefix("HTTP/1.1 ")?;
    let status = StatusCode::from_bytes(rest.get(..3)?.as_bytes()).ok()?;
    let bare = head.ends_with("\r\n\r\n")
        && head
            .to_ascii_lowercase()
            .contains("\r\ncontent-length: 0\r\n");
    (bare
        && matches!(
            status,
            StatusCode::BAD_REQUEST
                | StatusCode::URI_TOO_LONG
                | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ))
    .then_some(status)
}

/// The whole problem+json answer for a request head hyper could not read; the connection
/// closes after it, as hyper's own answer does.
fn problem_answer(status: StatusCode) -> Vec<u8> {
    let detail = match status {
        StatusCode::URI_TOO_LONG => {
            format!("the path and query string must be at most {MAX_URI_BYTES} bytes")
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            format!("the headers must be at most {MAX_HEADERS_BYTES} bytes")
        }
        _ => "the request head could not be read".to_owned(),
    };
    let body = serde_json::to_vec(&Problem::for_status(status).detail(detail))
        .unwrap_or_else(|_| b"{}".to_vec());
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {PROBLEM_JSON}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemOnParseError<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemOnParseError<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            match bare_error_status(buf) {
                Some(status) => this.replacing = Some((problem_answer(status), 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        while let Some((answer, written, reported)) = this.replacing.as_mut() {
            if *written == answer.len() {
                let reported = *reported;
                this.replacing = None;
                return Poll::Ready(Ok(reported));
            }
            match Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => *written += n,
                other => return other,
            }
        }
        Poll::Ready(Ok(0))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::header;
    use axum::routing::get;

    use super::*;
    use crate::http::{PROBLEM_JSON, Readiness, service_router};

    /// A kit service on port 0 with a `/ping` route; its database is never asked.
    async fn spawn() -> (
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let redis = crate::cache::Redis::connect(&crate::testing::RedisNamespace::new().settings())
            .await
            .unwrap();
        let db = sqlx::PgPool::connect_lazy("postgres://postgres@127.0.0.1:1/none").unwrap();
        let readiness = Readiness::new(db, redis);
        let api = Router::new().route("/ping", get(|| async { "pong" }));
        let app = service_router(api, readiness, &crate::HttpSettings::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            serve(listener, app, async {
                rx.await.ok();
            })
            .await
            .unwrap();
        });
        (url, tx, server)
    }

    #[test]
    fn only_bare_parse_error_answers_are_replaced() {
        let bare = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(bare_error_status(bare), Some(StatusCode::URI_TOO_LONG));
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            bare_error_status(bare),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        // With a body (the kit's own problem), another status, or not a whole head: untouched.
        let with_body = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 40\r\n\r\n";
        assert_eq!(bare_error_status(with_body), None);
        assert_eq!(
            bare_error_status(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        assert_eq!(
            bare_error_status(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"),
            None
        );
        assert_eq!(bare_error_status(b"{\"status\": 400}"), None);

        let answer = String::from_utf8(problem_answer(StatusCode::URI_TOO_LONG)).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], 414);
    }

    #[tokio::test]
    async fn oversized_heads_get_problem_json() {
        let (url, stop, server) = spawn().await;
        let client = reqwest::Client::new();
        let ok = client.get(format!("{url}/ping?q=1")).send().await.unwrap();
        assert_eq!(ok.status(), 200);

        // The longest target the `http` crate parses (65534 bytes); hyper answers a longer one
        // itself.
        let long = "a".repeat(60 * 1024);
        let r = client
            .get(format!("{url}/ping?q={long}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 414);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"], 414);

        let r = client
            .get(format!("{url}/ping"))
            // Over hyper's default read buffer (about 400 KiB): only `serve` gets this far.
            .header("x-big", "b".repeat(1024 * 1024))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 431);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"], 431);

        // Past what the `http` crate parses (no client library even builds such a request):
        // hyper's own answer, made problem+json.
        let addr = url.trim_start_matches("http://");
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        let huge = "a".repeat(1024 * 1024);
        let request = format!("GET /ping?q={huge} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut raw, request.as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut raw, &mut answer)
            .await
            .unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 "), "{head}");
        assert!(head.contains(PROBLEM_JSON), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], 414);
        assert!(
            body["detail"].as_str().unwrap().contains("path and query"),
            "{body}"
        );

        // And the connection pool still works after that connection closed.
        let ok = client.get(format!("{url}/ping")).send().await.unwrap();
        assert_eq!(ok.status(), 200);

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("stops once asked")
            .unwrap();
    }
}
