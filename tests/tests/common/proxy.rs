//! A TCP proxy the fault suite puts between the platform and one of its engines, to break the
//! network between them: [`Proxy::stall`] stops moving bytes on every connection (new ones are
//! accepted and go nowhere), as a partition does; [`Proxy::heal`] lets them flow again, and
//! with `reset` first closes every connection the stall caught, as a middlebox restart does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

pub(crate) struct Proxy {
    addr: SocketAddr,
    flowing: watch::Sender<bool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (flowing, _) = watch::channel(true);
        let connections = Arc::new(Mutex::new(Vec::<AbortHandle>::new()));
        let (tx, conns) = (flowing.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let flowing = tx.subscribe();
                let task = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        () = pipe(cr, sw, flowing.clone()) => {}
                        () = pipe(sr, cw, flowing) => {}
                    }
                });
                let mut conns = conns.lock().unwrap();
                conns.retain(|c| !c.is_finished());
                conns.push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            flowing,
            connections,
            accept,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// No byte moves in either direction until [`Proxy::heal`].
    pub(crate) fn stall(&self) {
        self.flowing.send_replace(false);
    }

    /// Bytes flow again; with `reset`, every connection open now is cut first.
    pub(crate) fn heal(&self, reset: bool) -> usize {
        let cut = if reset {
            let conns = std::mem::take(&mut *self.connections.lock().unwrap());
            for c in &conns {
                c.abort();
            }
            conns.len()
        } else {
            0
        };
        self.flowing.send_replace(true);
        cut
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.heal(true);
    }
}

/// Copies `from` to `to` while the proxy lets bytes flow; returns when either side closes.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut flowing: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if flowing.wait_for(|f| *f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // What was read while the network broke is delivered only when it heals.
        if flowing.wait_for(|f| *f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
