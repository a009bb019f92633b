//! The admin page in a real browser: headless Chromium loads `/admin` from a
//! running ghsync with data in it (users in several statuses, a finished
//! pass, a parked delivery), and the test reads what a person would see and
//! saves a screenshot under the target directory. The login cookie's flow and
//! its limits are checked over plain HTTP.

use actix_web::{HttpRequest, HttpResponse, HttpServer, web};
use reqwest::{Method, StatusCode, redirect};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, Chromium, PATIENCE, TestApp, eventually, spawn_app, target_dir};
use fake_github::{FakeUser, payloads};
use ghsync::domain::{DeliveryId, DeliveryState};

const FORM: &str = "application/x-www-form-urlencoded";

fn token_form(token: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new()).append_pair("token", token).finish()
}

/// Users 7001 (active), 7002 (suspended), 7003 (opted out); one finished
/// pass; one parked delivery. Returns the parked delivery's GUID.
async fn populate(app: &TestApp) -> String {
    // Installed while ghsync was not listening: the pass finds and fetches them.
    for id in [7001, 7002, 7003] {
        app.github_user(id);
    }
    app.run_pass().await;
    app.send_installation("suspend", 7002).await;
    let status = app
        .admin(Method::PUT, "/api/users/7003/sync-enabled")
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    // Signed, but without the `installation` object: parked as failed.
    let broken = json!({"action": "created", "sender": payloads::simple_user(&FakeUser::sample(7009))});
    let parked = app.deliver("installation", &broken).await;
    app.drain_inbox().await;
    parked
}

/// Logs in through the form as a browser would; returns the `Cookie` header.
async fn login(app: &TestApp) -> String {
    let client = reqwest::Client::builder().redirect(redirect::Policy::none()).build().unwrap();
    let response = client
        .post(format!("{}/admin/login", app.address))
        .header("Origin", &app.address)
        .header("Content-Type", FORM)
        .body(token_form(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/admin");
    let set = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set.contains(attribute), "the cookie has {attribute}: {set}");
    }
    assert!(!set.contains(ADMIN_TOKEN), "the token is not stored verbatim: {set}");
    set.split(';').next().unwrap().to_owned()
}

/// Chromium cannot be handed a cookie on its command line: this stands in
/// for the browser's cookie jar after the login, forwarding each GET to
/// ghsync with the login cookie. Returns its base URL.
fn cookie_jar_proxy(upstream: String, cookie: String) -> String {
    let client = reqwest::Client::new();
    let server = HttpServer::new(move || {
        let (client, upstream, cookie) = (client.clone(), upstream.clone(), cookie.clone());
        actix_web::App::new().default_service(web::to(move |req: HttpRequest| {
            let (client, upstream, cookie) = (client.clone(), upstream.clone(), cookie.clone());
            async move {
                let url = format!("{upstream}{}", req.uri());
                let response = client.get(url).header("Cookie", cookie).send().await.unwrap();
                let status = actix_web::http::StatusCode::from_u16(response.status().as_u16()).unwrap();
                let mut answer = HttpResponse::build(status);
                if let Some(content_type) = response.headers().get("content-type") {
                    answer.content_type(content_type.to_str().unwrap().to_owned());
                }
                answer.body(response.bytes().await.unwrap())
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    address
}

/// The text of the table row whose first cell is `first`, cells joined by `|`.
fn row(dom: &str, table: &str, first: &str) -> String {
    let start = dom.find(&format!("id=\"{table}\"")).unwrap_or_else(|| panic!("no table {table} in:\n{dom}"));
    let body = &dom[start..start + dom[start..].find("</table>").unwrap()];
    body.split("<tr>")
        .map(|tr| {
            let text = tr.replace("</td>", "|").replace("</th>", "|");
            let mut plain = String::new();
            let mut in_tag = false;
            for c in text.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => plain.push(c),
                    _ => {}
                }
            }
            plain.trim_end_matches('|').to_owned()
        })
        .find(|r| r.split('|').next() == Some(first))
        .unwrap_or_else(|| panic!("no row {first:?} in table {table}:\n{body}"))
}

both_backends! {
    async fn the_admin_page_shows_users_passes_budgets_inbox_and_freshness_in_a_browser(backend: Backend) {
        // Arrange
        let Some(chromium) = Chromium::find() else { return };
        let app = spawn_app(backend).await;
        let parked = populate(&app).await;
        let run = app.store().runs(1).await.unwrap().remove(0);
        let proxy = cookie_jar_proxy(app.address.clone(), login(&app).await);

        // Act
        let unauthenticated = chromium.dump_dom(&format!("{}/admin", app.address)).await;
        let dom = chromium.dump_dom(&format!("{proxy}/admin")).await;
        let shot = target_dir().join(match backend {
            Backend::Sqlite => "admin-page.png",
            Backend::Postgres => "admin-page-postgres.png",
        });
        chromium.screenshot(&format!("{proxy}/admin"), &shot).await;

        // Assert: without the cookie, the login form and nothing else.
        assert!(unauthenticated.contains("Admin token") && unauthenticated.contains("name=\"token\""), "{unauthenticated}");
        assert!(!unauthenticated.contains("Users by status"), "no data before login");
        // With it: what a person reads in each table.
        assert_eq!(row(&dom, "users", "active"), "active|1");
        assert_eq!(row(&dom, "users", "suspended"), "suspended|1");
        assert_eq!(row(&dom, "users", "opted_out"), "opted_out|1");
        assert_eq!(row(&dom, "users", "Total"), "Total|3");
        let pass = row(&dom, "passes", &run.id.get().to_string());
        let cells: Vec<&str> = pass.split('|').collect();
        assert_eq!(cells[1..3], ["test", "finished"], "{pass}");
        assert!(cells[4].ends_with(" s"), "a duration: {pass}");
        assert_eq!(cells[5], run.counts.fetched.to_string(), "users checked: {pass}");
        assert_eq!(cells[8], run.counts.points_core.to_string(), "core points: {pass}");
        assert!(dom.contains("Users per pass") && dom.contains("Rate-limit points per pass"));
        assert!(dom.matches("<svg").count() == 2 && dom.matches("<rect").count() >= 5, "two charts with bars:\n{dom}");
        assert_eq!(row(&dom, "inbox", "Parked"), "Parked|1");
        assert!(row(&dom, "parked", &parked).contains("installation.created"), "the parked delivery is listed");
        assert!(row(&dom, "budgets", "7001").contains("core"), "a budget row for an installation that spent");
        assert!(!row(&dom, "freshness", "Oldest profile").contains("never"), "a synced profile has an age");
        assert!(row(&dom, "freshness", "Next pass").contains("UTC"));
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot with something on it");
        eprintln!("admin page screenshot: {}", shot.display());
    }

    async fn the_login_cookie_opens_the_page_only_and_a_cross_site_login_is_refused(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        let cookie = login(&app).await;
        let client = reqwest::Client::builder().redirect(redirect::Policy::none()).build().unwrap();
        let get = |path: &str, cookie: Option<&str>| {
            let request = client.get(format!("{}{path}", app.address));
            match cookie { Some(c) => request.header("Cookie", c), None => request }
        };

        // Act + Assert: no auth is a 401 with the form; the cookie or the bearer token opens the page.
        let page = get("/admin", None).send().await.unwrap();
        assert_eq!(page.status(), 401);
        assert!(page.text().await.unwrap().contains("<form method=\"post\" action=\"/admin/login\""));
        assert_eq!(get("/admin", Some(&cookie)).send().await.unwrap().status(), 200);
        assert_eq!(app.admin(Method::GET, "/admin").send().await.unwrap().status(), 200);
        assert_eq!(get("/admin", Some("ghsync_admin=6e6f7065")).send().await.unwrap().status(), 401, "a wrong cookie");
        // The JSON API stays bearer-only: the cookie does not drive it.
        assert_eq!(get("/admin/health", Some(&cookie)).send().await.unwrap().status(), 401);
        // A wrong token is the form again; a form posted from another site is refused.
        let wrong = client.post(format!("{}/admin/login", app.address)).header("Content-Type", FORM).body(token_form("nope")).send().await.unwrap();
        assert_eq!(wrong.status(), 401);
        assert!(wrong.headers().get("set-cookie").is_none());
        let cross = client
            .post(format!("{}/admin/login", app.address))
            .header("Origin", "https://evil.example")
            .header("Content-Type", FORM).body(token_form(ADMIN_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), 403);
        assert!(cross.headers().get("set-cookie").is_none());
    }

    async fn a_person_signs_in_and_sends_a_parked_delivery_back_with_the_retry_button(backend: Backend) {
        // Arrange: a delivery that applies cleanly, parked as if a bug had
        // refused it (a payload-broken one would only be parked again).
        let Some(chromium) = Chromium::find() else { return };
        let app = spawn_app(backend).await;
        app.install(7101).await;
        let guid = app.deliver("star", &payloads::simple_event_with_sender(&app.github.user(7101).unwrap())).await;
        app.drain_inbox().await;
        let id = DeliveryId::parse(&guid).unwrap();
        app.store().finish_delivery(&id, DeliveryState::Failed, Some("refused by a bug since fixed"), chrono::Utc::now()).await.unwrap();
        let address = app.address.clone();
        let wanted = guid.clone();

        // Act: in the browser, sign in with the form, then press Retry on that row.
        let (before, after) = tokio::task::spawn_blocking(move || {
            let mut browser = chromium.browser();
            browser.goto(&format!("{address}/admin"));
            browser.wait_for("the login form", "document.querySelector('input[name=token]')");
            browser.eval(&format!(
                "document.querySelector('input[name=token]').value = {ADMIN_TOKEN:?}; \
                 document.querySelector('form[action=\"/admin/login\"] button').click(); true"
            ));
            browser.wait_for("the page after signing in", "document.querySelector('#inbox')");
            let before = browser.dom();
            let pressed = browser.eval(&format!(
                "(() => {{ const input = [...document.querySelectorAll('form.retry input[name=guid]')].find(i => i.value === {wanted:?}); \
                 if (!input) return false; input.form.querySelector('button').click(); return true; }})()"
            ));
            assert_eq!(pressed, Some(json!(true)), "a Retry button for {wanted}");
            browser.wait_for("the page again, without the delivery", &format!("document.querySelector('#inbox') && !document.body.innerHTML.includes({wanted:?})"));
            (before, browser.dom())
        })
        .await
        .unwrap();

        // Assert: listed with its button before; gone from the parked list after, and applied.
        assert!(row(&before, "parked", &guid).contains("refused by a bug since fixed"), "{before}");
        assert_eq!(row(&before, "inbox", "Parked"), "Parked|1");
        assert_eq!(row(&after, "inbox", "Parked"), "Parked|0", "{after}");
        assert!(!after.contains(&guid), "the delivery left the parked list:\n{after}");
        eventually("the retried delivery applied", PATIENCE, || async {
            let state = app.store().delivery(&id).await.unwrap().unwrap().state;
            (state == DeliveryState::Done).then_some(())
        })
        .await;
    }

    async fn the_retry_form_refuses_another_site_and_needs_the_cookie_or_token(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        let client = reqwest::Client::builder().redirect(redirect::Policy::none()).build().unwrap();
        let post = |origin: Option<&str>, cookie: Option<&str>, guid: &str| {
            let mut request = client
                .post(format!("{}/admin/retry", app.address))
                .header("Content-Type", FORM)
                .body(url::form_urlencoded::Serializer::new(String::new()).append_pair("guid", guid).finish());
            if let Some(origin) = origin { request = request.header("Origin", origin) }
            if let Some(cookie) = cookie { request = request.header("Cookie", cookie) }
            request.send()
        };
        let cookie = login(&app).await;

        // Act + Assert
        assert_eq!(post(None, None, "x").await.unwrap().status(), 401, "no cookie, no token");
        assert_eq!(post(Some("https://evil.example"), Some(&cookie), "x").await.unwrap().status(), 403, "another site");
        let unknown = post(Some(&app.address), Some(&cookie), "no-such-delivery").await.unwrap();
        assert_eq!(unknown.status(), 404);
        assert!(unknown.text().await.unwrap().contains("Back to the admin page"));
    }
}
