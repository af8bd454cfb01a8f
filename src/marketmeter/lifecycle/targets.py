"""Sending one logged event to one delivery target, as AWS would deliver it there.

- ``sns``: Publish the message to a topic on an SNS-compatible endpoint: the target's
  ``topic_arn``, or AWS's topic name (``aws-mp-subscription-notification-<code>``,
  ``aws-mp-entitlement-notification-<code>``) created there if missing (CreateTopic is
  idempotent), so that the endpoint's own SNS → SQS / Lambda fan-out does the rest. The message
  is the SNS ``Message`` string (for an EventBridge event sent to a named topic, the event).
- ``sqs``: SendMessage to a queue URL: the SNS envelope exactly as SNS hands it to a subscribed
  queue, the bare ``Message`` with ``raw_delivery``, or the EventBridge event itself (what a
  rule's SQS target receives). A FIFO queue (``.fifo``) gets MessageGroupId
  ``<product code>:<buyer>`` (each customer's messages in order) and the event id as the
  deduplication id.
- ``eventbridge``: PutEvents of the event (``source``, ``detail-type``, ``resources``,
  ``time``, ``detail``) to a bus; the receiving bus sets ``id``, ``account`` and ``region``.
- ``http``: POST to a URL (the deliverer uses ``lifecycle.sns_http`` when the target speaks
  the SNS HTTP(S) subscription protocol); with ``raw_delivery`` an SNS message's bare
  ``Message``, as SNS's raw message delivery does.

Every AWS call goes through boto3 (one client per endpoint, region and key pair, no retries of
its own: the outbox retries), run on the sender's own threads so that a hanging endpoint never
holds a thread metering needs. ``send`` never raises: it answers the HTTP status and the error.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import httpx
import orjson
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from marketmeter.catalog.model import NotificationKind, NotificationTarget, TargetKind
from marketmeter.lifecycle.messages import delivery_headers
from marketmeter.lifecycle.types import Channel, LifecycleEvent

__all__ = ["Sent", "TargetSenders", "http_body", "topic_name"]

_ERROR_PREVIEW = 300


@dataclass(frozen=True, slots=True)
class Sent:
    """What one attempt got: the HTTP status (if an answer came) and the error (``None``:
    delivered)."""

    status: int | None
    error: str | None = None


def topic_name(kind: NotificationKind | None, product_code: str) -> str:
    """AWS's topic name for ``kind``'s SNS messages of ``product_code``."""
    which = "entitlement" if kind is NotificationKind.ENTITLEMENT else "subscription"
    return f"aws-mp-{which}-notification-{product_code}"


def _message(event: LifecycleEvent) -> str:
    """What SNS carries: the ``Message`` string of an SNS notification, or the event."""
    if event.channel is Channel.SNS:
        return str(event.body["Message"])
    return orjson.dumps(event.body).decode()


def sqs_body(event: LifecycleEvent, raw: bool) -> str:
    """The SQS message body a subscribed queue (or a rule's SQS target) receives."""
    if event.channel is Channel.SNS and raw:
        return str(event.body["Message"])
    return orjson.dumps(event.body).decode()


def http_body(event: LifecycleEvent, raw: bool) -> tuple[bytes, dict[str, str]]:
    """What an HTTP(S) endpoint is POSTed: the SNS envelope or the EventBridge event with
    ``delivery_headers``, or with ``raw`` an SNS message's bare ``Message`` and
    ``x-amz-sns-rawdelivery: true``, as SNS's raw message delivery sends it
    (https://docs.aws.amazon.com/sns/latest/dg/sns-large-payload-raw-message-delivery.html)."""
    headers = delivery_headers(event)
    if event.channel is Channel.SNS and raw:
        return str(event.body["Message"]).encode(), {**headers, "x-amz-sns-rawdelivery": "true"}
    return orjson.dumps(event.body), headers


def _aws_failure(error: Exception) -> Sent:
    if isinstance(error, ClientError):
        response: dict[str, Any] = error.response
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        details = response.get("Error", {})
        text = f"{details.get('Code', 'Error')}: {details.get('Message', '')}"
        return Sent(status, text[:_ERROR_PREVIEW])
    return Sent(None, f"{type(error).__name__}: {error}"[:_ERROR_PREVIEW])


class TargetSenders:
    """Sends events to targets; holds the boto3 clients (one per endpoint, region and key
    pair), the topic ARNs found and the HTTP client."""

    def __init__(self, timeout: float, threads: int = 4) -> None:
        self._timeout = timeout
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._topics: dict[tuple[Any, ...], str] = {}
        self._http: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        self._executor = ThreadPoolExecutor(
            self._threads, thread_name_prefix="marketmeter-delivery"
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def send(self, target: NotificationTarget, event: LifecycleEvent) -> Sent:
        if target.kind is TargetKind.HTTP:
            content, headers = http_body(event, target.raw_delivery)
            return await self.post(target, content, headers)
        work = {
            TargetKind.SNS: self._publish,
            TargetKind.SQS: self._send_message,
            TargetKind.EVENTBRIDGE: self._put_event,
        }[target.kind]
        loop = asyncio.get_running_loop()
        assert self._executor is not None, "start() the senders first"
        try:
            return await loop.run_in_executor(self._executor, work, target, event)
        except (BotoCoreError, ClientError) as error:
            return _aws_failure(error)

    async def post(
        self, target: NotificationTarget, content: bytes, headers: dict[str, str]
    ) -> Sent:
        """POST ``content`` with ``headers`` to the target's URL; 2xx delivers."""
        client = self._http
        assert client is not None, "start() the senders first"
        assert target.url is not None, "an http target has a url"
        try:
            response = await client.post(target.url, content=content, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as failure:
            return Sent(None, f"{type(failure).__name__}: {failure}"[:_ERROR_PREVIEW])
        status = response.status_code
        if 200 <= status < 300:
            return Sent(status)
        return Sent(status, f"HTTP {status}: {response.text[:_ERROR_PREVIEW]}")

    # --- the AWS calls (on the sender's threads) -------------------------------------------

    def _client(self, service: str, target: NotificationTarget) -> Any:
        key = (
            service,
            target.endpoint_url,
            target.region,
            target.access_key_id,
            target.secret_access_key,
        )
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = boto3.session.Session().client(
                    service,
                    endpoint_url=target.endpoint_url,
                    region_name=target.region,
                    aws_access_key_id=target.access_key_id,
                    aws_secret_access_key=target.secret_access_key,
                    config=Config(
                        connect_timeout=self._timeout,
                        read_timeout=self._timeout,
                        retries={"total_max_attempts": 1},
                    ),
                )
                self._clients[key] = client
            return client

    def _topic_arn(self, client: Any, target: NotificationTarget, event: LifecycleEvent) -> str:
        if target.topic_arn is not None:
            return target.topic_arn
        name = topic_name(event.kind, event.product_code)
        key = (target.endpoint_url, target.region, target.access_key_id, name)
        with self._lock:
            known = self._topics.get(key)
        if known is None:
            known = str(client.create_topic(Name=name)["TopicArn"])
            with self._lock:
                self._topics[key] = known
        return known

    def _publish(self, target: NotificationTarget, event: LifecycleEvent) -> Sent:
        client = self._client("sns", target)
        topic = self._topic_arn(client, target, event)
        try:
            answer = client.publish(TopicArn=topic, Message=_message(event))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NotFound":
                with self._lock:  # the topic was deleted: create it again next time
                    self._topics = {k: v for k, v in self._topics.items() if v != topic}
            raise
        return Sent(answer["ResponseMetadata"]["HTTPStatusCode"])

    def _send_message(self, target: NotificationTarget, event: LifecycleEvent) -> Sent:
        client = self._client("sqs", target)
        request: dict[str, Any] = {
            "QueueUrl": target.queue_url,
            "MessageBody": sqs_body(event, target.raw_delivery),
        }
        if str(target.queue_url).endswith(".fifo"):
            request["MessageGroupId"] = f"{event.product_code}:{event.buyer_account_id}"
            request["MessageDeduplicationId"] = event.event_id
        answer = client.send_message(**request)
        return Sent(answer["ResponseMetadata"]["HTTPStatusCode"])

    def _put_event(self, target: NotificationTarget, event: LifecycleEvent) -> Sent:
        client = self._client("events", target)
        body = event.body
        answer = client.put_events(
            Entries=[
                {
                    "Source": body["source"],
                    "DetailType": body["detail-type"],
                    "Resources": body["resources"],
                    "Time": datetime.fromisoformat(body["time"]),
                    "Detail": orjson.dumps(body["detail"]).decode(),
                    "EventBusName": target.event_bus,
                }
            ]
        )
        status = answer["ResponseMetadata"]["HTTPStatusCode"]
        if answer.get("FailedEntryCount"):
            entry = answer["Entries"][0]
            return Sent(status, f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
        return Sent(status)
