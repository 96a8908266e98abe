//! `tramontane-server`: an OpenAI-compatible HTTP server over one GGUF model.
//!
//! Start-up order: arguments, model, engine thread, then the listening socket, so that a
//! server that answers at all has its model loaded (`/health` is 200 from the first request).
//! Shutdown on SIGINT/SIGTERM: stop accepting, let in-flight requests finish for the grace
//! period, then cancel what is left and exit 0.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

mod args;
mod auth;
mod engine_thread;
mod generate;
mod metrics;
mod openai;
mod request_log;
mod routes;
mod state;

use std::future::IntoFuture;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tramontane::engine::EngineOptions;
use tramontane::Model;

use crate::args::{ArgsError, Config};
use crate::metrics::Metrics;
use crate::state::AppState;

/// The default context per request, when the model's training context is not smaller.
const DEFAULT_CTX: usize = 4096;
/// After the grace period, how long cancelled requests get to close their connections.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let config = match args::parse(std::env::args_os().skip(1)) {
        Ok(config) => config,
        Err(ArgsError::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(ArgsError::Bad(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colours only for a person at a terminal, not in log files.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            tracing::error!("{message}");
            ExitCode::from(code)
        }
    }
}

/// `e` and its causes, joined by ": " (the library's errors keep the cause out of their own
/// message).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.ends_with(&part) {
            text = format!("{text}: {part}");
        }
        cause = c.source();
    }
    text
}

/// Loads, starts and serves until a signal; the error's exit status and message otherwise.
fn run(config: Config) -> Result<(), (u8, String)> {
    let model = Model::load(&config.model)
        .map_err(|e| (1, format!("cannot load the model: {}", chain(&e))))?;
    let model = Arc::new(model);
    let context = config
        .ctx
        .unwrap_or_else(|| DEFAULT_CTX.min(model.config().context_length));
    let options = EngineOptions {
        slots: config.parallel,
        context,
        threads: config.threads,
        queue: config.queue,
        ..EngineOptions::default()
    };
    let metrics = Arc::new(Metrics::new(config.parallel));
    let engine =
        engine_thread::spawn(Arc::clone(&model), options, Arc::clone(&metrics)).map_err(|e| {
            // An out-of-range --ctx or --threads is the caller's mistake: a usage error.
            let code = if matches!(e, tramontane::Error::InvalidArgument { .. }) {
                2
            } else {
                1
            };
            (code, format!("cannot start the engine: {}", chain(&e)))
        })?;
    let model_id: Arc<str> = match &config.model_alias {
        Some(alias) => alias.as_str().into(),
        None => config
            .model
            .file_stem()
            .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned())
            .into(),
    };
    let api_key: Option<Arc<str>> = config
        .api_key
        .clone()
        .or_else(|| {
            std::env::var("TRAMONTANE_API_KEY")
                .ok()
                .filter(|k| !k.is_empty())
        })
        .map(Into::into);
    tracing::info!(
        model = %model_id,
        ctx = engine.n_ctx,
        slots = config.parallel,
        queue = config.queue,
        api_key = api_key.is_some(),
        "model loaded"
    );
    let state = AppState {
        model,
        engine: engine.clone(),
        metrics,
        model_id,
        created: state::unix_now(),
    };
    let app = routes::router(state, api_key);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tramontane-http")
        .build()
        .map_err(|e| (1, format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(config, app, engine))
}

async fn serve(
    config: Config,
    app: axum::Router,
    engine: engine_thread::EngineHandle,
) -> Result<(), (u8, String)> {
    let addr = SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| (1, format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!("listening on http://{local}");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut graceful = stop_rx.clone();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = graceful.wait_for(|stop| *stop).await;
        })
        .into_future();
    let mut server = tokio::spawn(server);
    tokio::select! {
        result = &mut server => {
            return match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err((1, format!("the server failed: {e}"))),
                Err(e) => Err((1, format!("the server failed: {e}"))),
            };
        }
        () = shutdown_signal() => {}
    }
    let grace = Duration::from_secs(config.shutdown_grace);
    tracing::info!(
        "shutting down: no new connections; in-flight requests get {}s",
        grace.as_secs()
    );
    let _ = stop_tx.send(true);
    if tokio::time::timeout(grace, &mut server).await.is_err() {
        tracing::warn!("grace period over: cancelling the requests still running");
        engine.cancel_all();
        if tokio::time::timeout(CANCEL_WAIT, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("connections still open; exiting anyway");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
