"""The pure rules over source-control facts: a check's status, the CI summary,
mergeability, the failure fingerprint, which session a PR belongs to, repository URLs, CI
log tails, and the engine's ``PRObservation`` of a PR. See (docs/behaviour.md, "PR facts").
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from orchestrator.domain.model import (
    CheckStatus,
    CIState,
    Mergeability,
    PRCheck,
    PRComment,
    PRObservation,
    PRState,
    ReviewDecision,
    SessionId,
    SessionKind,
)
from orchestrator.domain.scm import (
    BranchClaim,
    CheckKind,
    PRDetail,
    PRSummary,
    RepoRef,
    ReviewSnapshot,
    SCMCheck,
)
from orchestrator.domain.text import clean_text

# --- check status and CI summary ---------------------------------------------------------

_CONCLUSION: Final[Mapping[str, CheckStatus]] = {
    "SUCCESS": CheckStatus.PASSED,
    "NEUTRAL": CheckStatus.PASSED,
    "FAILURE": CheckStatus.FAILED,
    "TIMED_OUT": CheckStatus.FAILED,
    "ACTION_REQUIRED": CheckStatus.FAILED,
    "STARTUP_FAILURE": CheckStatus.FAILED,
    "CANCELLED": CheckStatus.CANCELLED,
    "SKIPPED": CheckStatus.SKIPPED,
    "STALE": CheckStatus.SKIPPED,
}
_RUN_STATUS: Final[Mapping[str, CheckStatus]] = {
    "QUEUED": CheckStatus.QUEUED,
    "PENDING": CheckStatus.QUEUED,
    "REQUESTED": CheckStatus.QUEUED,
    "WAITING": CheckStatus.QUEUED,
    "IN_PROGRESS": CheckStatus.IN_PROGRESS,
}
_CONTEXT_STATE: Final[Mapping[str, CheckStatus]] = {
    "SUCCESS": CheckStatus.PASSED,
    "FAILURE": CheckStatus.FAILED,
    "ERROR": CheckStatus.FAILED,
    "PENDING": CheckStatus.IN_PROGRESS,
    "EXPECTED": CheckStatus.IN_PROGRESS,
}
_ROLLUP: Final[Mapping[str, CIState]] = {
    "SUCCESS": CIState.PASSING,
    "FAILURE": CIState.FAILING,
    "ERROR": CIState.FAILING,
    "PENDING": CIState.PENDING,
    "EXPECTED": CIState.PENDING,
}
_UNSETTLED: Final = frozenset({CheckStatus.QUEUED, CheckStatus.IN_PROGRESS, CheckStatus.UNKNOWN})


def check_run_status(status: str | None, conclusion: str | None) -> CheckStatus:
    """A check run: a conclusion, when there is one, wins over the status. Case-blind,
    because REST spells these lower-case and GraphQL upper-case."""
    if conclusion:
        return _CONCLUSION.get(conclusion.upper(), CheckStatus.UNKNOWN)
    return _RUN_STATUS.get((status or "").upper(), CheckStatus.UNKNOWN)


def status_context_status(state: str | None) -> CheckStatus:
    """A legacy commit status (``StatusContext`` or a REST combined-status entry)."""
    return _CONTEXT_STATE.get((state or "").upper(), CheckStatus.UNKNOWN)


def latest_per_name(checks: Iterable[SCMCheck], head_sha: str | None = None) -> list[SCMCheck]:
    """The newest run of each check (a re-run adds a run with the same name), optionally
    only those on ``head_sha``, in first-seen order."""
    newest: dict[str, SCMCheck] = {}
    for check in checks:
        if head_sha is not None and check.commit != head_sha:
            continue
        kept = newest.get(check.name)
        if kept is None or _run_order(check) >= _run_order(kept):
            newest[check.name] = check
    return list(newest.values())


def _run_order(check: SCMCheck) -> tuple[float, int]:
    started = check.started_at.timestamp() if check.started_at else 0.0
    return (started, check.provider_id or 0)


def summarize_ci(
    rollup_state: str | None, checks: Sequence[SCMCheck], *, complete: bool
) -> CIState:
    """The CI verdict. No rollup yet means unknown, never failing (no checks is not a
    failure); one failed check proves failure even on a partial set; a partial set never
    proves success."""
    if any(check.status is CheckStatus.FAILED for check in checks):
        return CIState.FAILING
    if rollup_state is None:
        return CIState.PENDING if any(c.status in _UNSETTLED for c in checks) else CIState.UNKNOWN
    verdict = _ROLLUP.get(rollup_state.upper(), CIState.UNKNOWN)
    if verdict is CIState.PASSING and not complete:
        return CIState.UNKNOWN
    return verdict


def pr_ci(detail: PRDetail) -> CIState:
    """The CI verdict of a PR's head commit, over the newest run of each check."""
    latest = latest_per_name(detail.checks, detail.head_sha)
    return summarize_ci(detail.rollup_state, latest, complete=detail.checks_complete)


# --- mergeability ------------------------------------------------------------------------

_MERGE_STATE: Final[Mapping[str, Mergeability]] = {
    "DIRTY": Mergeability.CONFLICTING,
    "BLOCKED": Mergeability.BLOCKED,
    "BEHIND": Mergeability.BLOCKED,  # out of date with a base that requires it
    "DRAFT": Mergeability.BLOCKED,  # older GitHub Enterprise reports drafts so
    "UNSTABLE": Mergeability.UNSTABLE,
    "CLEAN": Mergeability.MERGEABLE,
    "HAS_HOOKS": Mergeability.MERGEABLE,
}


def mergeability(
    mergeable: str | None,
    merge_state: str | None,
    state: PRState,
    ci: CIState,
    review: ReviewDecision,
) -> Mergeability:
    """Whether the PR could be merged now. ``mergeable`` UNKNOWN means GitHub is still
    computing it: never a verdict. A draft, a failing CI or requested changes cap what
    GitHub's merge state says, so "mergeable" is only ever claimed for a PR ready to go."""
    if (mergeable or "").upper() == "CONFLICTING" or (merge_state or "").upper() == "DIRTY":
        return Mergeability.CONFLICTING
    if (mergeable or "").upper() != "MERGEABLE":
        return Mergeability.UNKNOWN
    if state is PRState.DRAFT or review is ReviewDecision.CHANGES_REQUESTED:
        return Mergeability.BLOCKED
    verdict = _MERGE_STATE.get((merge_state or "").upper(), Mergeability.UNKNOWN)
    if verdict is Mergeability.MERGEABLE and ci is CIState.FAILING:
        return Mergeability.UNSTABLE
    return verdict


def pr_mergeability(detail: PRDetail) -> Mergeability:
    return mergeability(
        detail.mergeable, detail.merge_state, detail.state, pr_ci(detail), detail.review
    )


def pr_state(state: str, *, draft: bool, merged: bool = False) -> PRState:
    """GitHub's OPEN/CLOSED/MERGED (or REST's open/closed plus ``merged_at``) and draft flag."""
    upper = state.upper()
    if merged or upper == "MERGED":
        return PRState.MERGED
    if upper == "CLOSED":
        return PRState.CLOSED
    return PRState.DRAFT if draft else PRState.OPEN


_DECISION: Final[Mapping[str, ReviewDecision]] = {
    "APPROVED": ReviewDecision.APPROVED,
    "CHANGES_REQUESTED": ReviewDecision.CHANGES_REQUESTED,
    "REVIEW_REQUIRED": ReviewDecision.REVIEW_REQUIRED,
}


def review_decision(raw: str | None) -> ReviewDecision:
    return _DECISION.get((raw or "").upper(), ReviewDecision.NONE)


# --- fingerprints ------------------------------------------------------------------------


def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def failure_fingerprint(pr_node_id: str, head_sha: str, checks: Iterable[SCMCheck]) -> str:
    """What identifies "this PR fails these checks on this commit". The run id and URL
    are left out on purpose: a re-run on the same commit gets new ones, and must not read
    as a new failure (which would nudge the agent again)."""
    failed = sorted(
        {(c.name, c.conclusion or c.status.value) for c in checks if c.status is CheckStatus.FAILED}
    )
    return _digest([pr_node_id, head_sha, *(f"{name}={why}" for name, why in failed)])


def checks_fingerprint(checks: Iterable[SCMCheck]) -> str:
    """A content digest of a check set, to compare listings that span several pages."""
    rows = sorted(
        f"{c.kind}|{c.name}|{c.commit}|{c.status}|{c.conclusion or ''}|{c.provider_id or ''}"
        for c in checks
    )
    return _digest(rows)


# --- attribution ------------------------------------------------------------------------


def same_repo(a: RepoRef, b: RepoRef) -> bool:
    """GitHub names are case-insensitive."""
    return (a.host.lower(), a.full_name.lower()) == (b.host.lower(), b.full_name.lower())


def attribute_pr(
    pr: PRSummary,
    base: RepoRef,
    claims: Sequence[BranchClaim],
    *,
    default_branch: str,
    stacked_prefix: bool = False,
) -> SessionId | None:
    """The session a PR of repository ``base`` belongs to, or None.

    Its head ref must be the session's branch exactly (or, with ``stacked_prefix``, lie
    under ``branch/``; the longest branch wins). The head must live in the session's push
    repository, so a fork's same-named branch never attaches (nor a deleted fork's). The
    default branch and orchestrator sessions never claim, so a session on ``main`` does
    not grab a ``main → release`` PR. Two sessions with an equal claim get neither."""
    if pr.head_repo is None or pr.head_ref == default_branch:
        return None
    head_repo = parse_full_name(pr.head_repo, host=base.host)
    best: list[BranchClaim] = []
    best_length = -1
    for claim in claims:
        if (
            claim.kind is SessionKind.ORCHESTRATOR
            or not claim.branch
            or claim.branch == default_branch
            or head_repo is None
            or not same_repo(head_repo, claim.repo)
        ):
            continue
        exact = pr.head_ref == claim.branch
        stacked = stacked_prefix and pr.head_ref.startswith(claim.branch + "/")
        if not (exact or stacked):
            continue
        length = len(claim.branch) + (1 << 20 if exact else 0)  # exact beats any prefix
        if length > best_length:
            best, best_length = [claim], length
        elif length == best_length:
            best.append(claim)
    return best[0].session_id if len(best) == 1 else None


# --- repository URLs ---------------------------------------------------------------------

_SCP_LIKE: Final = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>[^/].*)$")
_URL: Final = re.compile(
    r"^(?:https?|ssh|git|git\+ssh)://(?:[^@/]+@)?(?P<host>[\w.-]+)(?::\d+)?/(?P<path>.+)$"
)
_NAME: Final = re.compile(r"^[\w.-]+$")


def parse_full_name(full_name: str, *, host: str = "github.com") -> RepoRef | None:
    owner, _, name = full_name.strip().strip("/").partition("/")
    name = name.removesuffix(".git").rstrip("/")
    if not (_NAME.match(owner) and _NAME.match(name)) or name in {".", ".."}:
        return None
    return RepoRef(host=host.lower(), owner=owner, name=name)


def parse_repo_url(url: str) -> RepoRef | None:
    """``owner/name`` (and host) from a remote URL: ``https://host/o/r(.git)``,
    ``git@host:o/r.git``, ``ssh://git@host[:port]/o/r.git``. None for anything else."""
    text = url.strip()
    match = _URL.match(text) or _SCP_LIKE.match(text)
    if match is None:
        return None
    return parse_full_name(match["path"], host=match["host"])


# --- log tails ---------------------------------------------------------------------------

_STAMP: Final = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")


def clean_log_line(line: str) -> str:
    """One CI log line without its leading timestamp, escape sequences or control
    characters. A carriage return redraws the line, so only what follows the last counts."""
    line = line.rstrip("\r")
    if "\r" in line:
        line = line.rsplit("\r", 1)[1]
    return clean_text(_STAMP.sub("", line, count=1))


class LogTail:
    """The cleaned last lines of a log read in chunks, holding only ``max_lines`` lines
    (each at most ``max_bytes``) however large the log is."""

    def __init__(self, *, max_lines: int = 30, max_bytes: int = 8192) -> None:
        self._max_lines = max(1, max_lines)
        self._max_bytes = max(1, max_bytes)
        self._lines: deque[bytes] = deque(maxlen=self._max_lines)
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        *complete, partial = (self._partial + chunk).split(b"\n")
        self._partial = partial[-self._max_bytes :]
        self._lines.extend(line[-self._max_bytes :] for line in complete[-self._max_lines :])

    def text(self) -> str:
        """The tail, at most ``max_bytes`` of UTF-8, cut at a line boundary when it can be."""
        raw = [*self._lines, self._partial] if self._partial else list(self._lines)
        cleaned = [clean_log_line(line.decode("utf-8", errors="replace")) for line in raw]
        kept: list[str] = []
        size = 0
        for line in reversed(cleaned[-self._max_lines :]):
            size += len(line.encode()) + 1
            if size > self._max_bytes + 1 and kept:
                break
            kept.append(line)
        text = "\n".join(reversed(kept))
        return text.encode()[-self._max_bytes :].decode("utf-8", errors="ignore")


ACTIONS_APP: Final = "github-actions"


def wants_log_tail(check: SCMCheck) -> bool:
    """Whether a check's job log is worth fetching: only a finished, failed GitHub
    Actions run has one (another app's check run has no job behind its id)."""
    return (
        check.kind is CheckKind.CHECK_RUN
        and check.status is CheckStatus.FAILED
        and check.conclusion is not None
        and check.provider_id is not None
        and check.app == ACTIONS_APP
    )


def log_unavailable(reason: str) -> str:
    """What stands in for a log tail that could not be read: one short line."""
    return "log unavailable: " + " ".join(clean_text(reason).split())[:200]


# --- the engine's PR observation --------------------------------------------------------


def to_observation(detail: PRDetail, review: ReviewSnapshot | None) -> PRObservation:
    """The engine's observation of ``detail``. The engine replaces a PR's comment set
    with the observation's, so pass the last known ``review`` when it was not re-read;
    None means the PR has no review comments."""
    state = detail.state
    checks = tuple(
        PRCheck(
            name=check.name,
            commit=check.commit,
            status=check.status,
            url=check.url,
            log_tail=check.log_tail,
        )
        for check in latest_per_name(detail.checks, detail.head_sha)
    )
    comments = tuple(
        PRComment(
            id=comment.id,
            author=comment.author,
            file=comment.file,
            line=comment.line,
            body=comment.body,
            resolved=comment.resolved,
            created_at=comment.created_at,
        )
        for comment in (review.comments if review else ())
    )
    return PRObservation(
        url=detail.url,
        number=detail.number,
        draft=state is PRState.DRAFT,
        merged=state is PRState.MERGED,
        closed=state is PRState.CLOSED,
        ci=pr_ci(detail),
        review=detail.review,
        mergeability=pr_mergeability(detail),
        checks=checks,
        comments=comments,
        head_sha=detail.head_sha,
    )
