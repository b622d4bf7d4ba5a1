"""The official Python SDK's OAuth client (mcp 2.x `OAuthClientProvider`) through the gateway.

Usage: python py_oauth_client.py URL LOGIN

Connects to URL with no token, and lets the SDK do the whole MCP authorization flow: the 401
and its `resource_metadata`, protected-resource and authorization-server metadata, dynamic
registration, PKCE, the authorization request, the token. The user's part of the authorization
(a login form, then consent: oidc-provider's development interactions) is played by submitting
the provider's forms with an HTTP client, signing in as LOGIN; the code then goes to the SDK as
a browser's redirect would bring it. Then it lists the tools and calls three, and prints as JSON
what it saw, every HTTP exchange of the SDK's client (method, URL, status), the authorization
URL it opened, and the access token.
"""

import asyncio
import json
import re
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

# Never contacted: the redirect carrying the code is read from the provider's Location header.
REDIRECT_URI = "http://127.0.0.1/callback"

CALLS = {
    "get_price": {"symbol": "BTCUSDT"},
    "get_order_book": {"symbol": "BTCUSDT", "depth": 5},
    "get_recent_trades": {"symbol": "BTCUSDT"},
}


class MemoryStorage:
    """The SDK's TokenStorage, kept for this run only."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class HeadlessUser:
    """What a person in a browser does with the authorization URL: signs in as `login`, consents,
    and is redirected to REDIRECT_URI with the code."""

    def __init__(self, login: str) -> None:
        self.login = login
        self.result: AuthorizationCodeResult | None = None
        self.authorization_url: str | None = None

    async def open(self, authorization_url: str) -> None:
        self.authorization_url = authorization_url
        # A browser of its own: the provider's interaction cookies stay out of the MCP client.
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as browser:
            response = await browser.get(authorization_url)
            for _step in range(20):
                if response.is_redirect:
                    location = urljoin(str(response.url), response.headers["location"])
                    if location.startswith(REDIRECT_URI):
                        query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
                        if "code" not in query:
                            raise RuntimeError(f"the provider refused: {query}")
                        self.result = AuthorizationCodeResult(
                            code=query["code"], state=query.get("state"), iss=query.get("iss")
                        )
                        return
                    response = await browser.get(location)
                elif response.status_code == 200:
                    response = await self.submit(browser, response)
                else:
                    raise RuntimeError(f"authorization: HTTP {response.status_code}: {response.text[:500]}")
        raise RuntimeError("authorization did not reach the redirect URI")

    async def submit(self, browser: httpx2.AsyncClient, page: httpx2.Response) -> httpx2.Response:
        """Fills the login or the consent form of the page."""
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        prompt = re.search(r'name="prompt" value="([a-z]+)"', page.text)
        if not action or not prompt:
            raise RuntimeError(f"no form on the provider's page: {page.text[:500]}")
        form = {"prompt": prompt.group(1)}
        if form["prompt"] == "login":
            form |= {"login": self.login, "password": "any"}
        url = urljoin(str(page.url), action.group(1).replace("&amp;", "&"))
        return await browser.post(url, data=form)

    async def callback(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("no authorization code")
        return self.result


async def main(url: str, login: str) -> None:
    exchanges: list[dict] = []

    async def record(response: httpx2.Response) -> None:
        exchanges.append(
            {"method": response.request.method, "url": str(response.request.url), "status": response.status_code}
        )

    user = HeadlessUser(login)
    storage = MemoryStorage()
    auth = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="mcpgate-tests",
            redirect_uris=[REDIRECT_URI],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=user.open,
        callback_handler=user.callback,
    )
    out: dict = {}
    async with httpx2.AsyncClient(auth=auth, event_hooks={"response": [record]}, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            tools = await client.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            out["calls"] = {}
            for name, arguments in CALLS.items():
                result = await client.call_tool(name, arguments)
                out["calls"][name] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    out["exchanges"] = exchanges
    out["authorization_url"] = user.authorization_url
    out["client_id"] = storage.client_info.client_id if storage.client_info else None
    out["access_token"] = storage.tokens.access_token if storage.tokens else None
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
