"""Leader election over a coordination.k8s.io/v1 Lease, so one replica acts at a time.

Every candidate reads the Lease every retry_period. The holder rewrites renewTime;
the others wait until the record has not changed for a whole lease duration, judged by
their own clock from when they first saw that record (server timestamps are only
informative: the candidates' clocks may disagree with the holder's). Every write
carries the resourceVersion that was read, so of two candidates racing for an expired
lease the server accepts one and refuses the other with a Conflict.

Why two leaders can never overlap: a leader counts its term from the moment it sent
its last successful renewal and gives up after renew_deadline; a successor can take
over only lease_duration after it saw that renewal, which the server wrote after it was
sent. With renew_deadline < lease_duration the old term has ended first. is_leader()
applies the deadline itself, so it turns false on time even while a request hangs.

Stopping clears holderIdentity, so a successor takes over at its next retry instead
of waiting out the lease. A process that dies without releasing is replaced once the
lease expires.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from kube_client.rawapi import call, status_code

Obj = dict[str, Any]
log = logging.getLogger(__name__)

# 409 is both "modified since you read it" (update) and "already exists" (create):
# either way another candidate wrote first.
_NOT_FOUND, _CONFLICT = 404, 409
# Candidates spread their retries so they do not all hit the server in step.
_JITTER = 0.2


def micro_time(moment: datetime | None = None) -> str:
    """A MicroTime as the API serves it: RFC 3339 with microseconds, in UTC."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    # In a pod, the pod's name, as client-go users do: `kubectl get lease` then names the pod.
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4()}"


class LeaderElector:
    def __init__(self, api_client: client.ApiClient, namespace: str, name: str, identity: str | None = None, *,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 on_started_leading: Callable[[], None] | None = None,
                 on_stopped_leading: Callable[[], None] | None = None) -> None:
        """The callbacks run on the elector's thread and must return quickly: while they
        run, the lease is not renewed."""
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._coordination = client.CoordinationV1Api(api_client)
        # No single request may outlast the time a renewal has to succeed.
        self._request_timeout = (renew_deadline, renew_deadline)
        self._lock = threading.Lock()
        self._leading = False
        self._term_ends = 0.0  # monotonic; the leader's term runs until here
        self._leading_event = threading.Event()
        self._stopping = threading.Event()
        self._release_on_stop = True
        # The last Lease read or written, and when its spec was first seen as it is.
        self._lease: Obj | None = None
        self._observed_spec: Obj | None = None
        self._observed_at = 0.0
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None or self._stopping.is_set():
            raise RuntimeError("the elector is running or was stopped; make a new one")
        self._thread = threading.Thread(target=self._run, name=f"leader-elector-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True, timeout: float | None = None) -> bool:
        """Stop campaigning; release=False leaves the lease to expire, as a crash would.
        True when the elector's thread ended within timeout (by default long enough
        for a request in flight and the release, each bounded by renew_deadline)."""
        with self._lock:
            self._release_on_stop = release
            # Leadership ends now, before the release is even sent, so a successor that
            # sees the release can never overlap with us; setting the flag under the lock
            # keeps a renewal that is just returning from starting a new term.
            self._term_ends = 0.0
            self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(2 * self.renew_deadline + 1.0 if timeout is None else timeout)
        if self._thread.is_alive():
            log.warning("leader elector %s/%s did not stop in time", self.namespace, self.name)
            return False
        return True

    # --- state ------------------------------------------------------------------------

    def is_leader(self) -> bool:
        with self._lock:
            return self._leading and time.monotonic() < self._term_ends

    def wait_for_leadership(self, timeout: float) -> bool:
        """Block until leading (True) or until timeout passes (False)."""
        return self._leading_event.wait(timeout) and self.is_leader()

    def holder(self) -> str:
        """Who held the lease when this elector last looked ('' when free or unknown)."""
        with self._lock:
            return str((self._observed_spec or {}).get("holderIdentity") or "")

    # --- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            sent = time.monotonic()
            if self._try_acquire_or_renew():
                self._renewed(sent)
            elif self._leading and self.holder() not in ("", self.identity):
                log.warning("%s: lease %s/%s was taken by %s; stepping down",
                            self.identity, self.namespace, self.name, self.holder())
                self._step_down()
            elif self._leading and time.monotonic() >= self._term_ends:
                log.warning("%s: could not renew lease %s/%s within %.1fs; stepping down",
                            self.identity, self.namespace, self.name, self.renew_deadline)
                self._step_down()
            wait = self.retry_period if self._leading else self.retry_period * (1 + random.uniform(0, _JITTER))
            self._stopping.wait(wait)
        was_leading = self._leading
        self._step_down(notify=False)
        # Also when not leading: a claim that succeeded while stop() was being called
        # left our name on the lease; release checks whose name it carries.
        if self._release_on_stop:
            self._release()
        if was_leading and self._on_stopped is not None:
            _safely(self._on_stopped)

    def _renewed(self, sent: float) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self._term_ends = sent + self.renew_deadline
            started = not self._leading
            self._leading = True
        if started:
            log.info("%s: now leading %s/%s", self.identity, self.namespace, self.name)
            self._leading_event.set()
            if self._on_started is not None:
                _safely(self._on_started)

    def _step_down(self, notify: bool = True) -> None:
        with self._lock:
            was_leading = self._leading
            self._leading = False
            self._term_ends = 0.0
        self._leading_event.clear()
        if was_leading and notify and self._on_stopped is not None:
            _safely(self._on_stopped)

    # --- talking to the server --------------------------------------------------------

    def _try_acquire_or_renew(self) -> bool:
        try:
            lease = call(self._coordination.read_namespaced_lease, self.name, self.namespace,
                         _request_timeout=self._request_timeout)
        except Exception as error:
            if status_code(error) == _NOT_FOUND:
                return self._create()
            log.warning("%s: reading lease %s/%s failed: %s", self.identity, self.namespace, self.name, error)
            return False
        spec = lease.get("spec") or {}
        self._observe(lease)
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and not self._expired(spec):
            return False
        return self._write(lease, self._claim(spec))

    def _claim(self, spec: Obj) -> Obj:
        now = micro_time()
        claimed = dict(spec)
        if spec.get("holderIdentity") != self.identity:
            claimed["acquireTime"] = now
            claimed["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        claimed["holderIdentity"] = self.identity
        claimed["leaseDurationSeconds"] = math.ceil(self.lease_duration)
        claimed["renewTime"] = now
        claimed.setdefault("acquireTime", now)
        return claimed

    def _create(self) -> bool:
        now = micro_time()
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": math.ceil(self.lease_duration),
                         "acquireTime": now, "renewTime": now, "leaseTransitions": 0}}
        try:
            created = call(self._coordination.create_namespaced_lease, self.namespace, body,
                           _request_timeout=self._request_timeout)
        except Exception as error:
            if status_code(error) != _CONFLICT:
                log.warning("%s: creating lease %s/%s failed: %s", self.identity, self.namespace, self.name, error)
            return False
        self._observe(created)
        return True

    def _write(self, lease: Obj, spec: Obj) -> bool:
        """Replace the lease as read; its resourceVersion makes the write conditional."""
        body = copy.deepcopy(lease)
        body["spec"] = spec
        try:
            written = call(self._coordination.replace_namespaced_lease, self.name, self.namespace, body,
                           _request_timeout=self._request_timeout)
        except Exception as error:
            if status_code(error) != _CONFLICT:
                log.warning("%s: writing lease %s/%s failed: %s", self.identity, self.namespace, self.name, error)
            return False
        self._observe(written)
        return True

    def _release(self) -> None:
        with self._lock:
            lease = self._lease
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        spec = dict(lease.get("spec") or {})
        spec.pop("holderIdentity", None)
        now = micro_time()
        # A one-second duration tells candidates of other implementations the lease is
        # all but free; ours take a holderless lease at once.
        spec.update({"leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now})
        if self._write(lease, spec):
            log.info("%s: released lease %s/%s", self.identity, self.namespace, self.name)

    def _observe(self, lease: Obj) -> None:
        spec = lease.get("spec") or {}
        with self._lock:
            self._lease = lease
            if spec != self._observed_spec:
                self._observed_spec = copy.deepcopy(spec)
                self._observed_at = time.monotonic()

    def _expired(self, spec: Obj) -> bool:
        # The holder's own declared duration: it promised to renew within it.
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        with self._lock:
            return time.monotonic() > self._observed_at + duration


def _safely(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # a failing callback must not end the campaign (or the release)
        log.exception("leader election callback failed")
