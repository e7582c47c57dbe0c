//! `/login` and `/register`: plain forms posting to server functions, so they work with and
//! without JavaScript.

use leptos::{prelude::*, server_fn::error::ServerFnUrlError};
use leptos_router::{
    components::A,
    hooks::{use_navigate, use_query_map},
};

use crate::{
    api::auth::{Login, Register},
    model::{ApiError, SignedIn, MIN_PASSWORD_CHARS},
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let action = ServerAction::<Login>::new();
    on_signed_in(Signal::derive(move || action.value().get()));
    let pending = action.pending();
    let error = form_error(Signal::derive(move || {
        action.value().get().map(|r| r.err())
    }));
    view! {
        <AuthCard title="Sign in">
            <ActionForm action attr:class="auth-form" attr:aria-describedby="auth-error">
                <EmailField />
                <label for="password">"Password"</label>
                <input id="password" type="password" name="password" required autocomplete="current-password" />
                <ErrorLine error />
                <button type="submit" class="primary" disabled=pending>
                    {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
            <p class="auth-switch">"New here? " <A href="/register">"Create an account"</A></p>
        </AuthCard>
    }
}

#[component]
pub fn RegisterPage() -> impl IntoView {
    let action = ServerAction::<Register>::new();
    on_signed_in(Signal::derive(move || action.value().get()));
    let pending = action.pending();
    let error = form_error(Signal::derive(move || {
        action.value().get().map(|r| r.err())
    }));
    view! {
        <AuthCard title="Create your account">
            <ActionForm action attr:class="auth-form" attr:aria-describedby="auth-error">
                <EmailField />
                <label for="password">"Password"</label>
                <input
                    id="password"
                    type="password"
                    name="password"
                    required
                    minlength=MIN_PASSWORD_CHARS.to_string()
                    autocomplete="new-password"
                    aria-describedby="password-hint"
                />
                <small id="password-hint" class="hint">{format!("At least {MIN_PASSWORD_CHARS} characters.")}</small>
                <ErrorLine error />
                <button type="submit" class="primary" disabled=pending>
                    {move || if pending.get() { "Creating account…" } else { "Create account" }}
                </button>
            </ActionForm>
            <p class="auth-switch">"Already have an account? " <A href="/login">"Sign in"</A></p>
        </AuthCard>
    }
}

#[component]
fn AuthCard(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <main class="auth-page">
            <section class="auth-card" aria-labelledby="auth-title">
                <p class="brand" aria-hidden="true">"✓ Tasks chat"</p>
                <h1 id="auth-title">{title}</h1>
                {children()}
            </section>
        </main>
    }
}

#[component]
fn EmailField() -> impl IntoView {
    view! {
        <label for="email">"Email"</label>
        <input id="email" type="email" name="email" required autocomplete="email" autofocus />
    }
}

#[component]
fn ErrorLine(error: Signal<Option<String>>) -> impl IntoView {
    view! {
        <p id="auth-error" class="form-error" role="alert" aria-live="polite">
            {move || error.get()}
        </p>
    }
}

/// The error to show: from the last JS submission, or (no JavaScript) from the `__err` query
/// parameter the server put on the redirect back to this form.
/// `submitted` is `None` before any JS submission, else that submission's error (if any).
fn form_error(submitted: Signal<Option<Option<ApiError>>>) -> Signal<Option<String>> {
    let query = use_query_map();
    Signal::derive(move || match submitted.get() {
        Some(err) => err.map(|err| err.detail),
        None => query
            .read()
            .get("__err")
            .map(|encoded| ServerFnUrlError::<ApiError>::decode_err(&encoded).detail),
    })
}

/// Once signed in (JavaScript), go to the chat; a build that calls a server elsewhere (the CSR
/// build with `CHATKIT_SERVER_URL`) keeps the token the server sent it. Pages served by the
/// server itself rely on its HttpOnly cookie and keep no token. Without JavaScript the server
/// redirects instead.
fn on_signed_in(value: Signal<Option<Result<SignedIn, ApiError>>>) {
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(signed_in)) = value.get() {
            #[cfg(feature = "client")]
            crate::api::client::set_token(
                signed_in
                    .access_token
                    .clone()
                    .filter(|_| !crate::api::client::server_url().is_empty()),
            );
            #[cfg(not(feature = "client"))]
            let _ = signed_in;
            navigate("/chat", Default::default());
        }
    });
}
