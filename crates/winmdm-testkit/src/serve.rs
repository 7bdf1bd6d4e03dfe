//! Running an axum app on a loopback port in its own thread (shared by the emulators).

use std::net::{SocketAddr, TcpListener};

/// Binds an ephemeral loopback port (non-blocking, ready for tokio).
pub(crate) fn bind_loopback() -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves `app` on `listener` from a thread named `name` with its own single-threaded
/// runtime; sending on (or dropping) the returned channel stops it.
pub(crate) fn serve(
    listener: TcpListener,
    app: axum::Router,
    name: String,
) -> std::io::Result<tokio::sync::oneshot::Sender<()>> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new().name(name).spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
    })?;
    Ok(tx)
}
