//! The message thread: history (server-rendered), older pages on scroll-up, the reply growing
//! as the model writes it and "Using add_task…" from the live event stream, a Stop button,
//! optimistic sends with a `client_id`. Without the live stream (it cannot connect) it polls
//! every 2 s while the tab is visible (every second while the assistant works).

use std::time::Duration;

use leptos::{html, prelude::*, task::spawn_local};
use leptos_router::{components::A, hooks::use_navigate};
use uuid::Uuid;

use super::{
    approval_card::ApprovalCards,
    browser,
    composer::Composer,
    follow::Follow,
    message::{render_key, MessageActions, MessageView},
    thread_state,
};
use crate::{
    api::chat::{
        decide_all_approvals, decide_approval, edit_message, list_messages, regenerate_message,
        send_message, stop_turn, switch_branch, undo_tool_call,
    },
    contexts::{chat::ChatContext, live::LiveContext},
    model::{
        ActivityState, ApiError, BranchView, LiveEvent, Message, MessagePage, MessageQuery,
        MessageStatus, Role, TurnActivity, TurnResult,
    },
};

const POLL_EVERY: Duration = Duration::from_secs(2);
/// While a turn runs, so that "Using add_task…" follows the assistant closely.
const POLL_BUSY_EVERY: Duration = Duration::from_secs(1);
const PAGE: i64 = 50;

/// What a reload of the branch shown sets: its messages, whether older ones remain, the
/// activity, and whether the conversation is gone.
type Shown = (
    RwSignal<Vec<Message>>,
    RwSignal<bool>,
    RwSignal<Option<TurnActivity>>,
    RwSignal<bool>,
);

/// A message the user sent that the server has not confirmed yet.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub client_id: Uuid,
    pub content: String,
    pub error: Option<String>,
}

#[component]
pub fn Thread(
    id: Uuid,
    initial: MessagePage,
    /// What a failed no-JavaScript send had typed (see `Composer`).
    #[prop(optional)]
    returned: String,
    /// The message to open at (a search hit): loaded, scrolled to and highlighted.
    #[prop(default = None)]
    at: Option<i64>,
) -> impl IntoView {
    let ctx = expect_context::<ChatContext>();
    let live = expect_context::<LiveContext>();
    let messages = RwSignal::new(initial.messages);
    // The reply being written: (its seq, the text so far).
    let streaming: RwSignal<Option<(i64, String)>> = RwSignal::new(None);
    // What the assistant is doing, as the server last reported it (any tab's turn).
    let activity = RwSignal::new(initial.activity);
    let has_older = RwSignal::new(initial.has_more);
    let loading_older = RwSignal::new(false);
    let outgoing: RwSignal<Vec<Outgoing>> = RwSignal::new(Vec::new());
    let gone = RwSignal::new(false);
    // The session ended (logged out in another tab, account deleted): go to sign in.
    let signed_out = RwSignal::new(false);
    let scroller = NodeRef::<html::Div>::new();
    let content = NodeRef::<html::Ol>::new();
    // Keeps to the bottom while the reader is there (see `follow`).
    let follow = Follow::new(scroller);
    follow.observe(content);

    let last_seq = move || messages.with(|m| m.last().map_or(0, |m| m.seq));
    // A problem with an edit, a regeneration or a branch switch, said where it happened.
    let notice: RwSignal<Option<String>> = RwSignal::new(None);
    // The branch shown, read again (another tab or device chose another one, or a message
    // arrived that does not follow the last one shown).
    let reloading = StoredValue::new(false);
    // Asked for while one runs: run once more after it (with the latest focus wanted), so a
    // reload that read too early is never the last.
    let reload_again: StoredValue<Option<Option<Vec<String>>>> = StoredValue::new(None);
    let reload = move |focus: Option<Vec<String>>| {
        fn run(
            id: Uuid,
            focus: Option<Vec<String>>,
            signals: Shown,
            reloading: StoredValue<bool>,
            reload_again: StoredValue<Option<Option<Vec<String>>>>,
        ) {
            let (messages, has_older, activity, gone) = signals;
            reloading.set_value(true);
            spawn_local(async move {
                let query = MessageQuery {
                    limit: Some(PAGE),
                    ..Default::default()
                };
                match list_messages(id, query).await {
                    Ok(page) => {
                        has_older.set(page.has_more);
                        messages.update(|list| *list = thread_state::reloaded(list, page.messages));
                        // A read from before the answer came must not bring its activity back.
                        let answered = messages.with_untracked(|m| {
                            m.last().is_some_and(|m| m.role == Role::Assistant)
                        });
                        activity.set(page.activity.filter(|_| !answered));
                        // The control that was used is gone with its message: its twin on
                        // the message shown now takes focus (never the page).
                        if let Some(selectors) = focus {
                            browser::focus_first_soon(selectors);
                        }
                    }
                    Err(err) if err.is_not_found() => gone.set(true),
                    Err(_) => {}
                }
                reloading.set_value(false);
                if let Some(next) = reload_again.try_update_value(Option::take).flatten() {
                    run(id, next, signals, reloading, reload_again);
                }
            });
        }
        if reloading.get_value() {
            reload_again.update_value(|wanted| {
                let keep = wanted.take().flatten();
                *wanted = Some(focus.or(keep));
            });
            return;
        }
        run(
            id,
            focus,
            (messages, has_older, activity, gone),
            reloading,
            reload_again,
        );
    };
    // Adds confirmed messages that continue the branch shown, in seq order, without
    // duplicates; reports tool use. One that belongs to another branch reloads the branch.
    let merge = move |incoming: Vec<Message>| {
        if incoming.is_empty() {
            return;
        }
        let used_tools = incoming.iter().any(|m| m.tool_calls.is_some());
        let merged = messages
            .try_update(|list| thread_state::merge(list, incoming))
            .unwrap_or_default();
        if merged.elsewhere {
            reload(None);
        }
        // A new reply is announced once, complete (the log itself is not live: it would read
        // the answer out token by token).
        if let Some(reply) = merged.reply {
            ctx.announcement.set(announcement(&reply));
        }
        // Confirmed messages replace their optimistic copies.
        outgoing.update(|pending| {
            let list = messages.get_untracked();
            pending.retain(|o| {
                o.error.is_some() || !list.iter().any(|m| m.client_id == Some(o.client_id))
            });
        });
        // With the live stream the task panel and the sidebar follow its events themselves.
        if !live.connected.get_untracked() {
            if used_tools {
                ctx.tasks_version.update(|v| *v += 1);
            }
            ctx.sidebar_version.update(|v| *v += 1);
        }
    };

    // Polling: `after=<last seq>` every 2 s while the tab is visible.
    let polling = StoredValue::new(false);
    let poll = move || {
        if gone.get_untracked() || polling.get_value() || !browser::tab_visible() {
            return;
        }
        // The live stream delivers everything; polling is only the fallback.
        if live.connected.get_untracked() {
            return;
        }
        polling.set_value(true);
        spawn_local(async move {
            let query = MessageQuery {
                after: Some(last_seq()),
                limit: Some(100),
                branch: Some(BranchView::Current),
                ..Default::default()
            };
            match list_messages(id, query).await {
                Ok(page) => {
                    ctx.online.set(true);
                    let shown = messages.with_untracked(|m| m.last().map(|m| m.id));
                    if page.current_message_id.is_some()
                        && page.current_message_id != shown
                        && page.messages.is_empty()
                    {
                        // Another branch was chosen elsewhere (this one's seqs may all be older).
                        reload(None);
                    }
                    merge(page.messages);
                    // A reply this tab already has makes the reported activity stale.
                    activity.set(page.activity.filter(|a| a.user_seq >= last_seq()));
                }
                Err(err) if err.is_not_found() => gone.set(true),
                Err(err) if err.is_unauthorized() => signed_out.set(true),
                Err(err) if err.status == 0 => ctx.online.set(false),
                Err(_) => {}
            }
            polling.set_value(false);
        });
    };
    // A retry of the last answer is under way.
    let retrying = RwSignal::new(false);
    // The turn waits for the user to decide on its calls (not for the assistant).
    let parked = move || {
        activity.with(|a| {
            a.as_ref()
                .is_some_and(|a| a.state == ActivityState::Approval)
        })
    };
    let waiting = move || {
        (retrying.get()
            || streaming.with(Option::is_some)
            || outgoing.with(|p| p.iter().any(|o| o.error.is_none()))
            || messages.with(|m| m.last().is_some_and(|m| m.role == Role::User))
            || activity.with(Option::is_some))
            && !parked()
    };
    // Live events for this conversation.
    let is_stored =
        move |seq: i64| messages.with_untracked(|list| list.iter().any(|m| m.seq == seq));
    live.subscribe(move |event| match event {
        LiveEvent::Message(message) if message.conversation_id == id => {
            let reply = message.role == Role::Assistant;
            merge(vec![message]);
            if reply {
                streaming.set(None);
                activity.set(None);
            }
        }
        LiveEvent::Delta {
            conversation_id,
            seq,
            text,
            offset,
        } if conversation_id == id && !is_stored(seq) => streaming.update(|current| {
            let so_far = match current {
                Some((s, so_far)) if *s == seq => so_far,
                _ => &mut current.insert((seq, String::new())).1,
            };
            // A delta may overlap the `partial` this tab started from: add only what is new.
            let have = so_far.chars().count();
            let skip = have.saturating_sub(offset.max(0) as usize);
            so_far.extend(text.chars().skip(skip));
        }),
        LiveEvent::Partial {
            conversation_id,
            seq,
            text,
        } if conversation_id == id && !is_stored(seq) => streaming.set(Some((seq, text))),
        LiveEvent::ToolCallUndone {
            conversation_id,
            message_id,
            index,
            undone_at,
        } if conversation_id == id => {
            messages.update(|list| thread_state::mark_undone(list, message_id, index, undone_at))
        }
        event @ (LiveEvent::Activity { .. } | LiveEvent::ApprovalDecided { .. }) => {
            let next = activity.with_untracked(|current| {
                thread_state::activity_after(current, &event, id, last_seq(), chrono::Utc::now())
            });
            if let Some(next) = next {
                activity.set(next);
            }
        }
        LiveEvent::ConversationDeleted { id: deleted } if deleted == id => gone.set(true),
        // Another branch is shown now (chosen in another tab, or an edit or regeneration
        // started there).
        LiveEvent::Conversation(conversation) if conversation.id == id => {
            let shown = messages.with_untracked(|m| m.last().map(|m| m.id));
            if conversation.current_message_id.is_some() && conversation.current_message_id != shown
            {
                reload(None);
            }
        }
        LiveEvent::Resync => {
            polling.set_value(false);
            reload(None);
        }
        _ => {}
    });
    // One timer ticking at the busy rate; idle, only every `idle_ticks`-th tick polls.
    let idle_ticks = (POLL_EVERY.as_millis() / POLL_BUSY_EVERY.as_millis()).max(1) as u32;
    let ticks = StoredValue::new(0_u32);
    let tick = move || {
        ticks.update_value(|t| *t = t.wrapping_add(1));
        if waiting() || ticks.get_value().is_multiple_of(idle_ticks) {
            poll();
        }
    };
    Effect::new(move |_| {
        // Opened (or reloaded mid-answer): at the bottom, following; or at a search hit.
        follow.jump_to_bottom();
        if let Some(seq) = at {
            let view = super::thread_jump::ThreadView {
                conversation: id,
                messages,
                has_older,
                loading_older,
                scroller,
                follow,
            };
            super::thread_jump::open_at(view, seq);
        }
        if let Ok(handle) = set_interval_with_handle(tick, POLL_BUSY_EVERY) {
            on_cleanup(move || handle.clear());
        }
    });

    // Older pages when scrolled to the top, keeping the view where it was.
    let load_older = move || {
        if loading_older.get_untracked() || !has_older.get_untracked() {
            return;
        }
        let Some(first) = messages.with_untracked(|m| m.first().map(|m| m.seq)) else {
            return;
        };
        loading_older.set(true);
        spawn_local(async move {
            let query = MessageQuery {
                before: Some(first),
                limit: Some(PAGE),
                ..Default::default()
            };
            if let Ok(page) = list_messages(id, query).await {
                let anchor = scroller
                    .get_untracked()
                    .map(|el| el.scroll_height() - el.scroll_top());
                has_older.set(page.has_more);
                messages.update(|list| {
                    let mut older = page.messages;
                    older.retain(|m| !list.iter().any(|x| x.id == m.id));
                    older.append(list);
                    *list = older;
                });
                if let Some(anchor) = anchor {
                    browser::keep_anchor_soon(scroller, anchor);
                }
            }
            loading_older.set(false);
        });
    };
    let on_scroll = move |_| {
        if let Some(el) = scroller.get_untracked() {
            if el.scroll_top() < 120 {
                load_older();
            }
            follow.on_scroll();
        }
    };

    // A turn's end as its request returns it: the reply, or the calls it waits on.
    let settle = move |turn: TurnResult| {
        streaming.set(None);
        match turn.assistant_message {
            Some(reply) => {
                activity.set(None);
                merge(vec![turn.user_message, reply]);
            }
            None => {
                let seq = turn.user_message.seq;
                merge(vec![turn.user_message]);
                activity.set(Some(thread_state::waiting_for(
                    seq,
                    turn.approvals,
                    chrono::Utc::now(),
                )));
            }
        }
    };
    // The user's decision on a call the assistant waits on; the continued answer comes back
    // (and, live, to every tab).
    let deciding = RwSignal::new(false);
    let decide = Callback::new(move |(call_id, approve): (Option<String>, bool)| {
        deciding.set(true);
        notice.set(None);
        spawn_local(async move {
            let result = match call_id.clone() {
                Some(call_id) => decide_approval(id, call_id, approve).await,
                None => decide_all_approvals(id, approve).await,
            };
            match result {
                Ok(result) => {
                    activity.update(|a| *a = thread_state::decided(a, call_id.as_deref()));
                    if let Some(turn) = result.turn {
                        settle(turn);
                    }
                }
                Err(err) if err.is_unauthorized() => signed_out.set(true),
                Err(err) => {
                    notice.set(Some(format!("That decision was not taken: {}", err.detail)));
                    reload(None);
                }
            }
            deciding.set(false);
            browser::focus_soon("#composer-input");
        });
    });
    // Undo of a tool call's change; a task changed since asks first.
    let undo = Callback::new(move |(message, index): (Uuid, usize)| {
        notice.set(None);
        spawn_local(async move {
            let mut result = undo_tool_call(id, message, index as u32, false).await;
            if let Err(err) = &result {
                if err.status == 409 && err.detail.contains("changed since") {
                    let question = format!("{}\n\nUndo anyway?", err.detail);
                    if browser::confirm(&question) {
                        result = undo_tool_call(id, message, index as u32, true).await;
                    } else {
                        return;
                    }
                }
            }
            match result {
                Ok(done) => {
                    let updated = done.message;
                    messages.update(|list| {
                        if let Some(m) = list.iter_mut().find(|m| m.id == updated.id) {
                            *m = updated;
                        }
                    });
                    notice.set(Some(done.detail));
                }
                Err(err) if err.is_unauthorized() => signed_out.set(true),
                Err(err) => notice.set(Some(format!("Not undone: {}", err.detail))),
            }
        });
    });
    let send = move |content: String, client_id: Uuid| {
        spawn_local(async move {
            match send_message(id, content.clone(), Some(client_id)).await {
                Ok(turn) => settle(turn),
                Err(err) if err.is_not_found() => gone.set(true),
                Err(err) if err.is_unauthorized() => signed_out.set(true),
                Err(err) => {
                    // Unreachable, unless the live stream still delivers: then the server that
                    // took the message went away mid-turn and another one answers it there.
                    if err.status == 0 && !live.connected.get_untracked() {
                        ctx.online.set(false);
                    }
                    outgoing.update(|pending| {
                        if let Some(o) = pending.iter_mut().find(|o| o.client_id == client_id) {
                            o.error = Some(describe_send_error(&err));
                        }
                    })
                }
            }
        });
    };
    let submit = Callback::new(move |content: String| {
        let client_id = Uuid::new_v4();
        outgoing.update(|pending| {
            pending.push(Outgoing {
                client_id,
                content: content.clone(),
                error: None,
            })
        });
        // Whoever sends wants to see the answer.
        follow.jump_to_bottom();
        send(content, client_id);
    });
    // Retrying reuses the client_id: if the first attempt did reach the server, no duplicate.
    let retry = move |client_id: Uuid| {
        let content = outgoing.with_untracked(|p| {
            p.iter()
                .find(|o| o.client_id == client_id)
                .map(|o| o.content.clone())
        });
        if let Some(content) = content {
            outgoing.update(|p| {
                p.iter_mut()
                    .filter(|o| o.client_id == client_id)
                    .for_each(|o| o.error = None)
            });
            send(content, client_id);
        }
    };
    // The first message typed in the empty state, which created this conversation.
    Effect::new(move |_| {
        if let Some(content) = ctx.first_message.try_update(Option::take).flatten() {
            submit.run(content);
            // Typed in the empty state's composer, which is gone: keep typing in this one.
            browser::focus_soon("#composer-input");
        }
    });
    // Another answer beside `answer` (Retry of a failed or stopped one is the same): the
    // branch shown ends at its question until the new answer comes; the server shows the
    // model what the earlier answers already did, so nothing is done twice.
    let regenerate = Callback::new(move |answer: Uuid| {
        notice.set(None);
        retrying.set(true);
        messages.update(|list| {
            if let Some(at) = list.iter().position(|m| m.id == answer) {
                list.truncate(at);
            }
        });
        follow.jump_to_bottom();
        browser::focus_soon("#composer-input");
        spawn_local(async move {
            match regenerate_message(id, answer, Some(Uuid::new_v4())).await {
                Ok(turn) => settle(turn),
                Err(err) if err.is_not_found() => gone.set(true),
                Err(err) if err.is_unauthorized() => signed_out.set(true),
                Err(err) => {
                    if err.status == 0 {
                        ctx.online.set(false);
                    }
                    notice.set(Some(format!("Couldn't answer again: {}", err.detail)));
                    reload(None);
                }
            }
            activity.set(None);
            retrying.set(false);
        });
    });
    // A new version of a sent message: the branch shown ends before it, the new text is sent
    // as a message in its place (the old one stays, as another branch) and answered.
    let editing: RwSignal<Option<Uuid>> = RwSignal::new(None);
    let edit = Callback::new(move |(message, content): (Uuid, String)| {
        notice.set(None);
        let client_id = Uuid::new_v4();
        messages.update(|list| {
            if let Some(at) = list.iter().position(|m| m.id == message) {
                list.truncate(at);
            }
        });
        outgoing.update(|pending| {
            pending.push(Outgoing {
                client_id,
                content: content.clone(),
                error: None,
            })
        });
        follow.jump_to_bottom();
        browser::focus_soon("#composer-input");
        spawn_local(async move {
            match edit_message(id, message, content, Some(client_id)).await {
                Ok(turn) => settle(turn),
                Err(err) if err.is_not_found() => gone.set(true),
                Err(err) if err.is_unauthorized() => signed_out.set(true),
                Err(err) => {
                    if err.status == 0 {
                        ctx.online.set(false);
                    }
                    outgoing.update(|p| p.retain(|o| o.client_id != client_id));
                    notice.set(Some(format!("The edit was not sent: {}", err.detail)));
                    reload(None);
                }
            }
        });
    });
    // Another version of a message: its branch is shown (here, after a reload, and in every
    // tab through the conversation's event).
    let switch = Callback::new(move |(sibling, step): (Uuid, i32)| {
        notice.set(None);
        spawn_local(async move {
            match switch_branch(id, sibling).await {
                Ok(_) => reload(Some(vec![
                    format!("li[data-id='{sibling}'] .branch-nav button[data-step='{step}']:not(:disabled)"),
                    format!("li[data-id='{sibling}'] .branch-nav button:not(:disabled)"),
                ])),
                Err(err) if err.is_not_found() => gone.set(true),
                Err(err) if err.is_unauthorized() => signed_out.set(true),
                Err(err) => notice.set(Some(format!("Couldn't show that version: {}", err.detail))),
            }
        });
    });
    // Up in an empty message box: edit the last message sent.
    let edit_last = Callback::new(move |()| {
        if waiting() {
            return;
        }
        let last = messages.with_untracked(|list| {
            list.iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map(|m| m.id)
        });
        if let Some(last) = last {
            editing.set(Some(last));
        }
    });
    let actions = MessageActions {
        edit,
        regenerate,
        switch,
        busy: Signal::derive(waiting),
        editing,
        undo,
    };
    // Stop: the server ends the running turn (on whichever replica runs it) and keeps the
    // partial reply, marked stopped.
    let stopping = RwSignal::new(false);
    let stop = move |_| {
        stopping.set(true);
        // The Stop button goes with the turn: focus must not fall to the page.
        browser::focus_soon("#composer-input");
        spawn_local(async move {
            if let Ok(result) = stop_turn(id).await {
                if let Some(reply) = result.assistant_message {
                    activity.set(None);
                    streaming.set(None);
                    merge(vec![reply]);
                }
            }
            stopping.set(false);
        });
    };

    let navigate = use_navigate();
    Effect::new(move |_| {
        if gone.get() {
            ctx.sidebar_version.update(|v| *v += 1);
            let navigate = navigate.clone();
            set_timeout(
                move || navigate("/chat", Default::default()),
                Duration::from_millis(2500),
            );
        }
    });

    let to_login = use_navigate();
    Effect::new(move |_| {
        if signed_out.get() {
            to_login("/login", Default::default());
        }
    });

    view! {
        <Show when=move || !gone.get() fallback=|| view! { <ThreadGone /> }>
            // A log (the thread), not live itself: a reply would be read out token by token; the
            // announcer says each one once, complete.
            <div class="thread" node_ref=scroller on:scroll=on_scroll on:click=browser::copy_code_on_click role="log" aria-label="Messages" aria-live="off">
                <ol class="messages" node_ref=content>
                    <Show when=move || has_older.get()>
                        <li class="older">
                            <button class="ghost" on:click=move |_| load_older() disabled=move || loading_older.get()>
                                {move || if loading_older.get() { "Loading…" } else { "Load older messages" }}
                            </button>
                        </li>
                    </Show>
                    <Show when=move || messages.with(Vec::is_empty) && outgoing.with(Vec::is_empty)>
                        <li class="hint">"Say hello, or ask the assistant to add a task."</li>
                    </Show>
                    <For each=move || messages.get() key=render_key let(message)>
                        {
                            let id = message.id;
                            let retryable = Signal::derive(move || {
                                !retrying.get()
                                    && messages.with(|list| {
                                        list.last().is_some_and(|m| {
                                            m.id == id
                                                && m.role == Role::Assistant
                                                && m.status != MessageStatus::Complete
                                        })
                                    })
                            });
                            view! { <MessageView message actions retryable /> }
                        }
                    </For>
                    <Show when=parked>
                        <ApprovalCards
                            approvals=Signal::derive(move || {
                                activity.with(|a| a.as_ref().map(|a| a.approvals.clone()).unwrap_or_default())
                            })
                            on_decide=decide
                            deciding=deciding.into()
                        />
                    </Show>
                    <Show when=move || notice.with(Option::is_some)>
                        <li class="send-error" role="alert" data-testid="thread-notice">
                            <span>{move || notice.get().unwrap_or_default()}</span>
                            <button class="ghost" on:click=move |_| notice.set(None)>"Dismiss"</button>
                        </li>
                    </Show>
                    <For each=move || outgoing.get() key=|o| (o.client_id, o.error.clone()) let(o)>
                        <OutgoingView outgoing=o retry />
                    </For>
                    <Show when=move || streaming.with(|s| s.as_ref().is_some_and(|(_, t)| !t.is_empty()))>
                        <li class="message assistant streaming" data-testid="streaming" aria-busy="true">
                            <div class="meta"><span class="author">"Assistant"</span></div>
                            <div class="bubble">
                                <p class="plain">{move || streaming.with(|s| s.as_ref().map(|(_, t)| t.clone()).unwrap_or_default())}</p>
                            </div>
                        </li>
                    </Show>
                    <Show when=waiting>
                        <li class="typing" data-testid="typing">
                            <span class="dot"></span><span class="dot"></span><span class="dot"></span>
                            <span class="typing-label" role="status">{move || activity_label(activity, streaming)}</span>
                            <button
                                class="ghost stop"
                                data-testid="stop"
                                on:click=stop
                                disabled=move || stopping.get()
                            >
                                "Stop"
                            </button>
                        </li>
                    </Show>
                </ol>
            </div>
            <Show when=move || follow.unseen.get() && !follow.following.get()>
                <button
                    class="new-messages"
                    on:click=move |_| {
                        follow.jump_to_bottom();
                    }
                >
                    "New messages ↓"
                </button>
            </Show>
            <Composer conversation=Some(id) on_submit=submit on_edit_last=edit_last returned=returned.clone() />
        </Show>
    }
}

/// What the live region says about a new reply: its start, as plain as markdown allows.
fn announcement(reply: &str) -> String {
    const SAID: usize = 300;
    let text: String = reply
        .chars()
        .filter(|c| !matches!(c, '*' | '`' | '#' | '|' | '_'))
        .take(SAID)
        .collect();
    format!(
        "Assistant: {}",
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// "Using add_task…" while a tool runs, "Writing…" while text streams, otherwise "working".
fn activity_label(
    activity: RwSignal<Option<TurnActivity>>,
    streaming: RwSignal<Option<(i64, String)>>,
) -> String {
    let writing = streaming.with(|s| s.as_ref().is_some_and(|(_, t)| !t.is_empty()));
    activity.with(|a| match a.as_ref().and_then(|a| a.tool_name.as_deref()) {
        Some(tool) if !writing => format!("Using {tool}…"),
        _ if writing => "Writing…".into(),
        _ => "Assistant is working…".into(),
    })
}

fn describe_send_error(err: &ApiError) -> String {
    match err.status {
        0 => "Not sent: the server can't be reached.".into(),
        _ => format!("Not sent: {}", err.detail),
    }
}

#[component]
fn OutgoingView(
    outgoing: Outgoing,
    retry: impl Fn(Uuid) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let failed = outgoing.error.clone();
    let client_id = outgoing.client_id;
    view! {
        <li class="message user pending" class:failed=outgoing.error.is_some() data-testid="outgoing">
            <div class="bubble"><p class="plain">{outgoing.content}</p></div>
            {failed
                .map(|error| {
                    view! {
                        <div class="send-error" role="alert">
                            <span>{error}</span>
                            <button class="ghost" on:click=move |_| retry(client_id)>"Retry"</button>
                        </div>
                    }
                })}
        </li>
    }
}

#[component]
pub fn ThreadGone() -> impl IntoView {
    view! {
        <section class="gone" role="alert">
            <h2>"This conversation is no longer available"</h2>
            <p>"It may have been deleted. " <A href="/chat">"Back to your conversations"</A></p>
        </section>
    }
}
