"""Row decoders: a stored row (in its table's column order, or a select's named columns)
back to the domain value it was written from. Stored text is trusted only as far as the
enums and timestamp codec accept it: anything else raises ``ValueError``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
from sqlalchemy.engine import Row

from adapters.sqlite.tables import decode_opt_ts, decode_ts
from orchestrator.domain.model import (
    Activity,
    ActivitySource,
    ActivityState,
    AgentHarness,
    CheckStatus,
    CIState,
    DetectingState,
    Lifecycle,
    Mergeability,
    PRCheck,
    PRComment,
    PRFacts,
    Priority,
    PRState,
    ReactionAction,
    ReactionKey,
    ReviewDecision,
    SessionKind,
    SessionMetadata,
    SessionRecord,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.records import (
    ChangeEvent,
    ChangeType,
    Notification,
    OutboxEntry,
    OutboxItem,
    Project,
    Tracker,
)


def project_from_row(r: Sequence[Any]) -> Project:
    id_, path, origin, display, registered, archived = r
    return Project(
        id=id_,
        path=path,
        repo_origin_url=origin,
        display_name=display,
        registered_at=decode_ts(registered),
        archived_at=decode_opt_ts(archived),
    )


def session_from_row(r: Sequence[Any]) -> SessionRecord:
    (
        id_,
        project_id,
        num,
        issue_id,
        kind,
        harness,
        state,
        reason,
        is_alive,
        activity_state,
        activity_last_at,
        activity_source,
        detecting_attempts,
        detecting_started_at,
        detecting_hash,
        branch,
        workspace_path,
        runtime_handle_id,
        runtime_name,
        agent_session_id,
        prompt,
        created_at,
        updated_at,
        agent,
    ) = r
    activity = (
        None
        if activity_state == ""
        else Activity(
            state=ActivityState(activity_state),
            last_activity_at=decode_ts(activity_last_at),
            source=ActivitySource(activity_source),
        )
    )
    detecting = (
        None
        if detecting_attempts is None
        else DetectingState(
            attempts=detecting_attempts,
            started_at=decode_ts(detecting_started_at),
            evidence_hash=detecting_hash,
        )
    )
    return SessionRecord(
        id=id_,
        project_id=project_id,
        num=num,
        issue_id=issue_id,
        kind=SessionKind(kind),
        lifecycle=Lifecycle(
            state=SessionState(state),
            termination_reason=TerminationReason(reason),
            is_alive=bool(is_alive),
            activity=activity,
            harness=AgentHarness(harness),
            detecting=detecting,
        ),
        metadata=SessionMetadata(
            branch=branch,
            workspace_path=workspace_path,
            runtime_handle_id=runtime_handle_id,
            runtime_name=runtime_name,
            agent_session_id=agent_session_id,
            prompt=prompt,
            agent=agent,
        ),
        created_at=decode_ts(created_at),
        updated_at=decode_ts(updated_at),
    )


def pr_facts_from_row(r: Row[Any]) -> PRFacts:
    """A ``pr`` row with the select's ``unresolved`` column (any unresolved comment)."""
    return PRFacts.of_pr(
        url=r.url,
        number=r.number,
        state=PRState(r.pr_state),
        ci=CIState(r.ci_state),
        review=ReviewDecision(r.review_decision),
        mergeability=Mergeability(r.mergeability),
        review_comments=bool(r.unresolved),
        head_sha=r.head_sha,
    )


def check_from_row(r: Sequence[Any]) -> PRCheck:
    _pr_url, name, commit_hash, status, url, log_tail, created_at = r
    return PRCheck(
        name=name,
        commit=commit_hash,
        status=CheckStatus(status),
        url=url,
        log_tail=log_tail,
        created_at=decode_ts(created_at),
    )


def comment_from_row(r: Row[Any]) -> PRComment:
    return PRComment(
        id=r.comment_id,
        author=r.author,
        file=r.file,
        line=r.line,
        body=r.body,
        resolved=bool(r.resolved),
        created_at=decode_ts(r.created_at),
    )


def tracker_from_row(r: Sequence[Any]) -> Tracker:
    _sid, key, reaction, attempts, first_at, escalated, seen = r
    return Tracker(
        key=key,
        reaction=ReactionKey(reaction),
        attempts=attempts,
        first_at=decode_opt_ts(first_at),
        escalated=bool(escalated),
        seen=msgspec.json.decode(seen, type=tuple[str, ...]),
    )


def outbox_from_row(r: Sequence[Any]) -> OutboxEntry:
    (
        id_,
        dedup_key,
        session_id,
        project_id,
        action,
        reaction,
        event_type,
        priority,
        message,
        attempts,
        next_attempt_at,
        delivered_at,
        failed_at,
        last_error,
        created_at,
        pr_url,
        head_sha,
    ) = r
    return OutboxEntry(
        id=id_,
        item=OutboxItem(
            dedup_key=dedup_key,
            session_id=session_id,
            project_id=project_id,
            action=ReactionAction(action),
            reaction=None if reaction is None else ReactionKey(reaction),
            event_type=event_type,
            priority=Priority(priority),
            message=message,
            pr_url=pr_url,
            head_sha=head_sha,
        ),
        attempts=attempts,
        next_attempt_at=decode_opt_ts(next_attempt_at),
        delivered_at=decode_opt_ts(delivered_at),
        failed_at=decode_opt_ts(failed_at),
        last_error=last_error,
        created_at=decode_ts(created_at),
    )


def notification_from_row(r: Row[Any]) -> Notification:
    return Notification(
        id=r.id,
        session_id=r.session_id,
        project_id=r.project_id,
        type=r.type,
        priority=Priority(r.priority),
        message=r.message,
        created_at=decode_ts(r.created_at),
        read=bool(r.read),
        resolved=bool(r.resolved),
    )


_CHANGE_TYPES: Final = {str(kind): kind for kind in ChangeType}


def change_events_from_rows(rows: Sequence[tuple[Any, ...]]) -> list[ChangeEvent]:
    """Change-log rows as selected by ``CHANGES_AFTER``. One call for all the rows: the
    change feed reads after every commit."""
    return [
        ChangeEvent(
            seq=seq,
            project_id=project,
            session_id=session or "",
            type=_CHANGE_TYPES[event_type],
            payload=payload,
            created_at=decode_ts(created_at),
        )
        for seq, project, session, event_type, payload, created_at in rows
    ]
