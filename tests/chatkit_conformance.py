"""ChatKit protocol conformance: every response and stream event of `POST /chatkit` parsed
with the reference SDK's own pydantic models (PyPI `openai-chatkit`), over a full scenario.

Run by `tests/chatkit.rs` against real servers:
    python tests/chatkit_conformance.py OFFLINE_URL MODEL_URL TOKEN
OFFLINE_URL runs the offline assistant; MODEL_URL (same database) a scripted model whose first
answer fails and whose second succeeds (for the retry). TOKEN is a signed-in user's bearer.
Exits non-zero with a message on the first violation.
"""

import json
import re
import sys
import urllib.error
import urllib.request
from typing import Any

from pydantic import BaseModel, TypeAdapter

from chatkit.types import (
    ErrorEvent,
    Page,
    Thread,
    ThreadItem,
    ThreadStreamEvent,
    WidgetItem,
)
from chatkit.widgets import Button, Card, DynamicWidgetComponent, Title

OFFLINE_URL, MODEL_URL, TOKEN = sys.argv[1], sys.argv[2], sys.argv[3]

EVENT = TypeAdapter(ThreadStreamEvent)
THREAD = TypeAdapter(Thread)
THREAD_PAGE = TypeAdapter(Page[Thread])
ITEM_PAGE = TypeAdapter(Page[ThreadItem])
ERROR = TypeAdapter(ErrorEvent)

checked = {"responses": 0, "events": 0}


def fail(message: str) -> None:
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def no_extra_fields(model: Any, raw: Any, where: str) -> None:
    """pydantic ignores unknown fields: a misspelled one would pass. Walk the parsed model
    beside the raw JSON and refuse any key the model does not define."""
    if isinstance(model, BaseModel):
        if not isinstance(raw, dict):
            fail(f"{where}: expected an object, got {raw!r}")
        fields = type(model).model_fields
        for key, value in raw.items():
            if key not in fields:
                fail(f"{where}: field {key!r} is not in the SDK's {type(model).__name__}")
            no_extra_fields(getattr(model, key), value, f"{where}.{key}")
    elif isinstance(model, list) and isinstance(raw, list):
        for i, (m, r) in enumerate(zip(model, raw)):
            no_extra_fields(m, r, f"{where}[{i}]")


def parse(adapter: TypeAdapter, raw: Any, where: str) -> Any:
    try:
        model = adapter.validate_python(raw)
    except Exception as err:  # pydantic.ValidationError
        fail(f"{where}: the SDK's model rejects {json.dumps(raw)[:400]}\n{err}")
    no_extra_fields(model, raw, where)
    return model


def post(url: str, body: dict) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        url + "/chatkit",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("content-type", ""), err.read()


def request(url: str, kind: str, params: dict, adapter: TypeAdapter | None) -> Any:
    status, content_type, body = post(url, {"type": kind, "params": params, "metadata": {}})
    if status != 200:
        fail(f"{kind}: HTTP {status}: {body[:300]!r}")
    if not content_type.startswith("application/json"):
        fail(f"{kind}: content-type {content_type}, expected JSON")
    raw = json.loads(body)
    checked["responses"] += 1
    if adapter is None:
        if raw != {}:
            fail(f"{kind}: expected {{}}, got {raw}")
        return raw
    return parse(adapter, raw, kind)


def stream(url: str, kind: str, params: dict) -> list[Any]:
    status, content_type, body = post(url, {"type": kind, "params": params})
    if status != 200:
        fail(f"{kind}: HTTP {status}: {body[:300]!r}")
    if not content_type.startswith("text/event-stream"):
        fail(f"{kind}: content-type {content_type}, expected text/event-stream")
    events = []
    for block in body.decode().split("\n\n"):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith("data:")]
        if not data:
            continue  # a keep-alive comment
        if len(data) != 1:
            fail(f"{kind}: an event must be one data line: {block!r}")
        events.append(parse(EVENT, json.loads(data[0]), f"{kind} event {len(events)}"))
        checked["events"] += 1
    return events


def types(events: list[Any]) -> list[str]:
    return [
        e.type + (f":{e.update.type}" if e.type == "thread.item.updated" else "")
        + (
            f":{e.item.type}"
            if e.type in ("thread.item.added", "thread.item.done", "thread.item.replaced")
            else ""
        )
        for e in events
    ]


def expect_error(url: str, body: Any, status: int, words: str) -> None:
    got, _, raw = post(url, body)
    if got != status:
        fail(f"{body!r}: HTTP {got}, expected {status}: {raw[:200]!r}")
    error = parse(ERROR, json.loads(raw), f"error for {str(body)[:60]}")
    if words not in (error.message or ""):
        fail(f"error for {body!r} says {error.message!r}, expected {words!r}")
    checked["responses"] += 1


# 1. A new thread whose message makes the offline assistant add a task, streamed.
events = stream(
    OFFLINE_URL,
    "threads.create",
    {
        "input": {
            "content": [{"type": "input_text", "text": "Add a task to buy oat milk"}],
            "attachments": [],
            "inference_options": {},
        }
    },
)
kinds = types(events)
print("threads.create:", " ".join(dict.fromkeys(kinds)))
for needed in [
    "thread.created",
    "thread.item.done:user_message",
    "stream_options",
    "progress_update",
    "thread.item.added:workflow",
    "thread.item.updated:workflow.task.added",
    "thread.item.done:workflow",
    "thread.item.added:assistant_message",
    "thread.item.updated:assistant_message.content_part.added",
    "thread.item.updated:assistant_message.content_part.text_delta",
    "thread.item.updated:assistant_message.content_part.done",
    "thread.item.done:assistant_message",
    "thread.updated",
]:
    if needed not in kinds:
        fail(f"threads.create did not send {needed}; sent {kinds}")
if kinds[0] != "thread.created" or kinds[-1] != "thread.item.done:assistant_message":
    fail(f"threads.create must start with thread.created and end with the reply: {kinds}")
thread_id = events[0].thread.id
if not events[[e.type for e in events].index("stream_options")].stream_options.allow_cancel:
    fail("stream_options must allow cancel")
reply = [e for e in events if e.type == "thread.item.done"][-1].item
deltas = "".join(
    e.update.delta
    for e in events
    if e.type == "thread.item.updated" and e.update.type.endswith("text_delta")
)
# The deltas are the reply as it was written; content_part.done carries all of it (the last
# words may come only with it).
if not deltas or not reply.content[0].text.startswith(deltas) or "Buy oat milk" not in reply.content[0].text:
    fail(f"the deltas {deltas!r} do not begin the reply {reply.content[0].text!r}")
updated = [e for e in events if e.type == "thread.updated"][-1]
if updated.thread.title != "Add a task to buy oat milk":
    fail(f"thread.updated carries the auto-title, got {updated.thread.title!r}")
workflow = [e for e in events if e.type == "thread.item.done" and e.item.type == "workflow"][0]
if not any("add_task" in (t.title or "") for t in workflow.item.workflow.tasks):
    fail(f"the workflow shows the add_task call: {workflow.item.workflow}")

# 2. The thread, its items, and a second message in it.
thread = request(OFFLINE_URL, "threads.get_by_id", {"thread_id": thread_id}, THREAD)
if [i.type for i in thread.items.data] != ["user_message", "workflow", "assistant_message"]:
    fail(f"get_by_id items: {[i.type for i in thread.items.data]}")
for text in ["Add a task to call the bank", "Add a task to water the plants"]:
    more = stream(
        OFFLINE_URL,
        "threads.add_user_message",
        {
            "thread_id": thread_id,
            "input": {
                "content": [{"type": "input_text", "text": text}],
                "attachments": [],
                "inference_options": {},
            },
        },
    )
    if types(more)[-1] != "thread.item.done:assistant_message":
        fail(f"add_user_message must end with the reply: {types(more)}")

# 3. Items with paging, both orders: pages of 2 add up to the whole list, nothing twice.
everything = request(
    OFFLINE_URL, "items.list", {"thread_id": thread_id, "limit": 50, "order": "asc"}, ITEM_PAGE
)
ids = [i.id for i in everything.data]
if len(ids) != 9 or everything.has_more:
    fail(f"three turns are 9 items (message, workflow, reply each): {len(ids)}")
for order, expected in [("asc", ids), ("desc", ids[::-1])]:
    seen, after = [], None
    while True:
        params = {"thread_id": thread_id, "limit": 2, "order": order}
        if after:
            params["after"] = after
        page = request(OFFLINE_URL, "items.list", params, ITEM_PAGE)
        seen += [i.id for i in page.data]
        if not page.has_more:
            break
        after = page.after
    if seen != expected:
        fail(f"items.list {order} pages give {seen}, expected {expected}")

# 4. Threads with paging: two more threads, pages of 1 in both orders.
for text in ["Add a task to renew the passport", "Add a task to book a dentist"]:
    stream(
        OFFLINE_URL,
        "threads.create",
        {"input": {"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}}},
    )
listed = {}
for order in ["desc", "asc"]:
    seen, after = [], None
    while True:
        params = {"limit": 1, "order": order}
        if after:
            params["after"] = after
        page = request(OFFLINE_URL, "threads.list", params, THREAD_PAGE)
        seen += [t.id for t in page.data]
        if not page.has_more:
            break
        after = page.after
    listed[order] = seen
if len(listed["desc"]) != 3 or listed["desc"] != listed["asc"][::-1]:
    fail(f"threads.list pages: {listed}")

# 5. Rename.
renamed = request(
    OFFLINE_URL, "threads.update", {"thread_id": thread_id, "title": "Errands"}, THREAD
)
if renamed.title != "Errands":
    fail(f"threads.update returned {renamed.title!r}")

# 6. Feedback on the reply.
request(
    OFFLINE_URL,
    "items.feedback",
    {"thread_id": thread_id, "item_ids": [reply.id], "kind": "positive"},
    None,
)

# 7. Retry: the scripted model's first answer fails (an error event that allows retry); the
#    retry of that user message answers it.
failed = stream(
    MODEL_URL,
    "threads.add_user_message",
    {
        "thread_id": thread_id,
        "input": {"content": [{"type": "input_text", "text": "What is on my list?"}], "attachments": [], "inference_options": {}},
    },
)
errors = [e for e in failed if e.type == "error"]
if not errors or not errors[-1].allow_retry:
    fail(f"a failed answer ends with an error that allows retry: {types(failed)}")
question = [e for e in failed if e.type == "thread.item.done" and e.item.type == "user_message"][0].item
retried = stream(MODEL_URL, "threads.retry_after_item", {"thread_id": thread_id, "item_id": question.id})
if types(retried)[0] != "stream_options" or types(retried)[-1] != "thread.item.done:assistant_message":
    fail(f"retry_after_item streams the new answer: {types(retried)}")
if any(e.type == "thread.item.done" and e.item.type == "user_message" for e in retried):
    fail("a retry must not store the user message again")
removed = [e.item_id for e in retried if e.type == "thread.item.removed"]
failed_ids = [e.item.id for e in failed if e.type == "thread.item.done" and e.item.type == "assistant_message"]
if failed_ids and removed != failed_ids:
    fail(f"retry_after_item removes the failed answer it replaces: removed {removed}, failed {failed_ids}")
print("retry_after_item:", " ".join(dict.fromkeys(types(retried))))

# 8. Errors have ChatKit's shape.
expect_error(OFFLINE_URL, {"type": "threads.explode", "params": {}}, 400, "unknown request type")
expect_error(OFFLINE_URL, {"type": "attachments.create", "params": {"name": "a.png", "size": 1, "mime_type": "image/png"}}, 400, "not supported")
expect_error(OFFLINE_URL, {"type": "threads.get_by_id"}, 400, "needs params")
# An answer is retried from the message it answers (retrying an answered message regenerates).
expect_error(MODEL_URL, {"type": "threads.retry_after_item", "params": {"thread_id": thread_id, "item_id": reply.id}}, 400, "must name a user message")

# 9. Delete: the thread is gone.
request(OFFLINE_URL, "threads.delete", {"thread_id": thread_id}, None)
expect_error(OFFLINE_URL, {"type": "threads.get_by_id", "params": {"thread_id": thread_id}}, 404, "not found")

# 10. Approval (issue #24): by default the assistant asks before it deletes. The parked turn's
#     stream ends with a card (a widget item whose widget is the SDK's Card), items.list shows
#     the card after the message it answers, and the card's button (threads.custom_action)
#     decides: the card is replaced by its decided form and the turn goes on to its answer.
#     Against the offline assistant.


def said(text: str) -> dict:
    return {"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}}


def rest_status(url: str, path: str) -> int:
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def components(component: Any) -> list[Any]:
    """A widget component and every component in it, depth first."""
    found = [component]
    children = getattr(component, "children", None)
    if isinstance(children, list):
        for child in children:
            found += components(child)
    elif children is not None:
        found += components(children)
    return found


def approval_card(item: Any, where: str, decided: bool) -> str:
    """Checks an approval card against the SDK's widget models; returns the call id its two
    buttons (keep first, then approve) decide. A widget value the SDK does not know does not
    fail validation: that component silently becomes a DynamicWidgetComponent, so refuse those."""
    if not isinstance(item, WidgetItem):
        fail(f"{where}: expected a widget item, got {type(item).__name__}")
    if not isinstance(item.widget, Card):
        fail(f"{where}: the widget parsed as {type(item.widget).__name__}, not the SDK's Card: {item.widget!r}")
    for component in components(item.widget):
        if isinstance(component, DynamicWidgetComponent):
            fail(f"{where}: the {component.type!r} component is not the SDK's (a value it does not know?): {component!r}")
    if not any(isinstance(c, Title) for c in components(item.widget)):
        fail(f"{where}: the card has no Title")
    buttons = [c for c in components(item.widget) if isinstance(c, Button)]
    if len(buttons) != 2:
        fail(f"{where}: an approval card has two buttons, got {len(buttons)}")
    call_ids = set()
    for button, approve in zip(buttons, [False, True]):
        action = button.onClickAction
        if action is None or action.type != "approval.decide" or action.handler != "server":
            fail(f"{where}: button {button.label!r} must send approval.decide to the server: {action!r}")
        payload = action.payload
        if not isinstance(payload, dict) or payload.get("approve") is not approve or not isinstance(payload.get("call_id"), str):
            fail(f"{where}: button {button.label!r} payload {payload!r}, expected call_id and approve={approve}")
        call_ids.add(payload["call_id"])
        if bool(button.disabled) != decided:
            fail(f"{where}: button {button.label!r} disabled={button.disabled!r}, expected {decided}")
    if len(call_ids) != 1:
        fail(f"{where}: the two buttons decide different calls: {call_ids}")
    return call_ids.pop()


added = stream(OFFLINE_URL, "threads.create", {"input": said("add buy milk")})
if types(added)[-1] != "thread.item.done:assistant_message":
    fail(f"threads.create must end with the reply: {types(added)}")
approval_thread = added[0].thread.id
added_reply = added[-1].item.content[0].text
found = re.search(r"Added task (\d+)", added_reply)
if not found:
    fail(f"the offline assistant's reply names the task it added: {added_reply!r}")
number = int(found.group(1))

asked = stream(
    OFFLINE_URL,
    "threads.add_user_message",
    {"thread_id": approval_thread, "input": said(f"delete task {number}")},
)
asked_kinds = types(asked)
print("parked turn:", " ".join(dict.fromkeys(asked_kinds)))
if asked_kinds[-1] != "thread.item.done:widget":
    fail(f"a turn that waits for approval ends with its card: {asked_kinds}")
if "thread.item.done:assistant_message" in asked_kinds or "error" in asked_kinds:
    fail(f"a turn that waits has no answer (and no error) yet: {asked_kinds}")
card = asked[-1].item
call_id = approval_card(card, "the parked turn's card", decided=False)
if card.thread_id != approval_thread:
    fail(f"the card's thread_id {card.thread_id!r} is not the thread {approval_thread!r}")
if f"Delete task {number}" not in (card.copy_text or ""):
    fail(f"the card's copy_text says what waits: {card.copy_text!r}")
if rest_status(OFFLINE_URL, f"/api/tasks/{number}") != 200:
    fail("nothing is deleted before the decision")

listed = request(
    OFFLINE_URL, "items.list", {"thread_id": approval_thread, "limit": 50, "order": "asc"}, ITEM_PAGE
)
listed_types = [i.type for i in listed.data]
if listed_types != ["user_message", "workflow", "assistant_message", "user_message", "widget"]:
    fail(f"items.list shows the waiting card after the message it answers: {listed_types}")
shown = listed.data[-1]
approval_card(shown, "items.list's card", decided=False)
if (shown.id, shown.copy_text, shown.widget.model_dump()) != (card.id, card.copy_text, card.widget.model_dump()):
    fail(f"items.list's card is not the streamed one: {shown!r} vs {card!r}")


def decision(approve: bool) -> dict:
    return {
        "thread_id": approval_thread,
        "item_id": card.id,
        "action": {"type": "approval.decide", "payload": {"call_id": call_id, "approve": approve}},
    }


decided = stream(OFFLINE_URL, "threads.custom_action", decision(True))
decided_kinds = types(decided)
print("custom_action:", " ".join(dict.fromkeys(decided_kinds)))
if decided_kinds[:2] != ["stream_options", "thread.item.replaced:widget"]:
    fail(f"custom_action starts with stream_options and the decided card: {decided_kinds}")
if decided_kinds[-1] != "thread.item.done:assistant_message":
    fail(f"custom_action continues the turn to its answer: {decided_kinds}")
if "error" in decided_kinds or "thread.item.done:user_message" in decided_kinds:
    fail(f"the continued turn has no error and sends no user message again: {decided_kinds}")
replaced = decided[1].item
if replaced.id != card.id:
    fail(f"thread.item.replaced must replace the card {card.id!r}, got {replaced.id!r}")
if approval_card(replaced, "the decided card", decided=True) != call_id:
    fail("the decided card is another call's")
answer = decided[-1].item
if "Deleted task" not in answer.content[0].text:
    fail(f"the continued turn's answer says what it did: {answer.content[0].text!r}")
if rest_status(OFFLINE_URL, f"/api/tasks/{number}") != 404:
    fail("the approved delete_task ran")
afterwards = request(
    OFFLINE_URL, "items.list", {"thread_id": approval_thread, "limit": 50, "order": "asc"}, ITEM_PAGE
)
if "widget" in [i.type for i in afterwards.data] or afterwards.data[-1].id != answer.id:
    fail(f"once decided, the thread ends with the streamed answer: {[i.type for i in afterwards.data]}")
# The same call again: nothing waits any more (409, ChatKit's error shape).
expect_error(OFFLINE_URL, {"type": "threads.custom_action", "params": decision(False)}, 409, "does not wait")
print("approval widget and custom_action parsed by openai-chatkit's models")

print(f"ok: {checked['responses']} responses and {checked['events']} stream events parsed by openai-chatkit's models")
