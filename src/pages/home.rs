use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::api::auth::current_user;

/// `/`: signed-in users go to the chat, everyone else to the login page.
#[component]
pub fn HomePage() -> impl IntoView {
    let user = Resource::new_blocking(|| (), |_| current_user());
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(_)) => view! { <Redirect path="/chat" /> }.into_any(),
                    _ => view! { <Redirect path="/login" /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
