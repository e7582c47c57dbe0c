//! `/chat/search?q=`: search results as a page (the sidebar's search form; works without
//! JavaScript).

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_query_map};

use crate::{
    api::chat::search_conversations, components::search_palette::hit_href, model::SearchQuery,
};

#[component]
pub fn SearchPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let results = Resource::new_blocking(
        move || q.get(),
        |q| async move {
            if q.trim().is_empty() {
                return None;
            }
            let query = SearchQuery {
                q,
                limit: Some(50),
                cursor: None,
            };
            Some(search_conversations(query).await)
        },
    );
    view! {
        <main class="chat-main search-page" id="main">
            <h1>"Search"</h1>
            <form class="search-form" method="get" action="/chat/search" role="search">
                <label for="search-page-q" class="visually-hidden">"Search conversations"</label>
                <input id="search-page-q" type="search" name="q" prop:value=move || q.get() placeholder="Search conversations…" />
                <button type="submit" class="primary">"Search"</button>
            </form>
            <Suspense fallback=|| view! { <p class="loading">"Searching…"</p> }>
                {move || Suspend::new(async move {
                    match results.await {
                        None => view! { <p class="hint">"Type words to find in your conversations' titles and messages."</p> }.into_any(),
                        Some(Err(err)) => view! { <p class="form-error" role="alert">{err.detail}</p> }.into_any(),
                        Some(Ok(page)) if page.results.is_empty() => {
                            view! { <p class="hint" role="status">"No matches."</p> }.into_any()
                        }
                        Some(Ok(page)) => view! {
                            <p class="hint" role="status">{format!("{} results", page.results.len())}</p>
                            <ul class="search-results">
                                {page
                                    .results
                                    .into_iter()
                                    .map(|hit| {
                                        let href = hit_href(&hit);
                                        view! {
                                            <li>
                                                <A href=href attr:class="hit" attr:data-testid="search-result">
                                                    <span class="hit-title">{hit.conversation_title}</span>
                                                    <span class="hit-snippet" inner_html=hit.snippet_html></span>
                                                </A>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}
