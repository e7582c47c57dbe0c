//! `/settings`: the account, taking everything out, bringing conversations in. The import
//! form posts the file itself (`/api/import`, streamed), so it works without JavaScript; the
//! server sends the browser back here with what it did.

use leptos::{prelude::*, server_fn::ServerFn};
use leptos_router::hooks::use_query_map;

use crate::{
    api::auth::{get_account_settings, DeleteAccount, LogoutEverywhere, UpdateAccountSettings},
    model::{ApprovalPolicy, User},
};

#[component]
pub fn SettingsPage() -> impl IntoView {
    let user = use_context::<User>();
    let query = use_query_map();
    let outcome = query.with_untracked(|q| {
        let number = |name: &str| q.get(name).and_then(|n| n.parse::<u32>().ok());
        (
            number("imported"),
            number("skipped"),
            number("failed"),
            q.get("error"),
        )
    });
    let report = match outcome {
        (Some(imported), skipped, failed, error) => {
            let plural = |n: u32| if n == 1 { "" } else { "s" };
            let mut text = format!("Imported {imported} conversation{}", plural(imported));
            if let Some(skipped) = skipped.filter(|n| *n > 0) {
                text.push_str(&format!(", skipped {skipped} already here"));
            }
            if let Some(failed) = failed.filter(|n| *n > 0) {
                text.push_str(&format!(", {failed} could not be imported"));
            }
            text.push('.');
            Some(view! {
                <div class="import-report" role="status">
                    <p>{text}</p>
                    {error.map(|e| view! { <p class="form-error">{e}</p> })}
                </div>
            }
            .into_any())
        }
        (None, _, _, Some(error)) => Some(
            view! { <p class="form-error import-report" role="alert">{format!("Not imported: {error}")}</p> }
                .into_any(),
        ),
        _ => None,
    };
    let saved = query.with_untracked(|q| q.get("saved").is_some());
    let settings = Resource::new_blocking(|| (), |_| get_account_settings());
    view! {
        <main class="chat-main settings-page" id="main">
            <h1>"Settings"</h1>
            <section aria-labelledby="account-heading">
                <h2 id="account-heading">"Account"</h2>
                <p>"Signed in as " <strong data-testid="settings-email">{user.map(|u| u.email)}</strong></p>
                <form method="post" action=LogoutEverywhere::url() class="inline-form">
                    <button type="submit" class="ghost" data-testid="logout-everywhere">"Sign out everywhere"</button>
                    <span class="form-hint">"Ends every session of this account, on every device."</span>
                </form>
                <form
                    method="post"
                    action=DeleteAccount::url()
                    class="inline-form"
                    on:submit=|ev| {
                        let sure = crate::components::browser::confirm(
                            "Delete your account with all its tasks and conversations? This cannot be undone.",
                        );
                        if !sure {
                            ev.prevent_default();
                        }
                    }
                >
                    <button type="submit" class="ghost danger" data-testid="delete-account">"Delete account"</button>
                </form>
            </section>
            <section aria-labelledby="assistant-heading">
                <h2 id="assistant-heading">"The assistant"</h2>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || {
                        settings.get().map(|loaded| {
                            let loaded = loaded.unwrap_or_default();
                            let current = loaded.approval_policy;
                            let zone = loaded.time_zone;
                            view! { <ApprovalSetting current zone saved /> }
                        })
                    }}
                </Suspense>
            </section>
            <section aria-labelledby="export-heading">
                <h2 id="export-heading">"Your data"</h2>
                <p>"Everything in one JSON file: your tasks and every conversation, with each message, tool call and rating."</p>
                <a class="button primary" href="/api/export" download>"Download all my data"</a>
            </section>
            <section aria-labelledby="import-heading">
                <h2 id="import-heading">"Import conversations"</h2>
                <p>"A file downloaded here, or ChatGPT's conversations.json (from its data export). Conversations already imported are skipped; no task is changed."</p>
                <form class="import-form" method="post" action="/api/import" enctype="multipart/form-data">
                    <label for="import-file">"Conversations file"</label>
                    <input id="import-file" type="file" name="file" accept=".json,application/json" required />
                    <button type="submit" class="primary">"Import"</button>
                </form>
                {report}
            </section>
        </main>
    }
}

/// When the assistant asks before it changes tasks: a plain form (it works without JavaScript).
#[component]
fn ApprovalSetting(current: ApprovalPolicy, zone: Option<String>, saved: bool) -> impl IntoView {
    let hint = |policy: ApprovalPolicy| match policy {
        ApprovalPolicy::AskBeforeDeleting => "It shows a card to approve before it deletes a task.",
        ApprovalPolicy::AskBeforeChanges => {
            "It asks before it adds, completes, changes, deletes or undoes anything."
        }
        ApprovalPolicy::Never => "It makes changes at once (you can still undo each one).",
    };
    view! {
        <form method="post" action=UpdateAccountSettings::url() class="approval-setting">
            <fieldset>
                <legend>"Ask before changing tasks"</legend>
                {ApprovalPolicy::ALL
                    .into_iter()
                    .map(|policy| {
                        let id = format!("approval-{}", policy.as_str());
                        let hint_id = format!("{id}-hint");
                        view! {
                            <div class="radio-row">
                                <input
                                    type="radio"
                                    id=id.clone()
                                    name="approval_policy"
                                    value=policy.as_str()
                                    checked=policy == current
                                    aria-describedby=hint_id.clone()
                                />
                                <label for=id>{policy.label()}</label>
                                <p class="form-hint" id=hint_id>{hint(policy)}</p>
                            </div>
                        }
                    })
                    .collect_view()}
            </fieldset>
            <div class="field">
                <label for="time-zone">"Time zone"</label>
                <input
                    id="time-zone"
                    name="time_zone"
                    type="text"
                    autocomplete="off"
                    placeholder="Europe/Berlin"
                    value=zone.unwrap_or_default()
                    aria-describedby="time-zone-hint"
                />
                <p class="form-hint" id="time-zone-hint">
                    "Due dates and “today” are in this zone (an IANA name). Your browser's is taken on your first sign-in."
                </p>
            </div>
            <button type="submit" class="primary">"Save"</button>
            {saved.then(|| view! { <p class="saved-note" role="status">"Saved."</p> })}
        </form>
    }
}
