"""A page of sessions with their PR facts in two queries, whatever the page size: the
page (a keyset range of the (project_id, num) unique index), then every PR of the page's
sessions, from which each session's speaking PR is chosen as ``select_pr_facts`` does.
Both run in one read transaction, so the facts belong to the same snapshot as the page.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from adapters.sqlite import tables as t
from adapters.sqlite.rows import pr_facts_from_row, session_from_row
from orchestrator.domain.model import ProjectId
from orchestrator.domain.pages import SessionListing, SessionPage, encode_cursor
from orchestrator.domain.prs import NO_PR, select_pr_facts


def _page_query(
    limit: int, after: tuple[ProjectId, int] | None, project_id: ProjectId | None
) -> Any:
    s = t.sessions
    # One more row than asked says whether a next page exists.
    stmt = sa.select(s).order_by(s.c.project_id, s.c.num).limit(limit + 1)
    if after is not None:
        # A row-value comparison: SQLite walks the unique index from the cursor.
        stmt = stmt.where(sa.tuple_(s.c.project_id, s.c.num) > sa.tuple_(*after))
    if project_id is not None:
        stmt = stmt.where(s.c.project_id == project_id)
    return stmt


def pr_facts_query(*leading: Any) -> Any:
    """The columns ``pr_facts_from_row`` decodes (after ``leading``): a PR row and whether
    it has an unresolved comment."""
    p, c = t.pr, t.pr_comment
    unresolved = sa.exists().where(c.c.pr_url == p.c.url, c.c.resolved == 0).label("unresolved")
    return sa.select(
        *leading,
        p.c.url,
        p.c.number,
        p.c.pr_state,
        p.c.ci_state,
        p.c.review_decision,
        p.c.mergeability,
        p.c.head_sha,
        unresolved,
    )


def _facts_query(session_ids: list[str]) -> Any:
    p = t.pr
    return (
        pr_facts_query(p.c.session_id)
        .where(p.c.session_id.in_(session_ids))
        # Each session's PRs newest first, as list_pr_facts orders them.
        .order_by(p.c.session_id, p.c.updated_at.desc(), p.c.write_seq.desc())
    )


def read_session_page(
    conn: Connection,
    *,
    limit: int,
    after: tuple[ProjectId, int] | None,
    project_id: ProjectId | None,
) -> SessionPage:
    """The page after ``after`` (from the start when None); run inside a read transaction."""
    rows = conn.execute(_page_query(limit, after, project_id)).all()
    records = [session_from_row(row) for row in rows[:limit]]
    facts = {}
    if records:
        pr_rows = conn.execute(_facts_query([r.id for r in records])).all()
        facts = {
            session_id: select_pr_facts([pr_facts_from_row(row) for row in group])
            for session_id, group in groupby(pr_rows, key=lambda row: row.session_id)
        }
    last = records[-1] if records and len(rows) > limit else None
    return SessionPage(
        items=tuple(SessionListing(record=r, pr=facts.get(r.id, NO_PR)) for r in records),
        next_cursor=None if last is None else encode_cursor(last.project_id, last.num),
    )
