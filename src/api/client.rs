//! The calling side of the server functions (feature `client`): where they are sent and the
//! bearer token they carry.
//!
//! Our own server-rendered pages need neither: they call their own origin and the session
//! cookie goes along. An app on another origin (the CSR build, another Leptos app) sets the
//! server's URL once and keeps the token that `login`/`register` return:
//!
//! ```ignore
//! chatkit::api::client::set_server_url("https://tasks.example.com");
//! let signed_in = chatkit::api::auth::login(email, password).await?;
//! chatkit::api::client::set_token(signed_in.access_token);
//! ```

use std::future::Future;

use futures::{Sink, Stream};
use leptos::server_fn::{client::Client, error::FromServerFnError, Bytes};

#[cfg(target_arch = "wasm32")]
type Transport = leptos::server_fn::client::browser::BrowserClient;
#[cfg(not(target_arch = "wasm32"))]
type Transport = leptos::server_fn::client::reqwest::ReqwestClient;

/// Where the server functions go, e.g. `"https://tasks.example.com"` (no trailing slash).
/// The first call wins; call it before the first server function.
pub fn set_server_url(url: &'static str) {
    let _ = leptos::server_fn::client::try_set_server_url(url);
}

/// The server's URL as set (empty: the page's own origin).
pub fn server_url() -> &'static str {
    leptos::server_fn::client::get_server_url()
}

/// The bearer token sent with every server function from now on (`None` signs out). In the
/// browser it is kept in `localStorage`, so a reload keeps the session.
pub fn set_token(token: Option<String>) {
    store::set(token);
}

/// The bearer token calls carry, if one was set.
pub fn token() -> Option<String> {
    store::get()
}

/// The server-function client: the platform's transport (the browser's `fetch` in WASM, reqwest
/// elsewhere) plus `Authorization: Bearer` when a token is set.
pub struct ApiClient;

impl<E, InputStreamError, OutputStreamError> Client<E, InputStreamError, OutputStreamError>
    for ApiClient
where
    E: FromServerFnError,
    InputStreamError: FromServerFnError,
    OutputStreamError: FromServerFnError,
{
    type Request = <Transport as Client<E, InputStreamError, OutputStreamError>>::Request;
    type Response = <Transport as Client<E, InputStreamError, OutputStreamError>>::Response;

    fn send(mut request: Self::Request) -> impl Future<Output = Result<Self::Response, E>> + Send {
        if let Some(token) = token() {
            authorize(&mut request, &format!("Bearer {token}"));
        }
        <Transport as Client<E, InputStreamError, OutputStreamError>>::send(request)
    }

    #[allow(clippy::type_complexity)]
    fn open_websocket(
        path: &str,
    ) -> impl Future<
        Output = Result<
            (
                impl Stream<Item = Result<Bytes, Bytes>> + Send + 'static,
                impl Sink<Bytes> + Send + 'static,
            ),
            E,
        >,
    > + Send {
        <Transport as Client<E, InputStreamError, OutputStreamError>>::open_websocket(path)
    }

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        <Transport as Client<E, InputStreamError, OutputStreamError>>::spawn(future)
    }
}

#[cfg(target_arch = "wasm32")]
fn authorize(request: &mut leptos::server_fn::request::browser::BrowserRequest, value: &str) {
    // The request's `Headers` object is live: setting it changes what `fetch` sends.
    request.headers().set("authorization", value);
}

#[cfg(not(target_arch = "wasm32"))]
fn authorize(request: &mut leptos::server_fn::request::reqwest::Request, value: &str) {
    if let Ok(value) = http::HeaderValue::from_str(value) {
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
    }
}

#[cfg(target_arch = "wasm32")]
mod store {
    use std::cell::RefCell;

    const KEY: &str = "chatkit.token";

    thread_local! {
        /// `None` until read from `localStorage` once.
        static TOKEN: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
    }

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok().flatten()
    }

    pub fn get() -> Option<String> {
        TOKEN.with(|cell| {
            cell.borrow_mut()
                .get_or_insert_with(|| storage().and_then(|s| s.get_item(KEY).ok().flatten()))
                .clone()
        })
    }

    pub fn set(token: Option<String>) {
        if let Some(storage) = storage() {
            let _ = match &token {
                Some(token) => storage.set_item(KEY, token),
                None => storage.remove_item(KEY),
            };
        }
        TOKEN.with(|cell| *cell.borrow_mut() = Some(token));
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod store {
    use std::sync::RwLock;

    /// One identity per process: native callers are tools and tests, not multi-user servers
    /// (those call from their users' browsers).
    static TOKEN: RwLock<Option<String>> = RwLock::new(None);

    pub fn get() -> Option<String> {
        TOKEN.read().map(|t| t.clone()).unwrap_or_default()
    }

    pub fn set(token: Option<String>) {
        if let Ok(mut slot) = TOKEN.write() {
            *slot = token;
        }
    }
}
