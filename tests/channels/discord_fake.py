"""A loopback fake of Discord's REST API and WebSocket gateway, speaking the wire format.

Enough of Discord for a bot and the REST tools, with no internet:

- ``GET /api/v10/users/@me`` and ``/oauth2/applications/@me`` (login),
  ``GET /api/v10/gateway[/bot]``;
- the gateway at ``ws://127.0.0.1:<port>/gateway``: HELLO (op 10), IDENTIFY (op 2) →
  READY, RESUME (op 6) → RESUMED, HEARTBEAT (op 1) → HEARTBEAT ACK (op 11), and
  MESSAGE_CREATE dispatches (op 0) sent by the test with :meth:`FakeDiscord.say`;
- ``POST /api/v10/channels/{id}/messages`` and ``/typing`` (recorded);
- ``GET`` guild channels, channel info, channel messages and guild info, from
  :attr:`FakeDiscord.guilds` / :attr:`channels` / :attr:`history`.

Every request must carry ``Authorization: Bot <token>``; another token gets
Discord's 401. :meth:`drop` closes the socket (close code 4000) to make the
client reconnect and resume. Runs on aiohttp (discord.py's own dependency) in
the test's event loop: ``async with FakeDiscord() as fake:``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

BOT_ID = "900000000000000001"


def _json(data: Any, status: int = 200) -> web.Response:
    """JSON with Discord's exact ``Content-Type`` (discord.py parses only that)."""
    body = json.dumps(data).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


TOKEN = "fake-bot-token-1234"


@dataclass
class Post:
    channel_id: str
    body: dict[str, Any]


@dataclass
class Connection:
    ws: web.WebSocketResponse
    identified: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: bool = False


class FakeDiscord:
    def __init__(self, *, token: str = TOKEN, bot_name: str = "orra-bot") -> None:
        self.token = token
        self.bot = {
            "id": BOT_ID,
            "username": bot_name,
            "discriminator": "0",
            "avatar": None,
            "global_name": None,
            "bot": True,
        }
        self.posts: list[Post] = []
        self.typing: list[str] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.connections: list[Connection] = []
        self.guilds: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.guild_channels: dict[str, list[dict[str, Any]]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.fail_posts: int = 0
        self._seq = 0
        self._ids = itertools.count(1_000_000_000_000_000_000)
        self._posted = asyncio.Condition()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        api = "/api/v10"
        app.router.add_get(api + "/users/@me", self._me)
        app.router.add_get(api + "/oauth2/applications/@me", self._application)
        app.router.add_get(api + "/gateway", self._gateway_info)
        app.router.add_get(api + "/gateway/bot", self._gateway_info)
        app.router.add_post(api + "/channels/{channel_id}/messages", self._post_message)
        app.router.add_post(api + "/channels/{channel_id}/typing", self._post_typing)
        app.router.add_get(api + "/channels/{channel_id}/messages", self._get_messages)
        app.router.add_get(api + "/channels/{channel_id}", self._get_channel)
        app.router.add_get(api + "/guilds/{guild_id}/channels", self._get_guild_channels)
        app.router.add_get(api + "/guilds/{guild_id}", self._get_guild)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for connection in self.connections:
            await connection.ws.close()
        assert self._runner is not None
        await self._runner.cleanup()

    # -- what a test does -----------------------------------------------------

    def message(
        self,
        content: str,
        *,
        channel_id: str = "300",
        guild_id: str | None = "100",
        author_id: str = "500",
        username: str = "alice",
        bot: bool = False,
        mention_bot: bool = False,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE payload as Discord sends it."""
        data: dict[str, Any] = {
            "id": str(next(self._ids)),
            "channel_id": channel_id,
            "author": {
                "id": author_id,
                "username": username,
                "discriminator": "0",
                "avatar": None,
                "global_name": None,
                "bot": bot,
            },
            "content": content,
            "timestamp": "2026-12-07T10:00:00.000000+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.bot] if mention_bot else [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
        }
        if guild_id is not None:
            data["guild_id"] = guild_id
        return data

    async def say(self, content: str, **fields: Any) -> dict[str, Any]:
        """Dispatch a MESSAGE_CREATE on the live connection; returns its payload."""
        data = self.message(content, **fields)
        await self._dispatch("MESSAGE_CREATE", data)
        return data

    async def drop(self, code: int = 4000) -> None:
        """Close the live socket as Discord does when it wants a reconnect."""
        await self.live.ws.close(code=code, message=b"fake: reconnect")

    @property
    def live(self) -> Connection:
        return self.connections[-1]

    async def wait_connected(self, count: int) -> None:
        """Until ``count`` sockets have identified or resumed."""
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(
                lambda: (
                    len(self.connections) >= count
                    and self.connections[count - 1].identified.is_set()
                )
            )

    async def wait_posts(self, count: int) -> list[Post]:
        async with asyncio.timeout(10), self._posted:
            await self._posted.wait_for(lambda: len(self.posts) >= count)
        return self.posts

    # -- gateway ----------------------------------------------------------------

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        self._seq += 1
        await self.live.ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = Connection(ws)
        self.connections.append(connection)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 45000}}))
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            op = payload.get("op")
            if op == 1:
                self.heartbeats += 1
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:
                if payload["d"].get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                self.identifies.append(payload["d"])
                self._seq += 1
                ready = {
                    "v": 10,
                    "user": self.bot,
                    "guilds": [],
                    "session_id": "fake-session",
                    "resume_gateway_url": self.gateway_url,
                    "application": {"id": BOT_ID, "flags": 0},
                }
                await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": self._seq, "d": ready}))
                connection.identified.set()
                async with self._changed:
                    self._changed.notify_all()
            elif op == 6:
                self.resumes.append(payload["d"])
                connection.resumed = True
                self._seq += 1
                await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": self._seq, "d": {}}))
                connection.identified.set()
                async with self._changed:
                    self._changed.notify_all()
        return ws

    # -- REST -------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    @staticmethod
    def _unauthorized() -> web.Response:
        return _json({"message": "401: Unauthorized", "code": 0}, status=401)

    async def _me(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return _json(self.bot)

    async def _application(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        info = {
            "id": BOT_ID,
            "name": "orra-bot",
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": self.bot,
            "verify_key": "00",
            "flags": 0,
        }
        return _json(info)

    async def _gateway_info(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _post_message(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        channel_id = request.match_info["channel_id"]
        body = await request.json()
        if self.fail_posts:
            self.fail_posts -= 1
            return _json({"message": "Missing Access", "code": 50001}, status=403)
        content = body.get("content", "")
        if not content or len(content) > 2000:
            error = {"message": "Invalid Form Body", "code": 50035}
            return _json(error, status=400)
        async with self._posted:
            self.posts.append(Post(channel_id, body))
            self._posted.notify_all()
        reply = self.message(content, channel_id=channel_id, guild_id=None)
        reply["author"] = self.bot
        return _json(reply)

    async def _post_typing(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        self.typing.append(request.match_info["channel_id"])
        return web.Response(status=204)

    def _found(self, table: dict[str, Any], key: str) -> web.Response:
        if key not in table:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        return _json(table[key])

    async def _get_channel(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return self._found(self.channels, request.match_info["channel_id"])

    async def _get_messages(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        messages = self.history.get(request.match_info["channel_id"], [])
        limit = int(request.query.get("limit", "50"))
        return _json(messages[:limit])  # newest first, as Discord answers

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return self._found(self.guild_channels, request.match_info["guild_id"])

    async def _get_guild(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return self._found(self.guilds, request.match_info["guild_id"])
