"""REST transport (the default): the gateway's JSON API over httpx, sync and async. Only the
I/O lives here; the request mapping and the error decoding are in `_core`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx

from ragline_client import _core as core
from ragline_client.errors import ConnectionFailedError, DeadlineExceededError, RaglineError

Json = dict[str, Any]


def _headers(
    base: Mapping[str, str], call: core.Call[Any], req: core.HttpRequest
) -> dict[str, str]:
    # `base` is empty when the transport made its httpx client with the common headers.
    headers = dict(base)
    headers.update(call.headers)
    if req.content_type:
        headers["content-type"] = req.content_type
    return headers


def _timeout(timeout: float, default: float | None) -> Any:
    # The client's default is set on our own httpx client; pass only a different one.
    return httpx.USE_CLIENT_DEFAULT if timeout == default else timeout


def _transport_error(err: httpx.HTTPError, timeout: float) -> RaglineError:
    if isinstance(err, httpx.ConnectTimeout | httpx.ConnectError | httpx.RemoteProtocolError):
        return ConnectionFailedError(f"cannot reach the gateway: {err}")
    if isinstance(err, httpx.TimeoutException):
        return DeadlineExceededError(
            f"no answer within the client's timeout of {timeout:g} s", reason="CLIENT_TIMEOUT"
        )
    return ConnectionFailedError(f"the connection to the gateway failed: {err}")


def _json(response: httpx.Response) -> Json:
    data = response.json()
    return data if isinstance(data, dict) else {}


class RestTransport:
    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        http_client: httpx.Client | None = None,
    ) -> None:
        # An httpx client of our own carries the common headers and timeout, so a call adds
        # only its own (merging them per request is a measurable part of a search).
        self._owned = http_client is None
        self._headers = {} if self._owned else dict(headers)
        self._default = timeout if self._owned else None
        self._http = http_client or httpx.Client(
            base_url=base_url, headers=dict(headers), timeout=timeout
        )

    def unary(self, call: core.Call[Any], timeout: float) -> Json:
        req = core.http_request(call)
        try:
            response = self._http.request(
                req.method,
                req.path,
                params=req.query or None,
                content=req.content,
                headers=_headers(self._headers, call, req),
                timeout=_timeout(timeout, self._default),
            )
        except httpx.HTTPError as err:
            raise _transport_error(err, timeout) from err
        if response.status_code >= 400:
            raise core.http_error(response.status_code, response.headers, response.content)
        return _json(response)

    def stream(self, call: core.Call[Any], timeout: float) -> Iterator[Json]:
        req = core.http_request(call)
        try:
            with self._http.stream(
                req.method,
                req.path,
                params=req.query or None,
                content=req.content,
                headers=_headers(self._headers, call, req),
                timeout=_timeout(timeout, self._default),
            ) as response:
                if response.status_code >= 400:
                    body = response.read()
                    raise core.http_error(response.status_code, response.headers, body)
                for line in response.iter_lines():
                    data = core.sse_data(line)
                    if data is not None:
                        yield data
        except httpx.HTTPError as err:
            raise _transport_error(err, timeout) from err

    def close(self) -> None:
        if self._owned:
            self._http.close()


class AsyncRestTransport:
    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._owned = http_client is None
        self._headers = {} if self._owned else dict(headers)
        self._default = timeout if self._owned else None
        self._http = http_client or httpx.AsyncClient(
            base_url=base_url, headers=dict(headers), timeout=timeout
        )

    async def unary(self, call: core.Call[Any], timeout: float) -> Json:
        req = core.http_request(call)
        try:
            response = await self._http.request(
                req.method,
                req.path,
                params=req.query or None,
                content=req.content,
                headers=_headers(self._headers, call, req),
                timeout=_timeout(timeout, self._default),
            )
        except httpx.HTTPError as err:
            raise _transport_error(err, timeout) from err
        if response.status_code >= 400:
            raise core.http_error(response.status_code, response.headers, response.content)
        return _json(response)

    async def stream(self, call: core.Call[Any], timeout: float) -> AsyncIterator[Json]:
        req = core.http_request(call)
        try:
            async with self._http.stream(
                req.method,
                req.path,
                params=req.query or None,
                content=req.content,
                headers=_headers(self._headers, call, req),
                timeout=_timeout(timeout, self._default),
            ) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise core.http_error(response.status_code, response.headers, body)
                async for line in response.aiter_lines():
                    data = core.sse_data(line)
                    if data is not None:
                        yield data
        except httpx.HTTPError as err:
            raise _transport_error(err, timeout) from err

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()
