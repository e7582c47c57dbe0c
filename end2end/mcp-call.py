"""Calls one tool of an MCP server over Streamable HTTP with the official MCP Python SDK, as an
MCP client would, and prints the tool's result as JSON on stdout.

Usage: MCP_BEARER_TOKEN=<token> python mcp-call.py <url> <tool> '<arguments as JSON>'

It prints the structured result when the server gives one, else the first text content parsed
as JSON (or as a string). A tool error (isError) or a protocol error exits with status 1 and the
reason on stderr. (The token comes from the environment, not the command line, so it never
shows in a process list.) Used by end2end/tests/tasks-live.spec.ts; scripts/setup.sh --test
installs the SDK in $TOOLS_DIR/venv.
"""

import asyncio
import contextlib
import json
import os
import sys

from mcp import ClientSession

try:  # mcp >= 1.24 (and 2.x): the transport takes a configured HTTP client.
    from mcp.client.streamable_http import streamable_http_client
except ImportError:  # older 1.x: headers are passed to the transport.
    streamable_http_client = None
    from mcp.client.streamable_http import streamablehttp_client


@contextlib.asynccontextmanager
async def connect(url: str, headers: dict[str, str]):
    if streamable_http_client is None:
        async with streamablehttp_client(url, headers=headers) as streams:
            yield streams[0], streams[1]
        return
    try:
        import httpx2 as httpx  # what mcp 2.x is built on
    except ImportError:
        import httpx
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30.0, read=60.0)) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            yield streams[0], streams[1]


def result_value(result):
    structured = getattr(result, "structured_content", None)
    if structured is None:
        structured = getattr(result, "structuredContent", None)
    if structured is not None:
        return structured
    for block in result.content or []:
        text = getattr(block, "text", None)
        if text is not None:
            try:
                return json.loads(text)
            except ValueError:
                return text
    return None


def error_text(result) -> str:
    texts = [getattr(block, "text", "") for block in result.content or []]
    return "; ".join(t for t in texts if t) or "the tool failed"


async def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, tool, raw_args = sys.argv[1:]
    token = os.environ.get("MCP_BEARER_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    arguments = json.loads(raw_args)
    async with connect(url, headers) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool(tool, arguments)
    is_error = getattr(result, "is_error", None)
    if is_error is None:
        is_error = getattr(result, "isError", False)
    if is_error:
        print(f"{tool} failed: {error_text(result)}", file=sys.stderr)
        return 1
    print(json.dumps(result_value(result)))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
