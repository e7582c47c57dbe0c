//! One declaration per server function, two expansions.
//!
//! - With `ssr` (our own server): Leptos's `#[server]`, which registers the function with the
//!   server-function router and runs its body on the server.
//! - Without `ssr` (our hydrated and CSR UIs, and any other app using feature `client`): a
//!   client stub only, a plain `ServerFn` implementation that posts to the same endpoint with the
//!   same encoding (`PostUrl` in, JSON out) through [`super::client::ApiClient`]. It submits
//!   nothing to the server-function registry, so a caller that runs its own Leptos server (with
//!   `leptos/ssr` on, which switches `#[server]` to its server form for every crate in the build)
//!   never serves our functions by accident: they exist there only as HTTP calls to our server.
//!
//! Fragments are taken as token trees where they reach `#[server]`, so it sees plain tokens.
//!
//! Arguments marked `#[default]` may be left out by callers (`#[server(default)]` /
//! `#[serde(default)]`).

macro_rules! server_fns {
    (
        prefix = $prefix:tt;
        $(
            $(#[doc = $doc:tt])*
            #[endpoint = $endpoint:tt, name = $name:ident]
            pub async fn $fn_name:ident($($(#[$field:ident])? $arg:ident: $ty:ty),* $(,)?)
                -> Result<$out:ty, ApiError> $body:tt
        )*
    ) => {
        $(
            #[cfg(feature = "ssr")]
            $(#[doc = $doc])*
            #[doc = concat!("\n\nEndpoint: `POST ", $prefix, "/", $endpoint, "`.")]
            #[leptos::server(name = $name, prefix = $prefix, endpoint = $endpoint)]
            pub async fn $fn_name($($(#[server($field)])? $arg: $ty),*) -> Result<$out, ApiError> $body

            #[cfg(not(feature = "ssr"))]
            #[doc = concat!("The arguments of [`", stringify!($fn_name), "`], as sent.")]
            #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
            pub struct $name {
                $($(#[serde($field)])? pub $arg: $ty,)*
            }

            #[cfg(not(feature = "ssr"))]
            impl leptos::server_fn::ServerFn for $name {
                const PATH: &'static str = concat!($prefix, "/", $endpoint);
                type Client = $crate::api::client::ApiClient;
                type Server = leptos::server_fn::mock::BrowserMockServer;
                type Protocol = leptos::server_fn::Http<
                    leptos::server_fn::codec::PostUrl,
                    leptos::server_fn::codec::Json,
                >;
                type Output = $out;
                type Error = ApiError;
                type InputStreamError = ApiError;
                type OutputStreamError = ApiError;

                async fn run_body(self) -> Result<$out, ApiError> {
                    // Only a server runs bodies, and this build has none: it calls ours.
                    Err(ApiError::new(501, "this build calls the server over HTTP"))
                }
            }

            #[cfg(not(feature = "ssr"))]
            $(#[doc = $doc])*
            #[doc = concat!("\n\nEndpoint: `POST ", $prefix, "/", $endpoint, "`.")]
            pub async fn $fn_name($($arg: $ty),*) -> Result<$out, ApiError> {
                use leptos::server_fn::ServerFn as _;
                $name { $($arg),* }.run_on_client().await
            }
        )*
    };
}

pub(crate) use server_fns;
