"""Updating a referral through its Task (`PUT` and `PATCH /fhir/Task/<id>`): which elements
may change, the JSON Patch of a Task, and the lifecycle move an updated Task asks for (the
same move `POST /referrals/{id}/status` takes)."""

from __future__ import annotations

from core import json_patch
from core.errors import InvalidData
from core.fhir.common import BUSINESS_STATUS, InvalidResource
from core.fhir.elements import concept_text
from core.fhir.outcome import flatten_errors

# What an update of a Task may change: its referral's status, the reason and the outcome.
TASK_CHANGEABLE = ("status", "statusReason", "output")
# Kept by the server: what an update sends in these is not stored (FHIR: meta.versionId and
# meta.lastUpdated of an update are ignored; lastModified is the time of the change).
TASK_SERVER_KEPT = ("meta", "lastModified")
# The field of a move (as `POST /referrals/{id}/status` takes it) and where it sits in a Task.
TASK_PATH = {"status": "Task.status", "reason": "Task.statusReason", "outcome": "Task.output"}
PATCH_MEDIA_TYPE = "application/json-patch+json"


def check_task_resource(resource, resource_id: str) -> dict:
    """The body of `PUT /fhir/Task/<id>`: a Task with the id of the URL (InvalidResource, a 400, otherwise)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Task":
        raise InvalidResource("Send a Task resource (resourceType Task).", {"Task": ["Not a Task resource."]})
    if resource.get("id") != resource_id:
        raise InvalidResource("The Task's id must be the id in the URL.", {"Task.id": ["Not the id of the URL."]})
    return resource


def task_may_change(tokens: list[str]) -> bool:
    """Whether a JSON Patch operation may write at this path of a Task."""
    return bool(tokens) and tokens[0] in TASK_CHANGEABLE


def patch_task(current: dict, operations) -> dict:
    """The Task with a JSON Patch applied (only /status, /statusReason and /output may be
    written); errors name the Task's elements (`Task.contained`), not the pointers."""
    try:
        return json_patch.apply_patch(current, operations, task_may_change)
    except InvalidData as exc:
        errors: dict[str, list] = {}
        for pointer, messages in exc.errors.items():
            tokens = json_patch.pointer_tokens(pointer)
            path = ".".join(["Task", *(t for t in tokens if not t.isdigit() and t != "-")])
            errors.setdefault(path, []).extend(messages)
        raise InvalidData(exc.message, errors) from None


def _unchangeable_differences(current: dict, incoming: dict) -> dict[str, list[str]]:
    """The elements, other than those an update may change or the server keeps, that are
    missing from, added to, or different in the Task sent."""
    errors = {}
    for name in sorted(set(current) | set(incoming)):
        if name in TASK_CHANGEABLE or name in TASK_SERVER_KEPT or name == "businessStatus":
            continue
        if name not in incoming or name not in current or not json_patch.same(current[name], incoming[name]):
            errors[f"Task.{name}"] = [
                "Only status, statusReason and output may change; this differs from the current Task."
            ]
    return errors


def _business_status_kept(current: dict, incoming: dict, status) -> bool:
    """Whether the Task sent leaves businessStatus out, as read, or as the new status's."""
    if "businessStatus" not in incoming or not isinstance(status, str) or status not in BUSINESS_STATUS:
        return True
    kept = [current.get("businessStatus"), {"text": BUSINESS_STATUS[status]}]
    return any(json_patch.same(incoming["businessStatus"], value) for value in kept)


def _outcome_values(output) -> list | None:
    """The valueString of each output, or None when output is not a list of objects."""
    if isinstance(output, list) and all(isinstance(item, dict) for item in output):
        return [item.get("valueString") for item in output]
    return None


def task_move(current: dict, incoming: dict) -> dict:
    """The move an updated Task asks for, as `POST /referrals/{id}/status` takes it
    (`status`, and `reason` and `outcome` when given), from the current Task and the Task sent.

    Only `status`, `statusReason` (its text) and `output` (one output, the outcome as
    `valueString`) may differ from the current Task; `meta` and `lastModified` are the
    server's; `businessStatus` may be left as it was read or be the new status's. Anything else
    that differs, is missing or is added is an InvalidData naming it (a 422).
    """
    errors = _unchangeable_differences(current, incoming)
    move: dict = {"status": incoming.get("status")}
    if move["status"] is None:
        errors["Task.status"] = ["Required."]
    if not _business_status_kept(current, incoming, move["status"]):
        errors["Task.businessStatus"] = ["Set by the server from status: send it as read, or leave it out."]
    if incoming.get("statusReason") is not None:
        reason = concept_text(incoming["statusReason"]) if isinstance(incoming["statusReason"], dict) else None
        if reason is None:
            errors["Task.statusReason"] = ["A CodeableConcept whose text is the reason."]
        else:
            move["reason"] = reason
    output = incoming.get("output")
    if output is not None and output != []:
        values = _outcome_values(output)
        if values is None or len(values) != 1 or not isinstance(values[0], str):
            errors["Task.output"] = ["One output: the outcome, as valueString."]
        else:
            move["outcome"] = values[0]
    if errors:
        raise InvalidData("The Task differs from the current one where it may not; see the issues.", errors)
    return move


def task_paths(errors: dict) -> dict:
    """Field errors of a move (`reason`, `outcome`), keyed by where they sit in a Task."""
    out: dict[str, list[str]] = {}
    for path, messages in flatten_errors(errors):
        path = path.removeprefix("json.")
        out.setdefault(TASK_PATH.get(path.split(".")[0], path), []).extend(messages)
    return out
