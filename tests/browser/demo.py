"""A small, varied board for the screenshots: one session in each situation a person
glances at (needs input, failing CI, changes requested, in review, ready to merge, killed)."""

from __future__ import annotations

from pathlib import Path

from tests.browser.harness import observe_pr, register, report, spawn
from tests.e2e.harness import Daemon, wait_for

DEMO_PROMPTS = (
    "Add rate limiting to the public checkout API",
    "Fix the flaky payment webhook test",
    "Migrate the orders table to the new schema",
    "Upgrade the image pipeline to libvips 8.15",
    "Document the refund flow for support staff",
    "Try a Redis cache for the catalogue (spike)",
    "Rewrite the CSV export in streaming mode",
)


def seed_demo(daemon: Daemon, tmp: Path) -> dict[str, str]:
    """Sessions in every column; returns their ids by role."""
    register(daemon, tmp)
    ids = [
        spawn(daemon, prompt, issue="" if i % 3 else str(40 + i))
        for i, prompt in enumerate(DEMO_PROMPTS)
    ]
    asking, ci, review, open_pr, ready, killed, working = ids
    report(daemon, asking, "waiting_input")
    for session_id in (ci, review, open_pr, ready, working):
        report(daemon, session_id, "active")
    observe_pr(
        daemon,
        ci,
        number=12,
        ci="failing",
        checks=[
            {
                "name": "unit",
                "commit": "9f2c1ab7",
                "status": "failed",
                "logTail": "FAILED test_webhook_retry - AssertionError: 2 != 3",
                "url": "https://ci.example/run/1",
            },
            {"name": "lint", "commit": "9f2c1ab7", "status": "passed"},
        ],
    )
    observe_pr(
        daemon,
        review,
        number=15,
        review="changes_requested",
        comments=[
            {
                "id": "c1",
                "author": "dana",
                "file": "db/migrate.py",
                "line": 88,
                "body": "This drops the index before the copy finishes.",
            }
        ],
    )
    observe_pr(daemon, open_pr, number=16, review="review_required", ci="pending")
    observe_pr(daemon, ready, number=17, review="approved", ci="passing", mergeability="mergeable")
    response = daemon.post(f"/sessions/{killed}/kill", {})
    assert response.status_code == 200, response.text

    def delivered() -> bool:
        notes = daemon.api("GET", "/notifications").json()
        return len(notes) >= 2

    wait_for(delivered, what="the demo's notifications")
    return {
        "asking": asking,
        "ci": ci,
        "review": review,
        "open": open_pr,
        "ready": ready,
        "killed": killed,
        "working": working,
    }
