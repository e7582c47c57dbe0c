//! Conversation server functions (`/sfn/chat/*`), the same operations as the REST API.

use super::declare::server_fns;
use uuid::Uuid;

use crate::model::{
    ApiError, Conversation, ConversationChanges, ConversationPage, ConversationQuery,
    DecisionResult, MessagePage, MessageQuery, SearchPage, SearchQuery, ServerInfo, StopResult,
    TurnResult, UndoResult,
};

server_fns! {
    prefix = "/sfn/chat";

    /// Conversations, newest first.
    #[endpoint = "conversations", name = ListConversations]
    pub async fn list_conversations(
        #[default] query: ConversationQuery,
    ) -> Result<ConversationPage, ApiError> {
        let (state, user) = super::ssr::authenticated().await?;
        crate::server::services::chat::list(&state.pool, user.id, &query)
            .await
            .map_err(super::ssr::fail)
    }

    /// Start a conversation.
    #[endpoint = "create", name = CreateConversation]
    pub async fn create_conversation(title: Option<String>) -> Result<Conversation, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        let conversation =
            crate::server::services::chat::create(&state.pool, &state.bus, user.id, title.as_deref())
                .await
                .map_err(super::ssr::fail)?;
        super::ssr::redirect_form_post(&format!("/chat/{}", conversation.id));
        Ok(conversation)
    }

    /// One conversation.
    #[endpoint = "get", name = GetConversation]
    pub async fn get_conversation(id: Uuid) -> Result<Conversation, ApiError> {
        let (state, user) = super::ssr::authenticated().await?;
        crate::server::services::chat::get(&state.pool, user.id, id)
            .await
            .map_err(super::ssr::fail)
    }

    /// Rename.
    #[endpoint = "rename", name = RenameConversation]
    pub async fn rename_conversation(id: Uuid, title: String) -> Result<Conversation, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        crate::server::services::chat::rename(&state.pool, &state.bus, user.id, id, &title)
            .await
            .map_err(super::ssr::fail)
    }

    /// Rename, pin or unpin, archive or restore (any of them; at least one).
    #[endpoint = "update", name = UpdateConversation]
    pub async fn update_conversation(
        id: Uuid,
        changes: ConversationChanges,
    ) -> Result<Conversation, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        crate::server::services::chat::update(&state.pool, &state.bus, user.id, id, &changes)
            .await
            .map_err(super::ssr::fail)
    }

    /// Search titles and message text, best matches first.
    #[endpoint = "search", name = SearchConversations]
    pub async fn search_conversations(query: SearchQuery) -> Result<SearchPage, ApiError> {
        let (state, user) = super::ssr::authenticated().await?;
        crate::server::services::search::search(&state.pool, user.id, &query)
            .await
            .map_err(super::ssr::fail)
    }

    /// Soft delete.
    #[endpoint = "delete", name = DeleteConversation]
    pub async fn delete_conversation(id: Uuid) -> Result<(), ApiError> {
        let (state, user) = super::ssr::writer().await?;
        crate::server::services::chat::delete(&state.pool, &state.bus, user.id, id)
            .await
            .map_err(super::ssr::fail)
    }

    /// Messages.
    #[endpoint = "messages", name = ListMessages]
    pub async fn list_messages(
        id: Uuid,
        #[default] query: MessageQuery,
    ) -> Result<MessagePage, ApiError> {
        let (state, user) = super::ssr::authenticated().await?;
        let mut page = crate::server::services::messages::page(&state.pool, user.id, id, &query)
            .await
            .map_err(super::ssr::fail)?;
        page.messages
            .iter_mut()
            .for_each(super::ssr::render_markdown);
        Ok(page)
    }

    /// Send a message and run one agent turn.
    /// A plain form post (no JavaScript) is redirected back to the conversation.
    #[endpoint = "send", name = SendMessage]
    pub async fn send_message(
        id: Uuid,
        content: String,
        client_id: Option<Uuid>,
    ) -> Result<TurnResult, ApiError> {
        use crate::server::context::RequestContext;
        // The write check comes inside the send's error path: a no-JS form refused by it keeps
        // its text like any other refusal.
        let (state, user) = super::ssr::authenticated().await?;
        let sent = match RequestContext::for_user(user, &state.limits).write().await {
            Ok(()) => crate::server::agent::send(&state.agent, user.id, id, &content, client_id).await,
            Err(err) => Err(err),
        };
        let mut turn = match sent {
            Ok(turn) => turn,
            Err(err) => {
                let err = super::ssr::fail(err);
                let path = format!("/chat/{id}");
                super::ssr::redirect_form_error(&state, &user, &path, &content, &err.detail).await;
                return Err(err);
            }
        };
        super::ssr::render_turn(&mut turn);
        super::ssr::redirect_form_post(&format!("/chat/{id}"));
        Ok(turn)
    }

    /// Start a conversation with its first message (the empty state's composer).
    /// A plain form post is redirected to the new conversation.
    #[endpoint = "start", name = StartConversation]
    pub async fn start_conversation(
        content: String,
        client_id: Option<Uuid>,
    ) -> Result<TurnResult, ApiError> {
        use crate::server::agent;
        let (state, user) = super::ssr::writer().await?;
        // Idempotent on client_id like send_message: a resend finds the first conversation.
        let (conversation, turn) =
            agent::start_conversation(&state.agent, user.id, &content, client_id)
            .await
            .map_err(super::ssr::fail)?;
        let mut turn = turn.result().await.map_err(super::ssr::fail)?;
        super::ssr::render_turn(&mut turn);
        super::ssr::redirect_form_post(&format!("/chat/{}", conversation.id));
        Ok(turn)
    }

    /// Stop the conversation's running turn (on whichever replica runs it); the partial reply is
    /// kept with status `stopped`. Harmless when nothing runs.
    #[endpoint = "stop", name = StopTurn]
    pub async fn stop_turn(id: Uuid) -> Result<StopResult, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        let mut result = crate::server::agent::stop(&state.agent, user.id, id)
            .await
            .map_err(super::ssr::fail)?;
        if let Some(message) = result.assistant_message.as_mut() {
            super::ssr::render_markdown(message);
        }
        Ok(result)
    }

    /// Answer the last user message again after a failed or stopped reply, showing the model what
    /// was already done (no second user message).
    #[endpoint = "retry", name = RetryTurn]
    pub async fn retry_turn(id: Uuid) -> Result<TurnResult, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        let mut turn = crate::server::agent::retry(&state.agent, user.id, id)
            .await
            .map_err(super::ssr::fail)?;
        super::ssr::render_turn(&mut turn);
        super::ssr::redirect_form_post(&format!("/chat/{id}"));
        Ok(turn)
    }

    /// Edit a sent user message: a new message beside it, answered like a send (the old one
    /// stays, as another branch).
    #[endpoint = "edit", name = EditSentMessage]
    pub async fn edit_message(
        id: Uuid,
        message_id: Uuid,
        content: String,
        client_id: Option<Uuid>,
    ) -> Result<TurnResult, ApiError> {
        use crate::server::agent;
        let (state, user) = super::ssr::writer().await?;
        let turn = agent::start_edit(&state.agent, user.id, id, message_id, &content, client_id)
            .await
            .map_err(super::ssr::fail)?;
        let mut turn = turn.result().await.map_err(super::ssr::fail)?;
        super::ssr::render_turn(&mut turn);
        Ok(turn)
    }

    /// Another answer beside an assistant message (the old one stays, as another branch).
    #[endpoint = "regenerate", name = RegenerateAnswer]
    pub async fn regenerate_message(
        id: Uuid,
        message_id: Uuid,
        client_id: Option<Uuid>,
    ) -> Result<TurnResult, ApiError> {
        use crate::server::agent;
        let (state, user) = super::ssr::writer().await?;
        let (_, turn) = agent::start_regenerate(&state.agent, user.id, id, message_id, client_id)
            .await
            .map_err(super::ssr::fail)?;
        let mut turn = turn.result().await.map_err(super::ssr::fail)?;
        super::ssr::render_turn(&mut turn);
        Ok(turn)
    }

    /// Show the branch through `message_id` (its most recent message becomes the current leaf).
    #[endpoint = "current", name = SwitchBranch]
    pub async fn switch_branch(id: Uuid, message_id: Uuid) -> Result<Conversation, ApiError> {
        let (state, user) = super::ssr::writer().await?;
        crate::server::services::branches::switch(&state.pool, &state.bus, user.id, id, message_id)
            .await
            .map_err(super::ssr::fail)
    }

    /// Approve or decline a call the assistant waits on; once every call of the turn is
    /// decided, the turn continues and its answer is in `turn` (REST:
    /// `POST /api/chat/conversations/{id}/approvals/{call_id}`).
    #[endpoint = "approve", name = DecideApproval]
    pub async fn decide_approval(
        id: Uuid,
        call_id: String,
        approve: bool,
    ) -> Result<DecisionResult, ApiError> {
        super::ssr::decide(id, Some(&call_id), approve).await
    }

    /// Approve or decline every call the assistant waits on in the conversation, together
    /// (REST: `POST /api/chat/conversations/{id}/approvals`).
    #[endpoint = "approve_all", name = DecideAllApprovals]
    pub async fn decide_all_approvals(id: Uuid, approve: bool) -> Result<DecisionResult, ApiError> {
        super::ssr::decide(id, None, approve).await
    }

    /// Undo the task change of tool call `index` of an assistant message (`confirm`: even
    /// though the task changed since).
    #[endpoint = "undo", name = UndoToolCall]
    pub async fn undo_tool_call(
        id: Uuid,
        message_id: Uuid,
        index: u32,
        #[default] confirm: bool,
    ) -> Result<UndoResult, ApiError> {
        use crate::server::services::undo;
        let (state, user) = super::ssr::writer().await?;
        let call = undo::CallRef {
            conversation: id,
            message: message_id,
            index: index as usize,
        };
        let mut result = undo::undo(&state.pool, &state.bus, user.id, call, confirm)
            .await
            .map_err(super::ssr::fail)?;
        super::ssr::render_markdown(&mut result.message);
        Ok(result)
    }

    /// The text a failed no-JavaScript send had typed (the `draft` its redirect names).
    #[endpoint = "draft", name = GetDraft]
    pub async fn get_draft(id: Uuid) -> Result<Option<String>, ApiError> {
        let (state, user) = super::ssr::authenticated().await?;
        crate::server::services::drafts::get(&state.pool, user.id, id)
            .await
            .map_err(super::ssr::fail)
    }

    /// Whether the offline assistant answers, and the model name.
    #[endpoint = "info", name = GetServerInfo]
    pub async fn get_server_info() -> Result<ServerInfo, ApiError> {
        let state = super::ssr::state()?;
        Ok(ServerInfo {
            offline_assistant: state.config.offline_assistant(),
            model: state.agent.model.name(),
        })
    }
}
