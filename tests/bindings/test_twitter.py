"""bindings.twitter against a local HTTP server speaking the X API v2 endpoints it uses:
`POST /oauth2/token` (app-only token) and `GET /2/tweets/search/recent` (with `since_id`,
`sort_order` and `next_token` paging)."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from portabind.bindings.twitter import (
    TwitterInput,
    TwitterMetadata,
    TwitterOutput,
    binding,
    event_from_tweet,
)
from portabind.errors import BindingError, ComponentError
from portabind.events import Metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pytest_httpserver import HTTPServer
    from werkzeug import Request, Response

    from portabind.events import BindingEvent

pytest.importorskip("httpx")
pytest.importorskip("pytest_httpserver")

TOKEN = "AAAA-app-token"


class FakeX:
    """The search index and the two endpoints, with a small page size so paging shows."""

    page_size = 2

    def __init__(self) -> None:
        self.tweets: list[dict[str, Any]] = []
        self.searches: list[dict[str, str]] = []
        self.token_requests = 0
        self.lock = threading.Lock()

    def post(self, text: str) -> dict[str, Any]:
        with self.lock:
            tweet = {"id": str(1000 + len(self.tweets)), "text": text, "lang": "en"}
            self.tweets.append(tweet)
            return tweet

    def token(self, request: Request) -> Response:
        from werkzeug import Response

        self.token_requests += 1
        expected = "Basic " + base64.b64encode(b"ck:cs").decode()
        if request.headers.get("Authorization") != expected:
            return Response('{"errors":[{"code":99}]}', status=403)
        if request.form.get("grant_type") != "client_credentials":
            return Response("{}", status=400)
        return Response(json.dumps({"token_type": "bearer", "access_token": TOKEN}))

    def search(self, request: Request) -> Response:
        from werkzeug import Response

        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            body = {"title": "Unauthorized", "detail": "Unauthorized", "status": 401}
            return Response(json.dumps(body), status=401, content_type="application/json")
        self.searches.append(dict(request.args))
        since = int(request.args.get("since_id", "0"))
        with self.lock:
            found = sorted(
                (t for t in self.tweets if int(t["id"]) > since),
                key=lambda t: -int(t["id"]),
            )
        start = int(request.args.get("next_token", "0"))
        page = found[start : start + self.page_size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if found:
            meta["newest_id"] = found[0]["id"]
        if start + self.page_size < len(found):
            meta["next_token"] = str(start + self.page_size)
        body = {"data": page, "meta": meta} if page else {"meta": meta}
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def x_api(httpserver: HTTPServer) -> FakeX:
    fake = FakeX()
    httpserver.expect_request("/oauth2/token", method="POST").respond_with_handler(fake.token)
    httpserver.expect_request("/2/tweets/search/recent", method="GET").respond_with_handler(
        fake.search
    )
    return fake


def _metadata(httpserver: HTTPServer, **fields: Any) -> TwitterMetadata:
    values = {
        "consumerKey": "ck",
        "consumerSecret": "cs",
        "accessToken": "at",
        "accessSecret": "as",
        "endpoint": httpserver.url_for("/"),
        **fields,
    }
    return TwitterMetadata.model_validate(values)


@pytest.fixture
def twitter(httpserver: HTTPServer) -> Iterator[Callable[..., TwitterOutput]]:
    made: list[TwitterOutput] = []

    def make(**fields: Any) -> TwitterOutput:
        made.append(TwitterOutput("tweets", _metadata(httpserver, **fields)))
        return made[-1]

    yield make
    for output in made:
        output.close()


def test_get_searches_recent_posts_and_returns_them_with_daprs_metadata(
    x_api: FakeX, twitter: Callable[..., TwitterOutput]
) -> None:
    x_api.page_size = 100
    first, second = x_api.post("dapr rocks"), x_api.post("dapr again")

    response = twitter().invoke("get", b"", Metadata({"query": "dapr", "lang": "de"}))

    assert response.json() == [second, first]
    assert response.metadata["query"] == "dapr"
    assert response.metadata["lang"] == "de"
    assert response.metadata["max_tweet_id"] == second["id"]
    assert response.metadata["tweet_count"] == "2"
    searched = datetime.fromisoformat(response.metadata["search_ts"].replace("Z", "+00:00"))
    assert abs(searched.timestamp() - time.time()) < 5
    (search,) = x_api.searches
    assert search["query"] == "dapr lang:de"
    assert search["max_results"] == "100"
    assert search["sort_order"] == "recency"
    assert "entities" in search["tweet.fields"]
    assert x_api.token_requests == 1  # consumer key/secret exchanged once for a bearer token


def test_get_passes_since_id_and_maps_result_to_sort_order(
    x_api: FakeX, twitter: Callable[..., TwitterOutput]
) -> None:
    old = x_api.post("old")
    new = x_api.post("new")
    output = twitter(bearerToken=TOKEN)

    response = output.invoke(
        "get", b"", Metadata({"query": "q", "since_id": old["id"], "result": "popular"})
    )
    output.invoke("get", b"", Metadata({"query": "q", "result": "mixed"}))

    assert response.json() == [new]
    assert x_api.searches[0]["since_id"] == old["id"]
    assert x_api.searches[0]["sort_order"] == "relevancy"
    assert x_api.searches[0]["query"] == "q lang:en"
    assert "sort_order" not in x_api.searches[1]
    assert x_api.token_requests == 0  # a configured bearer token is used as is


def test_get_with_no_results_is_an_empty_array(
    x_api: FakeX, twitter: Callable[..., TwitterOutput]
) -> None:
    response = twitter().invoke("get", b"", Metadata({"query": "nothing"}))

    assert response.json() == []
    assert response.metadata["tweet_count"] == "0"


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({}, "query not set"),
        ({"query": "q", "since_id": "abc"}, "since_id must be an integer"),
        ({"query": "q", "result": "best"}, "result must be mixed, recent or popular"),
    ],
)
def test_get_refuses_bad_request_metadata(
    x_api: FakeX, twitter: Callable[..., TwitterOutput], metadata: dict[str, str], message: str
) -> None:
    with pytest.raises(BindingError, match=message):
        twitter().invoke("get", b"", Metadata(metadata))
    assert x_api.searches == []


def test_get_reports_the_apis_refusal(x_api: FakeX, twitter: Callable[..., TwitterOutput]) -> None:
    with pytest.raises(BindingError, match="X API 401: Unauthorized"):
        twitter(bearerToken="wrong").invoke("get", b"", Metadata({"query": "q"}))
    with pytest.raises(BindingError, match="X API 403"):
        twitter(consumerSecret="wrong").invoke("get", b"", Metadata({"query": "q"}))


def _listen(
    httpserver: HTTPServer, deliver: Callable[[BindingEvent], None]
) -> tuple[threading.Event, threading.Thread]:
    listener = TwitterInput("stream", _metadata(httpserver, query="dapr", pollInterval="100ms"))
    stop = threading.Event()
    thread = threading.Thread(target=listener.listen, args=(deliver, stop), daemon=True)
    thread.start()
    return stop, thread


def _wait_for(condition: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_input_delivers_new_posts_oldest_first_across_pages(
    httpserver: HTTPServer, x_api: FakeX
) -> None:
    x_api.post("before start")
    received: list[BindingEvent] = []
    stop, thread = _listen(httpserver, received.append)
    _wait_for(lambda: len(x_api.searches) >= 1)

    posted = [x_api.post(f"post {n}") for n in range(5)]  # three pages of two
    _wait_for(lambda: len(received) == 5)
    stop.set()
    thread.join(timeout=5)

    assert [json.loads(event.data) for event in received] == posted
    assert all(dict(event.metadata) == {"query": "dapr"} for event in received)
    assert all(search["query"] == "dapr" for search in x_api.searches)
    assert not thread.is_alive()


def test_input_retries_a_failed_post_before_later_ones(
    httpserver: HTTPServer, x_api: FakeX
) -> None:
    received: list[str] = []
    failed_once: set[str] = set()

    def deliver(event: BindingEvent) -> None:
        text = json.loads(event.data)["text"]
        if text == "flaky" and text not in failed_once:
            failed_once.add(text)
            raise RuntimeError("handler failed")
        received.append(text)

    stop, thread = _listen(httpserver, deliver)
    _wait_for(lambda: len(x_api.searches) >= 1)
    x_api.post("flaky")
    x_api.post("after")
    _wait_for(lambda: len(received) == 2)
    stop.set()
    thread.join(timeout=5)

    assert received == ["flaky", "after"]  # redelivered, and order kept


def test_input_drops_a_post_that_keeps_failing_and_goes_on(
    httpserver: HTTPServer, x_api: FakeX
) -> None:
    attempts: list[str] = []

    def deliver(event: BindingEvent) -> None:
        text = json.loads(event.data)["text"]
        attempts.append(text)
        if text == "poison":
            raise RuntimeError("always fails")

    stop, thread = _listen(httpserver, deliver)
    _wait_for(lambda: len(x_api.searches) >= 1)
    x_api.post("poison")
    x_api.post("fine")
    _wait_for(lambda: "fine" in attempts)
    time.sleep(0.3)
    stop.set()
    thread.join(timeout=5)

    assert attempts == ["poison", "poison", "poison", "fine"]


def test_input_without_query_fails_at_start(httpserver: HTTPServer) -> None:
    listener = TwitterInput("stream", _metadata(httpserver))
    with pytest.raises(ComponentError, match="query"):
        listener.listen(lambda event: None, threading.Event())


def test_metadata_needs_consumer_keys_or_a_bearer_token() -> None:
    with pytest.raises(ValueError, match="consumerKey and consumerSecret"):
        TwitterMetadata.model_validate({"consumerKey": "ck", "query": "q"})
    assert TwitterMetadata.model_validate({"bearerToken": "b"}).bearer_token is not None
    assert {"consumerKey", "consumerSecret", "accessToken", "accessSecret"} <= (
        TwitterMetadata.secret_names()
    )
    assert binding.directions == {"input", "output"}


def test_event_from_tweet_is_the_post_as_json() -> None:
    event = event_from_tweet("stream", {"id": "1", "text": "hi"}, "dapr")

    assert event.json() == {"id": "1", "text": "hi"}
    assert dict(event.metadata) == {"query": "dapr"}
