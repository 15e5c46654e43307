"""A stateful fake Kubernetes API for the operator tests: kmock 0.8's emulator plus the
apiserver behaviour the operator relies on and kmock lacks (kubernetes-notes.md §4).

The gaps filled here, each named so tests can say which they rely on:

- ``SSA_UPSERT``: server-side apply (PATCH with ``application/apply-patch+yaml``) of a missing
  object creates it, as the real apiserver does; kmock answers 404.
- ``METADATA``: every write stamps ``metadata.uid`` and ``creationTimestamp`` (on create) and
  a monotonic ``resourceVersion``; ``generation`` starts at 1 and grows when ``spec``
  changes through the main resource (not ``/status``). kmock sets none of them, so owner
  references and ``observedGeneration`` could not work.
- ``LABEL_SELECTOR``: ``labelSelector`` (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, comma-
  separated) filters lists and watches; kmock ignores it.
- ``PUT``: PUT on a named object replaces it like a patch would (kmock answers 404).

``ServiceMonitorCRD`` is the emulator of a cluster with prometheus-operator's CRD installed:
``monitoring.coreos.com/v1`` is served (kmock answers its discovery from the declared
resources), so the operator applies ServiceMonitors there; the plain ``Apiserver`` answers
that discovery with a 404, as a cluster without the CRD does.

Not filled (the operator does not need them): field managers and apply conflicts, garbage
collection of owned objects, validation, real watch resourceVersions (every watch replays
everything; kube's watcher copes).
"""

from __future__ import annotations

import copy
import datetime
import itertools
import uuid
from typing import Any

import attrs
import kmock

SSA_UPSERT = "ssa-upsert"
METADATA = "metadata"
LABEL_SELECTOR = "label-selector"
PUT = "put"

#: The resources the operator reads and writes (kmock 404s a list of an undeclared one).
RESOURCES = [
    "nats-mini.io/v1alpha1/natsminis",
    "apps/v1/statefulsets",
    "v1/services",
    "v1/configmaps",
    "v1/pods",
    "policy/v1/poddisruptionbudgets",
    "coordination.k8s.io/v1/leases",
    "events.k8s.io/v1/events",
]


def _merge(base: Any, patch: Any) -> Any:
    """kmock's merge: dicts recursively, ``None`` deletes, anything else replaces."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(base.get(k), v)
    return out


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes equality-based label selector semantics."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _labels(obj: Any) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


class Apiserver(kmock.KubernetesEmulator):
    """kmock's emulator with the gaps above filled."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._rv = itertools.count(1)
        for r in RESOURCES:
            self.resources[r]  # declared: lists of an empty resource answer [] instead of 404

    def _stamp_new(self, data: dict) -> None:
        meta = data.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault(
            "creationTimestamp",
            datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        meta["resourceVersion"] = str(next(self._rv))
        meta["generation"] = 1

    async def _handle(self, request: kmock.Request):  # type: ignore[override]
        if request.resource is not None and isinstance(request.data, dict):
            if request.method == kmock.method.PUT and request.name:  # PUT
                request = attrs.evolve(request, action=kmock.action.UPDATE)
            if request.action == kmock.action.CREATE:  # METADATA
                self._stamp_new(request.data)
            elif request.action == kmock.action.UPDATE and request.name:
                key = (request.resource, request.namespace, request.name)
                stored = self._objects[key] if key in self._objects else None
                missing = stored is None or stored.deleted
                is_apply = "apply-patch" in request.headers.get("Content-Type", "")
                if missing and is_apply:  # SSA_UPSERT
                    data = copy.deepcopy(request.data)
                    data.setdefault("metadata", {}).update(
                        name=request.name, namespace=request.namespace
                    )
                    self._stamp_new(data)
                    async with self._lock:
                        if stored is None:
                            self._objects[key] = data
                        else:
                            self._objects[key].create(data)
                        raw = self._objects[key].last.raw
                        await self._buses[request.resource].put({"type": "ADDED", "object": raw})
                    # kmock's own update below merges the same body again: a no-op but a
                    # MODIFIED event, which the watchers tolerate. Keep our stamps.
                    request.data.setdefault("metadata", {}).update(
                        {k: data["metadata"][k] for k in ("uid", "resourceVersion", "generation")}
                    )
                elif not missing:  # METADATA
                    old = stored.raw
                    meta = request.data.setdefault("metadata", {})
                    meta["resourceVersion"] = str(next(self._rv))
                    meta.pop("uid", None)
                    meta.pop("generation", None)
                    if request.subresource is None and "spec" in request.data:
                        if _merge(old.get("spec"), request.data["spec"]) != old.get("spec"):
                            meta["generation"] = (old.get("metadata", {}).get("generation") or 0) + 1
        return await super()._handle(request)

    async def _serve_list(self, request: kmock.Request):  # type: ignore[override]
        result = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:  # LABEL_SELECTOR
            result["items"] = [o for o in result["items"] if selector_matches(selector, _labels(o))]
        return result

    async def _serve_watch(self, request: kmock.Request):  # type: ignore[override]
        selector = request.params.get("labelSelector")
        async for event in super()._serve_watch(request):
            if selector and isinstance(event, dict):  # LABEL_SELECTOR
                if not selector_matches(selector, _labels(event.get("object"))):
                    continue
            yield event


class ServiceMonitorCRD(Apiserver):
    """A cluster with prometheus-operator's ServiceMonitor CRD installed."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.resources["monitoring.coreos.com/v1/servicemonitors"]
