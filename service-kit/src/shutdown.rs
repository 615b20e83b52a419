//! One shutdown signal for the whole service: Ctrl-C or SIGTERM cancels a
//! [`CancellationToken`] that the HTTP server, every consumer and the relay
//! watch. Consumers commit their offsets and the relay leaves pending rows
//! for the next start.

use tokio_util::sync::CancellationToken;

/// Cancels `token` when the process receives Ctrl-C or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        };
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::error!(error = %error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
            _ = terminate => tracing::info!("SIGTERM received; shutting down"),
            _ = token.cancelled() => return,
        }
        token.cancel();
    });
}
