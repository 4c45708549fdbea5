//! Ctrl-C (SIGINT) and SIGTERM during `cascade run`: the run is cancelled like a failed
//! one, so that its sinks remove their temporary files and publish nothing, and the
//! process exits with the status a shell expects of an interrupted program.

/// A run stopped by a signal; the process exits with the status a shell gives a process
/// the signal ended (128 + the signal's number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Interrupted {
    /// The shell's exit status of a process ended by the signal: 130 or 143.
    pub fn exit_code(self) -> u8 {
        match self {
            Interrupted::Interrupt => 130,
            Interrupted::Terminate => 143,
        }
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let signal = match self {
            Interrupted::Interrupt => "SIGINT",
            Interrupted::Terminate => "SIGTERM",
        };
        write!(
            f,
            "interrupted by {signal}: no output was published and the temporary files were removed"
        )
    }
}

impl std::error::Error for Interrupted {}

/// Waits for SIGINT (Ctrl-C) or, on Unix, SIGTERM; never returns when neither handler can
/// be installed.
pub async fn interruption() -> Interrupted {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Interrupted::Interrupt,
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
                Interrupted::Terminate
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<Interrupted>();
    tokio::select! {
        signal = interrupt => signal,
        signal = terminate => signal,
    }
}
