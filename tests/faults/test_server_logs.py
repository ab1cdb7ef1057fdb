"""The production server's request log: one JSON line per request, with the request id the
caller sent (or a new one), returned to it; the path never carries the query string."""

from __future__ import annotations

import json

from tests.faults.conftest import Gunicorn, call

SENSITIVE = "my son was shot"


def test_gunicorn_writes_one_json_line_per_request_with_its_id(database, tmp_path):
    log_path = tmp_path / "gunicorn.log"
    with Gunicorn(database, log_path, LOG_LEVEL="INFO") as server:
        sent = {
            "given": call(
                "GET",
                server.url + "/services?search=" + SENSITIVE.replace(" ", "+"),
                headers={"X-Request-ID": "partner-req-7"},
            ),
            "generated": call("GET", server.url + "/organizations?per_page=2"),
            "refused": call(
                "GET",
                server.url + "/services?per_page=0&search=" + SENSITIVE.replace(" ", "+"),
                headers={"X-Request-ID": "not a token!"},
            ),
            "missing": call("GET", server.url + "/programs/no-such-program"),
        }
    assert sent["given"].headers["x-request-id"] == "partner-req-7"
    # No server software or version banner from the production server either.
    assert all(reply.headers["server"] == "occh" for reply in sent.values())
    ids = {name: reply.headers["x-request-id"] for name, reply in sent.items()}
    assert len(set(ids.values())) == 4 and ids["refused"] != "not a token!"

    text = log_path.read_text()
    assert "shot" not in text and "per_page" not in text
    entries = [json.loads(line) for line in text.splitlines() if '"occh.requests"' in line]
    by_id = {entry["request_id"]: entry for entry in entries}
    expected = {
        "given": ("/services", "/services", 200),
        "generated": ("/organizations", "/organizations", 200),
        "refused": ("/services", "/services", 422),
        "missing": ("/programs/<string:id_or_slug>", "/programs/no-such-program", 404),
    }
    for name, (route, path, status) in expected.items():
        entry = by_id[ids[name]]
        assert (entry["method"], entry["route"], entry["path"], entry["status"]) == ("GET", route, path, status)
        assert entry["duration_ms"] >= 0 and entry["level"] == "INFO" and entry["time"]
        assert sent[name].status == status
