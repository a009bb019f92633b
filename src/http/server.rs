//! The HTTP server: what `actix_web::HttpServer::listen` builds, spelled out
//! so that each accepted connection can be wrapped in `JsonErrorHeads`
//! (actix-web's `HttpServer` hands the bare `TcpStream` to actix-http and has
//! no hook to wrap it). The same pieces as `HttpServer` 4.18 with our
//! settings: an actix-server over the listener, actix-http's HTTP/1 service
//! with the keep-alive and client timeouts, its graceful-shutdown signal
//! (idle keep-alive connections close when a stop starts), the connection
//! cap per worker. One difference: the `AppConfig` is actix-web's default
//! (its `new` is crate-private), whose host only stands in for a request
//! without a `Host` header, and whose local address nothing of ours reads.

use std::fmt;
use std::future::ready;
use std::io;
use std::net::TcpListener;

use actix_http::{HttpService, Request, Response, body::MessageBody};
use actix_service::{IntoServiceFactory, ServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::Error;
use actix_web::dev::{AppConfig, Server, Service};
use tokio::net::TcpStream;

use super::connections::{DISCONNECT_TIMEOUT, KEEP_ALIVE, REQUEST_HEAD_TIMEOUT, WORKERS};
use super::error_heads::JsonErrorHeads;

/// Seconds a graceful stop waits for requests in flight.
const SHUTDOWN_TIMEOUT_SECS: u64 = 20;

/// Serves the app `factory` builds (once per worker) on `listener`, at most
/// `max_connections` connections per worker; signals are left to the caller.
pub fn serve<F, I, S, B>(listener: TcpListener, max_connections: usize, factory: F) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let builder = Server::build();
    let stopping = builder.graceful_shutdown_signal();
    Ok(builder
        .listen("ghsync-http", listener, move || {
            let stopping = stopping.clone();
            let app = factory().into_factory().map_err(|err| err.into().error_response());
            let http = HttpService::build()
                .graceful_shutdown_signal(move || {
                    let stopping = stopping.clone();
                    async move { stopping.notified().await }
                })
                .keep_alive(KEEP_ALIVE)
                .client_request_timeout(REQUEST_HEAD_TIMEOUT)
                .client_disconnect_timeout(DISCONNECT_TIMEOUT)
                .local_addr(addr)
                .h1(map_config(app, |_| AppConfig::default()));
            fn_service(|io: TcpStream| {
                let peer = io.peer_addr().ok();
                ready(Ok((JsonErrorHeads::new(io), peer)))
            })
            .and_then(http)
        })?
        .workers(WORKERS)
        .max_concurrent_connections(max_connections)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .run())
}
