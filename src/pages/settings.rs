//! `/settings`: the account, taking everything out, bringing conversations in. The import
//! form posts the file itself (`/api/import`, streamed), so it works without JavaScript; the
//! server sends the browser back here with what it did.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::model::User;

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
    view! {
        <main class="chat-main settings-page" id="main">
            <h1>"Settings"</h1>
            <section aria-labelledby="account-heading">
                <h2 id="account-heading">"Account"</h2>
                <p>"Signed in as " <strong data-testid="settings-email">{user.map(|u| u.email)}</strong></p>
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
