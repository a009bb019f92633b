//! The actix-web server: the route table and the middleware that counts
//! statuses and stamps GitHub's request id on every answer.

use std::net::TcpListener;

use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpServer, web};

use crate::respond::message;
use crate::state::SharedRef;
use crate::{app_routes, graphql, hooks, manifest, rest};

/// Build the server on an already-bound listener. The caller spawns the
/// returned future on its runtime; `disable_signals` because a test process
/// must not have its Ctrl-C handling taken over.
pub fn build(shared: SharedRef, listener: TcpListener) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        let counter = shared.clone();
        App::new()
            .app_data(web::Data::new(shared.clone()))
            // Bodies GitHub accepts are small, but be generous for GraphQL.
            .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
            .wrap_fn(move |req, srv| {
                let counter = counter.clone();
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    let code = res.status().as_u16();
                    let skew = {
                        let mut st = counter.lock();
                        *st.stats.statuses.entry(code).or_default() += 1;
                        st.faults.clock_skew_secs
                    };
                    let now = chrono::Utc::now() + chrono::Duration::seconds(skew);
                    if let Ok(v) = HeaderValue::from_str(&now.format("%a, %d %b %Y %H:%M:%S GMT").to_string()) {
                        res.headers_mut().insert(actix_web::http::header::DATE, v);
                    }
                    let id = request_id();
                    if let Ok(v) = HeaderValue::from_str(&id) {
                        res.headers_mut().insert(HeaderName::from_static("x-github-request-id"), v);
                    }
                    Ok(res)
                }
            })
            .configure(routes)
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/app", web::get().to(app_routes::get_app))
        .route("/app/installations", web::get().to(app_routes::list_installations))
        .route("/app/installations/{id}", web::get().to(app_routes::get_installation))
        .route("/app/installations/{id}/access_tokens", web::post().to(app_routes::mint_token))
        .route("/app/hook/deliveries", web::get().to(hooks::list))
        .route("/app/hook/deliveries/{id}", web::get().to(hooks::get_one))
        .route("/app/hook/deliveries/{id}/attempts", web::post().to(hooks::redeliver))
        .route("/user/{id}", web::get().to(rest::get_user))
        .route("/users/{login}", web::get().to(rest::get_user_by_login))
        .route("/rate_limit", web::get().to(rest::rate_limit))
        .route("/graphql", web::post().to(graphql::handle))
        .route("/app-manifests/{code}/conversions", web::post().to(manifest::convert))
        .default_service(web::to(|| async { message(404, "Not Found", "https://docs.github.com/rest") }));
}

/// GitHub-style request ids look like `C0DE:1F2E:3D4C5B:6A7988:65A1B2C3`.
fn request_id() -> String {
    let r: [u32; 5] = rand::random();
    format!(
        "{:04X}:{:04X}:{:06X}:{:06X}:{:08X}",
        r[0] & 0xFFFF,
        r[1] & 0xFFFF,
        r[2] & 0xFF_FFFF,
        r[3] & 0xFF_FFFF,
        r[4]
    )
}
