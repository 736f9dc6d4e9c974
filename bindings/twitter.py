"""`bindings.twitter`: search posts on X, input and output.

Dapr's binding (components-contrib `bindings/twitter/twitter.go`, removed in 1.11) used the
v1.1 API, which X has since shut down;
this one speaks the X API v2 over httpx with an app-only bearer token: either `bearerToken`
(a portabind extension) or the one X issues for `consumerKey`/`consumerSecret`
(`POST /oauth2/token`). Output `get` is a v2 recent search; the input polls the same search
for posts newer than the last one delivered.

Dapr semantics kept: `get` takes request metadata `query` (required), `lang` (default `en`,
added as the `lang:` operator), `result` (`recent` → newest first, `popular` → relevance,
`mixed` → the API's default) and `since_id`; it returns the posts as a JSON array (at most
100) with metadata = the request metadata plus `max_tweet_id`, `tweet_count`, `search_ts`.
Each input event is one post as JSON with metadata `query`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings._attempts import Attempts
from portabind.errors import BindingError, ComponentError
from portabind.events import BindingEvent, BindingResponse, Metadata, compact_json, rfc3339
from portabind.metadata import BindingMetadata, Duration, Secret, model_validator, setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator

    import httpx

log = logging.getLogger(__name__)

SEARCH = "/2/tweets/search/recent"
#: Dapr asked for 100 results with entities; 100 is also v2's page maximum.
PAGE_SIZE = 100
TWEET_FIELDS = "author_id,created_at,entities,lang,conversation_id,public_metrics"
_SORT_ORDER = {"recent": "recency", "popular": "relevancy", "mixed": None}


class TwitterMetadata(BindingMetadata):
    binding_type = "bindings.twitter"
    # Dapr requires the user-context pair; the v2 app-only search needs the consumer pair.
    no_effect = {
        "accessToken": "the X API v2 search portabind uses takes an app-only token",
        "accessSecret": "the X API v2 search portabind uses takes an app-only token",
    }

    consumer_key: Secret | None = setting("consumerKey", None, secret=True)
    consumer_secret: Secret | None = setting("consumerSecret", None, secret=True)
    # Fields, though unread: credentials, kept out of build output and messages.
    access_token: Secret | None = setting("accessToken", None, secret=True)
    access_secret: Secret | None = setting("accessSecret", None, secret=True)
    query: str | None = setting("query", None, description="search query of the input")
    bearer_token: Secret | None = setting(
        "bearerToken",
        None,
        secret=True,
        description="portabind extension (not in Dapr): the app-only bearer token; without "
        "it one is obtained for consumerKey/consumerSecret",
    )
    endpoint: str = setting(
        "endpoint",
        "https://api.twitter.com",
        description="portabind extension (not in Dapr), for local testing: base URL of the X API",
    )
    poll_interval: Duration = setting(
        "pollInterval",
        timedelta(seconds=30),
        description="portabind extension (not in Dapr): how often the input searches",
    )

    @model_validator(mode="after")
    def _credentials(self) -> TwitterMetadata:
        if not self.bearer_token and not (self.consumer_key and self.consumer_secret):
            raise ValueError("set consumerKey and consumerSecret (or bearerToken)")
        return self


def event_from_tweet(name: str, tweet: dict[str, Any], query: str) -> BindingEvent:
    """One post as an input event: the post's JSON, metadata `query` as in Dapr."""
    return BindingEvent(name, compact_json(tweet), Metadata({"query": query}))


class _Api:
    """The few v2 calls both directions use, over one httpx client."""

    def __init__(self, metadata: TwitterMetadata) -> None:
        import httpx

        self.metadata = metadata
        self.client = httpx.Client(base_url=metadata.endpoint.rstrip("/"), timeout=30.0)
        self._token = metadata.secret("bearer_token")

    def token(self) -> str:
        if self._token is None:
            response = self.client.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(
                    self.metadata.secret("consumer_key") or "",
                    self.metadata.secret("consumer_secret") or "",
                ),
            )
            _check(response)
            self._token = str(response.json()["access_token"])
        return self._token

    def search(
        self, query: str, *, since_id: str | None = None, sort_order: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Each page of a recent search (v2 `data` and `meta`), newest page first."""
        params: dict[str, str | int] = {
            "query": query,
            "max_results": PAGE_SIZE,
            "tweet.fields": TWEET_FIELDS,
        }
        if since_id:
            params["since_id"] = since_id
        if sort_order:
            params["sort_order"] = sort_order
        while True:
            response = self.client.get(
                SEARCH, params=params, headers={"Authorization": f"Bearer {self.token()}"}
            )
            _check(response)
            page: dict[str, Any] = response.json()
            yield page
            next_token = page.get("meta", {}).get("next_token")
            if not next_token:
                return
            params["next_token"] = next_token

    def close(self) -> None:
        self.client.close()


class ApiError(Exception):
    """An X API error reply, with its `title`/`detail` when it has them."""


def _check(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        detail = body.get("detail") or body.get("title") or body.get("error") or response.text
    except ValueError:
        detail = response.text
    raise ApiError(f"X API {response.status_code}: {detail}")


class TwitterOutput(OutputBinding[TwitterMetadata]):
    operations = ("get",)

    def __init__(self, name: str, metadata: TwitterMetadata) -> None:
        super().__init__(name, metadata)
        self._api = _Api(metadata)

    def close(self) -> None:
        self._api.close()

    def get(self, data: bytes, metadata: Metadata) -> BindingResponse:
        import httpx

        query = metadata.get("query", "")
        if not query:
            raise BindingError(self.name, "get", "query not set")
        lang = metadata.get("lang") or "en"
        result = metadata.get("result") or "recent"
        if result not in _SORT_ORDER:
            raise BindingError(self.name, "get", "result must be mixed, recent or popular")
        since_id = metadata.get("since_id") or None
        if since_id is not None and not since_id.isdigit():
            raise BindingError(self.name, "get", f"since_id must be an integer, got {since_id!r}")
        try:
            page = next(
                self._api.search(
                    f"{query} lang:{lang}", since_id=since_id, sort_order=_SORT_ORDER[result]
                )
            )
        except (ApiError, httpx.HTTPError) as error:
            raise BindingError(self.name, "get", str(error)) from error
        tweets = page.get("data", [])
        response_metadata = dict(metadata)
        response_metadata["max_tweet_id"] = str(page.get("meta", {}).get("newest_id", ""))
        response_metadata["tweet_count"] = str(len(tweets))
        response_metadata["search_ts"] = rfc3339(datetime.now(timezone.utc))
        return BindingResponse.of_json(tweets, response_metadata)


class TwitterInput(InputBinding[TwitterMetadata]):
    """Polls the recent search every `pollInterval`, starting with posts newer than the
    newest one at start-up (as Dapr's stream did), and delivers them oldest first. A post
    counts as done once `deliver` returns; a failed one is tried again at the next poll, and
    after three failures it is logged and skipped, so one bad post cannot stall
    the stream."""

    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        import httpx

        query = self.metadata.query
        if not query:
            raise ComponentError(
                "the twitter input needs a search query", component=self.name, field="query"
            )
        api = _Api(self.metadata)
        since_id: str | None = None
        started = False
        attempts = Attempts(self.name, log)
        try:
            while not stop.is_set():
                try:
                    if not started:  # only the newest id: earlier posts are not delivered
                        since_id = next(api.search(query)).get("meta", {}).get("newest_id")
                        started = True
                        pages = []
                    else:
                        pages = list(api.search(query, since_id=since_id))
                except (ApiError, httpx.HTTPError) as error:
                    log.warning("%s: search failed: %s", self.name, error)
                    stop.wait(self.metadata.poll_interval.total_seconds())
                    continue
                tweets = [tweet for page in pages for tweet in page.get("data", [])]
                tweets.sort(key=lambda tweet: int(tweet["id"]))
                for tweet in tweets:
                    if stop.is_set():
                        return
                    key = f"post {tweet['id']}"
                    try:
                        deliver(event_from_tweet(self.name, tweet, query))
                        attempts.succeeded(key)
                    except Exception as error:  # the handler's: retried at the next poll
                        if not attempts.failed(key, error):
                            break  # keep the order: later posts wait for this one
                    since_id = tweet["id"]
                stop.wait(self.metadata.poll_interval.total_seconds())
        finally:
            api.close()


binding = Binding(metadata=TwitterMetadata, output=TwitterOutput, input=TwitterInput)
